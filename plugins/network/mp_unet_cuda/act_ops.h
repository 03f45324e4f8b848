/* act_ops.h: the U-Net body's element-wise layers at the network's precision (the `precision` key; ACT_*
 * of gpu_ctx.h). Activations are void pointers to elements of type `act`: float32, where each call is the
 * exact kernel of mp_ops_cuda.h / unet_kernels.h (bitwise the CPU's), or bf16/fp16, where the arithmetic
 * is float32 (each element loaded, computed as in ../mp_unet/mp_math.h, rounded once when stored) and the
 * row reductions are warp-parallel. Norms, the modulation c and its gradient dc, the network's input x
 * and output D, and weight gradients are float32 in every case. Channels-last x[P, C], P = N*H*W; `acc`
 * as in mp_ops_cuda.h. Each returns 0 or the launch's cudaError_t. */
#ifndef EDM2_ACT_OPS_H
#define EDM2_ACT_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[n] += x[n] into float32 (a 3x3 weight's gradient from cuDNN). */
int act_add_to_f32(void *stream, int act, float *y, const void *x, size_t n);
/* MPConv weight preparation (mp_ops_cuda.h's mpc_weight_forward/backward, float32): for bf16/fp16 one
 * warp per output unit (the sums in another order) and w_lp, the prepared weights in the activations'
 * type, written as well (NULL for float32). */
int act_weight_forward(void *stream, int act, float *w_hat, void *w_lp, float *norm, const float *w, const float *gain,
                       int O, int C, int k);
int act_weight_backward(void *stream, int act, float *dw, float *dgain, const float *dw_hat, const float *w,
                        const float *norm, const float *gain, int O, int C, int k, float *scratch);
/* Preconditioning (unet_kernels.h's uk_precondition) with x_in0[N, HW, C + 1] of type act. */
int act_precondition(void *stream, int act, float *c_skip, float *c_out, float *c_noise, void *x_in0, const float *x,
                     const float *sigma, int N, int C, size_t HW, float sigma_data);
/* D[N, C, HW] = c_skip x + c_out F with F[N, HW, C] of type act;  dF = c_out dD (type act). */
int act_output(void *stream, int act, float *D, const float *x, const void *F, const float *c_skip, const float *c_out,
               int N, int C, size_t HW);
int act_output_backward(void *stream, int act, void *dF, const float *dD, const float *c_out, int N, int C, size_t HW);
/* y += x;  dropout in place (uk_dropout's mask and scale). */
int act_accumulate(void *stream, int act, void *y, const void *x, size_t n);
int act_dropout(void *stream, int act, void *y, size_t n, float p, uint64_t seed, uint64_t rng_stream, uint64_t base);
/* Pixel norm over rows of `cols` contiguous channels; norm[rows] float32. */
int act_normalize_rows_forward(void *stream, int act, void *y, float *norm, const void *x, size_t rows, int cols);
int act_normalize_rows_backward(void *stream, int act, void *dx, const void *dy, const void *x, const float *norm,
                                size_t rows, int cols, int acc);
int act_silu_forward(void *stream, int act, void *y, const void *x, size_t n);
int act_silu_backward(void *stream, int act, void *dx, const void *dy, const void *x, size_t n, int acc);
int act_sum_forward(void *stream, int act, void *y, const void *a, const void *b, float t, size_t n);
int act_sum_backward(void *stream, int act, void *da, void *db, const void *dy, float t, size_t n, int acc);
int act_cat_forward(void *stream, int act, void *y, const void *a, int Ca, const void *b, int Cb, size_t P, float t);
int act_cat_backward(void *stream, int act, void *da, void *db, const void *dy, int Ca, int Cb, size_t P, float t,
                     int acc);
/* y = mp_silu(x * c[n]) with c[N, C] float32;  dx (act), dc (float32). */
int act_modulate_silu_forward(void *stream, int act, void *y, const void *x, const float *c, int N, size_t HW, int C);
int act_modulate_silu_backward(void *stream, int act, void *dx, float *dc, const void *dy, const void *x, const float *c,
                               int N, size_t HW, int C, int acc);
int act_resample_down_forward(void *stream, int act, void *y, const void *x, int N, int H, int W, int C);
int act_resample_down_backward(void *stream, int act, void *dx, const void *dy, int N, int H, int W, int C, int acc);
int act_resample_up_forward(void *stream, int act, void *y, const void *x, int N, int H, int W, int C);
int act_resample_up_backward(void *stream, int act, void *dx, const void *dy, int N, int H, int W, int C, int acc);
/* y = clip(mp_sum(a, b, t), -c, c), unclipped kept;  its gradient. */
int act_sum_clip_forward(void *stream, int act, void *y, void *unclipped, const void *a, const void *b, float t, float c,
                         size_t n);
int act_clip_backward(void *stream, int act, void *dx, const void *dy, const void *x, float c, size_t n, int acc);

#ifdef __cplusplus
}
#endif
#endif
