/* unet.c: the EDM2 U-Net graph (reference module names and order), its parameter arena, the
 * preconditioned forward pass D(x; sigma) with the uncertainty head, and the backward pass. */
#include "unet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "gemm.h"
#include "mp_conv.h"
#include "mp_ops.h"

#define ALIGN_FLOATS 64
#define TWO_PI 6.28318530717958647692

/* ---- Building the arena table ---------------------------------------------------------------- */

static size_t add_param(unet *u, const char *name, int ndim, const int64_t *shape, uint32_t flags) {
    if (u->nparams == u->cap_params) {
        size_t cap = u->cap_params ? 2 * u->cap_params : 128;
        edm2_param_desc *p = realloc(u->params, cap * sizeof *p);
        if (!p) return (size_t)-1;
        u->params = p;
        u->cap_params = cap;
    }
    edm2_param_desc *d = &u->params[u->nparams++];
    memset(d, 0, sizeof *d);
    d->name = strdup(name);
    d->ndim = (uint32_t)ndim;
    d->numel = 1;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i], d->numel *= (size_t)shape[i];
    d->offset = u->arena_floats;
    d->flags = flags;
    u->arena_floats += (d->numel + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    return d->offset;
}

/* An MPConv weight [O, C, k, k] (k = 0: fully connected [O, C]). gain: arena offset or -1. */
static weight_ref add_weight(unet *u, const char *name, int O, int C, int k, long gain) {
    weight_ref w = {1, O, C, k ? k : 1, 0, u->norm_floats};
    int64_t shape[4] = {O, C, k, k};
    w.offset = add_param(u, name, k ? 4 : 2, shape, EDM2_PARAM_TRAINED | EDM2_PARAM_WEIGHT_NORMED);
    u->norm_floats += (size_t)O;
    unet_weight *ws = realloc(u->weights, (u->nweights + 1) * sizeof *ws);
    if (ws) {
        u->weights = ws;
        ws[u->nweights++] = (unet_weight){w, gain};
    }
    return w;
}

static size_t add_scalar_param(unet *u, const char *name) { return add_param(u, name, 0, NULL, EDM2_PARAM_TRAINED); }

static size_t add_buffer(unet *u, const char *name, int n) {
    int64_t shape[1] = {n};
    return add_param(u, name, 1, shape, 0);
}

static int has_attn(const unet_hparams *hp, int res) {
    for (int i = 0; i < hp->n_attn; i++)
        if (hp->attn_resolutions[i] == res) return 1;
    return 0;
}

static unet_module *new_module(unet *u) {
    unet_module *m = realloc(u->mods, (size_t)(u->nmods + 1) * sizeof *m);
    if (!m) return NULL;
    u->mods = m;
    memset(&m[u->nmods], 0, sizeof *m);
    m[u->nmods].skip_src = -1;
    return &m[u->nmods++];
}

/* Registers Block `prefix` with its parameters in the reference's order. */
static unet_module *add_block(unet *u, const char *prefix, int enc, int resample, int cin, int cout, int attention,
                              int Hin) {
    unet_module *m = new_module(u);
    if (!m) return NULL;
    block_def *b = &m->blk;
    const unet_hparams *hp = &u->hp;
    char name[160];
    m->kind = MOD_BLOCK;
    m->dec = !enc;
    b->enc = enc;
    b->resample = resample;
    b->cin = cin, b->cout = cout, b->cemb = u->cemb;
    b->Hin = b->Win = Hin;
    b->H = b->W = resample == RESAMPLE_DOWN ? Hin / 2 : resample == RESAMPLE_UP ? Hin * 2 : Hin;
    b->heads = attention ? cout / hp->channels_per_head : 0;
    b->cph = hp->channels_per_head;
    b->res_balance = hp->res_balance, b->attn_balance = hp->attn_balance;
    b->clip_act = hp->clip_act, b->dropout = hp->dropout;
    b->id = (uint64_t)(u->nmods - 1);
    snprintf(name, sizeof name, "%s.emb_gain", prefix);
    b->emb_gain = add_scalar_param(u, name);
    snprintf(name, sizeof name, "%s.conv_res0.weight", prefix);
    b->res0 = add_weight(u, name, cout, enc ? cout : cin, 3, -1);
    snprintf(name, sizeof name, "%s.emb_linear.weight", prefix);
    b->emb_linear = add_weight(u, name, cout, u->cemb, 0, (long)b->emb_gain);
    snprintf(name, sizeof name, "%s.conv_res1.weight", prefix);
    b->res1 = add_weight(u, name, cout, cout, 3, -1);
    if (cin != cout) {
        snprintf(name, sizeof name, "%s.conv_skip.weight", prefix);
        b->skip = add_weight(u, name, cout, cin, 1, -1);
    }
    if (b->heads) {
        snprintf(name, sizeof name, "%s.attn_qkv.weight", prefix);
        b->qkv = add_weight(u, name, cout * 3, cout, 1, -1);
        snprintf(name, sizeof name, "%s.attn_proj.weight", prefix);
        b->proj = add_weight(u, name, cout, cout, 1, -1);
    }
    m->H = b->H, m->W = b->W, m->cin = cin, m->cout = cout;
    return m;
}

static double conv_gmacs(int H, int W, int O, int C, int k) { return (double)H * W * O * C * k * k / 1e9; }

static double block_gmacs(const block_def *b) {
    double g = conv_gmacs(b->H, b->W, b->cout, b->enc ? b->cout : b->cin, 3) + conv_gmacs(b->H, b->W, b->cout, b->cout, 3);
    if (b->skip.present) g += conv_gmacs(b->H, b->W, b->cout, b->cin, 1);
    if (b->heads) {
        double HW = (double)b->H * b->W;
        g += conv_gmacs(b->H, b->W, 4 * b->cout, b->cout, 1) + 2 * HW * HW * b->cout / 1e9;
    }
    return g + (double)b->cout * b->cemb / 1e9;
}

int unet_build(unet *u, const unet_hparams *hp, char *err, size_t errlen) {
    memset(u, 0, sizeof *u);
    u->hp = *hp;
    int cblock[UNET_MAX_LEVELS], cmax = 0;
    for (int l = 0; l < hp->levels; l++) {
        cblock[l] = hp->model_channels * hp->channel_mult[l];
        if (cblock[l] > cmax) cmax = cblock[l];
    }
    u->cnoise = hp->channel_mult_noise ? hp->model_channels * hp->channel_mult_noise : cblock[0];
    u->cemb = hp->channel_mult_emb ? hp->model_channels * hp->channel_mult_emb : cmax;
    char name[160];
    u->off_out_gain = add_scalar_param(u, "unet.out_gain");
    u->off_emb_freqs = add_buffer(u, "unet.emb_fourier.freqs", u->cnoise);
    u->off_emb_phases = add_buffer(u, "unet.emb_fourier.phases", u->cnoise);
    u->emb_noise = add_weight(u, "unet.emb_noise.weight", u->cemb, u->cnoise, 0, -1);
    if (hp->label_dim) u->emb_label = add_weight(u, "unet.emb_label.weight", u->cemb, hp->label_dim, 0, -1);
    /* Encoder. */
    int cout = hp->img_channels + 1;
    for (int level = 0; level < hp->levels; level++) {
        int res = hp->img_resolution >> level;
        if (level == 0) {
            unet_module *m = new_module(u);
            if (!m) goto nomem;
            m->kind = MOD_CONV;
            m->H = m->W = res;
            m->cin = cout;
            m->cout = cblock[0];
            snprintf(name, sizeof name, "unet.enc.%dx%d_conv.weight", res, res);
            m->conv = add_weight(u, name, cblock[0], cout, 3, -1);
            u->gflops += 2 * conv_gmacs(res, res, cblock[0], cout, 3);
            cout = cblock[0];
        } else {
            snprintf(name, sizeof name, "unet.enc.%dx%d_down", res, res);
            unet_module *m = add_block(u, name, 1, RESAMPLE_DOWN, cout, cout, 0, res * 2);
            if (!m) goto nomem;
            u->gflops += 2 * block_gmacs(&m->blk);
        }
        for (int i = 0; i < hp->num_blocks; i++) {
            snprintf(name, sizeof name, "unet.enc.%dx%d_block%d", res, res, i);
            unet_module *m = add_block(u, name, 1, RESAMPLE_KEEP, cout, cblock[level], has_attn(hp, res), res);
            if (!m) goto nomem;
            u->gflops += 2 * block_gmacs(&m->blk);
            cout = cblock[level];
        }
    }
    u->nenc = u->nmods;
    /* Decoder: skips are popped from the last encoder module backwards. */
    int next_skip = u->nenc - 1;
    for (int level = hp->levels - 1; level >= 0; level--) {
        int res = hp->img_resolution >> level;
        unet_module *m;
        if (level == hp->levels - 1) {
            snprintf(name, sizeof name, "unet.dec.%dx%d_in0", res, res);
            if (!(m = add_block(u, name, 0, RESAMPLE_KEEP, cout, cout, 1, res))) goto nomem;
            u->gflops += 2 * block_gmacs(&m->blk);
            snprintf(name, sizeof name, "unet.dec.%dx%d_in1", res, res);
            if (!(m = add_block(u, name, 0, RESAMPLE_KEEP, cout, cout, 0, res))) goto nomem;
        } else {
            snprintf(name, sizeof name, "unet.dec.%dx%d_up", res, res);
            if (!(m = add_block(u, name, 0, RESAMPLE_UP, cout, cout, 0, res / 2))) goto nomem;
        }
        u->gflops += 2 * block_gmacs(&m->blk);
        for (int i = 0; i <= hp->num_blocks; i++) {
            int src = next_skip--;
            int cin = cout + u->mods[src].cout;
            snprintf(name, sizeof name, "unet.dec.%dx%d_block%d", res, res, i);
            if (!(m = add_block(u, name, 0, RESAMPLE_KEEP, cin, cblock[level], has_attn(hp, res), res))) goto nomem;
            m->skip_src = src;
            u->gflops += 2 * block_gmacs(&m->blk);
            cout = cblock[level];
        }
    }
    u->out_conv = add_weight(u, "unet.out_conv.weight", hp->img_channels, cout, 3, (long)u->off_out_gain);
    u->gflops += 2 * conv_gmacs(hp->img_resolution, hp->img_resolution, hp->img_channels, cout, 3);
    u->off_lv_freqs = add_buffer(u, "logvar_fourier.freqs", hp->logvar_channels);
    u->off_lv_phases = add_buffer(u, "logvar_fourier.phases", hp->logvar_channels);
    u->logvar_linear = add_weight(u, "logvar_linear.weight", 1, hp->logvar_channels, 0, -1);
    for (size_t i = 0; i < u->nparams; i++)
        if (!u->params[i].name) goto nomem;
    if (u->arena_floats > UNET_MAX_PARAMS) {
        snprintf(err, errlen, "the network would have %zu parameters (at most %llu)", u->arena_floats,
                 (unsigned long long)UNET_MAX_PARAMS);
        unet_free(u);
        return -1;
    }
    u->saved = calloc((size_t)u->nmods, sizeof *u->saved);
    u->mod_in = calloc((size_t)u->nmods, sizeof *u->mod_in);
    u->mod_out = calloc((size_t)u->nmods, sizeof *u->mod_out);
    if (!u->saved || !u->mod_in || !u->mod_out) goto nomem;
    /* GEMM packing, rearranged-weight and partial-sum scratch: what the largest weight needs. */
    for (size_t i = 0; i < u->nweights; i++) {
        const weight_ref *w = &u->weights[i].ref;
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
    u->w_hat = malloc(u->arena_floats * sizeof(float));
    u->dw_hat = malloc(u->arena_floats * sizeof(float));
    u->w_norm = malloc((u->norm_floats + 1) * sizeof(float));
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
    for (size_t i = 0; i < u->nparams; i++) free((char *)u->params[i].name);
    free(u->params);
    free(u->weights);
    free(u->mods);
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

/* ---- Initialisation and forced weight normalisation ---------------------------------------------- */

void unet_init_params(const unet *u, float *params, uint64_t seed) {
    memset(params, 0, u->arena_floats * sizeof(float));
    for (size_t i = 0; i < u->nparams; i++) {
        const edm2_param_desc *d = &u->params[i];
        float *p = params + d->offset;
        const char *dot = strrchr(d->name, '.');
        if (d->flags & EDM2_PARAM_WEIGHT_NORMED) {
            for (size_t j = 0; j < d->numel; j++) p[j] = edm2_philox_normal(seed, i, j);
        } else if (dot && strcmp(dot, ".freqs") == 0) {
            for (size_t j = 0; j < d->numel; j++) p[j] = (float)TWO_PI * edm2_philox_normal(seed, i, j);
        } else if (dot && strcmp(dot, ".phases") == 0) {
            for (size_t j = 0; j < d->numel; j++) p[j] = (float)TWO_PI * edm2_philox_uniform(seed, i, j);
        } /* gains start at 0 */
    }
}

/* ---- Forward ------------------------------------------------------------------------------------ */

static float gain_of(const float *params, long off) { return off < 0 ? 1.0f : params[off]; }

int unet_forward(unet *u, const edm2_forward_args *a) {
    const unet_hparams *hp = &u->hp;
    const int N = a->N, C = hp->img_channels, R = hp->img_resolution;
    const size_t HW = (size_t)R * R, P = (size_t)N * HW;
    const float *params = a->params;
    workspace *ws = &u->fws;
    u->have_saved = 0;
    if (ensure_scratch(u) || ws_reset(ws)) return -1;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < u->nweights; i++) {
        const weight_ref *w = &u->weights[i].ref;
        mpconv_weight_forward(u->w_hat + w->offset, u->w_norm + w->norm_offset, params + w->offset,
                              gain_of(params, u->weights[i].gain), w->O, w->C, w->k);
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
    float *fourier = ws_alloc(ws, (size_t)N * u->cnoise), *e3 = ws_alloc(ws, (size_t)N * u->cemb);
    float *emb = ws_alloc(ws, (size_t)N * u->cemb);
    float *lab = hp->label_dim ? ws_zeros(ws, (size_t)N * hp->label_dim) : NULL;
    if (!fourier || !e3 || !emb || (hp->label_dim && !lab)) return -1;
    mp_fourier_forward(fourier, c_noise, params + u->off_emb_freqs, params + u->off_emb_phases, N, u->cnoise);
    linear_forward(e3, fourier, u->w_hat + u->emb_noise.offset, N, u->cnoise, u->cemb, 0, &u->sc);
    if (hp->label_dim) {
        float *e2 = ws_alloc(ws, (size_t)N * u->cemb);
        if (!e2) return -1;
        if (a->labels) {
            const float sl = sqrtf((float)hp->label_dim);
            for (size_t i = 0; i < (size_t)N * hp->label_dim; i++) lab[i] = a->labels[i] * sl;
        }
        linear_forward(e2, lab, u->w_hat + u->emb_label.offset, N, hp->label_dim, u->cemb, 0, &u->sc);
        mp_sum_forward(e3, e3, e2, hp->label_balance, (size_t)N * u->cemb);
    }
    mp_silu_forward(emb, e3, (size_t)N * u->cemb);
    /* U-Net. */
    block_ctx ctx = {params, u->w_hat, emb, N, a->training, a->dropout_rng.seed, a->dropout_rng.stream,
                     a->dropout_rng.offset, &u->sc, ws};
    const float *x = x_in0;
    for (int m = 0; m < u->nmods; m++) {
        unet_module *md = &u->mods[m];
        float *out;
        if (md->kind == MOD_CONV) {
            out = ws_alloc(ws, P * md->cout);
            if (!out) return -1;
            conv2d_forward(out, x, u->w_hat + md->conv.offset, &u->sc, N, md->H, md->W, md->cin, md->cout, 3);
        } else {
            if (md->skip_src >= 0) {
                const unet_module *src = &u->mods[md->skip_src];
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
    const unet_module *last = &u->mods[u->nmods - 1];
    conv2d_forward(F, x, u->w_hat + u->out_conv.offset, &u->sc, N, R, R, last->cout, C, 3);
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
    mp_fourier_forward(lvf, c_noise, params + u->off_lv_freqs, params + u->off_lv_phases, N, hp->logvar_channels);
    if (a->logvar) linear_forward(a->logvar, lvf, u->w_hat + u->logvar_linear.offset, N, hp->logvar_channels, 1, 0, &u->sc);
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
    const unet_hparams *hp = &u->hp;
    const int N = u->saved_N, C = hp->img_channels, R = hp->img_resolution;
    const size_t HW = (size_t)R * R, P = (size_t)N * HW;
    workspace *ws = &u->bws;
    if (ensure_scratch(u) || ws_reset(ws)) return -1;
    memset(u->dw_hat, 0, u->arena_floats * sizeof(float));
    /* Activation gradients are fresh buffers whose first contribution overwrites; only demb (a sum over
     * blocks) starts from zero. */
    block_ctx ctx = {params, u->w_hat, u->emb, N, 1, u->drop_seed, u->drop_stream, u->drop_offset,
                     &u->sc, &u->fws};
    float *demb = ws_zeros(ws, (size_t)N * u->cemb);
    float *dF = ws_alloc(ws, P * C);
    float **dskip = calloc((size_t)u->nenc, sizeof *dskip);
    int rc = -1;
    if (!demb || !dF || !dskip) goto done;
    /* D = c_skip x + c_out F. */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (size_t p = 0; p < HW; p++)
                dF[((size_t)n * HW + p) * C + c] = u->c_out[n] * dD[((size_t)n * C + c) * HW + p];
    const unet_module *last = &u->mods[u->nmods - 1];
    float *dcur = ws_alloc(ws, P * last->cout);
    if (!dcur) goto done;
    conv2d_backward(dcur, u->dw_hat + u->out_conv.offset, dF, u->mod_out[u->nmods - 1], u->w_hat + u->out_conv.offset,
                    &u->sc, N, R, R, last->cout, C, 3, 0);
    for (int m = u->nmods - 1; m >= 0; m--) {
        const unet_module *md = &u->mods[m];
        const size_t Pm = (size_t)N * md->H * md->W;
        if (m < u->nenc && dskip[m]) accumulate(dcur, dskip[m], Pm * md->cout);
        if (md->kind == MOD_CONV) {
            conv2d_backward(NULL, u->dw_hat + md->conv.offset, dcur, u->mod_in[m], u->w_hat + md->conv.offset, &u->sc,
                            N, md->H, md->W, md->cin, md->cout, 3, 0);
            continue;
        }
        const size_t Pin = (size_t)N * md->blk.Hin * md->blk.Win;
        float *din = block_backward(&md->blk, &ctx, &u->saved[m], dcur, demb, u->dw_hat, ws);
        if (!din) goto done;
        if (md->skip_src >= 0) {
            const unet_module *src = &u->mods[md->skip_src];
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
    float *de3 = ws_alloc(ws, (size_t)N * u->cemb), *de1 = de3;
    if (!de3) goto done;
    mp_silu_backward(de3, demb, u->e3, (size_t)N * u->cemb, 0);
    if (hp->label_dim) {
        float *de2 = ws_alloc(ws, (size_t)N * u->cemb);
        de1 = ws_alloc(ws, (size_t)N * u->cemb);
        if (!de2 || !de1) goto done;
        mp_sum_backward(de1, de2, de3, hp->label_balance, (size_t)N * u->cemb, 0);
        linear_backward(NULL, u->dw_hat + u->emb_label.offset, de2, u->lab, u->w_hat + u->emb_label.offset, N,
                        hp->label_dim, u->cemb, &u->sc, 0);
    }
    linear_backward(NULL, u->dw_hat + u->emb_noise.offset, de1, u->fourier, u->w_hat + u->emb_noise.offset, N, u->cnoise,
                    u->cemb, &u->sc, 0);
    if (dlogvar)
        linear_backward(NULL, u->dw_hat + u->logvar_linear.offset, dlogvar, u->lv_fourier,
                        u->w_hat + u->logvar_linear.offset, N, hp->logvar_channels, 1, &u->sc, 0);
    /* From prepared-weight gradients to parameter gradients (through the weight normalisation). Weights
     * that share a gain (none do in EDM2: each gain belongs to one weight) would race on it. */
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < u->nweights; i++) {
        const unet_weight *w = &u->weights[i];
        mpconv_weight_backward(grads + w->ref.offset, w->gain >= 0 ? grads + w->gain : NULL, u->dw_hat + w->ref.offset,
                               params + w->ref.offset, u->w_norm + w->ref.norm_offset, gain_of(params, w->gain),
                               w->ref.O, w->ref.C, w->ref.k);
    }
    rc = ws->failed ? -1 : 0;
done:
    free(dskip);
    return rc;
}
