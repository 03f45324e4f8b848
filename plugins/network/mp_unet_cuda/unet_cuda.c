/* unet_cuda.c: the CUDA EDM2 U-Net: weight preparation, the preconditioned forward pass D(x; sigma) with the
 * uncertainty head, and the backward pass (the CPU's ../mp_unet/unet.c, step for step, on the GPU). */
#include "unet_cuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_ops.h"
#include "conv_cuda.h"
#include "mp_ops_cuda.h"
#include "unet_kernels.h"

/* A kernel launch or an allocation that failed: the function returns -1 (forward) or ends at `done`
 * (backward) with the reason recorded. */
#define K(call) GPU_TRY(&u->gc, call, return -1)
#define ALLOC(ptr, ws, n) GPU_NEED(&u->gc, (ptr) = gws_alloc((ws), (n)), "network workspace", return -1)
#define ALLOC_ACT(ptr, ws, n) GPU_NEED(&u->gc, (ptr) = gws_act((ws), act, (n)), "network workspace", return -1)
#define W_HAT(w) prepared_f32(u, &(w))
/* The prepared weights in the activations' type (the body's products), in the arena's layout. */
#define W_ACT_BASE (u->w_lp ? (const void *)u->w_lp : (const void *)u->w_hat)

_Static_assert((int)UNET_FP32 == (int)ACT_F32 && (int)UNET_BF16 == (int)ACT_BF16 && (int)UNET_FP16 == (int)ACT_F16,
               "the precision key is the ACT_ type");

/* The index of the weight at arena offset `offset` in the graph's table, which lists the weights in arena
 * order (unet_graph.c adds them as it lays the arena out). */
static size_t weight_index(const unet_graph *G, size_t offset) {
    size_t lo = 0, hi = G->nweights;
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (G->weights[mid].ref.offset <= offset) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Weight w (when present) gets the next slot of the bf16/fp16 network's float32 prepared weights. */
static void f32_slot_for(unet_cuda *u, const weight_ref *w) {
    if (!w->present) return;
    u->f32_slot[weight_index(&u->g, w->offset)] = u->f32_floats;
    u->f32_floats += (weight_numel(w) + 63) / 64 * 64;
}

/* u->f32_slot and u->f32_floats (unet_cuda.h); 0 or -1 (out of memory). */
static int f32_slots(unet_cuda *u) {
    const unet_graph *G = &u->g;
    if (!(u->f32_slot = malloc((G->nweights + 1) * sizeof *u->f32_slot))) return -1;
    for (size_t i = 0; i < G->nweights; i++) u->f32_slot[i] = u->gc.act == ACT_F32 ? G->weights[i].ref.offset : (size_t)-1;
    u->f32_floats = G->arena_floats;
    if (u->gc.act == ACT_F32) return 0;
    u->f32_floats = 0;
    const weight_ref *heads[] = {&G->emb_noise, &G->emb_label, &G->out_conv, &G->logvar_linear};
    for (int j = 0; j < 4; j++) f32_slot_for(u, heads[j]);
    for (int m = 0; m < G->nmods; m++) /* the first convolution; each block's embedding */
        f32_slot_for(u, G->mods[m].kind == MOD_CONV ? &G->mods[m].conv : &G->mods[m].blk.emb_linear);
    return 0;
}

/* Weight w prepared in float32 (the float32 layers' weights; every weight in a float32 network). */
static const float *prepared_f32(const unet_cuda *u, const weight_ref *w) {
    return u->w_hat + u->f32_slot[weight_index(&u->g, w->offset)];
}

int unet_cuda_build(unet_cuda *u, const unet_hparams *hp, const edm2_backend_ops *backend, char *err, size_t errlen) {
    memset(u, 0, sizeof *u);
    if (unet_graph_build(&u->g, hp, err, errlen)) return -1;
    u->ops = *backend;
    u->fws.ops = u->bws.ops = u->bpp[0].ops = u->bpp[1].ops = *backend;
    if (gpu_ctx_init(&u->gc, backend, hp->precision)) {
        snprintf(err, errlen, "%s", u->gc.err);
        unet_cuda_free(u);
        return -1;
    }
    u->saved = calloc((size_t)u->g.nmods, sizeof *u->saved);
    u->mod_out = calloc((size_t)u->g.nmods, sizeof *u->mod_out);
    u->dskip = calloc((size_t)u->g.nmods, sizeof *u->dskip);
    if (!u->saved || !u->mod_out || !u->dskip) {
        snprintf(err, errlen, "out of memory building the network");
        unet_cuda_free(u);
        return -1;
    }
    for (size_t i = 0; i < u->g.nweights; i++) {
        const weight_ref *w = &u->g.weights[i].ref;
        if ((size_t)w->O > u->max_O) u->max_O = (size_t)w->O;
        if (weight_numel(w) > u->max_weight) u->max_weight = weight_numel(w);
        u->nunits += (size_t)w->O;
    }
    if (f32_slots(u)) {
        snprintf(err, errlen, "out of memory building the network");
        unet_cuda_free(u);
        return -1;
    }
    u->max_span = u->max_weight; /* dw_hat: the largest weight, or block's span of weights */
    for (int m = 0; m < u->g.nmods; m++) {
        size_t lo, hi;
        if (u->g.mods[m].kind == MOD_CONV) continue;
        gblock_weight_span(&u->g.mods[m].blk, &lo, &hi);
        if (hi > lo && hi - lo > u->max_span) u->max_span = hi - lo;
    }
    return 0;
}

static void dev_free(unet_cuda *u, void *p) {
    if (u->ops.vt && p) u->ops.vt->free(u->ops.b, p);
}
#define DEV_FREE(p) (dev_free(u, (p)), (p) = NULL)

static void scratch_free(unet_cuda *u) {
    DEV_FREE(u->w_hat), DEV_FREE(u->dw_hat), DEV_FREE(u->w_norm), DEV_FREE(u->unit_terms);
    DEV_FREE(u->w_lp), DEV_FREE(u->gc.dw_tmp);
}

void unet_cuda_free(unet_cuda *u) {
    gws_free(&u->fws);
    gws_free(&u->bws);
    gws_free(&u->bpp[0]), gws_free(&u->bpp[1]);
    scratch_free(u);
    DEV_FREE(u->units), DEV_FREE(u->prep);
    gpu_ctx_free(&u->gc);
    unet_graph_free(&u->g);
    free(u->saved), free(u->mod_out), free(u->dskip), free(u->f32_slot);
    memset(u, 0, sizeof *u);
}

void unet_cuda_release_workspaces(unet_cuda *u) {
    gws_release(&u->fws), gws_release(&u->bws);
    gws_release(&u->bpp[0]), gws_release(&u->bpp[1]);
    gpu_release_own(&u->gc);
    u->have_saved = 0;
}

static void *dev_alloc(unet_cuda *u, size_t bytes) {
    void *p = NULL;
    return u->ops.vt->alloc(u->ops.b, bytes, &p) == EDM2_OK ? p : NULL;
}

/* Prepared weights (float32, f32_floats) and their gradient (a module's span), row norms and gain terms, at
 * the first pass; for bf16/fp16 also the prepared weights in that type and one weight's gradient in it. */
static int ensure_scratch(unet_cuda *u) {
    if (u->w_hat) return 0;
    u->w_hat = dev_alloc(u, (u->f32_floats + 1) * sizeof(float));
    u->dw_hat = dev_alloc(u, (u->max_span + 1) * sizeof(float));
    u->w_norm = dev_alloc(u, (u->g.norm_floats + 1) * sizeof(float));
    u->unit_terms = dev_alloc(u, (u->max_O + 1) * sizeof(float));
    int ok = u->w_hat && u->dw_hat && u->w_norm && u->unit_terms;
    if (ok && u->gc.act != ACT_F32) {
        u->w_lp = dev_alloc(u, u->g.arena_floats * act_size(u->gc.act));
        u->gc.dw_tmp = dev_alloc(u, (u->max_weight + 1) * act_size(u->gc.act));
        ok = u->w_lp && u->gc.dw_tmp;
    }
    if (ok) return 0;
    scratch_free(u);
    return gpu_oom(&u->gc, "network: the prepared weights");
}

int unet_cuda_init_params(unet_cuda *u, float *params, uint64_t seed) {
    size_t most = 1;
    for (size_t i = 0; i < u->g.nparams; i++)
        if (u->g.params[i].numel > most) most = u->g.params[i].numel;
    float *host = malloc(most * sizeof *host);
    if (!host) return gpu_fail(&u->gc, "init_params", "out of host memory");
    int rc = u->ops.vt->fill(u->ops.b, params, 0.0f, u->g.arena_floats) == EDM2_OK ? 0 : -1;
    for (size_t i = 0; i < u->g.nparams && !rc; i++) {
        const edm2_param_desc *d = &u->g.params[i];
        unet_init_tensor(&u->g, i, host, seed);
        rc = u->ops.vt->upload(u->ops.b, params + d->offset, host, d->numel * sizeof(float)) == EDM2_OK ? 0 : -1;
    }
    free(host);
    return rc ? gpu_fail(&u->gc, "init_params", "the backend failed to fill or upload the arena") : 0;
}

/* A copy of host[bytes] in new device memory, or NULL (out of memory; host is freed either way). */
static void *upload_table(unet_cuda *u, void *host, size_t bytes) {
    void *d = host ? dev_alloc(u, bytes + 1) : NULL;
    if (d && u->ops.vt->upload(u->ops.b, d, host, bytes) != EDM2_OK) DEV_FREE(d);
    free(host);
    return d;
}

/* The tables of every weight's output units (nunits rows each, in arena order), made once: u->units for the
 * forced normalisation, and in bf16/fp16 u->prep for the weight preparation (act_ops.h: the float32 layers'
 * weights into their float32 slots, the body's into the activations' copy). */
static int make_units(unet_cuda *u) {
    const size_t n = u->nunits;
    const int lp = u->gc.act != ACT_F32;
    mpc_unit *norm = malloc((n + 1) * sizeof *norm);
    act_prep_unit *prep = lp ? malloc((n + 1) * sizeof *prep) : NULL;
    for (size_t i = 0, j = 0; norm && (prep || !lp) && i < u->g.nweights; i++) {
        const weight_ref *w = &u->g.weights[i].ref;
        const int kk = w->k * w->k, F = w->C * kk, f32 = u->f32_slot[i] != (size_t)-1;
        for (int o = 0; o < w->O; o++, j++) {
            norm[j] = (mpc_unit){w->offset + (size_t)o * F, F};
            if (lp)
                prep[j] = (act_prep_unit){w->offset + (size_t)o * F, f32 ? u->f32_slot[i] + (size_t)o * F : (size_t)-1,
                                          w->norm_offset + (size_t)o, u->g.weights[i].gain, w->C, kk, !f32};
        }
    }
    if (lp && !(u->prep = upload_table(u, prep, n * sizeof *prep))) {
        free(norm);
        return gpu_fail(&u->gc, "weight preparation", "out of memory for the table of output units");
    }
    if (!(u->units = upload_table(u, norm, n * sizeof *norm))) {
        DEV_FREE(u->prep);
        return gpu_fail(&u->gc, "forced weight normalisation", "out of memory for the table of output units");
    }
    return 0;
}

/* Every weight's units in one launch (a launch per weight left the GPU idle: a few hundred threads each). */
int unet_cuda_normalize_weights(unet_cuda *u, float *params) {
    if (!u->units && make_units(u)) return -1;
    K(act_forced_weight_norm(u->gc.stream, u->gc.act, params, u->units, u->nunits));
    return 0;
}

static const float *gain_of(const float *arena, long off) { return off < 0 ? NULL : arena + off; }

/* Decoder module m's input cat[N, H, W, cin] = mp_cat(the previous module's output, its skip module's output,
 * concat_balance), from the outputs the last forward left in mod_out, and a = mp_silu(cat) with it (when
 * not NULL: gblock_forward's a_in). */
static int cat_forward(unet_cuda *u, int m, void *cat, void *a, int N) {
    const unet_module *md = &u->g.mods[m], *src = &u->g.mods[md->skip_src];
    K(act_cat_forward(u->gc.stream, u->gc.act, cat, a, u->mod_out[m - 1], md->cin - src->cout, u->mod_out[md->skip_src],
                      src->cout, (size_t)N * md->H * md->W, u->g.hp.concat_balance));
    return 0;
}

int unet_cuda_forward(unet_cuda *u, const edm2_forward_args *a) {
    const unet_graph *G = &u->g;
    const unet_hparams *hp = &G->hp;
    gpu_ctx *g = &u->gc;
    void *st = g->stream;
    const int N = a->N, C = hp->img_channels, R = hp->img_resolution, act = g->act;
    const size_t HW = (size_t)R * R, P = (size_t)N * HW;
    const float *params = a->params;
    gws *ws = &u->fws;
    u->have_saved = 0;
    if (ensure_scratch(u)) return -1;
    if (gws_reset(ws)) return gpu_oom(g, "network workspace");
    /* The prepared weights, once per pass: in float32 a weight at a time (bitwise the CPU's); in bf16/fp16
     * all in one launch, float32 where read so, else in the body's type. */
    for (size_t i = 0; act == ACT_F32 && i < G->nweights; i++) {
        const weight_ref *w = &G->weights[i].ref;
        K(mpc_weight_forward(st, u->w_hat + u->f32_slot[i], u->w_norm + w->norm_offset, params + w->offset,
                             gain_of(params, G->weights[i].gain), w->O, w->C, w->k));
    }
    if (act != ACT_F32) {
        if (!u->units && make_units(u)) return -1;
        K(act_weights_forward(st, act, u->w_hat, u->w_lp, u->w_norm, params, u->prep, u->nunits));
    }
    /* Preconditioning. */
    float *c_skip, *c_out, *c_noise, *x_in0;
    ALLOC(c_skip, ws, (size_t)N);
    ALLOC(c_out, ws, (size_t)N);
    ALLOC(c_noise, ws, (size_t)N);
    ALLOC(x_in0, ws, P * (C + 1));
    K(uk_precondition(st, c_skip, c_out, c_noise, x_in0, a->x, a->sigma, N, C, HW, hp->sigma_data));
    /* Embedding. */
    float *fourier, *e3, *emb, *lab = NULL;
    ALLOC(fourier, ws, (size_t)N * G->cnoise);
    ALLOC(e3, ws, (size_t)N * G->cemb);
    ALLOC(emb, ws, (size_t)N * G->cemb);
    K(mpc_fourier_forward(st, fourier, c_noise, params + G->off_emb_freqs, params + G->off_emb_phases, N, G->cnoise));
    if (gpu_linear_forward(g, e3, fourier, W_HAT(G->emb_noise), (size_t)N, G->cnoise, G->cemb, 0)) return -1;
    if (hp->label_dim) {
        float *e2;
        const size_t nl = (size_t)N * hp->label_dim;
        if (!(lab = gws_zeros(ws, nl))) return gpu_oom(g, "network workspace");
        ALLOC(e2, ws, (size_t)N * G->cemb);
        if (a->labels) K(uk_scale(st, lab, a->labels, sqrtf((float)hp->label_dim), nl));
        if (gpu_linear_forward(g, e2, lab, W_HAT(G->emb_label), (size_t)N, hp->label_dim, G->cemb, 0)) return -1;
        K(mpc_sum_forward(st, e3, e3, e2, hp->label_balance, (size_t)N * G->cemb));
    }
    K(mpc_silu_forward(st, emb, e3, (size_t)N * G->cemb));
    /* U-Net. */
    gblock_ctx ctx = {g, NULL, W_ACT_BASE, emb, N, a->training,
                      a->dropout_rng.seed, a->dropout_rng.stream, a->dropout_rng.offset, ws, &u->bpp[0]};
    const void *x = x_in0;
    for (int m = 0; m < G->nmods; m++) {
        const unet_module *md = &G->mods[m];
        void *out;
        if (md->kind == MOD_CONV) { /* the first convolution (of x_in0), in float32, then the body's type */
            float *o32;
            ALLOC_ACT(out, ws, P * md->cout);
            o32 = out;
            if (act != ACT_F32) ALLOC(o32, ws, P * md->cout);
            if (gpu_conv2d_forward_f32(g, o32, x_in0, W_HAT(md->conv), N, md->H, md->W, md->cin, md->cout, 3)) return -1;
            if (o32 != out) K(act_convert(st, act, out, ACT_F32, o32, P * md->cout));
        } else {
            void *a_in = NULL;
            if (md->skip_src >= 0) { /* x = mp_cat(x, skip) and its MP-SiLU, for this block only (bpp[1]) */
                void *cat;
                const size_t n = (size_t)N * md->H * md->W * md->cin;
                if (gws_reset(&u->bpp[1])) return gpu_oom(g, "network workspace");
                ALLOC_ACT(cat, &u->bpp[1], n);
                ALLOC_ACT(a_in, &u->bpp[1], n);
                if (cat_forward(u, m, cat, a_in, N)) return -1;
                x = cat;
            }
            ctx.emb_w = W_HAT(md->blk.emb_linear);
            if (!(out = gblock_forward(&md->blk, &ctx, x, a_in, a->training ? &u->saved[m] : NULL))) return -1;
        }
        u->mod_out[m] = out;
        x = out;
    }
    /* out_conv in float32, then D = c_skip x + c_out F (back to NCHW). */
    float *F, *lvf, *out_in = (float *)x;
    ALLOC(F, ws, P * C);
    const unet_module *last = &G->mods[G->nmods - 1];
    if (act != ACT_F32) {
        ALLOC(out_in, ws, P * last->cout);
        K(act_convert(st, ACT_F32, out_in, act, x, P * last->cout));
    }
    if (gpu_conv2d_forward_f32(g, F, out_in, W_HAT(G->out_conv), N, R, R, last->cout, C, 3)) return -1;
    K(uk_output(st, a->D, a->x, F, c_skip, c_out, N, C, HW));
    /* Uncertainty head. */
    ALLOC(lvf, ws, (size_t)N * hp->logvar_channels);
    K(mpc_fourier_forward(st, lvf, c_noise, params + G->off_lv_freqs, params + G->off_lv_phases, N, hp->logvar_channels));
    if (a->logvar &&
        gpu_linear_forward(g, a->logvar, lvf, W_HAT(G->logvar_linear), (size_t)N, hp->logvar_channels, 1, 0))
        return -1;
    if (a->training) {
        u->have_saved = 1;
        u->rec = (unet_record){N, a->dropout_rng.seed, a->dropout_rng.stream, a->dropout_rng.offset, x_in0, out_in, c_out,
                               fourier, lab, e3, emb, lvf};
    }
    return ws->failed ? gpu_oom(g, "network workspace") : 0;
}

/* The backward's weight gradients: u->dw_hat holds one span [lo, lo + n) of the arena at a time, cleared
 * before the products add into it (dw_clear), then taken through each weight's normalisation into the
 * parameters' gradient (dw_finish: act_weight_backward, with the weight's gain from the arena table). */
static int dw_clear(unet_cuda *u, size_t n) {
    return u->ops.vt->fill(u->ops.b, u->dw_hat, 0.0f, n) == EDM2_OK
               ? 0
               : gpu_fail(&u->gc, "backward", "the backend failed to clear the weight gradients");
}
static int dw_finish(unet_cuda *u, const float *params, float *grads, const weight_ref *w, size_t lo) {
    const long gain = u->g.weights[weight_index(&u->g, w->offset)].gain;
    K(act_weight_backward(u->gc.stream, u->gc.act, grads + w->offset, gain >= 0 ? grads + gain : NULL,
                          u->dw_hat + (w->offset - lo), params + w->offset, u->w_norm + w->norm_offset,
                          gain_of(params, gain), w->O, w->C, w->k, u->unit_terms));
    return 0;
}

int unet_cuda_backward(unet_cuda *u, const float *params, const float *dD, const float *dlogvar, float *grads) {
    const unet_graph *G = &u->g;
    const unet_hparams *hp = &G->hp;
    gpu_ctx *g = &u->gc;
    void *st = g->stream;
    const unet_record *r = &u->rec;
    const int N = r->N, C = hp->img_channels, R = hp->img_resolution, act = g->act;
    const size_t HW = (size_t)R * R, P = (size_t)N * HW, NE = (size_t)N * G->cemb;
    gws *ws = &u->bws;
    if (ensure_scratch(u)) return -1;
    if (gws_reset(ws)) return gpu_oom(g, "network workspace");
    gblock_ctx ctx = {g, NULL, W_ACT_BASE, r->emb, N, 1,
                      r->drop_seed, r->drop_stream, r->drop_offset, &u->fws, &u->bpp[0]};
    float *demb = gws_zeros(ws, NE), *dF, *d32;
    void *dcur;
    if (!demb) return gpu_oom(g, "network workspace");
    ALLOC(dF, ws, P * C);
    void **dskip = u->dskip;
    memset(dskip, 0, (size_t)G->nmods * sizeof *dskip);
    int rc = -1;
#undef ALLOC
#define ALLOC(ptr, ws, n) GPU_NEED(g, (ptr) = gws_alloc((ws), (n)), "network workspace", goto done)
#undef ALLOC_ACT
#define ALLOC_ACT(ptr, ws, n) GPU_NEED(g, (ptr) = gws_act((ws), act, (n)), "network workspace", goto done)
#define KD(call) GPU_TRY(g, call, goto done)
#define PD(call)                                                                                           \
    do {                                                                                                   \
        if (call) goto done;                                                                               \
    } while (0)
    /* D = c_skip x + c_out F; out_conv in float32, its input gradient into the body's type. */
    KD(uk_output_backward(st, dF, dD, r->c_out, N, C, HW));
    const unet_module *last = &G->mods[G->nmods - 1];
    ALLOC_ACT(dcur, ws, P * last->cout);
    d32 = dcur;
    if (act != ACT_F32) ALLOC(d32, ws, P * last->cout);
    PD(dw_clear(u, weight_numel(&G->out_conv)));
    PD(gpu_conv2d_backward_f32(g, d32, u->dw_hat, dF, r->out_in, W_HAT(G->out_conv), N, R, R, last->cout, C, 3, 0));
    PD(dw_finish(u, params, grads, &G->out_conv, G->out_conv.offset));
    if (d32 != dcur) KD(act_convert(st, act, dcur, ACT_F32, d32, P * last->cout));
    for (int m = G->nmods - 1; m >= 0; m--) {
        const unet_module *md = &G->mods[m];
        const size_t Pm = (size_t)N * md->H * md->W;
        if (m < G->nenc && dskip[m]) KD(uk_accumulate(st, act, dcur, dskip[m], Pm * md->cout));
        if (md->kind == MOD_CONV) { /* the first convolution, in float32 */
            d32 = dcur;
            if (act != ACT_F32) {
                ALLOC(d32, ws, Pm * md->cout);
                KD(act_convert(st, ACT_F32, d32, act, dcur, Pm * md->cout));
            }
            PD(dw_clear(u, weight_numel(&md->conv)));
            PD(gpu_conv2d_backward_f32(g, NULL, u->dw_hat, d32, r->x_in0, W_HAT(md->conv), N, md->H, md->W, md->cin,
                                       md->cout, 3, 0));
            PD(dw_finish(u, params, grads, &md->conv, md->conv.offset));
            continue;
        }
        const size_t Pin = (size_t)N * md->blk.Hin * md->blk.Win;
        /* The block's gradient buffers (and its input gradient) reuse those of module m + 2, long consumed;
         * the skip connection's gradient waits for its encoder block, in the pass-long workspace. */
        gws *mw = &u->bpp[m % 2];
        if (gws_reset(mw)) {
            gpu_oom(g, "network workspace");
            goto done;
        }
        size_t lo, hi;
        gblock_weight_span(&md->blk, &lo, &hi);
        PD(dw_clear(u, hi - lo));
        ctx.emb_w = W_HAT(md->blk.emb_linear);
        gblock_saved sv = u->saved[m];
        if (md->skip_src >= 0) { /* the concatenated input, recomputed as the forward made it (bitwise) */
            void *cat;
            ALLOC_ACT(cat, mw, Pin * md->cin);
            PD(cat_forward(u, m, cat, NULL, N));
            if (sv.x0 == sv.x_in) sv.x0 = cat;
            if (sv.x2 == sv.x_in) sv.x2 = cat;
            sv.x_in = cat;
        }
        const void *da = NULL; /* with a concatenated input: the block's last step, done below with its parts */
        void *din = gblock_backward(&md->blk, &ctx, &sv, dcur, demb, u->dw_hat, lo, mw, md->skip_src >= 0 ? &da : NULL);
        if (!din) goto done;
        const weight_ref *bw[] = {&md->blk.res0, &md->blk.res1, &md->blk.skip, &md->blk.qkv, &md->blk.proj,
                                  &md->blk.emb_linear};
        for (size_t i = 0; i < sizeof bw / sizeof *bw; i++)
            if (bw[i]->present) PD(dw_finish(u, params, grads, bw[i], lo));
        if (md->skip_src >= 0) {
            const unet_module *src = &G->mods[md->skip_src];
            const int cprev = md->cin - src->cout;
            void *dprev;
            ALLOC_ACT(dprev, mw, Pin * cprev);
            ALLOC_ACT(dskip[md->skip_src], ws, Pin * src->cout);
            if (da)
                KD(act_silu_cat_backward(st, act, dprev, dskip[md->skip_src], din, da, sv.x2, cprev, src->cout, Pin,
                                         hp->concat_balance));
            else
                KD(act_cat_backward(st, act, dprev, dskip[md->skip_src], din, cprev, src->cout, Pin, hp->concat_balance, 0));
            din = dprev;
        }
        dcur = din;
    }
    /* Embedding: emb = mp_silu(mp_sum(emb_noise(fourier), emb_label(lab), label_balance)). */
    float *de3, *de1;
    ALLOC(de3, ws, NE);
    de1 = de3;
    KD(mpc_silu_backward(st, de3, demb, r->e3, NE, 0));
    if (hp->label_dim) {
        float *de2;
        ALLOC(de2, ws, NE);
        ALLOC(de1, ws, NE);
        KD(mpc_sum_backward(st, de1, de2, de3, hp->label_balance, NE, 0));
        PD(dw_clear(u, weight_numel(&G->emb_label)));
        PD(gpu_linear_backward(g, NULL, u->dw_hat, de2, r->lab, W_HAT(G->emb_label), (size_t)N, hp->label_dim, G->cemb,
                               0));
        PD(dw_finish(u, params, grads, &G->emb_label, G->emb_label.offset));
    }
    PD(dw_clear(u, weight_numel(&G->emb_noise)));
    PD(gpu_linear_backward(g, NULL, u->dw_hat, de1, r->fourier, W_HAT(G->emb_noise), (size_t)N, G->cnoise, G->cemb, 0));
    PD(dw_finish(u, params, grads, &G->emb_noise, G->emb_noise.offset));
    if (dlogvar) {
        PD(dw_clear(u, weight_numel(&G->logvar_linear)));
        PD(gpu_linear_backward(g, NULL, u->dw_hat, dlogvar, r->lv_fourier, W_HAT(G->logvar_linear), (size_t)N,
                               hp->logvar_channels, 1, 0));
        PD(dw_finish(u, params, grads, &G->logvar_linear, G->logvar_linear.offset));
    }
    rc = ws->failed || u->bpp[0].failed || u->bpp[1].failed ? gpu_oom(g, "network workspace") : 0;
done:
    return rc;
}
