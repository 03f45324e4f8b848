/* mp_ops.c: magnitude-preserving element-wise layers, forward and accumulating backward. */
#include "mp_math.h"
#include "mp_ops.h"

#include <math.h>
#include <stdint.h>

void normalize_rows_forward(float *y, float *norm, const float *x, size_t rows, int cols, size_t x_stride,
                            size_t y_stride) {
    const float inv_sqrt_n = 1.0f / sqrtf((float)cols);
#pragma omp parallel for schedule(static) if (rows * (size_t)cols > 32768)
    for (size_t r = 0; r < rows; r++) norm[r] = mp_normalize_row(y + r * y_stride, x + r * x_stride, cols, inv_sqrt_n);
}

void normalize_rows_backward(float *dx, const float *dy, const float *x, const float *norm, size_t rows, int cols,
                             size_t x_stride, size_t y_stride, int acc) {
    const float inv_sqrt_n = 1.0f / sqrtf((float)cols);
#pragma omp parallel for schedule(static) if (rows * (size_t)cols > 32768)
    for (size_t r = 0; r < rows; r++)
        mp_normalize_row_grad(dx + r * x_stride, dy + r * y_stride, x + r * x_stride, norm[r], cols, inv_sqrt_n, acc);
}

void mp_silu_forward(float *y, const float *x, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) y[i] = mp_silu1(x[i]);
}

void mp_silu_backward(float *dx, const float *dy, const float *x, size_t n, int acc) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) GRAD_ACC(acc, dx[i], mp_silu1_grad(dy[i], x[i]));
}

void mp_sum_forward(float *y, const float *a, const float *b, float t, size_t n) {
    const float inv = mp_sum_scale(t);
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) y[i] = mp_sum1(a[i], b[i], t, inv); /* lerp, as the reference */
}

void mp_sum_backward(float *da, float *db, const float *dy, float t, size_t n, int acc) {
    const float inv = mp_sum_scale(t);
    const float wa = (1 - t) * inv, wb = t * inv;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) {
        if (da) GRAD_ACC(acc, da[i], wa * dy[i]);
        if (db) GRAD_ACC(acc, db[i], wb * dy[i]);
    }
}

void mp_cat_forward(float *y, const float *a, int Ca, const float *b, int Cb, size_t P, float t) {
    float wa, wb;
    mp_cat_weights(Ca, Cb, t, &wa, &wb);
    const int C = Ca + Cb;
#pragma omp parallel for schedule(static) if (P * (size_t)C > 32768)
    for (size_t p = 0; p < P; p++) {
        for (int c = 0; c < Ca; c++) y[p * C + c] = wa * a[p * Ca + c];
        for (int c = 0; c < Cb; c++) y[p * C + Ca + c] = wb * b[p * Cb + c];
    }
}

void mp_cat_backward(float *da, float *db, const float *dy, int Ca, int Cb, size_t P, float t, int acc) {
    float wa, wb;
    mp_cat_weights(Ca, Cb, t, &wa, &wb);
    const int C = Ca + Cb;
#pragma omp parallel for schedule(static) if (P * (size_t)C > 32768)
    for (size_t p = 0; p < P; p++) {
        if (da)
            for (int c = 0; c < Ca; c++) GRAD_ACC(acc, da[p * Ca + c], wa * dy[p * C + c]);
        if (db)
            for (int c = 0; c < Cb; c++) GRAD_ACC(acc, db[p * Cb + c], wb * dy[p * C + Ca + c]);
    }
}

void modulate_silu_forward(float *y, const float *x, const float *c, int N, size_t HW, int C) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * HW * C > 32768)
    for (int n = 0; n < N; n++)
        for (size_t p = 0; p < HW; p++) {
            const float *cn = c + (size_t)n * C;
            size_t o = ((size_t)n * HW + p) * C;
#pragma omp simd
            for (int k = 0; k < C; k++) y[o + k] = mp_silu1(x[o + k] * cn[k]);
        }
}

void modulate_silu_backward(float *dx, float *dc, const float *dy, const float *x, const float *c, int N, size_t HW,
                            int C, int acc) {
#pragma omp parallel for schedule(static) if ((size_t)N * HW * C > 32768)
    for (int n = 0; n < N; n++) {
        const float *cn = c + (size_t)n * C;
        float *dcn = dc + (size_t)n * C;
        if (!acc)
            for (int k = 0; k < C; k++) dcn[k] = 0.0f;
        for (size_t p = 0; p < HW; p++) {
            size_t o = ((size_t)n * HW + p) * C;
#pragma omp simd
            for (int k = 0; k < C; k++) {
                const float dv = mp_silu1_grad(dy[o + k], x[o + k] * cn[k]);
                GRAD_ACC(acc, dx[o + k], dv * cn[k]);
                dcn[k] += dv * x[o + k];
            }
        }
    }
}

void resample_down_forward(float *y, const float *x, int N, int H, int W, int C) {
    const int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * H * W * C > 32768)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++) {
                const float *x00 = x + (((size_t)n * H + 2 * i) * W + 2 * j) * C;
                const float *x01 = x00 + C, *x10 = x00 + (size_t)W * C, *x11 = x10 + C;
                float *yo = y + (((size_t)n * Ho + i) * Wo + j) * C;
                for (int c = 0; c < C; c++) yo[c] = mp_avg4(x00[c], x01[c], x10[c], x11[c]);
            }
}

void resample_down_backward(float *dx, const float *dy, int N, int H, int W, int C, int acc) {
    const int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * H * W * C > 32768)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++) {
                float *d00 = dx + (((size_t)n * H + 2 * i) * W + 2 * j) * C;
                float *d01 = d00 + C, *d10 = d00 + (size_t)W * C, *d11 = d10 + C;
                const float *g = dy + (((size_t)n * Ho + i) * Wo + j) * C;
                for (int c = 0; c < C; c++) {
                    float v = 0.25f * g[c];
                    GRAD_ACC(acc, d00[c], v), GRAD_ACC(acc, d01[c], v);
                    GRAD_ACC(acc, d10[c], v), GRAD_ACC(acc, d11[c], v);
                }
            }
}

void resample_up_forward(float *y, const float *x, int N, int H, int W, int C) {
    const int Ho = H * 2, Wo = W * 2;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * Ho * Wo * C > 32768)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++) {
                float *d = y + (((size_t)n * Ho + i) * Wo + j) * C;
                const float *src = x + (((size_t)n * H + i / 2) * W + j / 2) * C;
                for (int c = 0; c < C; c++) d[c] = src[c];
            }
}

void resample_up_backward(float *dx, const float *dy, int N, int H, int W, int C, int acc) {
    const int Wo = W * 2;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * H * W * C > 8192)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float *d = dx + (((size_t)n * H + i) * W + j) * C;
                const float *g00 = dy + (((size_t)n * 2 * H + 2 * i) * Wo + 2 * j) * C;
                const float *g01 = g00 + C, *g10 = g00 + (size_t)Wo * C, *g11 = g10 + C;
                for (int c = 0; c < C; c++) GRAD_ACC(acc, d[c], g00[c] + g01[c] + g10[c] + g11[c]);
            }
}

size_t mp_sum_clip_forward(float *y, float *unclipped, const float *a, const float *b, float t, float c, size_t n) {
    const float inv = mp_sum_scale(t);
    unsigned clipped = 0; /* 32-bit lanes, so that the loops vectorise */
    /* Branch-free clamping (NaN passes through unclipped); one loop per case, each vectorised. */
#define SUM_CLIP(i, v, hi, lo)                                                                                        \
    const float v = mp_sum1(a[i], b[i], t, inv);                                                                      \
    const int hi = v > c, lo = v < -c;                                                                                \
    y[i] = hi ? c : lo ? -c : v;                                                                                      \
    clipped += (unsigned)(hi | lo);
    if (unclipped) {
#pragma omp parallel for simd schedule(static) reduction(+ : clipped) if (n > 32768)
        for (size_t i = 0; i < n; i++) {
            SUM_CLIP(i, v, hi, lo)
            unclipped[i] = v;
        }
    } else {
#pragma omp parallel for simd schedule(static) reduction(+ : clipped) if (n > 32768)
        for (size_t i = 0; i < n; i++) {
            SUM_CLIP(i, v, hi, lo)
        }
    }
#undef SUM_CLIP
    return clipped;
}

void clip_backward(float *dx, const float *dy, const float *x, float c, size_t n, int acc) {
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++)
        GRAD_ACC(acc, dx[i], x[i] >= -c && x[i] <= c ? dy[i] : 0.0f);
}

void mp_fourier_forward(float *y, const float *x, const float *freqs, const float *phases, int N, int C) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) y[(size_t)n * C + c] = mp_fourier1(x[n], freqs[c], phases[c]);
}

void add_scalar(float *y, const float *x, float a, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] + a;
}

void accumulate(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
