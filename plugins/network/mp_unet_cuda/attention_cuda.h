/* attention_cuda.h: EDM2 cosine self-attention on the GPU (docs/formulas.md §2), with the layouts of
 * ../mp_unet/attention.h: qkv[N, HW, 3*C] holds channel (head*cph + c)*3 + s for s in {q, k, v}; the output
 * y[N, HW, C] holds channel head*cph + c. Normalisation and softmax are kernels; the products are cuBLAS
 * batched products over (image, head). Tensors in the activations' type (g->act; norms float32): float32
 * here (attention_cuda.cu), bf16/fp16 in attention_lp.cu. */
#ifndef EDM2_ATTENTION_CUDA_H
#define EDM2_ATTENTION_CUDA_H

#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Saved for backward (caller-allocated, device memory):
 *   qkvn [N, heads, 3, HW, cph]  normalised q, k, v;   norm [N, heads, 3, HW] their norms;
 *   attn [N, heads, HW, HW]      softmax weights.
 * tmp: scratch of N*HW*heads*cph elements for bf16/fp16 (unused, may be NULL, for float32). */
int gpu_attention_forward(gpu_ctx *g, void *y, void *qkvn, float *norm, void *attn, const void *qkv, int N, int HW,
                          int heads, int cph, void *tmp);
/* dqkv[N, HW, 3*C] (+)= d/dqkv. Scratch: dS [N, heads, HW, HW], dqkvn [N, heads, 3, HW, cph], tmp as above. */
int gpu_attention_backward(gpu_ctx *g, void *dqkv, const void *dy, const void *qkv, const void *qkvn,
                           const float *norm, const void *attn, int N, int HW, int heads, int cph, int acc, void *dS,
                           void *dqkvn, void *tmp);
/* The bf16/fp16 implementations (attention_lp.cu), which the two above call for such activations. */
int gpu_attention_forward_lp(gpu_ctx *g, void *y, void *qkvn, float *norm, void *attn, const void *qkv, int N, int HW,
                             int heads, int cph, void *tmp);
int gpu_attention_backward_lp(gpu_ctx *g, void *dqkv, const void *dy, const void *qkv, const void *qkvn,
                              const float *norm, const void *attn, int N, int HW, int heads, int cph, int acc, void *dS,
                              void *dqkvn, void *tmp);

#ifdef __cplusplus
}
#endif
#endif
