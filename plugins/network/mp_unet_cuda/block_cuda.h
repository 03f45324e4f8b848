/* block_cuda.h: the EDM2 encoder/decoder Block on the GPU (docs/formulas.md §2), block for block the CPU's
 * ../mp_unet/block.h over device memory: resample, skip conv, pixel norm, two 3x3 MP convolutions modulated
 * by the embedding, residual mp_sum, optional cosine attention, clipping. Channels-last x[N, H, W, C]. */
#ifndef EDM2_BLOCK_CUDA_H
#define EDM2_BLOCK_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "block_saved.h"
#include "gpu_ctx.h"
#include "unet_graph.h"
#include "workspace_cuda.h"


/* Shared inputs of a pass over the network. */
typedef struct gblock_ctx {
    gpu_ctx *g;
    const float *params, *w_hat; /* arenas: parameters, prepared weights */
    const float *emb;            /* [N, cemb] */
    int N;
    int training;
    uint64_t drop_seed, drop_stream, drop_offset;
    gws *ws;                     /* where activations go */
} gblock_ctx;

/* Forward: returns the output [N, H, W, cout] (in ctx->ws), or NULL on failure (reason in ctx->g->err).
 * *saved is filled when non-NULL (training). */
float *gblock_forward(const block_def *b, const gblock_ctx *ctx, const float *x_in, block_saved *saved);
/* Backward of a training forward: returns d/dx_in [N, Hin, Win, cin] (in bws), or NULL on failure;
 * demb[N, cemb] +=, dw_hat (w_hat layout) +=. */
float *gblock_backward(const block_def *b, const gblock_ctx *ctx, const block_saved *s, float *dout, float *demb,
                       float *dw_hat, gws *bws);

#endif
