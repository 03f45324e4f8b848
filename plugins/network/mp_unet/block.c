/* block.c: the EDM2 Block forward and accumulating backward. */
#include "block.h"

#include <math.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "attention.h"
#include "mp_conv.h"
#include "mp_ops.h"

#define W_HAT(ctx, w) ((ctx)->w_hat + (w).offset)

/* Dropout keeps element i when its uniform draw is >= p; kept elements are scaled by 1/(1-p). Image m's draws
 * come from stream drop_stream + m (edm2_network.h), element j of the image from offset base + j. Linear in y
 * with a fixed mask, so the same call is its backward. y: [N, H, W, C], n = N H W C. */
static void dropout_apply(float *y, size_t n, const block_def *b, const block_ctx *ctx) {
    const float p = b->dropout, keep = 1.0f / (1.0f - p);
    const uint64_t base = ctx->drop_offset + (b->id << 40);
    const size_t per = n / (size_t)ctx->N;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++)
        y[i] = edm2_philox_uniform(ctx->drop_seed, ctx->drop_stream + i / per, base + i % per) < p ? 0.0f : y[i] * keep;
}

float *block_forward(const block_def *b, const block_ctx *ctx, const float *x_in, block_saved *s) {
    workspace *ws = ctx->ws;
    const int N = ctx->N;
    const size_t P = (size_t)N * b->H * b->W, HW = (size_t)b->H * b->W;
    const int keep = s != NULL; /* activations for backward wanted */
    block_saved local;
    if (!s) s = &local;
    memset(s, 0, sizeof *s);
    s->x_in = x_in;

    /* x = resample(x) */
    float *x0 = (float *)x_in;
    if (b->resample == RESAMPLE_DOWN) {
        x0 = ws_alloc(ws, P * b->cin);
        if (!x0) return NULL;
        resample_down_forward(x0, x_in, N, b->Hin, b->Win, b->cin);
    } else if (b->resample == RESAMPLE_UP) {
        x0 = ws_alloc(ws, P * b->cin);
        if (!x0) return NULL;
        resample_up_forward(x0, x_in, N, b->Hin, b->Win, b->cin);
    }
    s->x0 = x0;
    /* enc: x = pixel_norm(conv_skip(x)) */
    float *x2 = x0;
    int c2 = b->cin;
    if (b->enc) {
        float *x1 = x0;
        if (b->skip.present) {
            x1 = ws_alloc(ws, P * b->cout);
            if (!x1) return NULL;
            conv2d_forward(x1, x0, W_HAT(ctx, b->skip), ctx->sc, N, b->H, b->W, b->cin, b->cout, 1);
        }
        s->x1 = x1;
        x2 = ws_alloc(ws, P * b->cout);
        s->pn_norm = ws_alloc(ws, P);
        if (!x2 || !s->pn_norm) return NULL;
        normalize_rows_forward(x2, s->pn_norm, x1, P, b->cout, b->cout, b->cout);
        c2 = b->cout;
    }
    s->x2 = x2;
    /* y = conv_res0(mp_silu(x)) */
    float *a = ws_alloc(ws, P * c2);
    float *y0 = ws_alloc(ws, P * b->cout);
    if (!a || !y0) return NULL;
    mp_silu_forward(a, x2, P * c2);
    conv2d_forward(y0, a, W_HAT(ctx, b->res0), ctx->sc, N, b->H, b->W, c2, b->cout, 3);
    s->a = a;
    s->y0 = y0;
    /* c = emb_linear(emb, gain=emb_gain) + 1;  y = mp_silu(y * c) */
    float *c = ws_alloc(ws, (size_t)N * b->cout);
    float *y3 = ws_alloc(ws, P * b->cout);
    if (!c || !y3) return NULL;
    linear_forward(c, ctx->emb, W_HAT(ctx, b->emb_linear), N, b->cemb, b->cout, 0, ctx->sc);
    add_scalar(c, c, 1.0f, (size_t)N * b->cout);
    modulate_silu_forward(y3, y0, c, N, HW, b->cout);
    s->c = c;
    if (ctx->training && b->dropout > 0) dropout_apply(y3, P * b->cout, b, ctx);
    s->y3 = y3;
    /* y = conv_res1(y) */
    float *y4 = ws_alloc(ws, P * b->cout);
    if (!y4) return NULL;
    conv2d_forward(y4, y3, W_HAT(ctx, b->res1), ctx->sc, N, b->H, b->W, b->cout, b->cout, 3);
    /* dec: x = conv_skip(x);  x = mp_sum(x, y, res_balance) */
    const float *xs = x2;
    if (!b->enc && b->skip.present) {
        float *t = ws_alloc(ws, P * b->cout);
        if (!t) return NULL;
        conv2d_forward(t, x2, W_HAT(ctx, b->skip), ctx->sc, N, b->H, b->W, b->cin, b->cout, 1);
        xs = t;
    }
    /* Without attention the residual sum is clipped at once: x6 = x5. */
    float *out = ws_alloc(ws, P * b->cout);
    if (!out) return NULL;
    s->out = out;
    if (!b->heads) {
        float *x5 = keep ? ws_alloc(ws, P * b->cout) : NULL; /* unclipped, for clip_backward */
        if (keep && !x5) return NULL;
        size_t clipped = mp_sum_clip_forward(out, x5, xs, y4, b->res_balance, b->clip_act, P * b->cout);
        s->x5 = x5;
        s->x6 = clipped ? x5 : NULL;
        return out;
    }
    /* With attention: x6 = mp_sum(x5, proj(attn(qkv(x5))), attn_balance), then clipped. */
    const int C = b->cout;
    float *x5 = ws_alloc(ws, P * C);
    if (!x5) return NULL;
    mp_sum_forward(x5, xs, y4, b->res_balance, P * C);
    s->x5 = x5;
    s->qkv = ws_alloc(ws, P * 3 * C);
    s->qkvn = ws_alloc(ws, P * 3 * C);
    s->qnorm = ws_alloc(ws, P * 3 * b->heads);
    s->attn = ws_alloc(ws, (size_t)N * b->heads * HW * HW);
    s->ya = ws_alloc(ws, P * C);
    float *proj = ws_alloc(ws, P * C), *x6 = keep ? ws_alloc(ws, P * C) : NULL;
    if (!s->qkv || !s->qkvn || !s->qnorm || !s->attn || !s->ya || !proj || (keep && !x6)) return NULL;
    conv2d_forward(s->qkv, x5, W_HAT(ctx, b->qkv), ctx->sc, N, b->H, b->W, C, 3 * C, 1);
    if (attention_forward(s->ya, s->qkvn, s->qnorm, s->attn, s->qkv, N, (int)HW, b->heads, b->cph)) return NULL;
    conv2d_forward(proj, s->ya, W_HAT(ctx, b->proj), ctx->sc, N, b->H, b->W, C, C, 1);
    size_t clipped = mp_sum_clip_forward(out, x6, x5, proj, b->attn_balance, b->clip_act, P * C);
    s->x6 = clipped ? x6 : NULL;
    return out;
}

float *block_backward(const block_def *b, const block_ctx *ctx, const block_saved *s, float *dout, float *demb,
                      float *dw_hat, workspace *bws) {
    const int N = ctx->N;
    const size_t P = (size_t)N * b->H * b->W, HW = (size_t)b->H * b->W;
    const int C = b->cout;
    const conv_scratch *col = ctx->sc;
#define DW(w) (dw_hat + (w).offset)
    /* Each gradient buffer below is fresh: its first contribution overwrites (acc = 0), so none is zeroed. */
    /* clip */
    float *d6 = dout;
    if (s->x6) {
        d6 = ws_alloc(bws, P * C);
        if (!d6) return NULL;
        clip_backward(d6, dout, s->x6, b->clip_act, P * C, 0);
    }
    /* attention: x6 = mp_sum(x5, proj(attn(qkv(x5))), attn_balance) */
    float *d5 = d6;
    if (b->heads) {
        d5 = ws_alloc(bws, P * C);
        float *dproj = ws_alloc(bws, P * C);
        float *dya = ws_alloc(bws, P * C);
        float *dqkv = ws_alloc(bws, P * 3 * C);
        if (!d5 || !dproj || !dya || !dqkv) return NULL;
        mp_sum_backward(d5, dproj, d6, b->attn_balance, P * C, 0);
        conv2d_backward(dya, DW(b->proj), dproj, s->ya, W_HAT(ctx, b->proj), col, N, b->H, b->W, C, C, 1, 0);
        if (attention_backward(dqkv, dya, s->qkv, s->qkvn, s->qnorm, s->attn, N, (int)HW, b->heads, b->cph, 0))
            return NULL;
        conv2d_backward(d5, DW(b->qkv), dqkv, s->x5, W_HAT(ctx, b->qkv), col, N, b->H, b->W, C, 3 * C, 1, 1);
    }
    /* x5 = mp_sum(xs, y4, res_balance) */
    const int c2 = b->enc ? C : b->cin;
    float *dxs = ws_alloc(bws, P * C), *dy4 = ws_alloc(bws, P * C);
    if (!dxs || !dy4) return NULL;
    mp_sum_backward(dxs, dy4, d5, b->res_balance, P * C, 0);
    float *dx2 = dxs; /* the skip path's gradient; the residual branch's is added below */
    if (!b->enc && b->skip.present) {
        dx2 = ws_alloc(bws, P * c2);
        if (!dx2) return NULL;
        conv2d_backward(dx2, DW(b->skip), dxs, s->x2, W_HAT(ctx, b->skip), col, N, b->H, b->W, b->cin, C, 1, 0);
    }
    /* y4 = conv_res1(y3) */
    float *dy3 = ws_alloc(bws, P * C);
    if (!dy3) return NULL;
    conv2d_backward(dy3, DW(b->res1), dy4, s->y3, W_HAT(ctx, b->res1), col, N, b->H, b->W, C, C, 3, 0);
    /* y3 = dropout(mp_silu(y0 * c)), c = emb_linear(emb) + 1 */
    if (ctx->training && b->dropout > 0) dropout_apply(dy3, P * C, b, ctx); /* the same mask and scale */
    float *dy0 = ws_alloc(bws, P * C), *dc = ws_alloc(bws, (size_t)N * C);
    if (!dy0 || !dc) return NULL;
    modulate_silu_backward(dy0, dc, dy3, s->y0, s->c, N, HW, C, 0);
    linear_backward(demb, DW(b->emb_linear), dc, ctx->emb, W_HAT(ctx, b->emb_linear), N, b->cemb, C, col, 1);
    /* y0 = conv_res0(mp_silu(x2)) */
    float *da = ws_alloc(bws, P * c2);
    if (!da) return NULL;
    conv2d_backward(da, DW(b->res0), dy0, s->a, W_HAT(ctx, b->res0), col, N, b->H, b->W, c2, C, 3, 0);
    mp_silu_backward(dx2, da, s->x2, P * c2, 1);
    /* enc: x2 = pixel_norm(conv_skip(x0)) */
    float *dx0 = dx2;
    if (b->enc) {
        float *dx1 = ws_alloc(bws, P * C);
        if (!dx1) return NULL;
        normalize_rows_backward(dx1, dx2, s->x1, s->pn_norm, P, C, C, C, 0);
        dx0 = dx1;
        if (b->skip.present) {
            dx0 = ws_alloc(bws, P * b->cin);
            if (!dx0) return NULL;
            conv2d_backward(dx0, DW(b->skip), dx1, s->x0, W_HAT(ctx, b->skip), col, N, b->H, b->W, b->cin, C, 1, 0);
        }
    }
    /* resample */
    if (b->resample == RESAMPLE_KEEP) return dx0;
    float *dx_in = ws_alloc(bws, (size_t)N * b->Hin * b->Win * b->cin);
    if (!dx_in) return NULL;
    if (b->resample == RESAMPLE_DOWN) resample_down_backward(dx_in, dx0, N, b->Hin, b->Win, b->cin, 0);
    else resample_up_backward(dx_in, dx0, N, b->Hin, b->Win, b->cin, 0);
#undef DW
    return dx_in;
}
