/* mp_math.h: the arithmetic of the magnitude-preserving layers (docs/formulas.md §1) per element, per row
 * and per weight unit, written once for the CPU layers (mp_ops.c, mp_conv.c, forced_weight_norm.c, whose
 * loops call these) and the CUDA kernels (../mp_unet_cuda/mp_ops.cu): the same code in the same order, so
 * the two backends compute bitwise the same values. ISO C on the CPU and --fmad=false on CUDA round every
 * product and sum separately; the fmaf calls in fast_exp are fused on both. */
#ifndef EDM2_MP_MATH_H
#define EDM2_MP_MATH_H

#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#ifdef __CUDACC__
#define MP_FN __host__ __device__ static inline
#else
#define MP_FN static inline
#endif

/* exp(x) in float to about 2 ulp (Cody-Waite reduction and Cephes' polynomial), written so that the
 * compiler vectorises the loops that call it (libm's expf is a scalar call). */
MP_FN float fast_exp(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    n = n == n ? n : 0.0f; /* NaN in, NaN out (p), without converting NaN to an integer */
    const int32_t bits = (int32_t)((uint32_t)((int32_t)n + 127) << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Gradient outputs: dst += v when acc, dst = v otherwise (the first contribution to a fresh buffer, which
 * then needs no zeroing). */
#define GRAD_ACC(acc, dst, v) ((dst) = (acc) ? (dst) + (v) : (v))

#define MP_EPS 1e-4f
#define MP_SILU_SCALE 0.596f /* E[silu(x)^2]^(1/2) for x ~ N(0, 1) */
#define MP_SQRT2 1.41421356237309504880f

/* mp_silu(x) = silu(x) / 0.596, and its gradient dy * d/dx mp_silu(x). */
MP_FN float mp_silu1(float x) { return x / (1.0f + fast_exp(-x)) / MP_SILU_SCALE; }
MP_FN float mp_silu1_grad(float dy, float x) {
    float s = 1.0f / (1.0f + fast_exp(-x));
    return dy * s * (1.0f + x * (1.0f - s)) / MP_SILU_SCALE;
}

/* mp_sum(a, b, t) = lerp(a, b, t) * inv with inv = mp_sum_scale(t) = 1 / sqrt((1-t)^2 + t^2). */
MP_FN float mp_sum_scale(float t) { return 1.0f / sqrtf((1 - t) * (1 - t) + t * t); }
MP_FN float mp_sum1(float a, float b, float t, float inv) { return (a + t * (b - a)) * inv; }

/* The two branch weights of mp_cat (in double, then rounded). */
MP_FN void mp_cat_weights(int Ca, int Cb, float t, float *wa, float *wb) {
    double C = sqrt((double)(Ca + Cb) / ((1 - t) * (double)(1 - t) + (double)t * t));
    *wa = (float)(C / sqrt((double)Ca) * (1 - t));
    *wb = (float)(C / sqrt((double)Cb) * t);
}

/* 2x2 average of four values (resampling down). */
MP_FN float mp_avg4(float a, float b, float c, float d) { return 0.25f * a + 0.25f * b + 0.25f * c + 0.25f * d; }

/* sqrt(2) cos(x f + p): one MP-Fourier feature. */
MP_FN float mp_fourier1(float x, float f, float p) {
    float arg = x * f;
    arg = arg + p;
    return cosf(arg) * MP_SQRT2;
}

/* eps + ||v|| / sqrt(n), the norm every MP normalisation divides by (inv_sqrt_n = 1 / sqrtf(n)). */
MP_FN float mp_norm(const float *v, int n, float inv_sqrt_n) {
    float ss = 0;
    for (int i = 0; i < n; i++) ss += v[i] * v[i];
    return MP_EPS + sqrtf(ss) * inv_sqrt_n;
}

/* y = x / norm over one row of `cols`; returns the norm (saved for the gradient). */
MP_FN float mp_normalize_row(float *y, const float *x, int cols, float inv_sqrt_n) {
    const float n = mp_norm(x, cols, inv_sqrt_n), inv = 1.0f / n;
    for (int c = 0; c < cols; c++) y[c] = x[c] * inv;
    return n;
}

/* Its gradient: dx = dy / n - x (dy . x) / (n^2 sqrt(cols) |x|). */
MP_FN void mp_normalize_row_grad(float *dx, const float *dy, const float *x, float n, int cols, float inv_sqrt_n, int acc) {
    const float len = (n - MP_EPS) / inv_sqrt_n; /* |x| */
    float dot = 0;
    for (int c = 0; c < cols; c++) dot += dy[c] * x[c];
    const float a = 1.0f / n, b = len > 0 ? dot * inv_sqrt_n / (n * n * len) : 0.0f;
    for (int c = 0; c < cols; c++) GRAD_ACC(acc, dx[c], dy[c] * a - x[c] * b);
}

/* Forced weight normalisation of one output unit w[F] in place. */
MP_FN void mp_force_normalize_unit(float *w, int F, float inv_sqrt_f) {
    const float n = mp_norm(w, F, inv_sqrt_f);
    for (int i = 0; i < F; i++) w[i] /= n;
}

/* MPConv weight preparation of one output unit: w_hat[k*k, C] (tap-major) from w[C, k*k] (the reference
 * layout), w_hat = w / n * gain / sqrt(F); returns n. */
MP_FN float mp_weight_unit_forward(float *w_hat, const float *w, float gain, int C, int kk, float inv_sqrt_f) {
    const float n = mp_norm(w, C * kk, inv_sqrt_f), scale = gain * inv_sqrt_f;
    for (int c = 0; c < C; c++)
        for (int t = 0; t < kk; t++) w_hat[(size_t)t * C + c] = (w[(size_t)c * kk + t] / n) * scale;
    return n;
}

/* Its gradient: dw += d(w_hat)/dw^T dw_hat for the unit; returns the unit's term of the gain's gradient
 * (dw_hat . w) / n / sqrt(F), which the caller adds over the units in order, in double. */
MP_FN float mp_weight_unit_backward(float *dw, const float *dw_hat, const float *w, float n, float gain, int C, int kk,
                                    float inv_sqrt_f) {
    const float s = gain * inv_sqrt_f, len = (n - MP_EPS) / inv_sqrt_f;
    float dot = 0; /* (dw_hat . w) in reference layout */
    for (int c = 0; c < C; c++)
        for (int t = 0; t < kk; t++) dot += dw_hat[(size_t)t * C + c] * w[(size_t)c * kk + t];
    const float a = s / n, b = len > 0 ? s * dot * inv_sqrt_f / (n * n * len) : 0.0f;
    for (int c = 0; c < C; c++)
        for (int t = 0; t < kk; t++) dw[(size_t)c * kk + t] += dw_hat[(size_t)t * C + c] * a - w[(size_t)c * kk + t] * b;
    return dot / n * inv_sqrt_f;
}

#endif
