/* block_cuda.h: the EDM2 encoder/decoder Block on the GPU (docs/formulas.md §2), block for block the CPU's
 * ../mp_unet/block.h over device memory: resample, skip conv, pixel norm, two 3x3 MP convolutions modulated
 * by the embedding, residual mp_sum, optional cosine attention, clipping. Channels-last x[N, H, W, C], in
 * the network's precision (act_ops.h). */
#ifndef EDM2_BLOCK_CUDA_H
#define EDM2_BLOCK_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "gpu_ctx.h"
#include "unet_graph.h"
#include "workspace_cuda.h"


/* What a training forward of a Block keeps for its backward (../mp_unet/block_saved.h's fields, in device
 * memory): activations in the network's type (void *), norms and the modulation float32. The two MP-SiLU
 * outputs that feed the 3x3 convolutions (mp_silu(x2) and dropout(mp_silu(y0 * c))) are not kept: the
 * backward recomputes them, bitwise, from x2 and from y0 and c; of the unclipped output only the clip's
 * bit mask is kept (docs/cuda-network.md, Memory). */
typedef struct gblock_saved {
    const void *x_in;  /* [N, Hin, Win, cin] */
    void *x0;          /* after resampling [N, H, W, cin] */
    void *x1;          /* enc: after conv_skip [.., cout] (== x0 when no skip) */
    float *pn_norm;    /* enc: pixel-norm norms [N*H*W] */
    void *x2;          /* residual-branch input [.., enc ? cout : cin] */
    void *y0;          /* conv_res0 output [.., cout] */
    float *c;          /* emb_linear(emb) + 1 [N, cout] */
    void *x5;          /* attention: after the residual mp_sum [.., cout] */
    void *qkv, *qkvn, *attn, *ya; /* attention (attention_cuda.h) */
    float *qnorm;
    unsigned char *keep; /* where the block's output was not clipped: act_sum_clip_forward's bits, always kept
                          * (the GPU does not wait to learn whether anything was clipped) */
} gblock_saved;

/* Shared inputs of a pass over the network. */
typedef struct gblock_ctx {
    gpu_ctx *g;
    const float *emb_w;          /* this block's emb_linear, prepared, float32 (set per block) */
    const void *w_act;           /* the prepared weights in the activations' type, arena layout */
    const float *emb;            /* [N, cemb] */
    int N;
    int training;
    uint64_t drop_seed, drop_stream, drop_offset;
    gws *ws;                     /* where the block's output (and, training, what backward needs) goes */
    gws *tmp;                    /* the block's temporaries (everything else): reset at each block */
} gblock_ctx;

/* Forward: returns the output [N, H, W, cout] (in ctx->ws), or NULL on failure (reason in ctx->g->err).
 * *saved is filled when non-NULL (training), its tensors kept in ctx->ws; without it they are temporaries.
 * x_in must not be in ctx->tmp. a_in: mp_silu(x_in), when the caller made it with x_in (a decoder block
 * without resampling reads it as its residual branch's first activation), else NULL; not in ctx->tmp. */
void *gblock_forward(const block_def *b, const gblock_ctx *ctx, const void *x_in, const void *a_in, gblock_saved *saved);
/* Backward of a training forward: returns d/dx_in [N, Hin, Win, cin] (in bws), or NULL on failure;
 * demb[N, cemb] +=; the gradient of prepared weight w (float32, w_hat layout) += at dw_hat + w.offset - dw_lo
 * (the block's span of the arena from dw_lo, gblock_weight_span). With da_left (a decoder block whose input
 * the caller takes apart, act_silu_cat_backward) and a decoder block without resampling, the last step is
 * left to the caller: the return value lacks mp_silu's gradient of *da_left (in bws) at s->x2; otherwise
 * *da_left = NULL and the return value is whole. */
void *gblock_backward(const block_def *b, const gblock_ctx *ctx, const gblock_saved *s, void *dout, float *demb,
                      float *dw_hat, size_t dw_lo, gws *bws, const void **da_left);
/* The arena span [*lo, *hi) of the block's weights (the arena keeps a block's parameters together). */
void gblock_weight_span(const block_def *b, size_t *lo, size_t *hi);

#endif
