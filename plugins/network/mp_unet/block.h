/* block.h: the EDM2 encoder/decoder Block (docs/formulas.md §2): resample, skip conv, pixel norm, two 3x3 MP
 * convolutions modulated by the embedding, residual mp_sum, optional cosine attention, clipping.
 * Channels-last activations x[N, H, W, C]. */
#ifndef EDM2_BLOCK_H
#define EDM2_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "block_saved.h"
#include "mp_conv.h"
#include "unet_graph.h"
#include "workspace.h"


/* Shared inputs of a pass over the network. */
typedef struct block_ctx {
    const float *params, *w_hat;          /* arenas: parameters, prepared weights */
    const float *emb;                     /* [N, cemb] */
    int N;
    int training;
    uint64_t drop_seed, drop_stream, drop_offset;
    const conv_scratch *sc;               /* im2col and packing scratch, large enough for every conv */
    workspace *ws;                        /* where activations go */
} block_ctx;

/* Forward. Returns the output [N, H, W, cout] (in ctx->ws), or NULL when out of memory.
 * *saved is filled when ctx->training. */
float *block_forward(const block_def *b, const block_ctx *ctx, const float *x_in, block_saved *saved);
/* Backward of a training forward: returns d/dx_in [N, Hin, Win, cin] (a buffer in bws, as are the
 * temporaries), or NULL when out of memory; demb[N, cemb] +=, dw_hat (w_hat layout) +=. */
float *block_backward(const block_def *b, const block_ctx *ctx, const block_saved *s, float *dout, float *demb,
                      float *dw_hat, workspace *bws);

#endif
