/* conv_cuda.h: the MPConv products of the CUDA mp_unet (docs/formulas.md §1), with the shapes and the `acc`
 * convention of ../mp_unet/mp_conv.h: activations channels-last x[N, H, W, C] (P = N*H*W rows), prepared
 * weights w_hat[O, k, k, C]. Fully connected and 1x1 layers are cuBLAS products; 3x3 convolutions (padding
 * 1) are cuDNN convolutions (forward, backward data, backward filter) on NHWC tensors with KRSC filters,
 * except the float32 ones with few channels on one side (the network's first and last: thin_conv.h).
 * Activations and prepared weights in the context's type (g->act): float32 with cuBLAS in pedantic mode and
 * cuDNN in FMA math (no TF32), the algorithms cuDNN's heuristics rank first; bf16/fp16 on tensor cores with
 * float32 accumulation, the algorithms cuDNN times fastest. Weight gradients are float32 in every case.
 * Deterministic algorithms only. */
#ifndef EDM2_CONV_CUDA_H
#define EDM2_CONV_CUDA_H

#include "gemm_cuda.h"
#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Float32 fully connected layers (the embedding and the uncertainty head):
 * y[P, O] = x[P, C] w_hat[O, C]^T (+ y when accumulate). */
int gpu_linear_forward(gpu_ctx *g, float *y, const float *x, const float *w_hat, size_t P, int C, int O, int accumulate);
/* dx[P, C] (+)= dy w_hat (skipped when dx is NULL); dw_hat[O, C] += dy^T x. */
int gpu_linear_backward(gpu_ctx *g, float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat,
                        size_t P, int C, int O, int acc);
/* k x k convolution (k = 1 or 3), padding k/2, in the activations' type: x[N, H, W, C] -> y[N, H, W, O]. */
int gpu_conv2d_forward(gpu_ctx *g, void *y, const void *x, const void *w_hat, int N, int H, int W, int C, int O, int k);
/* dx (+)= (skipped when NULL; activations' type), dw_hat += (float32). */
int gpu_conv2d_backward(gpu_ctx *g, void *dx, float *dw_hat, const void *dy, const void *x, const void *w_hat, int N,
                        int H, int W, int C, int O, int k, int acc);
/* The same in float32 whatever the activations' type (the network's first and last convolutions). */
int gpu_conv2d_forward_f32(gpu_ctx *g, float *y, const float *x, const float *w_hat, int N, int H, int W, int C, int O,
                           int k);
int gpu_conv2d_backward_f32(gpu_ctx *g, float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat,
                            int N, int H, int W, int C, int O, int k, int acc);
void conv_plans_free(gpu_ctx *g);
/* A workspace of at least `need` bytes for a product: the backend's, or the network's own when it needs
 * more (grown, kept); NULL when out of memory (recorded). */
void *gpu_workspace(gpu_ctx *g, size_t need);
/* The time in ms of `calls` calls of call(g, arg) on g's stream, timed with CUDA events; -1 when one failed
 * (call returns 0 or -1) or the events did. */
float gpu_calls_ms(gpu_ctx *g, int (*call)(gpu_ctx *g, const void *arg), const void *arg, int calls);

#ifdef __cplusplus
}
#endif
#endif
