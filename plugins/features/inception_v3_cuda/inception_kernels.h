/* inception_kernels.h: the CUDA kernels of the FID Inception-v3 graph (../inception_v3/inception_graph.h),
 * the same arithmetic as the CPU primitives (inception_cpu.c), queued on the caller's stream. Activations
 * are channels-last, [n, H, W, ld] with a view's channels at offset c0 (the caller offsets the pointer).
 * Each launcher returns 0 or the launch's cudaError_t. */
#ifndef EDM2_INCEPTION_KERNELS_H
#define EDM2_INCEPTION_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[n, R, R, ld] channels 0..2 = 2 bilinear(x[n, C, H, W]) - 1 (C = 1 replicated). */
int incep_k_resize(void *stream, const float *x, int n, int C, int H, int W, float *y, int R, int ld);
/* col[m * Ho * Wo, kh * kw * cin] = the taps of each output pixel (zeros outside), x[m, H, W, ld]. */
int incep_k_im2col(void *stream, const float *x, int ld, int m, int H, int W, int cin, int kh, int kw, int stride,
                   int ph, int pw, int Ho, int Wo, float *col);
/* y[r, o] = max(0, y[r, o] alpha[o] + beta[o]) for rows r < rows (stride ld), o < cout. */
int incep_k_bn_relu(void *stream, float *y, size_t rows, int ld, int cout, const float *alpha, const float *beta);
/* kind: 0 max 3x3 stride 2; 1 average 3x3 stride 1 padding 1 excluding the padding; 2 max 3x3 stride 1
 * padding 1. x[n, H, W, ldx] (C channels) -> y[n, Ho, Wo, ldy]. */
int incep_k_pool(void *stream, int kind, const float *x, int n, int H, int W, int C, int ldx, float *y, int Ho, int Wo,
                 int ldy);
/* out[n, C] = mean over P positions of x[n, P, ld]. */
int incep_k_mean(void *stream, const float *x, int n, int P, int C, int ld, float *out);

#ifdef __cplusplus
}
#endif
#endif
