/* mp_ops.cu: the magnitude-preserving layers as CUDA kernels (mp_ops_cuda.h). The arithmetic is the CPU
 * layers' own (../mp_unet/mp_math.h), compiled with --fmad=false so that every product and sum is rounded
 * separately as in the CPU's ISO C; what reduces runs in the CPU's order (one thread per row or unit), so
 * the results are bitwise the CPU's. Speed is issue 11's. */
#include <cuda_runtime.h>
#include <math.h>

#include "../mp_unet/mp_math.h"
#include "mp_ops_cuda.h"
#include "launch_cuda.h"




/* ---- normalize over rows (pixel norm, q/k/v normalisation) ---- */

__global__ void k_normalize_rows_forward(float *y, float *norm, const float *x, size_t rows, int cols, size_t xs,
                                         size_t ys) {
    const float inv_sqrt_n = 1.0f / sqrtf((float)cols);
    STRIDE_LOOP(r, rows) norm[r] = mp_normalize_row(y + r * ys, x + r * xs, cols, inv_sqrt_n);
}

__global__ void k_normalize_rows_backward(float *dx, const float *dy, const float *x, const float *norm, size_t rows,
                                          int cols, size_t xs, size_t ys, int acc) {
    const float inv_sqrt_n = 1.0f / sqrtf((float)cols);
    STRIDE_LOOP(r, rows) mp_normalize_row_grad(dx + r * xs, dy + r * ys, x + r * xs, norm[r], cols, inv_sqrt_n, acc);
}

int mpc_normalize_rows_forward(void *stream, float *y, float *norm, const float *x, size_t rows, int cols,
                               size_t x_stride, size_t y_stride) {
    LAUNCH(rows, k_normalize_rows_forward, y, norm, x, rows, cols, x_stride, y_stride);
}
int mpc_normalize_rows_backward(void *stream, float *dx, const float *dy, const float *x, const float *norm, size_t rows,
                                int cols, size_t x_stride, size_t y_stride, int acc) {
    LAUNCH(rows, k_normalize_rows_backward, dx, dy, x, norm, rows, cols, x_stride, y_stride, acc);
}

/* ---- MP-SiLU, MP-Add, MP-Cat ---- */

__global__ void k_silu_forward(float *y, const float *x, size_t n) { STRIDE_LOOP(i, n) y[i] = mp_silu1(x[i]); }
__global__ void k_silu_backward(float *dx, const float *dy, const float *x, size_t n, int acc) {
    STRIDE_LOOP(i, n) GRAD_ACC(acc, dx[i], mp_silu1_grad(dy[i], x[i]));
}
int mpc_silu_forward(void *stream, float *y, const float *x, size_t n) { LAUNCH(n, k_silu_forward, y, x, n); }
int mpc_silu_backward(void *stream, float *dx, const float *dy, const float *x, size_t n, int acc) {
    LAUNCH(n, k_silu_backward, dx, dy, x, n, acc);
}

__global__ void k_sum_forward(float *y, const float *a, const float *b, float t, size_t n) {
    const float inv = mp_sum_scale(t);
    STRIDE_LOOP(i, n) y[i] = mp_sum1(a[i], b[i], t, inv);
}
__global__ void k_sum_backward(float *da, float *db, const float *dy, float t, size_t n, int acc) {
    const float inv = mp_sum_scale(t), wa = (1 - t) * inv, wb = t * inv;
    STRIDE_LOOP(i, n) {
        if (da) GRAD_ACC(acc, da[i], wa * dy[i]);
        if (db) GRAD_ACC(acc, db[i], wb * dy[i]);
    }
}
int mpc_sum_forward(void *stream, float *y, const float *a, const float *b, float t, size_t n) {
    LAUNCH(n, k_sum_forward, y, a, b, t, n);
}
int mpc_sum_backward(void *stream, float *da, float *db, const float *dy, float t, size_t n, int acc) {
    LAUNCH(n, k_sum_backward, da, db, dy, t, n, acc);
}

__global__ void k_cat_forward(float *y, const float *a, int Ca, const float *b, int Cb, size_t P, float t) {
    float wa, wb;
    mp_cat_weights(Ca, Cb, t, &wa, &wb);
    const int C = Ca + Cb;
    STRIDE_LOOP(i, P * (size_t)C) {
        size_t p = i / C;
        int c = (int)(i % C);
        y[i] = c < Ca ? wa * a[p * Ca + c] : wb * b[p * Cb + (c - Ca)];
    }
}
__global__ void k_cat_backward(float *da, float *db, const float *dy, int Ca, int Cb, size_t P, float t, int acc) {
    float wa, wb;
    mp_cat_weights(Ca, Cb, t, &wa, &wb);
    const int C = Ca + Cb;
    STRIDE_LOOP(i, P * (size_t)C) {
        size_t p = i / C;
        int c = (int)(i % C);
        if (c < Ca && da) GRAD_ACC(acc, da[p * Ca + c], wa * dy[i]);
        if (c >= Ca && db) GRAD_ACC(acc, db[p * Cb + (c - Ca)], wb * dy[i]);
    }
}
int mpc_cat_forward(void *stream, float *y, const float *a, int Ca, const float *b, int Cb, size_t P, float t) {
    LAUNCH(P * (size_t)(Ca + Cb), k_cat_forward, y, a, Ca, b, Cb, P, t);
}
int mpc_cat_backward(void *stream, float *da, float *db, const float *dy, int Ca, int Cb, size_t P, float t, int acc) {
    LAUNCH(P * (size_t)(Ca + Cb), k_cat_backward, da, db, dy, Ca, Cb, P, t, acc);
}

/* ---- embedding modulation + MP-SiLU ---- */

__global__ void k_modulate_silu_forward(float *y, const float *x, const float *c, int N, size_t HW, int C) {
    STRIDE_LOOP(i, (size_t)N * HW * C) {
        size_t n = i / (HW * C);
        y[i] = mp_silu1(x[i] * c[n * C + i % C]);
    }
}
__global__ void k_modulate_silu_backward_dx(float *dx, const float *dy, const float *x, const float *c, int N, size_t HW,
                                            int C, int acc) {
    STRIDE_LOOP(i, (size_t)N * HW * C) {
        const float cn = c[(i / (HW * C)) * C + i % C];
        GRAD_ACC(acc, dx[i], mp_silu1_grad(dy[i], x[i] * cn) * cn);
    }
}
/* dc[n, k]: over the pixels in order, one thread per (n, k), as the CPU adds them. */
__global__ void k_modulate_silu_backward_dc(float *dc, const float *dy, const float *x, const float *c, int N, size_t HW,
                                            int C, int acc) {
    STRIDE_LOOP(j, (size_t)N * C) {
        size_t n = j / C, k = j % C;
        const float cn = c[j];
        float s = acc ? dc[j] : 0.0f;
        for (size_t p = 0; p < HW; p++) {
            size_t o = (n * HW + p) * C + k;
            s += mp_silu1_grad(dy[o], x[o] * cn) * x[o];
        }
        dc[j] = s;
    }
}
int mpc_modulate_silu_forward(void *stream, float *y, const float *x, const float *c, int N, size_t HW, int C) {
    LAUNCH((size_t)N * HW * C, k_modulate_silu_forward, y, x, c, N, HW, C);
}
int mpc_modulate_silu_backward(void *stream, float *dx, float *dc, const float *dy, const float *x, const float *c, int N,
                               size_t HW, int C, int acc) {
    if ((size_t)N * HW * C == 0) return 0;
    k_modulate_silu_backward_dx<<<blocks_for((size_t)N * HW * C), THREADS, 0, (cudaStream_t)stream>>>(dx, dy, x, c, N,
                                                                                                       HW, C, acc);
    k_modulate_silu_backward_dc<<<blocks_for((size_t)N * C), THREADS, 0, (cudaStream_t)stream>>>(dc, dy, x, c, N, HW, C,
                                                                                                   acc);
    return (int)cudaGetLastError();
}

/* ---- resampling with the [1, 1] filter ---- */

__global__ void k_resample_down_forward(float *y, const float *x, int N, int H, int W, int C) {
    const int Ho = H / 2, Wo = W / 2;
    STRIDE_LOOP(i, (size_t)N * Ho * Wo * C) {
        size_t c = i % C, pix = i / C, j = pix % Wo, r = (pix / Wo) % Ho, n = pix / ((size_t)Wo * Ho);
        const float *x00 = x + ((n * H + 2 * r) * W + 2 * j) * C;
        const float *x01 = x00 + C, *x10 = x00 + (size_t)W * C, *x11 = x10 + C;
        y[i] = mp_avg4(x00[c], x01[c], x10[c], x11[c]);
    }
}
__global__ void k_resample_down_backward(float *dx, const float *dy, int N, int H, int W, int C, int acc) {
    const int Ho = H / 2, Wo = W / 2;
    STRIDE_LOOP(i, (size_t)N * Ho * Wo * C) {
        size_t c = i % C, pix = i / C, j = pix % Wo, r = (pix / Wo) % Ho, n = pix / ((size_t)Wo * Ho);
        float *d00 = dx + ((n * H + 2 * r) * W + 2 * j) * C;
        float *d01 = d00 + C, *d10 = d00 + (size_t)W * C, *d11 = d10 + C;
        float v = 0.25f * dy[i];
        GRAD_ACC(acc, d00[c], v), GRAD_ACC(acc, d01[c], v);
        GRAD_ACC(acc, d10[c], v), GRAD_ACC(acc, d11[c], v);
    }
}
__global__ void k_resample_up_forward(float *y, const float *x, int N, int H, int W, int C) {
    const int Ho = H * 2, Wo = W * 2;
    STRIDE_LOOP(i, (size_t)N * Ho * Wo * C) {
        size_t c = i % C, pix = i / C, j = pix % Wo, r = (pix / Wo) % Ho, n = pix / ((size_t)Wo * Ho);
        y[i] = x[((n * H + r / 2) * W + j / 2) * C + c];
    }
}
__global__ void k_resample_up_backward(float *dx, const float *dy, int N, int H, int W, int C, int acc) {
    const int Wo = W * 2;
    STRIDE_LOOP(i, (size_t)N * H * W * C) {
        size_t c = i % C, pix = i / C, j = pix % W, r = (pix / W) % H, n = pix / ((size_t)W * H);
        const float *g00 = dy + ((n * 2 * H + 2 * r) * Wo + 2 * j) * C;
        const float *g01 = g00 + C, *g10 = g00 + (size_t)Wo * C, *g11 = g10 + C;
        GRAD_ACC(acc, dx[i], g00[c] + g01[c] + g10[c] + g11[c]);
    }
}
int mpc_resample_down_forward(void *stream, float *y, const float *x, int N, int H, int W, int C) {
    LAUNCH((size_t)N * (H / 2) * (W / 2) * C, k_resample_down_forward, y, x, N, H, W, C);
}
int mpc_resample_down_backward(void *stream, float *dx, const float *dy, int N, int H, int W, int C, int acc) {
    LAUNCH((size_t)N * (H / 2) * (W / 2) * C, k_resample_down_backward, dx, dy, N, H, W, C, acc);
}
int mpc_resample_up_forward(void *stream, float *y, const float *x, int N, int H, int W, int C) {
    LAUNCH((size_t)N * H * 2 * W * 2 * C, k_resample_up_forward, y, x, N, H, W, C);
}
int mpc_resample_up_backward(void *stream, float *dx, const float *dy, int N, int H, int W, int C, int acc) {
    LAUNCH((size_t)N * H * W * C, k_resample_up_backward, dx, dy, N, H, W, C, acc);
}

/* ---- the Fourier embedding ---- */

__global__ void k_fourier_forward(float *y, const float *x, const float *freqs, const float *phases, int N, int C) {
    STRIDE_LOOP(i, (size_t)N * C) y[i] = mp_fourier1(x[i / C], freqs[i % C], phases[i % C]);
}
int mpc_fourier_forward(void *stream, float *y, const float *x, const float *freqs, const float *phases, int N, int C) {
    LAUNCH((size_t)N * C, k_fourier_forward, y, x, freqs, phases, N, C);
}

/* ---- weights: forced normalisation and the MPConv preparation (one thread per output unit) ---- */

__global__ void k_forced_weight_norm(float *params, const mpc_unit *units, size_t n) {
    STRIDE_LOOP(u, n) {
        const int F = units[u].F;
        mp_force_normalize_unit(params + units[u].offset, F, 1.0f / sqrtf((float)F));
    }
}
int mpc_forced_weight_norm(void *stream, float *params, const mpc_unit *units, size_t n) {
    LAUNCH(n, k_forced_weight_norm, params, units, n);
}

__global__ void k_weight_forward(float *w_hat, float *norm, const float *w, const float *gain_p, int O, int C, int k) {
    const int kk = k * k, F = C * kk;
    const float inv_sqrt_f = 1.0f / sqrtf((float)F), gain = gain_p ? *gain_p : 1.0f;
    STRIDE_LOOP(o, (size_t)O) norm[o] = mp_weight_unit_forward(w_hat + o * F, w + o * F, gain, C, kk, inv_sqrt_f);
}
int mpc_weight_forward(void *stream, float *w_hat, float *norm, const float *w, const float *gain, int O, int C, int k) {
    LAUNCH((size_t)O, k_weight_forward, w_hat, norm, w, gain, O, C, k);
}

__global__ void k_weight_backward(float *dw, float *terms, const float *dw_hat, const float *w, const float *norm,
                                  const float *gain_p, int O, int C, int k) {
    const int kk = k * k, F = C * kk;
    const float inv_sqrt_f = 1.0f / sqrtf((float)F), gain = gain_p ? *gain_p : 1.0f;
    STRIDE_LOOP(o, (size_t)O)
        terms[o] = mp_weight_unit_backward(dw + o * F, dw_hat + o * F, w + o * F, norm[o], gain, C, kk, inv_sqrt_f);
}
/* The gain's gradient: the units' terms in order, in double, as the CPU adds them. */
__global__ void k_weight_backward_gain(float *dgain, const float *terms, int O) {
    double dg = 0;
    for (int o = 0; o < O; o++) dg += terms[o];
    *dgain += (float)dg;
}
int mpc_weight_backward(void *stream, float *dw, float *dgain, const float *dw_hat, const float *w, const float *norm,
                        const float *gain, int O, int C, int k, float *scratch) {
    if (O == 0) return 0;
    k_weight_backward<<<blocks_for((size_t)O), THREADS, 0, (cudaStream_t)stream>>>(dw, scratch, dw_hat, w, norm, gain, O,
                                                                                   C, k);
    if (dgain) k_weight_backward_gain<<<1, 1, 0, (cudaStream_t)stream>>>(dgain, scratch, O);
    return (int)cudaGetLastError();
}
