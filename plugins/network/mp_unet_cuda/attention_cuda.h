/* attention_cuda.h: EDM2 cosine self-attention on the GPU (docs/formulas.md §2), with the layouts of
 * ../mp_unet/attention.h: qkv[N, HW, 3*C] holds channel (head*cph + c)*3 + s for s in {q, k, v}; the output
 * y[N, HW, C] holds channel head*cph + c. Normalisation and softmax are kernels; the products are cuBLAS
 * batched products over (image, head). */
#ifndef EDM2_ATTENTION_CUDA_H
#define EDM2_ATTENTION_CUDA_H

#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Saved for backward (caller-allocated, device memory):
 *   qkvn [N, heads, 3, HW, cph]  normalised q, k, v;   norm [N, heads, 3, HW] their norms;
 *   attn [N, heads, HW, HW]      softmax weights. */
int gpu_attention_forward(gpu_ctx *g, float *y, float *qkvn, float *norm, float *attn, const float *qkv, int N, int HW,
                          int heads, int cph);
/* dqkv[N, HW, 3*C] (+)= d/dqkv. Scratch: dS [N, heads, HW, HW] and dqkvn [N, heads, 3, HW, cph]. */
int gpu_attention_backward(gpu_ctx *g, float *dqkv, const float *dy, const float *qkv, const float *qkvn,
                           const float *norm, const float *attn, int N, int HW, int heads, int cph, int acc, float *dS,
                           float *dqkvn);

#ifdef __cplusplus
}
#endif
#endif
