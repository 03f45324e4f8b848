/* mp_ops_cuda.h: the magnitude-preserving layers of EDM2 (docs/formulas.md §1) as CUDA kernels over device
 * memory, one function per CPU layer of ../mp_unet (mp_ops.h, mp_conv.h, forced_weight_norm.h) with the
 * same arguments, shapes (channels-last x[P, C], P = N*H*W) and `acc` convention, plus the stream every
 * kernel is queued on (a cudaStream_t, as the backend's native handles give it). They compute bitwise the
 * same values as the CPU layers (the same operations in the same order, each rounded separately; the
 * shared helpers of mp_math.h), except mp_fourier_forward, whose cosf may differ by an ulp or two.
 * Each returns 0, or the cudaError_t of the launch. The first step of the CUDA network (issue 10); the
 * equalities are tested on a GPU and in the CPU emulation (test_cuda_layers). */
#ifndef EDM2_MP_OPS_CUDA_H
#define EDM2_MP_OPS_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int mpc_normalize_rows_forward(void *stream, float *y, float *norm, const float *x, size_t rows, int cols,
                               size_t x_stride, size_t y_stride);
int mpc_normalize_rows_backward(void *stream, float *dx, const float *dy, const float *x, const float *norm, size_t rows,
                                int cols, size_t x_stride, size_t y_stride, int acc);
int mpc_silu_forward(void *stream, float *y, const float *x, size_t n);
int mpc_silu_backward(void *stream, float *dx, const float *dy, const float *x, size_t n, int acc);
int mpc_sum_forward(void *stream, float *y, const float *a, const float *b, float t, size_t n);
int mpc_sum_backward(void *stream, float *da, float *db, const float *dy, float t, size_t n, int acc);
int mpc_cat_forward(void *stream, float *y, const float *a, int Ca, const float *b, int Cb, size_t P, float t);
int mpc_cat_backward(void *stream, float *da, float *db, const float *dy, int Ca, int Cb, size_t P, float t, int acc);
int mpc_modulate_silu_forward(void *stream, float *y, const float *x, const float *c, int N, size_t HW, int C);
int mpc_modulate_silu_backward(void *stream, float *dx, float *dc, const float *dy, const float *x, const float *c, int N,
                               size_t HW, int C, int acc);
int mpc_resample_down_forward(void *stream, float *y, const float *x, int N, int H, int W, int C);
int mpc_resample_down_backward(void *stream, float *dx, const float *dy, int N, int H, int W, int C, int acc);
int mpc_resample_up_forward(void *stream, float *y, const float *x, int N, int H, int W, int C);
int mpc_resample_up_backward(void *stream, float *dx, const float *dy, int N, int H, int W, int C, int acc);
int mpc_fourier_forward(void *stream, float *y, const float *x, const float *freqs, const float *phases, int N, int C);
/* One output unit of a weight: its F = C k k values at `offset` floats into the arena. */
typedef struct mpc_unit {
    size_t offset;
    int F;
} mpc_unit;
/* Forced weight normalisation in place of the n units listed in `units` (device memory), one thread per
 * unit: all of a network's weights in one launch. */
int mpc_forced_weight_norm(void *stream, float *params, const mpc_unit *units, size_t n);
/* Weight preparation: w_hat[O, k, k, C] = normalize(w[O, C, k, k]) * gain / sqrt(C k k), norm[O] saved.
 * gain: a device scalar (a parameter), or NULL for 1. */
int mpc_weight_forward(void *stream, float *w_hat, float *norm, const float *w, const float *gain, int O, int C, int k);
/* dw += ..., *dgain += ... (device scalar, may be NULL); scratch: O floats of device memory. */
int mpc_weight_backward(void *stream, float *dw, float *dgain, const float *dw_hat, const float *w, const float *norm,
                        const float *gain, int O, int C, int k, float *scratch);

#ifdef __cplusplus
}
#endif
#endif
