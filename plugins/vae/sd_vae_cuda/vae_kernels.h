/* vae_kernels.h: the CUDA kernels of the SD VAE (../sd_vae/vae_graph.h), the arithmetic of the CPU primitives
 * (vae_cpu.c), on the caller's stream. Activations channels-last [P, C] (P = H W, one image). Each launcher
 * returns 0 or the launch's cudaError_t. */
#ifndef EDM2_VAE_KERNELS_H
#define EDM2_VAE_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[P, C] = x[C, P] (to channels-last), or back (to_nchw = 1: y[C, P] = x[P, C]). */
int vae_k_transpose(void *stream, const float *x, int P, int C, int to_nchw, float *y);
/* y[C, P] = x[P, C] for the mean channels; exp(clamp(logvar, -30, 20) / 2) for the others (C = 2 L). */
int vae_k_moments(void *stream, const float *x, int P, int C, float *y);
/* Rows [oy0, oy1) of a 3x3 convolution's im2col: padding 1 on every side (down = 0), or stride 2 with
 * padding only at the bottom and right (down = 1). x[H, W, C] -> col[(oy1 - oy0) Wo, 9 C]. */
int vae_k_im2col(void *stream, const float *x, int H, int W, int C, int down, int oy0, int oy1, float *col);
/* y[p, o] += b[o]. */
int vae_k_bias(void *stream, float *y, size_t P, int C, const float *b);
/* GroupNorm (eps 1e-6) of x[P, C] in G groups, times gamma plus beta, then SiLU when silu; y may be x.
 * stats: scratch of 2 G floats (device). */
int vae_k_group_norm(void *stream, const float *x, size_t P, int C, int G, const float *gamma, const float *beta,
                     int silu, float *stats, float *y);
int vae_k_add(void *stream, const float *a, const float *b, size_t n, float *y);
/* y[2H, 2W, C] = nearest-neighbour upsampling of x[H, W, C]. */
int vae_k_upsample(void *stream, const float *x, int H, int W, int C, float *y);
/* Each row of s[P, P] replaced by its softmax (s holds scores already scaled). */
int vae_k_softmax(void *stream, float *s, int P);

#ifdef __cplusplus
}
#endif
#endif
