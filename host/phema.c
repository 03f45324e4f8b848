/* phema.c: post-hoc EMA coefficients: profile inner products (closed form or Gauss-Legendre on graded
 * panels) and the linear solve (LU with partial pivoting), in double precision. */
#include "phema.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 8-point Gauss-Legendre on [-1, 1]. */
static const double k_gl_x[8] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498,
                                 0.1834346424956498,  0.5255324099163290,  0.7966664774136267,  0.9602898564975363};
static const double k_gl_w[8] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.3626837833783620,
                                 0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763};

/* Panels graded geometrically towards 0 and towards T = min(ta, tb), where weights change fastest,
 * uniform in between; 8-point Gauss-Legendre on each. */
double profile_inner_numeric(const edm2_ema_vtable *vt, edm2_ema *e, double pa, double ta, double pb, double tb) {
    double T = fmin(ta, tb);
    if (!(T > 0)) return 0;
    enum { LEVELS = 60, UNIFORM = 400 };
    const double q = 0.7, edge = 0.35 * T;
    double edges[2 * LEVELS + UNIFORM + 3];
    int n = 0;
    edges[n++] = 0;
    for (int k = LEVELS - 1; k >= 1; k--) edges[n++] = edge * pow(q, k);
    for (int k = 0; k <= UNIFORM; k++) edges[n++] = edge + (T - 2 * edge) * k / UNIFORM;
    for (int k = 1; k < LEVELS; k++) edges[n++] = T - edge * pow(q, k);
    edges[n++] = T;
    double sum = 0;
    for (int i = 0; i + 1 < n; i++) {
        double a = edges[i], b = edges[i + 1];
        if (!(b > a)) continue;
        double mid = 0.5 * (a + b), half = 0.5 * (b - a);
        for (int g = 0; g < 8; g++) {
            double tau = mid + half * k_gl_x[g];
            sum += half * k_gl_w[g] * vt->weight(e, pa, ta, tau) * vt->weight(e, pb, tb, tau);
        }
    }
    return sum;
}

double profile_inner(const edm2_ema_vtable *vt, edm2_ema *e, double pa, double ta, double pb, double tb) {
    if (vt->inner_product) return vt->inner_product(e, pa, ta, pb, tb);
    return profile_inner_numeric(vt, e, pa, ta, pb, tb);
}

/* Solves A X = B in place (A n x n, B n x m), partial pivoting. Returns -1 when A is singular. */
static int lu_solve(double *A, double *B, int n, int m) {
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(A[i * n + k]) > fabs(A[p * n + k])) p = i;
        if (A[p * n + k] == 0) return -1;
        if (p != k) {
            for (int j = 0; j < n; j++) {
                double t = A[k * n + j];
                A[k * n + j] = A[p * n + j], A[p * n + j] = t;
            }
            for (int j = 0; j < m; j++) {
                double t = B[k * m + j];
                B[k * m + j] = B[p * m + j], B[p * m + j] = t;
            }
        }
        for (int i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            if (f == 0) continue;
            for (int j = k; j < n; j++) A[i * n + j] -= f * A[k * n + j];
            for (int j = 0; j < m; j++) B[i * m + j] -= f * B[k * m + j];
        }
    }
    for (int k = n - 1; k >= 0; k--)
        for (int j = 0; j < m; j++) {
            double s = B[k * m + j];
            for (int i = k + 1; i < n; i++) s -= A[k * n + i] * B[i * m + j];
            B[k * m + j] = s / A[k * n + k];
        }
    return 0;
}

int phema_solve(const edm2_ema_vtable *vt, edm2_ema *e, const double *in_t, const double *in_p, int nin, double out_t,
                const double *out_p, int nout, double *X, edm2_err *err) {
    double *A = malloc((size_t)nin * nin * sizeof(double));
    if (!A) return err_set(err, "out of memory");
    for (int i = 0; i < nin; i++)
        for (int k = 0; k <= i; k++)
            A[i * nin + k] = A[k * nin + i] = profile_inner(vt, e, in_p[i], in_t[i], in_p[k], in_t[k]);
    for (int i = 0; i < nin; i++)
        for (int j = 0; j < nout; j++) X[i * nout + j] = profile_inner(vt, e, in_p[i], in_t[i], out_p[j], out_t);
    int rc = lu_solve(A, X, nin, nout);
    free(A);
    if (rc) return err_set(err, "post-hoc EMA: the snapshots' profiles are linearly dependent (duplicate snapshots?)");
    for (int j = 0; j < nout; j++) {
        double s = 0;
        for (int i = 0; i < nin; i++) s += X[i * nout + j];
        for (int i = 0; i < nin; i++) X[i * nout + j] /= s;
    }
    return 0;
}
