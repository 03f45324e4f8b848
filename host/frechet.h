/* frechet.h: the Fréchet distance between two Gaussians, FID's formula (Heusel et al., NeurIPS 2017):
 *   d² = |mu1 - mu2|² + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2),
 * in double precision. The square-root term is computed from a symmetric form: with S1 = V diag(lambda) V^T
 * (LAPACK's dsyevd, OpenBLAS) and A = S1^(1/2), (S1 S2)^(1/2) has the eigenvalues of (A S2 A)^(1/2), and
 * A S2 A those of the r x r matrix B^T S2 B, B = the r eigenvectors of S1 with eigenvalues above rounding noise
 * times their square roots; so tr (S1 S2)^(1/2) = sum_i sqrt(lambda_i(B^T S2 B)) (eigenvalues only; those
 * below zero from rounding count as zero). Statistics of fewer feature rows than dimensions (a quick
 * evaluation: rank r < n) thus take one n x n eigendecomposition and an r x r one. The common tools
 * (pytorch-fid) take scipy.linalg.sqrtm of the non-symmetric product S1 S2 instead: the same value where
 * that is well conditioned (tests/test_fid.c checks it against scipy, on full-rank and rank-deficient
 * statistics), and no complex parts to drop. */
#ifndef EDM2_HOST_FRECHET_H
#define EDM2_HOST_FRECHET_H

#include <stddef.h>

#include "errors.h"

/* mu[n], sigma[n, n] (symmetric). 0, or -1 with a reason (LAPACK failure, out of memory). */
int frechet_distance(const double *mu1, const double *sigma1, const double *mu2, const double *sigma2, int n,
                     double *out, edm2_err *err);
/* Feature statistics accumulated batch by batch in double (memory: dim^2 and, while there are at most dim
 * rows, the rows; whatever the number of rows): sums of the rows and of their outer products, both around
 * the first batch's mean, and the rows themselves (around it too) until there are more than dim. */
typedef struct fid_accum {
    int dim;
    size_t count;
    double *sum, *outer, *shift; /* [dim], [dim, dim] (upper triangle), [dim] */
    double *rows;                /* [count, dim] while count <= dim, else NULL */
} fid_accum;
int fid_accum_init(fid_accum *a, int dim, edm2_err *err);
int fid_accum_add(fid_accum *a, const float *features, size_t n, edm2_err *err);
/* Mean [dim] and covariance [dim, dim] (divided by count - 1, as numpy.cov) of the rows added; count >= 2. */
int fid_accum_finish(const fid_accum *a, double *mu, double *sigma, edm2_err *err);
/* The Fréchet distance of the rows added (count >= 2) to mu2, sigma2: frechet_distance of their statistics;
 * with at most dim rows (a quick evaluation), from the rows themselves through their count x count Gram
 * matrix instead of S1's dim x dim eigendecomposition (frechet.c), the same value within rounding. */
int fid_accum_distance(const fid_accum *a, const double *mu2, const double *sigma2, double *out, edm2_err *err);
void fid_accum_free(fid_accum *a);
/* The same for count rows at once. */
int feature_stats(const float *features, size_t count, int dim, double *mu, double *sigma, edm2_err *err);

#endif
