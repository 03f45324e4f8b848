/* unet_graph.c: the EDM2 U-Net's module graph in the reference's module names and order, its parameter arena
 * table (reference state_dict names, 64-float aligned offsets), and the initial parameters. Shared by the
 * CPU and CUDA builds of mp_unet, so that both have the same table and arena layout. */
#include "unet_graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"

#define ALIGN_FLOATS 64
#define TWO_PI 6.28318530717958647692

/* ---- Building the arena table ---------------------------------------------------------------- */

static size_t add_param(unet_graph *g, const char *name, int ndim, const int64_t *shape, uint32_t flags) {
    if (g->nparams == g->cap_params) {
        size_t cap = g->cap_params ? 2 * g->cap_params : 128;
        edm2_param_desc *p = realloc(g->params, cap * sizeof *p);
        if (!p) return (size_t)-1;
        g->params = p;
        g->cap_params = cap;
    }
    edm2_param_desc *d = &g->params[g->nparams++];
    memset(d, 0, sizeof *d);
    d->name = strdup(name);
    d->ndim = (uint32_t)ndim;
    d->numel = 1;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i], d->numel *= (size_t)shape[i];
    d->offset = g->arena_floats;
    d->flags = flags;
    g->arena_floats += (d->numel + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    return d->offset;
}

/* An MPConv weight [O, C, k, k] (k = 0: fully connected [O, C]). gain: arena offset or -1. */
static weight_ref add_weight(unet_graph *g, const char *name, int O, int C, int k, long gain) {
    weight_ref w = {1, O, C, k ? k : 1, 0, g->norm_floats};
    int64_t shape[4] = {O, C, k, k};
    w.offset = add_param(g, name, k ? 4 : 2, shape, EDM2_PARAM_TRAINED | EDM2_PARAM_WEIGHT_NORMED);
    g->norm_floats += (size_t)O;
    unet_weight *ws = realloc(g->weights, (g->nweights + 1) * sizeof *ws);
    if (ws) {
        g->weights = ws;
        ws[g->nweights++] = (unet_weight){w, gain};
    }
    return w;
}

static size_t add_scalar_param(unet_graph *g, const char *name) { return add_param(g, name, 0, NULL, EDM2_PARAM_TRAINED); }

static size_t add_buffer(unet_graph *g, const char *name, int n) {
    int64_t shape[1] = {n};
    return add_param(g, name, 1, shape, 0);
}

static int has_attn(const unet_hparams *hp, int res) {
    for (int i = 0; i < hp->n_attn; i++)
        if (hp->attn_resolutions[i] == res) return 1;
    return 0;
}

static unet_module *new_module(unet_graph *g) {
    unet_module *m = realloc(g->mods, (size_t)(g->nmods + 1) * sizeof *m);
    if (!m) return NULL;
    g->mods = m;
    memset(&m[g->nmods], 0, sizeof *m);
    m[g->nmods].skip_src = -1;
    return &m[g->nmods++];
}

/* Registers Block `prefix` with its parameters in the reference's order. */
static unet_module *add_block(unet_graph *g, const char *prefix, int enc, int resample, int cin, int cout, int attention,
                              int Hin) {
    unet_module *m = new_module(g);
    if (!m) return NULL;
    block_def *b = &m->blk;
    const unet_hparams *hp = &g->hp;
    char name[160];
    m->kind = MOD_BLOCK;
    m->dec = !enc;
    b->enc = enc;
    b->resample = resample;
    b->cin = cin, b->cout = cout, b->cemb = g->cemb;
    b->Hin = b->Win = Hin;
    b->H = b->W = resample == RESAMPLE_DOWN ? Hin / 2 : resample == RESAMPLE_UP ? Hin * 2 : Hin;
    b->heads = attention ? cout / hp->channels_per_head : 0;
    b->cph = hp->channels_per_head;
    b->res_balance = hp->res_balance, b->attn_balance = hp->attn_balance;
    b->clip_act = hp->clip_act, b->dropout = hp->dropout;
    b->id = (uint64_t)(g->nmods - 1);
    snprintf(name, sizeof name, "%s.emb_gain", prefix);
    b->emb_gain = add_scalar_param(g, name);
    snprintf(name, sizeof name, "%s.conv_res0.weight", prefix);
    b->res0 = add_weight(g, name, cout, enc ? cout : cin, 3, -1);
    snprintf(name, sizeof name, "%s.emb_linear.weight", prefix);
    b->emb_linear = add_weight(g, name, cout, g->cemb, 0, (long)b->emb_gain);
    snprintf(name, sizeof name, "%s.conv_res1.weight", prefix);
    b->res1 = add_weight(g, name, cout, cout, 3, -1);
    if (cin != cout) {
        snprintf(name, sizeof name, "%s.conv_skip.weight", prefix);
        b->skip = add_weight(g, name, cout, cin, 1, -1);
    }
    if (b->heads) {
        snprintf(name, sizeof name, "%s.attn_qkv.weight", prefix);
        b->qkv = add_weight(g, name, cout * 3, cout, 1, -1);
        snprintf(name, sizeof name, "%s.attn_proj.weight", prefix);
        b->proj = add_weight(g, name, cout, cout, 1, -1);
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

int unet_graph_build(unet_graph *g, const unet_hparams *hp, char *err, size_t errlen) {
    memset(g, 0, sizeof *g);
    g->hp = *hp;
    int cblock[UNET_MAX_LEVELS], cmax = 0;
    for (int l = 0; l < hp->levels; l++) {
        cblock[l] = hp->model_channels * hp->channel_mult[l];
        if (cblock[l] > cmax) cmax = cblock[l];
    }
    g->cnoise = hp->channel_mult_noise ? hp->model_channels * hp->channel_mult_noise : cblock[0];
    g->cemb = hp->channel_mult_emb ? hp->model_channels * hp->channel_mult_emb : cmax;
    char name[160];
    g->off_out_gain = add_scalar_param(g, "unet.out_gain");
    g->off_emb_freqs = add_buffer(g, "unet.emb_fourier.freqs", g->cnoise);
    g->off_emb_phases = add_buffer(g, "unet.emb_fourier.phases", g->cnoise);
    g->emb_noise = add_weight(g, "unet.emb_noise.weight", g->cemb, g->cnoise, 0, -1);
    if (hp->label_dim) g->emb_label = add_weight(g, "unet.emb_label.weight", g->cemb, hp->label_dim, 0, -1);
    /* Encoder. */
    int cout = hp->img_channels + 1;
    for (int level = 0; level < hp->levels; level++) {
        int res = hp->img_resolution >> level;
        if (level == 0) {
            unet_module *m = new_module(g);
            if (!m) goto nomem;
            m->kind = MOD_CONV;
            m->H = m->W = res;
            m->cin = cout;
            m->cout = cblock[0];
            snprintf(name, sizeof name, "unet.enc.%dx%d_conv.weight", res, res);
            m->conv = add_weight(g, name, cblock[0], cout, 3, -1);
            g->gflops += 2 * conv_gmacs(res, res, cblock[0], cout, 3);
            cout = cblock[0];
        } else {
            snprintf(name, sizeof name, "unet.enc.%dx%d_down", res, res);
            unet_module *m = add_block(g, name, 1, RESAMPLE_DOWN, cout, cout, 0, res * 2);
            if (!m) goto nomem;
            g->gflops += 2 * block_gmacs(&m->blk);
        }
        for (int i = 0; i < hp->num_blocks; i++) {
            snprintf(name, sizeof name, "unet.enc.%dx%d_block%d", res, res, i);
            unet_module *m = add_block(g, name, 1, RESAMPLE_KEEP, cout, cblock[level], has_attn(hp, res), res);
            if (!m) goto nomem;
            g->gflops += 2 * block_gmacs(&m->blk);
            cout = cblock[level];
        }
    }
    g->nenc = g->nmods;
    /* Decoder: skips are popped from the last encoder module backwards. */
    int next_skip = g->nenc - 1;
    for (int level = hp->levels - 1; level >= 0; level--) {
        int res = hp->img_resolution >> level;
        unet_module *m;
        if (level == hp->levels - 1) {
            snprintf(name, sizeof name, "unet.dec.%dx%d_in0", res, res);
            if (!(m = add_block(g, name, 0, RESAMPLE_KEEP, cout, cout, 1, res))) goto nomem;
            g->gflops += 2 * block_gmacs(&m->blk);
            snprintf(name, sizeof name, "unet.dec.%dx%d_in1", res, res);
            if (!(m = add_block(g, name, 0, RESAMPLE_KEEP, cout, cout, 0, res))) goto nomem;
        } else {
            snprintf(name, sizeof name, "unet.dec.%dx%d_up", res, res);
            if (!(m = add_block(g, name, 0, RESAMPLE_UP, cout, cout, 0, res / 2))) goto nomem;
        }
        g->gflops += 2 * block_gmacs(&m->blk);
        for (int i = 0; i <= hp->num_blocks; i++) {
            int src = next_skip--;
            int cin = cout + g->mods[src].cout;
            snprintf(name, sizeof name, "unet.dec.%dx%d_block%d", res, res, i);
            if (!(m = add_block(g, name, 0, RESAMPLE_KEEP, cin, cblock[level], has_attn(hp, res), res))) goto nomem;
            m->skip_src = src;
            g->gflops += 2 * block_gmacs(&m->blk);
            cout = cblock[level];
        }
    }
    g->out_conv = add_weight(g, "unet.out_conv.weight", hp->img_channels, cout, 3, (long)g->off_out_gain);
    g->gflops += 2 * conv_gmacs(hp->img_resolution, hp->img_resolution, hp->img_channels, cout, 3);
    g->off_lv_freqs = add_buffer(g, "logvar_fourier.freqs", hp->logvar_channels);
    g->off_lv_phases = add_buffer(g, "logvar_fourier.phases", hp->logvar_channels);
    g->logvar_linear = add_weight(g, "logvar_linear.weight", 1, hp->logvar_channels, 0, -1);
    for (size_t i = 0; i < g->nparams; i++)
        if (!g->params[i].name) goto nomem;
    if (g->arena_floats > UNET_MAX_PARAMS) {
        snprintf(err, errlen, "the network would have %zu parameters (at most %llu)", g->arena_floats,
                 (unsigned long long)UNET_MAX_PARAMS);
        unet_graph_free(g);
        return -1;
    }
    return 0;
nomem:
    snprintf(err, errlen, "out of memory building the network");
    unet_graph_free(g);
    return -1;
}

void unet_graph_info(const unet_graph *g, edm2_network_info *info) {
    info->img_resolution = g->hp.img_resolution;
    info->img_channels = g->hp.img_channels;
    info->label_dim = g->hp.label_dim;
    info->sigma_data = g->hp.sigma_data;
    info->arena_floats = g->arena_floats;
    info->param_count = g->nparams;
    info->params = g->params;
    if (info->struct_size >= offsetof(edm2_network_info, gflops_per_image) + sizeof(double))
        info->gflops_per_image = g->gflops;
}

void unet_graph_free(unet_graph *g) {
    for (size_t i = 0; i < g->nparams; i++) free((char *)g->params[i].name);
    free(g->params);
    free(g->weights);
    free(g->mods);
    memset(g, 0, sizeof *g);
}

/* ---- Initial parameters ------------------------------------------------------------------------ */

void unet_init_tensor(const unet_graph *g, size_t i, float *p, uint64_t seed) {
    const edm2_param_desc *d = &g->params[i];
    const char *dot = strrchr(d->name, '.');
    if (d->flags & EDM2_PARAM_WEIGHT_NORMED) {
        edm2_philox_normals(seed, i, 0, d->numel, p);
    } else if (dot && strcmp(dot, ".freqs") == 0) {
        edm2_philox_normals(seed, i, 0, d->numel, p);
        for (size_t j = 0; j < d->numel; j++) p[j] = (float)TWO_PI * p[j];
    } else if (dot && strcmp(dot, ".phases") == 0) {
        for (size_t j = 0; j < d->numel; j++) p[j] = (float)TWO_PI * edm2_philox_uniform(seed, i, j);
    } else {
        memset(p, 0, d->numel * sizeof *p); /* gains start at 0 */
    }
}

void unet_init_params(const unet_graph *g, float *params, uint64_t seed) {
    memset(params, 0, g->arena_floats * sizeof(float));
    for (size_t i = 0; i < g->nparams; i++) unet_init_tensor(g, i, params + g->params[i].offset, seed);
}
