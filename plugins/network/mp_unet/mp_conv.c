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

/* dw[O, K] += dy[P, O]^T x[P, K]: our AVX-512 kernel, or column blocks of dw in parallel, each a
 * single-threaded OpenBLAS call (OpenBLAS runs with one thread so that OpenMP is the only thread pool). */
static void weight_grad(float *dw, const float *dy, const float *x, size_t P, int K, int O, float *part) {
    if (gemm_tn_available()) {
        const long zero = 0;
        gemm_tn_taps(O, K, P, dy, O, x, K, 1, &zero, dw, K, 0, part);
        return;
    }
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
    weight_grad(dw_hat, dy, x, P, C, O, sc->part);
}

/* Guard zeros before and after a padded image block, so that every tap shift stays inside the buffer. */
static size_t guard_floats(int W, int C) { return (size_t)(W + 3) * C + 16; }

void conv_scratch_need(int N, int H, int W, int C, int O, int k, size_t *col, size_t *pack, size_t *wt) {
    size_t p = gemm_pack_floats(O, k * k * C), q = gemm_pack_floats(C, k * k * O);
    if (p > *pack) *pack = p;
    if (q > *pack) *pack = q;
    if (k == 1) return;
    size_t padded = (size_t)N * (H + 2) * (W + 2);
    size_t need = padded * (size_t)(C + O) + 2 * guard_floats(W, C) + 2 * guard_floats(W, O) + 64;
    if (need > *col) *col = need;
    if ((size_t)9 * C * O > *wt) *wt = (size_t)9 * C * O;
}

size_t conv_part_floats(int C, int O, int k) { return (size_t)GEMM_TN_SPLITS * k * k * C * O + 16; }

/* xpad[n, y + 1, x + 1, c] = x[n, y, x, c], zero border; `dst` starts `guard` floats into the block and
 * the guards are zeroed too. */
static void pad_image(float *dst, const float *x, int N, int H, int W, int C, size_t guard) {
    const size_t row = (size_t)(W + 2) * C, img = (size_t)(H + 2) * row;
    memset(dst - guard, 0, guard * sizeof(float));
    memset(dst + (size_t)N * img, 0, guard * sizeof(float));
#pragma omp parallel for schedule(static) if ((size_t)N * H * W * C > 32768)
    for (int n = 0; n < N; n++) {
        float *d = dst + (size_t)n * img;
        memset(d, 0, row * sizeof(float));
        memset(d + (size_t)(H + 1) * row, 0, row * sizeof(float));
        for (int y = 0; y < H; y++) {
            float *r = d + (size_t)(y + 1) * row;
            memset(r, 0, (size_t)C * sizeof(float));
            memcpy(r + C, x + (((size_t)n * H + y) * W) * C, (size_t)W * C * sizeof(float));
            memset(r + (size_t)(W + 1) * C, 0, (size_t)C * sizeof(float));
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
    size_t g = guard_floats(W, C);
    pad_image(sc->col + g, x, N, H, W, C, g);
    gemm_conv3x3(N, H, W, C, sc->col + g, O, w_hat, y, 0, sc->pack);
}

void conv2d_backward(float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat,
                     const conv_scratch *sc, int N, int H, int W, int C, int O, int k) {
    const size_t P = (size_t)N * H * W;
    if (k == 1) {
        linear_backward(dx, dw_hat, dy, x, w_hat, P, C, O, sc);
        return;
    }
    const size_t padded = (size_t)N * (H + 2) * (W + 2), gx = guard_floats(W, C), gy = guard_floats(W, O);
    float *xpad = sc->col + gx, *dypad = xpad + padded * C + gx + gy;
    pad_image(xpad, x, N, H, W, C, gx);
    pad_image(dypad, dy, N, H, W, O, gy);
    /* dw[o, t, c] += sum over padded pixels q of dypad[q, o] xpad[q + shift(t), c]; the zero border of dypad
     * removes the terms that would wrap across rows or images. */
    long shift[9];
    for (int t = 0; t < 9; t++) shift[t] = ((long)(t / 3 - 1) * (W + 2) + (t % 3 - 1)) * C;
    if (gemm_tn_available()) {
        gemm_tn_taps(O, C, padded, dypad, O, xpad, C, 9, shift, dw_hat, 9 * C, C, sc->part);
    } else {
#pragma omp parallel for schedule(dynamic, 1) if (P * (size_t)C * O > 100000)
        for (int t = 0; t < 9; t++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, C, (int)padded, 1.0f, dypad, O, xpad + shift[t], C,
                        1.0f, dw_hat + (size_t)t * C, 9 * C);
    }
    if (dx) {
        /* dx = 3x3 convolution of dy with w flipped in space and transposed: wt[c, t, o] = w[o, 8 - t, c]. */
        for (int c = 0; c < C; c++)
            for (int t = 0; t < 9; t++)
                for (int o = 0; o < O; o++)
                    sc->wt[((size_t)c * 9 + t) * O + o] = w_hat[((size_t)o * 9 + (8 - t)) * C + c];
        gemm_conv3x3(N, H, W, O, dypad, C, sc->wt, dx, 1, sc->pack);
    }
}
