/* mp_conv.c: MPConv weight preparation and channels-last convolutions as OpenBLAS GEMMs. */
#include "mp_conv.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "gemm.h"
#include "mp_ops.h"

void mpconv_weight_forward(float *w_hat, float *norm, const float *w, float gain, int O, int C, int k) {
    const int kk = k * k, F = C * kk;
    const float inv_sqrt_f = 1.0f / sqrtf((float)F);
    for (int o = 0; o < O; o++) {
        const float *wo = w + (size_t)o * F;
        float ss = 0;
        for (int i = 0; i < F; i++) ss += wo[i] * wo[i];
        float n = MP_EPS + sqrtf(ss) * inv_sqrt_f;
        norm[o] = n;
        const float scale = gain * inv_sqrt_f;
        float *ho = w_hat + (size_t)o * F;
        for (int c = 0; c < C; c++)
            for (int t = 0; t < kk; t++) ho[(size_t)t * C + c] = (wo[(size_t)c * kk + t] / n) * scale;
    }
}

void mpconv_weight_backward(float *dw, float *dgain, const float *dw_hat, const float *w, const float *norm,
                            float gain, int O, int C, int k) {
    const int kk = k * k, F = C * kk;
    const float inv_sqrt_f = 1.0f / sqrtf((float)F);
    const float s = gain * inv_sqrt_f;
    double dg = 0;
    for (int o = 0; o < O; o++) {
        const float *wo = w + (size_t)o * F;
        const float *go = dw_hat + (size_t)o * F;
        float n = norm[o], len = (n - MP_EPS) / inv_sqrt_f;
        float dot = 0; /* (dw_hat . w) in reference layout */
        for (int c = 0; c < C; c++)
            for (int t = 0; t < kk; t++) dot += go[(size_t)t * C + c] * wo[(size_t)c * kk + t];
        dg += dot / n * inv_sqrt_f;
        float a = s / n;
        float b = len > 0 ? s * dot * inv_sqrt_f / (n * n * len) : 0.0f;
        float *dwo = dw + (size_t)o * F;
        for (int c = 0; c < C; c++)
            for (int t = 0; t < kk; t++) dwo[(size_t)c * kk + t] += go[(size_t)t * C + c] * a - wo[(size_t)c * kk + t] * b;
    }
    if (dgain) *dgain += (float)dg;
}

void mpconv_force_normalize(float *w, int O, int fan_in) {
    const float inv_sqrt_f = 1.0f / sqrtf((float)fan_in);
    for (int o = 0; o < O; o++) {
        float *wo = w + (size_t)o * fan_in;
        float ss = 0;
        for (int i = 0; i < fan_in; i++) ss += wo[i] * wo[i];
        float n = MP_EPS + sqrtf(ss) * inv_sqrt_f;
        for (int i = 0; i < fan_in; i++) wo[i] /= n;
    }
}

void linear_forward(float *y, const float *x, const float *w_hat, size_t P, int C, int O, int accumulate,
                    const conv_scratch *sc) {
    gemm_nt(P, O, C, x, C, w_hat, C, y, O, accumulate, sc->pack);
}

/* dw[O, K] += dy[P, O]^T x[P, K]: column blocks of dw in parallel, each a single-threaded OpenBLAS call
 * (OpenBLAS runs with one thread so that OpenMP is the only thread pool). */
static void weight_grad(float *dw, const float *dy, const float *x, size_t P, int K, int O) {
    int T = omp_get_max_threads(), blocks = (K + 15) / 16 < T ? (K + 15) / 16 : T;
    int width = ((K + blocks - 1) / blocks + 15) / 16 * 16;
#pragma omp parallel for schedule(static) if (blocks > 1 && P * (size_t)K * O > 100000)
    for (int b = 0; b < blocks; b++) {
        int k0 = b * width, kn = K - k0 < width ? K - k0 : width;
        if (kn > 0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, kn, (int)P, 1.0f, dy, O, x + k0, K, 1.0f, dw + k0, K);
    }
}

void linear_backward(float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat, size_t P, int C,
                     int O, const conv_scratch *sc) {
    if (dx) gemm_nn(P, C, O, dy, O, w_hat, C, dx, C, 1, sc->pack);
    weight_grad(dw_hat, dy, x, P, C, O);
}

/* col[p, (ky, kx, c)] = x[n, y+ky-k/2, x+kx-k/2, c], zero outside. */
static void im2col(float *col, const float *x, int N, int H, int W, int C, int k) {
    const int r = k / 2;
    const size_t row = (size_t)k * k * C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float *dst = col + (((size_t)n * H + i) * W + j) * row;
                for (int ky = 0; ky < k; ky++) {
                    int si = i + ky - r;
                    for (int kx = 0; kx < k; kx++, dst += C) {
                        int sj = j + kx - r;
                        if (si < 0 || si >= H || sj < 0 || sj >= W) memset(dst, 0, (size_t)C * sizeof(float));
                        else memcpy(dst, x + (((size_t)n * H + si) * W + sj) * C, (size_t)C * sizeof(float));
                    }
                }
            }
}

/* dx[n, y+ky-k/2, x+kx-k/2, c] += col[p, (ky, kx, c)]; one thread per image, so no races. */
static void col2im(float *dx, const float *col, int N, int H, int W, int C, int k) {
    const int r = k / 2;
    const size_t row = (size_t)k * k * C;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                const float *src = col + (((size_t)n * H + i) * W + j) * row;
                for (int ky = 0; ky < k; ky++) {
                    int si = i + ky - r;
                    for (int kx = 0; kx < k; kx++, src += C) {
                        int sj = j + kx - r;
                        if (si < 0 || si >= H || sj < 0 || sj >= W) continue;
                        float *d = dx + (((size_t)n * H + si) * W + sj) * C;
                        for (int c = 0; c < C; c++) d[c] += src[c];
                    }
                }
            }
}

void conv2d_forward(float *y, const float *x, const float *w_hat, const conv_scratch *sc, int N, int H, int W, int C,
                    int O, int k) {
    const size_t P = (size_t)N * H * W;
    if (k == 1) {
        linear_forward(y, x, w_hat, P, C, O, 0, sc);
        return;
    }
    im2col(sc->col, x, N, H, W, C, k);
    linear_forward(y, sc->col, w_hat, P, k * k * C, O, 0, sc);
}

void conv2d_backward(float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat,
                     const conv_scratch *sc, int N, int H, int W, int C, int O, int k) {
    const size_t P = (size_t)N * H * W;
    if (k == 1) {
        linear_backward(dx, dw_hat, dy, x, w_hat, P, C, O, sc);
        return;
    }
    const int K = k * k * C;
    im2col(sc->col, x, N, H, W, C, k);
    weight_grad(dw_hat, dy, sc->col, P, K, O);
    if (dx) {
        gemm_nn(P, K, O, dy, O, w_hat, K, sc->col, K, 0, sc->pack);
        col2im(dx, sc->col, N, H, W, C, k);
    }
}
