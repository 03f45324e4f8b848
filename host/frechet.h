/* frechet.h: the Fréchet distance between two Gaussians, FID's formula (Heusel et al., NeurIPS 2017):
 *   d² = |mu1 - mu2|² + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2),
 * in double precision. The square-root term is computed from a symmetric form: with A = S1^(1/2) (symmetric,
 * by eigendecomposition), (S1 S2)^(1/2) has the eigenvalues of (A S2 A)^(1/2), so tr (S1 S2)^(1/2) =
 * sum_i sqrt(lambda_i(A S2 A)); both eigendecompositions are LAPACK's dsyevd (OpenBLAS), eigenvalues below
 * zero from rounding count as zero. The common tools (pytorch-fid) take scipy.linalg.sqrtm of the
 * non-symmetric product S1 S2 instead: the same value where that is well conditioned (tests/test_fid.c
 * checks it against scipy), and no complex parts to drop. */
#ifndef EDM2_HOST_FRECHET_H
#define EDM2_HOST_FRECHET_H

#include <stddef.h>

#include "errors.h"

/* mu[n], sigma[n, n] (symmetric). 0, or -1 with a reason (LAPACK failure, out of memory). */
int frechet_distance(const double *mu1, const double *sigma1, const double *mu2, const double *sigma2, int n,
                     double *out, edm2_err *err);
/* Mean [dim] and covariance [dim, dim] (divided by count - 1, as numpy.cov) of count feature rows. */
int feature_stats(const float *features, size_t count, int dim, double *mu, double *sigma, edm2_err *err);

#endif
