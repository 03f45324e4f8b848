/* unet.c: the CPU EDM2 U-Net: the preconditioned forward pass D(x; sigma) with the uncertainty head, and
 * the backward pass, over the module graph of unet_graph.c. */
#include "unet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "mp_conv.h"
#include "mp_ops.h"

int unet_build(unet *u, const unet_hparams *hp, char *err, size_t errlen) {
    memset(u, 0, sizeof *u);
    if (unet_graph_build(&u->g, hp, err, errlen)) return -1;
    u->saved = calloc((size_t)u->g.nmods, sizeof *u->saved);
    u->mod_in = calloc((size_t)u->g.nmods, sizeof *u->mod_in);
    u->mod_out = calloc((size_t)u->g.nmods, sizeof *u->mod_out);
    if (!u->saved || !u->mod_in || !u->mod_out) goto nomem;
    /* GEMM packing, rearranged-weight and partial-sum scratch: what the largest weight needs. */
    for (size_t i = 0; i < u->g.nweights; i++) {
        const weight_ref *w = &u->g.weights[i].ref;
        conv_scratch_need(w->C, w->O, w->k, &u->pack_floats, &u->wt_floats, &u->part_floats);
    }
    return 0;
nomem:
    snprintf(err, errlen, "out of memory building the network");
    unet_free(u);
    return -1;
}


/* The arena-sized scratch (prepared weights and their gradient) and the GEMM scratch, allocated at the
 * first forward, so that building a network only to check a file against its table costs nothing. */
static int ensure_scratch(unet *u) {
    if (u->w_hat) return 0;
    u->w_hat = malloc(u->g.arena_floats * sizeof(float));
    u->dw_hat = malloc(u->g.arena_floats * sizeof(float));
    u->w_norm = malloc((u->g.norm_floats + 1) * sizeof(float));
    u->part = malloc(u->part_floats * sizeof(float));
    u->pack = aligned_alloc(64, (u->pack_floats * sizeof(float) + 63) / 64 * 64);
    u->wt = malloc((u->wt_floats + 1) * sizeof(float));
    if (!u->w_hat || !u->dw_hat || !u->w_norm || !u->pack || !u->wt || !u->part) {
        free(u->w_hat), free(u->dw_hat), free(u->w_norm), free(u->part), free(u->pack), free(u->wt);
        u->w_hat = u->dw_hat = u->w_norm = u->part = u->pack = u->wt = NULL;
        return -1;
    }
    u->sc.part = u->part;
    u->sc.pack = u->pack;
    u->sc.wt = u->wt;
    return 0;
}

void unet_free(unet *u) {
    unet_graph_free(&u->g);
    free(u->saved);
    free(u->mod_in);
    free(u->mod_out);
    free(u->w_hat);
    free(u->dw_hat);
    free(u->w_norm);
    free(u->pack);
    free(u->wt);
    free(u->part);
    ws_free(&u->fws);
    ws_free(&u->bws);
    memset(u, 0, sizeof *u);
}

/* ---- Forward ------------------------------------------------------------------------------------ */

static float gain_of(const float *params, long off) { return off < 0 ? 1.0f : params[off]; }

int unet_forward(unet *u, const edm2_forward_args *a) {
    const unet_hparams *hp = &u->g.hp;
    const int N = a->N, C = hp->img_channels, R = hp->img_resolution;
    const size_t HW = (size_t)R * R, P = (size_t)N * HW;
    const float *params = a->params;
    workspace *ws = &u->fws;
    u->have_saved = 0;
    if (ensure_scratch(u) || ws_reset(ws)) return -1;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < u->g.nweights; i++) {
        const weight_ref *w = &u->g.weights[i].ref;
        mpconv_weight_forward(u->w_hat + w->offset, u->w_norm + w->norm_offset, params + w->offset,
                              gain_of(params, u->g.weights[i].gain), w->O, w->C, w->k);
    }
    /* Preconditioning (float32, as the reference). */
    float *c_skip = ws_alloc(ws, (size_t)N), *c_out = ws_alloc(ws, (size_t)N), *c_noise = ws_alloc(ws, (size_t)N);
    float *x_in0 = ws_alloc(ws, P * (C + 1));
    if (!c_skip || !c_out || !c_noise || !x_in0) return -1;
    const float sd = hp->sigma_data;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float s = a->sigma[n];
        c_skip[n] = sd * sd / (s * s + sd * sd);
        c_out[n] = s * sd / sqrtf(s * s + sd * sd);
        float c_in = 1.0f / sqrtf(sd * sd + s * s);
        c_noise[n] = logf(s) / 4.0f;
        for (size_t p = 0; p < HW; p++) {
            float *dst = x_in0 + ((size_t)n * HW + p) * (C + 1);
            for (int c = 0; c < C; c++) dst[c] = c_in * a->x[((size_t)n * C + c) * HW + p];
            dst[C] = 1.0f;
        }
    }
    /* Embedding. */
    float *fourier = ws_alloc(ws, (size_t)N * u->g.cnoise), *e3 = ws_alloc(ws, (size_t)N * u->g.cemb);
    float *emb = ws_alloc(ws, (size_t)N * u->g.cemb);
    float *lab = hp->label_dim ? ws_zeros(ws, (size_t)N * hp->label_dim) : NULL;
    if (!fourier || !e3 || !emb || (hp->label_dim && !lab)) return -1;
    mp_fourier_forward(fourier, c_noise, params + u->g.off_emb_freqs, params + u->g.off_emb_phases, N, u->g.cnoise);
    linear_forward(e3, fourier, u->w_hat + u->g.emb_noise.offset, N, u->g.cnoise, u->g.cemb, 0, &u->sc);
    if (hp->label_dim) {
        float *e2 = ws_alloc(ws, (size_t)N * u->g.cemb);
        if (!e2) return -1;
        if (a->labels) {
            const float sl = sqrtf((float)hp->label_dim);
            for (size_t i = 0; i < (size_t)N * hp->label_dim; i++) lab[i] = a->labels[i] * sl;
        }
        linear_forward(e2, lab, u->w_hat + u->g.emb_label.offset, N, hp->label_dim, u->g.cemb, 0, &u->sc);
        mp_sum_forward(e3, e3, e2, hp->label_balance, (size_t)N * u->g.cemb);
    }
    mp_silu_forward(emb, e3, (size_t)N * u->g.cemb);
    /* U-Net. */
    block_ctx ctx = {params, u->w_hat, emb, N, a->training, a->dropout_rng.seed, a->dropout_rng.stream,
                     a->dropout_rng.offset, &u->sc, ws};
    const float *x = x_in0;
    for (int m = 0; m < u->g.nmods; m++) {
        unet_module *md = &u->g.mods[m];
        float *out;
        if (md->kind == MOD_CONV) {
            out = ws_alloc(ws, P * md->cout);
            if (!out) return -1;
            conv2d_forward(out, x, u->w_hat + md->conv.offset, &u->sc, N, md->H, md->W, md->cin, md->cout, 3);
        } else {
            if (md->skip_src >= 0) {
                const unet_module *src = &u->g.mods[md->skip_src];
                int cprev = md->cin - src->cout;
                float *cat = ws_alloc(ws, (size_t)N * md->H * md->W * md->cin);
                if (!cat) return -1;
                mp_cat_forward(cat, x, cprev, u->mod_out[md->skip_src], src->cout, (size_t)N * md->H * md->W,
                               hp->concat_balance);
                x = cat;
            }
            out = block_forward(&md->blk, &ctx, x, a->training ? &u->saved[m] : NULL);
            if (!out) return -1;
        }
        u->mod_in[m] = (float *)x;
        u->mod_out[m] = out;
        x = out;
    }
    /* out_conv, then D = c_skip x + c_out F (back to NCHW). */
    float *F = ws_alloc(ws, P * C);
    if (!F) return -1;
    const unet_module *last = &u->g.mods[u->g.nmods - 1];
    conv2d_forward(F, x, u->w_hat + u->g.out_conv.offset, &u->sc, N, R, R, last->cout, C, 3);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t p = 0; p < HW; p++) {
                size_t i = ((size_t)n * C + c) * HW + p;
                a->D[i] = c_skip[n] * a->x[i] + c_out[n] * F[((size_t)n * HW + p) * C + c];
            }
    /* Uncertainty head. */
    float *lvf = ws_alloc(ws, (size_t)N * hp->logvar_channels);
    if (!lvf) return -1;
    mp_fourier_forward(lvf, c_noise, params + u->g.off_lv_freqs, params + u->g.off_lv_phases, N, hp->logvar_channels);
    if (a->logvar) linear_forward(a->logvar, lvf, u->w_hat + u->g.logvar_linear.offset, N, hp->logvar_channels, 1, 0, &u->sc);
    if (a->training) {
        u->saved_N = N;
        u->have_saved = 1;
        u->drop_seed = a->dropout_rng.seed, u->drop_stream = a->dropout_rng.stream, u->drop_offset = a->dropout_rng.offset;
        u->x_in0 = x_in0, u->c_out = c_out, u->fourier = fourier, u->lab = lab, u->e3 = e3, u->emb = emb;
        u->lv_fourier = lvf;
    }
    return ws->failed ? -1 : 0;
}

/* ---- Backward ----------------------------------------------------------------------------------- */

int unet_backward(unet *u, const float *params, const float *dD, const float *dlogvar, float *grads) {
    const unet_hparams *hp = &u->g.hp;
    const int N = u->saved_N, C = hp->img_channels, R = hp->img_resolution;
    const size_t HW = (size_t)R * R, P = (size_t)N * HW;
    workspace *ws = &u->bws;
    if (ensure_scratch(u) || ws_reset(ws)) return -1;
    memset(u->dw_hat, 0, u->g.arena_floats * sizeof(float));
    /* Activation gradients are fresh buffers whose first contribution overwrites; only demb (a sum over
     * blocks) starts from zero. */
    block_ctx ctx = {params, u->w_hat, u->emb, N, 1, u->drop_seed, u->drop_stream, u->drop_offset,
                     &u->sc, &u->fws};
    float *demb = ws_zeros(ws, (size_t)N * u->g.cemb);
    float *dF = ws_alloc(ws, P * C);
    float **dskip = calloc((size_t)u->g.nenc, sizeof *dskip);
    int rc = -1;
    if (!demb || !dF || !dskip) goto done;
    /* D = c_skip x + c_out F. */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t p = 0; p < HW; p++)
                dF[((size_t)n * HW + p) * C + c] = u->c_out[n] * dD[((size_t)n * C + c) * HW + p];
    const unet_module *last = &u->g.mods[u->g.nmods - 1];
    float *dcur = ws_alloc(ws, P * last->cout);
    if (!dcur) goto done;
    conv2d_backward(dcur, u->dw_hat + u->g.out_conv.offset, dF, u->mod_out[u->g.nmods - 1], u->w_hat + u->g.out_conv.offset,
                    &u->sc, N, R, R, last->cout, C, 3, 0);
    for (int m = u->g.nmods - 1; m >= 0; m--) {
        const unet_module *md = &u->g.mods[m];
        const size_t Pm = (size_t)N * md->H * md->W;
        if (m < u->g.nenc && dskip[m]) accumulate(dcur, dskip[m], Pm * md->cout);
        if (md->kind == MOD_CONV) {
            conv2d_backward(NULL, u->dw_hat + md->conv.offset, dcur, u->mod_in[m], u->w_hat + md->conv.offset, &u->sc,
                            N, md->H, md->W, md->cin, md->cout, 3, 0);
            continue;
        }
        const size_t Pin = (size_t)N * md->blk.Hin * md->blk.Win;
        float *din = block_backward(&md->blk, &ctx, &u->saved[m], dcur, demb, u->dw_hat, ws);
        if (!din) goto done;
        if (md->skip_src >= 0) {
            const unet_module *src = &u->g.mods[md->skip_src];
            int cprev = md->cin - src->cout;
            /* Each encoder output feeds exactly one decoder block (unet_build pops the skip stack). */
            float *dprev = ws_alloc(ws, Pin * cprev);
            dskip[md->skip_src] = ws_alloc(ws, Pin * src->cout);
            if (!dprev || !dskip[md->skip_src]) goto done;
            mp_cat_backward(dprev, dskip[md->skip_src], din, cprev, src->cout, Pin, hp->concat_balance, 0);
            din = dprev;
        }
        dcur = din;
    }
    /* Embedding: emb = mp_silu(mp_sum(emb_noise(fourier), emb_label(lab), label_balance)). */
    float *de3 = ws_alloc(ws, (size_t)N * u->g.cemb), *de1 = de3;
    if (!de3) goto done;
    mp_silu_backward(de3, demb, u->e3, (size_t)N * u->g.cemb, 0);
    if (hp->label_dim) {
        float *de2 = ws_alloc(ws, (size_t)N * u->g.cemb);
        de1 = ws_alloc(ws, (size_t)N * u->g.cemb);
        if (!de2 || !de1) goto done;
        mp_sum_backward(de1, de2, de3, hp->label_balance, (size_t)N * u->g.cemb, 0);
        linear_backward(NULL, u->dw_hat + u->g.emb_label.offset, de2, u->lab, u->w_hat + u->g.emb_label.offset, N,
                        hp->label_dim, u->g.cemb, &u->sc, 0);
    }
    linear_backward(NULL, u->dw_hat + u->g.emb_noise.offset, de1, u->fourier, u->w_hat + u->g.emb_noise.offset, N, u->g.cnoise,
                    u->g.cemb, &u->sc, 0);
    if (dlogvar)
        linear_backward(NULL, u->dw_hat + u->g.logvar_linear.offset, dlogvar, u->lv_fourier,
                        u->w_hat + u->g.logvar_linear.offset, N, hp->logvar_channels, 1, &u->sc, 0);
    /* From prepared-weight gradients to parameter gradients (through the weight normalisation). Weights
     * that share a gain (none do in EDM2: each gain belongs to one weight) would race on it. */
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < u->g.nweights; i++) {
        const unet_weight *w = &u->g.weights[i];
        mpconv_weight_backward(grads + w->ref.offset, w->gain >= 0 ? grads + w->gain : NULL, u->dw_hat + w->ref.offset,
                               params + w->ref.offset, u->w_norm + w->ref.norm_offset, gain_of(params, w->gain),
                               w->ref.O, w->ref.C, w->ref.k);
    }
    rc = ws->failed ? -1 : 0;
done:
    free(dskip);
    return rc;
}
