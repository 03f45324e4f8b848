/* act_ops.h: the U-Net body's element-wise layers at the network's precision (the `precision` key; ACT_*
 * of act_type.h). Activations are void pointers to elements of type `act`: float32, where each call is the
 * exact kernel of mp_ops_cuda.h / unet_kernels.h (bitwise the CPU's), or bf16/fp16, where the arithmetic
 * is float32 (each element loaded, computed as in ../mp_unet/mp_math.h, rounded once when stored) and the
 * row reductions are warp-parallel. Norms, the modulation c and its gradient dc, the network's input x
 * and output D, and weight gradients are float32 in every case. Channels-last x[P, C], P = N*H*W; `acc`
 * as in mp_ops_cuda.h. Each returns 0 or the launch's cudaError_t. */
#ifndef EDM2_ACT_OPS_H
#define EDM2_ACT_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "mp_ops_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y[n] += x[n] into float32 (a 3x3 weight's gradient from cuDNN). */
int act_add_to_f32(void *stream, int act, float *y, const void *x, size_t n);
/* y[n] = x[n] from one element type to another (ACT_*). */
int act_convert(void *stream, int y_act, void *y, int x_act, const void *x, size_t n);
/* x[N, H, W, C] (any ACT_ type) copied into the zero-padded grid dst[margin + N (H+2) (W+2) + margin, C]:
 * pixel (n, i, j) at row margin + (n (H+2) + i + 1) (W+2) + j + 1, every other row zero (the 3x3 weight
 * gradient as products, conv_cuda.c). */
int act_pad_rows(void *stream, int act, void *dst, const void *x, int N, int H, int W, int C, int margin);
/* Forced weight normalisation of the listed units (mp_ops_cuda.h's mpc_forced_weight_norm, float32): for
 * bf16/fp16 one warp per unit (the sums in another order). */
int act_forced_weight_norm(void *stream, int act, float *params, const mpc_unit *units, size_t n);
/* MPConv weight preparation for the bf16/fp16 network (float32: mp_ops_cuda.h's mpc_weight_forward, a
 * weight at a time), every weight in one launch, one warp per output unit (the sums in another order than
 * float32's): unit u's C k k values at params + units[u].w give its row norm norm[units[u].norm] and its
 * prepared values (docs/formulas.md §1), written in float32 at w_hat + units[u].hat (unless that is
 * (size_t)-1) and, when units[u].lp, in the activations' type at w_lp + units[u].w (the arena's layout). */
typedef struct act_prep_unit {
    size_t w, hat, norm;
    long gain; /* the arena offset of the weight's gain, or -1 for a gain of 1 */
    int C, kk; /* input channels, taps (k k) */
    int lp;
} act_prep_unit;
int act_weights_forward(void *stream, int act, float *w_hat, void *w_lp, float *norm, const float *params,
                        const act_prep_unit *units, size_t n);
/* The preparation's gradient (mp_ops_cuda.h's mpc_weight_backward for float32): for bf16/fp16 one block per
 * output unit. */
int act_weight_backward(void *stream, int act, float *dw, float *dgain, const float *dw_hat, const float *w,
                        const float *norm, const float *gain, int O, int C, int k, float *scratch);
/* Pixel norm over rows of `cols` contiguous channels; norm[rows] float32. */
int act_normalize_rows_forward(void *stream, int act, void *y, float *norm, const void *x, size_t rows, int cols);
int act_normalize_rows_backward(void *stream, int act, void *dx, const void *dy, const void *x, const float *norm,
                                size_t rows, int cols, int acc);
/* The encoder's pixel norm followed by MP-SiLU: y = pixel_norm(x), a = mp_silu(y) (y kept for backward);
 * and their gradients: dx = pixel_norm's gradient of (dy + mp_silu's gradient of da at y). Bitwise the
 * separate calls; for bf16/fp16 in one pass each, and dy is left as it was; for float32 (the separate
 * kernels) dy receives the sum. */
int act_normalize_silu_forward(void *stream, int act, void *y, void *a, float *norm, const void *x, size_t rows,
                               int cols);
int act_silu_normalize_backward(void *stream, int act, void *dx, void *dy, const void *da, const void *y, const void *x,
                                const float *norm, size_t rows, int cols);
int act_silu_forward(void *stream, int act, void *y, const void *x, size_t n);
int act_silu_backward(void *stream, int act, void *dx, const void *dy, const void *x, size_t n, int acc);
int act_sum_forward(void *stream, int act, void *y, const void *a, const void *b, float t, size_t n);
int act_sum_backward(void *stream, int act, void *da, void *db, const void *dy, float t, size_t n, int acc);
/* y = mp_cat(a, b, t) [P, Ca + Cb], and y_silu = mp_silu(y) with it (may be NULL): a decoder block's input and
 * its residual branch's first activation in one pass, bitwise the two layers in turn. */
int act_cat_forward(void *stream, int act, void *y, void *y_silu, const void *a, int Ca, const void *b, int Cb, size_t P,
                    float t);
int act_cat_backward(void *stream, int act, void *da, void *db, const void *dy, int Ca, int Cb, size_t P, float t,
                     int acc);
/* da, db = mp_cat's gradients (overwritten) of g = dy + mp_silu's gradient of dsil at x [P, Ca + Cb]: a
 * decoder block's residual-branch input gradient finished and taken apart into its input's two operands.
 * Bitwise act_silu_backward (accumulating into dy) then act_cat_backward; for bf16/fp16 in one pass, dy
 * left as it was; for float32 (the two kernels) dy receives g. */
int act_silu_cat_backward(void *stream, int act, void *da, void *db, void *dy, const void *dsil, const void *x, int Ca,
                          int Cb, size_t P, float t);
/* y = mp_silu(x * c[n]) with c[N, C] float32;  dx (act), dc (float32). For bf16/fp16 dc sums the pixels in
 * act_dc_chunks(HW, C) tiles first, into part[N, tiles, C] (float32 scratch; unused for float32). */
int act_modulate_silu_forward(void *stream, int act, void *y, const void *x, const float *c, int N, size_t HW, int C);
int act_dc_chunks(size_t HW, int C);
int act_modulate_silu_backward(void *stream, int act, void *dx, float *dc, const void *dy, const void *x, const float *c,
                               int N, size_t HW, int C, int acc, float *part);
int act_resample_down_forward(void *stream, int act, void *y, const void *x, int N, int H, int W, int C);
int act_resample_down_backward(void *stream, int act, void *dx, const void *dy, int N, int H, int W, int C, int acc);
int act_resample_up_forward(void *stream, int act, void *y, const void *x, int N, int H, int W, int C);
int act_resample_up_backward(void *stream, int act, void *dx, const void *dy, int N, int H, int W, int C, int acc);
/* y = clip(mp_sum(a, b, t), -c, c), and (keep, may be NULL) one bit per element, set where -c <= the
 * unclipped sum <= c (element e: bit e % 8 of byte e / 8; ACT_KEEP_FLOATS(n) floats of workspace hold it):
 * all that the clip's gradient needs of the unclipped sum, at a sixteenth of its bf16 size. Its gradient,
 * the clipped gradient never stored: g = dy where the bit is set (else 0; keep NULL: no clip), then
 * da = (1 - t) g / sqrt((1 - t)^2 + t^2), db = t g / sqrt(...) (mp_sum's gradient; either may be NULL).
 * Bitwise the CPU's clip_backward of the unclipped sum followed by mp_sum_backward (mp_ops.h), in every
 * precision; in bf16/fp16 the bit is that of the sum before rounding, as the clip sees it. */
#define ACT_KEEP_FLOATS(n) (((n) + 31) / 32)
int act_sum_clip_forward(void *stream, int act, void *y, unsigned char *keep, const void *a, const void *b, float t,
                         float c, size_t n);
int act_sum_clip_backward(void *stream, int act, void *da, void *db, const void *dy, const unsigned char *keep, float t,
                          size_t n, int acc);

#ifdef __cplusplus
}
#endif
#endif
