/* frechet.c: the Fréchet distance of two Gaussians in double (frechet.h), on LAPACK (dsyevd) and BLAS
 * (dgemm) from OpenBLAS; from feature rows when there are no more of them than dimensions. */
#include "frechet.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK's symmetric eigensolver (Fortran; gfortran appends the lengths of the character arguments). */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

/* The eigenvalues w[n] of the symmetric a[n, n] (column-major, destroyed), and with vectors = 1 its
 * eigenvectors (the columns of a, in place). */
static int sym_eig(double *a, double *w, int n, int vectors, edm2_err *err) {
    const char *jobz = vectors ? "V" : "N";
    int lwork = -1, liwork = -1, info = 0, iw;
    double wq;
    dsyevd_(jobz, "U", &n, a, &n, w, &wq, &lwork, &iw, &liwork, &info, 1, 1);
    if (info) return err_set(err, "LAPACK dsyevd workspace query failed (info %d)", info);
    lwork = (int)wq, liwork = iw;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work), free(iwork);
        return err_set(err, "out of memory for an eigendecomposition of size %d", n);
    }
    dsyevd_(jobz, "U", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work), free(iwork);
    return info ? err_set(err, "LAPACK dsyevd did not converge (info %d) on a %dx%d covariance", info, n, n) : 0;
}

/* tr (S1 S2)^(1/2) = sum sqrt(lambda(M)) over M = B^T S2 B [r, r], B [n, r] (column-major) the eigenvectors
 * of S1 with eigenvalues above rounding times their square roots; M symmetrised against rounding, its
 * eigenvalues below zero from rounding counted as zero. */
static int tr_sqrt_from(const double *B, int r, const double *sigma2, int n, double *tr, edm2_err *err) {
    *tr = 0;
    if (!r) return 0;
    double *t = malloc((size_t)n * r * sizeof *t), *m = malloc((size_t)r * r * sizeof *m);
    double *w = malloc((size_t)r * sizeof *w);
    int rc = -1;
    if (!t || !m || !w) {
        err_set(err, "out of memory for the %dx%d product of a Frechet distance", n, r);
        goto done;
    }
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, r, n, 1.0, sigma2, n, B, n, 0.0, t, n); /* S2 B */
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, r, r, n, 1.0, B, n, t, n, 0.0, m, r);         /* B^T S2 B */
    for (int i = 0; i < r; i++)
        for (int j = 0; j < i; j++) {
            const double x = 0.5 * (m[(size_t)i * r + j] + m[(size_t)j * r + i]);
            m[(size_t)i * r + j] = m[(size_t)j * r + i] = x;
        }
    if (sym_eig(m, w, r, 0, err)) goto done;
    for (int k = 0; k < r; k++) *tr += sqrt(w[k] > 0 ? w[k] : 0);
    rc = 0;
done:
    free(t), free(m), free(w);
    return rc;
}

/* Keeps in place, as the first r columns of v [n, n] (column-major), the eigenvectors (v's columns) whose
 * eigenvalues (w, ascending) lie above rounding, dim eps lambda_max (numpy's matrix_rank bound), with
 * `scaled` each times sqrt(lambda); returns r. */
static int keep_above_noise(double *v, const double *w, int n, int dim, int scaled) {
    const double top = w[n - 1] > 0 ? w[n - 1] : 0, noise = (double)dim * DBL_EPSILON * top;
    int r = 0;
    for (int k = 0; k < n; k++)
        if (w[k] > noise) {
            const double s = scaled ? sqrt(w[k]) : 1.0;
            for (int i = 0; i < n; i++) v[(size_t)r * n + i] = v[(size_t)k * n + i] * s;
            r++;
        }
    return r;
}

int frechet_distance(const double *mu1, const double *sigma1, const double *mu2, const double *sigma2, int n,
                     double *out, edm2_err *err) {
    const size_t nn = (size_t)n * n;
    double *v = malloc(nn * sizeof *v), *w = malloc((size_t)n * sizeof *w);
    int rc = -1;
    if (!v || !w) {
        err_set(err, "out of memory for %dx%d covariances", n, n);
        goto done;
    }
    double d2 = 0, tr1 = 0, tr2 = 0, tr_sqrt;
    for (int i = 0; i < n; i++) {
        d2 += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
        tr1 += sigma1[(size_t)i * n + i], tr2 += sigma2[(size_t)i * n + i];
    }
    /* S1 = V diag(lambda) V^T, so A S2 A (A = S1^(1/2)) is similar to B^T S2 B with B = V diag(sqrt(lambda)),
     * whose columns of eigenvalue 0 are 0: the eigenvalues that count are those of the r x r matrix
     * M = B_r^T S2 B_r over the r eigenvalues of S1 above rounding. With few feature rows (rank r < n) that
     * is a small matrix, and with many it spares forming A. */
    memcpy(v, sigma1, nn * sizeof *v);
    if (sym_eig(v, w, n, 1, err)) goto done;
    const int r = keep_above_noise(v, w, n, n, 1);
    if (tr_sqrt_from(v, r, sigma2, n, &tr_sqrt, err)) goto done;
    *out = d2 + tr1 + tr2 - 2 * tr_sqrt;
    rc = 0;
done:
    free(v), free(w);
    return rc;
}

/* fid_accum_distance with the rows kept (count <= dim): with X [count, dim] the rows around their mean,
 * S1 = X^T X / (count - 1) has the nonzero eigenvalues of the Gram matrix G = X X^T / (count - 1), and for
 * G's eigenvector u of eigenvalue lambda, X^T u / sqrt((count - 1) lambda) is S1's; so B's column (that
 * eigenvector times sqrt(lambda)) is X^T u / sqrt(count - 1): a count x count eigendecomposition instead of
 * a dim x dim one, the same r columns above the same rounding bound. */
static int distance_from_rows(const fid_accum *a, const double *mu2, const double *sigma2, double *out, edm2_err *err) {
    const int dim = a->dim, m = (int)a->count;
    const double cnt = (double)a->count;
    double *x = malloc((size_t)m * dim * sizeof *x), *g = malloc((size_t)m * m * sizeof *g);
    double *w = malloc((size_t)m * sizeof *w), *b = malloc((size_t)dim * m * sizeof *b);
    int rc = -1;
    if (!x || !g || !w || !b) {
        err_set(err, "out of memory for the statistics of %d feature rows", m);
        goto done;
    }
    double d2 = 0, tr1 = 0, tr2 = 0, tr_sqrt;
    for (int j = 0; j < dim; j++) {
        const double mean = a->sum[j] / cnt, mu1 = a->shift[j] + mean;
        d2 += (mu1 - mu2[j]) * (mu1 - mu2[j]);
        tr2 += sigma2[(size_t)j * dim + j];
        for (int i = 0; i < m; i++) x[(size_t)i * dim + j] = a->rows[(size_t)i * dim + j] - mean;
    }
    /* x is X^T [dim, count] column-major: G = (X^T)^T X^T / (count - 1) */
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, m, m, dim, 1.0 / (cnt - 1), x, dim, x, dim, 0.0, g, m);
    for (int i = 0; i < m; i++) tr1 += g[(size_t)i * m + i];
    if (sym_eig(g, w, m, 1, err)) goto done;
    const int r = keep_above_noise(g, w, m, dim, 0); /* G's eigenvectors u that count */
    if (r) /* B = X^T U_r / sqrt(count - 1) */
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, dim, r, m, 1.0 / sqrt(cnt - 1), x, dim, g, m, 0.0, b,
                    dim);
    if (tr_sqrt_from(b, r, sigma2, dim, &tr_sqrt, err)) goto done;
    *out = d2 + tr1 + tr2 - 2 * tr_sqrt;
    rc = 0;
done:
    free(x), free(g), free(w), free(b);
    return rc;
}

int fid_accum_distance(const fid_accum *a, const double *mu2, const double *sigma2, double *out, edm2_err *err) {
    const int dim = a->dim;
    if (a->count < 2) return err_set(err, "statistics of %zu feature rows: need at least 2", a->count);
    if (a->rows) return distance_from_rows(a, mu2, sigma2, out, err);
    double *mu = malloc((size_t)dim * sizeof *mu), *sigma = malloc((size_t)dim * dim * sizeof *sigma);
    int rc = -1;
    if (!mu || !sigma) err_set(err, "out of memory for %dx%d feature statistics", dim, dim);
    else if (!fid_accum_finish(a, mu, sigma, err) && !frechet_distance(mu, sigma, mu2, sigma2, dim, out, err)) rc = 0;
    free(mu), free(sigma);
    return rc;
}

int fid_accum_init(fid_accum *a, int dim, edm2_err *err) {
    memset(a, 0, sizeof *a);
    a->dim = dim;
    a->sum = calloc((size_t)dim, sizeof *a->sum);
    a->outer = calloc((size_t)dim * dim, sizeof *a->outer);
    a->shift = calloc((size_t)dim, sizeof *a->shift);
    if (!a->sum || !a->outer || !a->shift) {
        fid_accum_free(a);
        return err_set(err, "out of memory for %dx%d feature statistics", dim, dim);
    }
    return 0;
}

void fid_accum_free(fid_accum *a) {
    free(a->sum), free(a->outer), free(a->shift), free(a->rows);
    memset(a, 0, sizeof *a);
}

int fid_accum_add(fid_accum *a, const float *f, size_t n, edm2_err *err) {
    const int dim = a->dim;
    if (!n) return 0;
    if (!a->count) /* the first rows' mean: accumulating around it keeps the sums well conditioned */
        for (int j = 0; j < dim; j++) {
            double s = 0;
            for (size_t i = 0; i < n; i++) s += f[i * dim + j];
            a->shift[j] = s / (double)n;
        }
    /* The rows, kept while there are at most dim (the first batch starts them); dropped for good after. */
    const int keep = (a->rows || !a->count) && a->count + n <= (size_t)dim;
    if (!keep) free(a->rows), a->rows = NULL;
    if (keep) {
        double *r = realloc(a->rows, (a->count + n) * (size_t)dim * sizeof *r);
        if (!r) return err_set(err, "out of memory");
        a->rows = r;
    }
    const size_t chunk = 256;
    double *c = malloc(chunk * (size_t)dim * sizeof *c);
    if (!c) return err_set(err, "out of memory");
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        const size_t m = n - i0 < chunk ? n - i0 : chunk;
        for (size_t i = 0; i < m; i++)
            for (int j = 0; j < dim; j++) {
                c[i * dim + j] = f[(i0 + i) * dim + j] - a->shift[j];
                a->sum[j] += c[i * dim + j];
            }
        if (keep) memcpy(a->rows + (a->count + i0) * (size_t)dim, c, m * (size_t)dim * sizeof *c);
        /* outer (upper triangle, row-major) += c^T c */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, (int)m, 1.0, c, dim, 1.0, a->outer, dim);
    }
    a->count += n;
    free(c);
    return 0;
}

int fid_accum_finish(const fid_accum *a, double *mu, double *sigma, edm2_err *err) {
    const int dim = a->dim;
    if (a->count < 2) return err_set(err, "statistics of %zu feature rows: need at least 2", a->count);
    const double n = (double)a->count;
    for (int j = 0; j < dim; j++) mu[j] = a->shift[j] + a->sum[j] / n;
    /* sigma = (sum c c^T - n m m^T) / (n - 1), m = the mean of c (numpy.cov's normalisation). */
    for (int i = 0; i < dim; i++)
        for (int j = i; j < dim; j++) {
            const double v = (a->outer[(size_t)i * dim + j] - a->sum[i] * a->sum[j] / n) / (n - 1);
            sigma[(size_t)i * dim + j] = sigma[(size_t)j * dim + i] = v;
        }
    return 0;
}

int feature_stats(const float *f, size_t count, int dim, double *mu, double *sigma, edm2_err *err) {
    fid_accum a;
    if (fid_accum_init(&a, dim, err)) return -1;
    int rc = fid_accum_add(&a, f, count, err) || fid_accum_finish(&a, mu, sigma, err) ? -1 : 0;
    fid_accum_free(&a);
    return rc;
}
