/* attention.h: EDM2 cosine self-attention (docs/formulas.md §2) over one block's qkv activations, channels-last.
 * qkv[N, HW, 3*C] holds channel (head*cph + c)*3 + s for s in {q, k, v}; the output y[N, HW, C] holds
 * channel head*cph + c. q, k, v are normalised over their cph channels per head and pixel. */
#ifndef EDM2_ATTENTION_H
#define EDM2_ATTENTION_H

#include <stddef.h>

/* Saved for backward (caller-allocated):
 *   qkvn [N, heads, 3, HW, cph]  normalised q, k, v
 *   norm [N, heads, 3, HW]       their norms
 *   attn [N, heads, HW, HW]      softmax weights
 * Both return 0, or -1 when per-thread scratch cannot be allocated. */
int attention_forward(float *y, float *qkvn, float *norm, float *attn, const float *qkv, int N, int HW, int heads,
                      int cph);
/* dqkv[N, HW, 3*C] += d/dqkv (acc) or = (not acc). */
int attention_backward(float *dqkv, const float *dy, const float *qkv, const float *qkvn, const float *norm,
                       const float *attn, int N, int HW, int heads, int cph, int acc);

#endif
