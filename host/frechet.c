/* frechet.c: the Fréchet distance of two Gaussians in double (frechet.h), on LAPACK (dsyevd) and BLAS
 * (dgemm) from OpenBLAS. */
#include "frechet.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK's symmetric eigensolver (Fortran; gfortran appends the lengths of the character arguments). */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

/* Eigenvalues w[n] and eigenvectors (the columns of a, column-major) of the symmetric a[n, n], in place. */
static int sym_eig(double *a, double *w, int n, edm2_err *err) {
    int lwork = -1, liwork = -1, info = 0, iw;
    double wq;
    dsyevd_("V", "U", &n, a, &n, w, &wq, &lwork, &iw, &liwork, &info, 1, 1);
    if (info) return err_set(err, "LAPACK dsyevd workspace query failed (info %d)", info);
    lwork = (int)wq, liwork = iw;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work), free(iwork);
        return err_set(err, "out of memory for an eigendecomposition of size %d", n);
    }
    dsyevd_("V", "U", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work), free(iwork);
    return info ? err_set(err, "LAPACK dsyevd did not converge (info %d) on a %dx%d covariance", info, n, n) : 0;
}

int frechet_distance(const double *mu1, const double *sigma1, const double *mu2, const double *sigma2, int n,
                     double *out, edm2_err *err) {
    const size_t nn = (size_t)n * n;
    double *v = malloc(nn * sizeof *v), *b = malloc(nn * sizeof *b), *half = malloc(nn * sizeof *half);
    double *t = malloc(nn * sizeof *t), *w = malloc((size_t)n * sizeof *w);
    int rc = -1;
    if (!v || !b || !half || !t || !w) {
        err_set(err, "out of memory for %dx%d covariances", n, n);
        goto done;
    }
    double d2 = 0, tr1 = 0, tr2 = 0;
    for (int i = 0; i < n; i++) {
        d2 += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
        tr1 += sigma1[(size_t)i * n + i], tr2 += sigma2[(size_t)i * n + i];
    }
    /* A = S1^(1/2) = V diag(sqrt(max(lambda, 0))) V^T. */
    memcpy(v, sigma1, nn * sizeof *v);
    if (sym_eig(v, w, n, err)) goto done;
    for (int k = 0; k < n; k++) {
        const double s = sqrt(w[k] > 0 ? w[k] : 0);
        for (int i = 0; i < n; i++) b[(size_t)k * n + i] = v[(size_t)k * n + i] * s;
    }
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, b, n, v, n, 0.0, half, n);
    /* M = A S2 A, symmetrised against rounding; tr (S1 S2)^(1/2) = sum sqrt(lambda(M)). */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, half, n, sigma2, n, 0.0, t, n);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, t, n, half, n, 0.0, b, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) {
            const double m = 0.5 * (b[(size_t)i * n + j] + b[(size_t)j * n + i]);
            b[(size_t)i * n + j] = b[(size_t)j * n + i] = m;
        }
    if (sym_eig(b, w, n, err)) goto done;
    double tr_sqrt = 0;
    for (int k = 0; k < n; k++) tr_sqrt += sqrt(w[k] > 0 ? w[k] : 0);
    *out = d2 + tr1 + tr2 - 2 * tr_sqrt;
    rc = 0;
done:
    free(v), free(b), free(half), free(t), free(w);
    return rc;
}

int feature_stats(const float *f, size_t count, int dim, double *mu, double *sigma, edm2_err *err) {
    if (count < 2) return err_set(err, "statistics of %zu feature rows: need at least 2", count);
    double *c = malloc(count * (size_t)dim * sizeof *c);
    if (!c) return err_set(err, "out of memory for %zu x %d features", count, dim);
    for (int j = 0; j < dim; j++) {
        double s = 0;
        for (size_t i = 0; i < count; i++) s += f[i * dim + j];
        mu[j] = s / (double)count;
    }
    for (size_t i = 0; i < count; i++)
        for (int j = 0; j < dim; j++) c[i * dim + j] = f[i * dim + j] - mu[j];
    /* sigma = c^T c / (count - 1): symmetric, so the layouts agree. */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dim, dim, (int)count, 1.0 / (double)(count - 1), c, dim, c, dim,
                0.0, sigma, dim);
    free(c);
    return 0;
}
