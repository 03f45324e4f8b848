/* dinov2_kernels.h: the CUDA kernels of DINOv2's vision transformer (../dinov2/dinov2_vit.h) besides its
 * products (cuBLAS, plugin.c): the input (../dinov2/dinov2_input.h), the patches, the tokens, LayerNorm, the
 * bias, softmax, GELU and the LayerScale residual, each element by the same operations as the CPU build
 * (dinov2_cpu.c, dinov2_input.c), queued on the caller's stream. Each launcher returns 0 or the launch's
 * cudaError_t. */
#ifndef EDM2_DINOV2_KERNELS_H
#define EDM2_DINOV2_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[n, 3, res, res] = the network's input of x[n, C, H, W] (values k / 255; C = 1 used for all three
 * colours); wide[n, 3, H, res] is scratch (the rows after the width's resampling). */
int dino_k_input(void *stream, const float *x, int n, int C, int H, int W, int res, float *wide, float *out);
/* P[n g g, 3 p p] = the patches of in[n, 3, g p, g p] (channel, row, column within a patch). */
int dino_k_patches(void *stream, const float *in, int n, int g, int p, float *P);
/* x[n, T, D] = the class token (row 0 of each image) or the patches' embeddings e[n, T - 1, D], plus pos[T, D]. */
int dino_k_tokens(void *stream, const float *e, const float *cls, const float *pos, int n, int T, int D, float *x);
/* y[r, D] (row stride ldy) = LayerNorm(x[r, D] (row stride ldx)) weight + bias, eps 1e-6, r < rows. */
int dino_k_layer_norm(void *stream, const float *x, size_t ldx, size_t rows, int D, const float *weight,
                      const float *bias, float *y, size_t ldy);
/* y[r, N] += b[N]. */
int dino_k_bias(void *stream, float *y, size_t rows, int N, const float *b);
/* Each of `rows` rows of s (length T) scaled, then replaced by its softmax. */
int dino_k_softmax(void *stream, float *s, size_t rows, int T, float scale);
/* y = GELU(y) (with erf), n values. */
int dino_k_gelu(void *stream, float *y, size_t n);
/* x[r, D] += gamma[D] y[r, D]. */
int dino_k_scaled_add(void *stream, float *x, const float *y, const float *gamma, size_t rows, int D);

#ifdef __cplusplus
}
#endif
#endif
