/* block_cuda.c: the EDM2 Block forward and accumulating backward on the GPU (the CPU's block.c, step for
 * step, with the MP layers at the network's precision, act_ops.h, and the products of conv_cuda.h). */
#include "block_cuda.h"

#include <string.h>

#include "act_ops.h"
#include "attention_cuda.h"
#include "conv_cuda.h"
#include "conv_fused.h"
#include "unet_kernels.h"

/* The prepared weight w in the activations' type (its arena offset in elements). */
#define W_ACT(ctx, w) ((const char *)(ctx)->w_act + (w).offset * act_size((ctx)->g->act))
/* A kernel launch, a product or an allocation that failed: the block returns NULL, the reason recorded. */
#define K(call) GPU_TRY(g, call, return NULL)
#define P_(call)                                                                                           \
    do {                                                                                                   \
        if (call) return NULL;                                                                             \
    } while (0)
#define ALLOC(ptr, ws, n) GPU_NEED(g, (ptr) = gws_alloc((ws), (n)), "block workspace", return NULL)
#define ALLOC_ACT(ptr, ws, n) GPU_NEED(g, (ptr) = gws_act((ws), act, (n)), "block workspace", return NULL)

static int dropout(const block_def *b, const gblock_ctx *ctx, void *y, size_t n) {
    return uk_dropout(ctx->g->stream, ctx->g->act, y, n, n / (size_t)ctx->N, b->dropout, ctx->drop_seed, ctx->drop_stream,
                      ctx->drop_offset + (b->id << 40));
}

void *gblock_forward(const block_def *b, const gblock_ctx *ctx, const void *x_in, const void *a_in, gblock_saved *s) {
    gpu_ctx *g = ctx->g;
    /* kw: what backward needs (kept when training, else temporary); tw: temporaries; the output: ctx->ws. */
    const int saving = s != NULL; /* a training forward: what backward needs is kept */
    gws *kw = saving ? ctx->ws : ctx->tmp, *tw = ctx->tmp;
    void *st = g->stream;
    const int N = ctx->N, C = b->cout, act = g->act;
    const size_t P = (size_t)N * b->H * b->W, HW = (size_t)b->H * b->W;
    if (gws_reset(tw)) {
        gpu_oom(g, "block workspace");
        return NULL;
    }
    gblock_saved local;
    if (!s) s = &local;
    memset(s, 0, sizeof *s);
    s->x_in = x_in;
    /* x = resample(x) */
    void *x0 = (void *)x_in;
    if (b->resample != RESAMPLE_KEEP) {
        ALLOC_ACT(x0, kw, P * b->cin);
        if (b->resample == RESAMPLE_DOWN) K(act_resample_down_forward(st, act, x0, x_in, N, b->Hin, b->Win, b->cin));
        else K(act_resample_up_forward(st, act, x0, x_in, N, b->Hin, b->Win, b->cin));
    }
    s->x0 = x0;
    /* enc: x = pixel_norm(conv_skip(x));  then a = mp_silu(x) (with the pixel norm, in one pass). a and y3,
     * the 3x3 convolutions' inputs, are temporaries: the backward recomputes them. */
    void *x2 = x0, *a, *y3;
    int c2 = b->cin;
    if (b->enc) {
        void *x1 = x0;
        if (b->skip.present) {
            ALLOC_ACT(x1, kw, P * C);
            P_(gpu_conv2d_forward(g, x1, x0, W_ACT(ctx, b->skip), N, b->H, b->W, b->cin, C, 1));
        }
        s->x1 = x1;
        c2 = C;
        ALLOC_ACT(x2, kw, P * C);
        ALLOC(s->pn_norm, kw, P);
        ALLOC_ACT(a, tw, P * c2);
        K(act_normalize_silu_forward(st, act, x2, a, s->pn_norm, x1, P, C));
    } else if (a_in && x2 == x_in) {
        a = (void *)a_in;
    } else {
        ALLOC_ACT(a, tw, P * c2);
        K(act_silu_forward(st, act, a, x2, P * c2));
    }
    s->x2 = x2;
    /* c = emb_linear(emb, gain=emb_gain) + 1 (float32) */
    ALLOC(s->c, kw, (size_t)N * C);
    P_(gpu_linear_forward(g, s->c, ctx->emb, ctx->emb_w, (size_t)N, b->cemb, C, 0));
    K(uk_add_scalar(st, s->c, s->c, 1.0f, (size_t)N * C));
    /* y = mp_silu(conv_res0(a) * c), dropout. An evaluation may run each convolution with the layer after it
     * as one cuDNN graph (conv_fused.h; 1: not fused here, the two apart). */
    const int may_fuse = !saving && !(ctx->training && b->dropout > 0);
    conv_epilogue e = {CG_EPI_MOD_SILU, s->c, NULL, 0.0f, 0.0f};
    int apart = 1;
    ALLOC_ACT(y3, tw, P * C);
    if (may_fuse && (apart = conv_fused_forward(g, y3, a, W_ACT(ctx, b->res0), N, b->H, b->W, c2, C, &e)) < 0) return NULL;
    if (apart) {
        ALLOC_ACT(s->y0, kw, P * C);
        P_(conv_epilogue_apart(g, y3, s->y0, NULL, a, W_ACT(ctx, b->res0), N, b->H, b->W, c2, C, &e));
    }
    if (ctx->training && b->dropout > 0) K(dropout(b, ctx, y3, P * C));
    /* dec: x = conv_skip(x) */
    const void *xs = x2;
    if (!b->enc && b->skip.present) {
        void *t;
        ALLOC_ACT(t, tw, P * C);
        P_(gpu_conv2d_forward(g, t, x2, W_ACT(ctx, b->skip), N, b->H, b->W, b->cin, C, 1));
        xs = t;
    }
    void *out;
    ALLOC_ACT(out, ctx->ws, P * C);
    /* The clip's mask is kept for its gradient, always: the GPU does not wait to learn whether anything was
     * clipped; where nothing was, the mask passes dy unchanged. */
    if (saving)
        GPU_NEED(g, s->keep = (unsigned char *)gws_alloc(kw, ACT_KEEP_FLOATS(P * C)), "block workspace", return NULL);
    /* x = mp_sum(x, conv_res1(y), res_balance), clipped where no attention follows: x5, or out */
    if (b->heads) ALLOC_ACT(s->x5, kw, P * C);
    void *x5 = b->heads ? s->x5 : out, *y4;
    e = (conv_epilogue){CG_EPI_SUM, NULL, xs, b->res_balance, b->heads ? 0.0f : b->clip_act};
    if (may_fuse && (apart = conv_fused_forward(g, x5, y3, W_ACT(ctx, b->res1), N, b->H, b->W, C, C, &e)) < 0) return NULL;
    if (apart) {
        ALLOC_ACT(y4, tw, P * C);
        P_(conv_epilogue_apart(g, x5, y4, s->keep, y3, W_ACT(ctx, b->res1), N, b->H, b->W, C, C, &e));
    }
    if (!b->heads) return out;
    /* With attention: out = clip(mp_sum(x5, proj(attn(qkv(x5))), attn_balance)). */
    void *proj;
    ALLOC_ACT(s->qkv, kw, P * 3 * C);
    ALLOC_ACT(s->qkvn, kw, P * 3 * C);
    ALLOC(s->qnorm, kw, P * 3 * b->heads);
    ALLOC_ACT(s->attn, kw, (size_t)N * b->heads * HW * HW);
    ALLOC_ACT(s->ya, kw, P * C);
    ALLOC_ACT(proj, tw, P * C);
    void *tmp = NULL; /* bf16/fp16: the heads-major attention output */
    if (act != ACT_F32) ALLOC_ACT(tmp, tw, P * C);
    P_(gpu_conv2d_forward(g, s->qkv, s->x5, W_ACT(ctx, b->qkv), N, b->H, b->W, C, 3 * C, 1));
    P_(gpu_attention_forward(g, s->ya, s->qkvn, s->qnorm, s->attn, s->qkv, N, (int)HW, b->heads, b->cph, tmp));
    P_(gpu_conv2d_forward(g, proj, s->ya, W_ACT(ctx, b->proj), N, b->H, b->W, C, C, 1));
    K(act_sum_clip_forward(st, act, out, s->keep, s->x5, proj, b->attn_balance, b->clip_act, P * C));
    return out;
}

void gblock_weight_span(const block_def *b, size_t *lo, size_t *hi) {
    const weight_ref *ws[] = {&b->res0, &b->res1, &b->skip, &b->qkv, &b->proj, &b->emb_linear};
    *lo = (size_t)-1, *hi = 0;
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) {
        if (!ws[i]->present) continue;
        const size_t end = ws[i]->offset + weight_numel(ws[i]);
        if (ws[i]->offset < *lo) *lo = ws[i]->offset;
        if (end > *hi) *hi = end;
    }
}

void *gblock_backward(const block_def *b, const gblock_ctx *ctx, const gblock_saved *s, void *dout, float *demb,
                      float *dw_hat, size_t dw_lo, gws *bws, const void **da_left) {
    gpu_ctx *g = ctx->g;
    void *st = g->stream;
    const int N = ctx->N, C = b->cout, act = g->act;
    const size_t P = (size_t)N * b->H * b->W, HW = (size_t)b->H * b->W;
#define DW(w) (dw_hat + ((w).offset - dw_lo))
    /* Four buffers serve the whole block, each reused once its contents are consumed (the backward's memory
     * is a few of them per module, docs/cuda-network.md): b1 the skip path's gradient dxs; b2 dy4, then dy0,
     * then (enc) dx1; b3 the attention's dproj, then y3 and a (recomputed); b4 the attention's dya, then dy3,
     * then da. Each first contribution overwrites (acc = 0). The clip's gradient goes straight into the
     * gradients of the sum before it (act_sum_clip_backward). */
    const int c2 = b->enc ? C : b->cin;
    const size_t wide = P * (C > c2 ? C : c2);
    void *b1, *b2, *b3, *b4;
    float *dc;
    ALLOC_ACT(b1, bws, P * C);
    ALLOC_ACT(b2, bws, P * C);
    ALLOC_ACT(b3, bws, wide);
    ALLOC_ACT(b4, bws, wide);
    void *dxs = b1, *dy4 = b2;
    /* attention: out = clip(mp_sum(x5, proj(attn(qkv(x5))), attn_balance)) */
    if (b->heads) {
        void *d5, *dproj = b3, *dya = b4, *dqkv, *dS, *dqkvn, *tmp = NULL;
        ALLOC_ACT(d5, bws, P * C);
        ALLOC_ACT(dqkv, bws, P * 3 * C);
        ALLOC_ACT(dS, bws, (size_t)N * b->heads * HW * HW);
        ALLOC_ACT(dqkvn, bws, P * 3 * C);
        if (act != ACT_F32) ALLOC_ACT(tmp, bws, P * C);
        K(act_sum_clip_backward(st, act, d5, dproj, dout, s->keep, b->attn_balance, P * C, 0));
        P_(gpu_conv2d_backward(g, dya, DW(b->proj), dproj, s->ya, W_ACT(ctx, b->proj), N, b->H, b->W, C, C, 1, 0));
        P_(gpu_attention_backward(g, dqkv, dya, s->qkv, s->qkvn, s->qnorm, s->attn, N, (int)HW, b->heads, b->cph, 0, dS,
                                  dqkvn, tmp));
        P_(gpu_conv2d_backward(g, d5, DW(b->qkv), dqkv, s->x5, W_ACT(ctx, b->qkv), N, b->H, b->W, C, 3 * C, 1, 1));
        /* x5 = mp_sum(xs, y4, res_balance) */
        K(act_sum_backward(st, act, dxs, dy4, d5, b->res_balance, P * C, 0));
    } else { /* out = clip(mp_sum(xs, y4, res_balance)) */
        K(act_sum_clip_backward(st, act, dxs, dy4, dout, s->keep, b->res_balance, P * C, 0));
    }
    void *dx2 = dxs; /* the skip path's gradient; the residual branch's is added below */
    if (!b->enc && b->skip.present) {
        ALLOC_ACT(dx2, bws, P * c2);
        P_(gpu_conv2d_backward(g, dx2, DW(b->skip), dxs, s->x2, W_ACT(ctx, b->skip), N, b->H, b->W, b->cin, C, 1, 0));
    }
    /* y4 = conv_res1(y3), y3 recomputed as the forward made it (the same kernels: bitwise) */
    void *y3 = b3, *dy3 = b4;
    K(act_modulate_silu_forward(st, act, y3, s->y0, s->c, N, HW, C));
    if (ctx->training && b->dropout > 0) K(dropout(b, ctx, y3, P * C));
    P_(gpu_conv2d_backward(g, dy3, DW(b->res1), dy4, y3, W_ACT(ctx, b->res1), N, b->H, b->W, C, C, 3, 0));
    /* y3 = dropout(mp_silu(y0 * c)), c = emb_linear(emb) + 1 */
    if (ctx->training && b->dropout > 0) K(dropout(b, ctx, dy3, P * C)); /* the same mask and scale */
    void *dy0 = b2;
    float *part = NULL; /* bf16/fp16: dc's per-tile sums */
    ALLOC(dc, bws, (size_t)N * C);
    if (act != ACT_F32) ALLOC(part, bws, (size_t)N * act_dc_chunks(HW, C) * C);
    K(act_modulate_silu_backward(st, act, dy0, dc, dy3, s->y0, s->c, N, HW, C, 0, part));
    P_(gpu_linear_backward(g, demb, DW(b->emb_linear), dc, ctx->emb, ctx->emb_w, (size_t)N, b->cemb, C, 1));
    /* y0 = conv_res0(a), a = mp_silu(x2) recomputed likewise */
    void *a = b3, *da = b4;
    K(act_silu_forward(st, act, a, s->x2, P * c2));
    P_(gpu_conv2d_backward(g, da, DW(b->res0), dy0, a, W_ACT(ctx, b->res0), N, b->H, b->W, c2, C, 3, 0));
    /* dec: added to the skip path's gradient (or left to the caller);  enc: x2 = pixel_norm(conv_skip(x0)),
     * both gradients at once */
    void *dx0 = dx2;
    const int leave = da_left && !b->enc && b->resample == RESAMPLE_KEEP;
    if (da_left) *da_left = leave ? da : NULL;
    if (leave) return dx2;
    if (!b->enc) {
        K(act_silu_backward(st, act, dx2, da, s->x2, P * c2, 1));
    } else {
        void *dx1 = b2;
        K(act_silu_normalize_backward(st, act, dx1, dx2, da, s->x2, s->x1, s->pn_norm, P, C));
        dx0 = dx1;
        if (b->skip.present) {
            if (P * b->cin <= wide) dx0 = b3;
            else ALLOC_ACT(dx0, bws, P * b->cin);
            P_(gpu_conv2d_backward(g, dx0, DW(b->skip), dx1, s->x0, W_ACT(ctx, b->skip), N, b->H, b->W, b->cin, C, 1, 0));
        }
    }
    /* resample */
    if (b->resample == RESAMPLE_KEEP) return dx0;
    void *dx_in;
    ALLOC_ACT(dx_in, bws, (size_t)N * b->Hin * b->Win * b->cin);
    if (b->resample == RESAMPLE_DOWN) K(act_resample_down_backward(st, act, dx_in, dx0, N, b->Hin, b->Win, b->cin, 0));
    else K(act_resample_up_backward(st, act, dx_in, dx0, N, b->Hin, b->Win, b->cin, 0));
#undef DW
    return dx_in;
}
