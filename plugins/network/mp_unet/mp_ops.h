/* mp_ops.h: the magnitude-preserving element-wise layers of EDM2 (docs/formulas.md §1) as plain forward/backward
 * functions over raw pointers. Activations are channels-last: x[P, C] with P = N*H*W pixels.
 * Every *_backward takes `acc`: 1 accumulates into its gradient outputs (dx += ..., llm.c style), 0
 * overwrites them (dx = ...), so the first contribution to a fresh buffer needs no zeroing. */
#ifndef EDM2_MP_OPS_H
#define EDM2_MP_OPS_H

#include <stddef.h>

#include "mp_math.h" /* MP_EPS, MP_SILU_SCALE and the per-element arithmetic */

/* normalize over each row of x[rows, cols]: y = x / (eps + ||x_row|| / sqrt(cols)); norm[rows] saved.
 * Used for pixel norm (rows = pixels, cols = channels) and q/k/v normalisation. */
void normalize_rows_forward(float *y, float *norm, const float *x, size_t rows, int cols, size_t x_stride,
                            size_t y_stride);
void normalize_rows_backward(float *dx, const float *dy, const float *x, const float *norm, size_t rows, int cols,
                             size_t x_stride, size_t y_stride, int acc);

/* mp_silu(x) = x * sigmoid(x) / 0.596, over n elements. */
void mp_silu_forward(float *y, const float *x, size_t n);
void mp_silu_backward(float *dx, const float *dy, const float *x, size_t n, int acc);

/* mp_sum(a, b, t) = ((1-t) a + t b) / sqrt((1-t)^2 + t^2). da or db may be NULL. */
void mp_sum_forward(float *y, const float *a, const float *b, float t, size_t n);
void mp_sum_backward(float *da, float *db, const float *dy, float t, size_t n, int acc);

/* mp_cat along channels: y[P, Ca+Cb] = [a[P, Ca] * wa, b[P, Cb] * wb] (docs/formulas.md §1). */
void mp_cat_forward(float *y, const float *a, int Ca, const float *b, int Cb, size_t P, float t);
void mp_cat_backward(float *da, float *db, const float *dy, int Ca, int Cb, size_t P, float t, int acc);

/* The embedding modulation and the activation after it in one pass (bitwise the same as
 * y = x * c then mp_silu_forward): y = mp_silu(x * c), x[N, HW, C], c[N, C] broadcast over pixels. */
void modulate_silu_forward(float *y, const float *x, const float *c, int N, size_t HW, int C);
/* Its backward from the forward's inputs: dx (+)= dv * c, dc (+)= sum over pixels of dv * x, where
 * dv = mp_silu'(x * c) dy. */
void modulate_silu_backward(float *dx, float *dc, const float *dy, const float *x, const float *c, int N, size_t HW,
                            int C, int acc);

/* Resampling with the [1,1] filter: down = 2x2 average pooling, up = nearest-neighbour 2x.
 * x[N, H, W, C] (input resolution H x W). */
void resample_down_forward(float *y, const float *x, int N, int H, int W, int C);
void resample_down_backward(float *dx, const float *dy, int N, int H, int W, int C, int acc);
void resample_up_forward(float *y, const float *x, int N, int H, int W, int C);
void resample_up_backward(float *dx, const float *dy, int N, int H, int W, int C, int acc);

/* Clipping to [-c, c] after a residual sum: y = clamp(mp_sum(a, b, t), -c, c) in one pass (bitwise the
 * same as mp_sum_forward then clamping); the unclipped sum also goes to `unclipped` when non-NULL.
 * Returns how many elements were clipped. clip_backward passes dy where -c <= x <= c (x unclipped). */
size_t mp_sum_clip_forward(float *y, float *unclipped, const float *a, const float *b, float t, float c, size_t n);
void clip_backward(float *dx, const float *dy, const float *x, float c, size_t n, int acc);

/* MPFourier: y[N, C] = sqrt(2) cos(x[n] * freqs[c] + phases[c]) (no gradient: inputs are sigma only). */
void mp_fourier_forward(float *y, const float *x, const float *freqs, const float *phases, int N, int C);

/* y = x + a (or x * a): small helpers on n elements. */
void add_scalar(float *y, const float *x, float a, size_t n);
void accumulate(float *y, const float *x, size_t n); /* y += x */

#endif
