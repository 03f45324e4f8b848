/* block.h: the EDM2 encoder/decoder Block (docs/formulas.md §2): resample, skip conv, pixel norm, two 3x3 MP
 * convolutions modulated by the embedding, residual mp_sum, optional cosine attention, clipping.
 * Channels-last activations x[N, H, W, C]. */
#ifndef EDM2_BLOCK_H
#define EDM2_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "mp_conv.h"
#include "workspace.h"

enum { RESAMPLE_KEEP = 0, RESAMPLE_DOWN = 1, RESAMPLE_UP = 2 };

/* A weight of the arena: offset of w (reference layout [O, C, k, k]) and of its prepared w_hat
 * (channels-last, same offset in the w_hat buffer), and where its row norms are kept. */
typedef struct weight_ref {
    int present;
    int O, C, k;
    size_t offset;      /* into params / grads / w_hat / dw_hat arenas */
    size_t norm_offset; /* into the row-norm buffer */
} weight_ref;

typedef struct block_def {
    int enc;           /* 1: encoder flavour, 0: decoder */
    int resample;      /* RESAMPLE_* */
    int cin, cout, cemb;
    int Hin, Win;      /* input resolution */
    int H, W;          /* output resolution */
    int heads, cph;    /* heads = 0: no attention */
    float res_balance, attn_balance, clip_act, dropout;
    size_t emb_gain;   /* arena offset of the scalar emb_gain */
    weight_ref res0, res1, skip, qkv, proj, emb_linear;
    uint64_t id;       /* distinct per block: selects its dropout random numbers */
} block_def;

/* What a training forward keeps for backward (pointers into the forward workspace). */
typedef struct block_saved {
    const float *x_in; /* [N, Hin, Win, cin] */
    float *x0;         /* after resampling [N, H, W, cin] */
    float *x1;         /* enc: after conv_skip [.., cout] (== x0 when no skip) */
    float *pn_norm;    /* enc: pixel-norm norms [N*H*W] */
    float *x2;         /* residual-branch input [.., enc ? cout : cin] */
    float *a;          /* mp_silu(x2): conv_res0 input */
    float *y0;         /* conv_res0 output [.., cout] */
    float *c;          /* emb_linear(emb) + 1 [N, cout] */
    float *y3;         /* mp_silu(y0 * c) after dropout: conv_res1 input */
    float *x5;         /* after the residual mp_sum [.., cout] */
    float *qkv, *qkvn, *qnorm, *attn, *ya; /* attention */
    float *x6;         /* before clipping (NULL when nothing was clipped; == x5 without attention) */
    float *out;        /* block output [.., cout] */
} block_saved;

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
