/* vae_graph.c: the SD VAE graph (vae_graph.h): one walk per half (encoder, decoder) that, in build mode,
 * fills the conv, norm and weight tables, in plan mode records the buffer sizes for an image size, and with a
 * backend runs the pass, so the table and the pass cannot disagree. */
#include "vae_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct walker {
    vae_graph *g;            /* build mode: the tables being filled (NULL otherwise) */
    const vae_graph *cg;     /* the tables */
    const vae_backend *be;   /* NULL: build or plan */
    size_t slot_max[VAE_SLOTS];
    int failed;
} walker;

/* out = name + "." + s (names are short: at most 100 + 40 characters kept). */
static const char *sub(char out[160], const char *name, const char *s) {
    const size_t a = strnlen(name, 100), b = strnlen(s, 40);
    memcpy(out, name, a);
    out[a] = '.';
    memcpy(out + a + 1, s, b);
    out[a + 1 + b] = 0;
    return out;
}

static void note(walker *w, vae_view v) {
    const size_t f = (size_t)v.H * v.W * v.C;
    if (f > w->slot_max[v.slot]) w->slot_max[v.slot] = f;
}

static int add_param(vae_graph *g, const char *name, const char *suffix, int ndim, int64_t s0, int64_t s1, int k,
                     size_t *off) {
    char full[160];
    sub(full, name, suffix);
    edm2_param_desc *d = &g->params[g->nparams];
    if (!(g->names[g->nparams] = strdup(full))) return -1;
    d->name = g->names[g->nparams++];
    d->ndim = (uint32_t)ndim;
    d->shape[0] = s0, d->shape[1] = s1, d->shape[2] = k, d->shape[3] = k;
    d->numel = (size_t)s0 * (ndim >= 2 ? (size_t)s1 : 1) * (ndim == 4 ? (size_t)k * k : 1);
    d->offset = g->arena_floats;
    d->flags = 0;
    *off = d->offset;
    g->arena_floats += (d->numel + 63) / 64 * 64;
    return 0;
}

/* `in` through conv NAME into `slot`; linear = 1: an attention projection (weight [cout, cin]). */
static vae_view conv(walker *w, const char *name, vae_conv_kind kind, int linear, int cout, vae_view in, int slot) {
    vae_view out = {slot, kind == VAE_CONV_DOWN ? in.H / 2 : in.H, kind == VAE_CONV_DOWN ? in.W / 2 : in.W, cout};
    note(w, out);
    if (w->failed) return out;
    if (w->g) {
        vae_graph *g = w->g;
        vae_conv *c = &g->conv[g->nconv++];
        const int k = kind == VAE_CONV_1x1 ? 1 : 3;
        c->kind = kind, c->cin = in.C, c->cout = cout;
        if (add_param(g, name, "weight", linear ? 2 : 4, cout, in.C, k, &c->w_off) ||
            add_param(g, name, "bias", 1, cout, 1, 1, &c->b_off))
            w->failed = 1;
        c->name = g->names[g->nparams - 2];
        return out;
    }
    if (!w->be) return out;
    char full[160];
    sub(full, name, "weight");
    for (int i = 0; i < w->cg->nconv; i++)
        if (!strcmp(w->cg->conv[i].name, full)) {
            if (w->cg->conv[i].cin != in.C || w->be->conv(w->be->ctx, &w->cg->conv[i], in, out)) w->failed = 1;
            return out;
        }
    w->failed = 1; /* cannot happen: the same walk built the table */
    return out;
}

static vae_view norm(walker *w, const char *name, int silu, vae_view in, int slot) {
    vae_view out = {slot, in.H, in.W, in.C};
    note(w, out);
    if (w->failed) return out;
    if (w->g) {
        vae_graph *g = w->g;
        vae_norm *n = &g->norm[g->nnorm++];
        n->C = in.C, n->groups = g->hp.groups;
        if (add_param(g, name, "weight", 1, in.C, 1, 1, &n->w_off) || add_param(g, name, "bias", 1, in.C, 1, 1, &n->b_off))
            w->failed = 1;
        n->name = g->names[g->nparams - 2];
        return out;
    }
    if (!w->be) return out;
    char full[160];
    sub(full, name, "weight");
    for (int i = 0; i < w->cg->nnorm; i++)
        if (!strcmp(w->cg->norm[i].name, full)) {
            if (w->be->group_norm(w->be->ctx, &w->cg->norm[i], silu, in, out)) w->failed = 1;
            return out;
        }
    w->failed = 1;
    return out;
}

static vae_view add(walker *w, vae_view a, vae_view b, int slot) {
    vae_view out = {slot, a.H, a.W, a.C};
    note(w, out);
    if (w->be && !w->failed && w->be->add(w->be->ctx, a, b, out)) w->failed = 1;
    return out;
}

/* The two buffers of slots 0..2 other than `main`. */
static void temps(int main, int *t1, int *t2) {
    *t1 = main == 0 ? 1 : 0;
    *t2 = main == 2 ? 1 : 2;
}

/* ResnetBlock2D: x + conv2(silu(gn2(conv1(silu(gn1(x)))))), x through conv_shortcut (1x1) when the widths
 * differ. The result replaces x in its buffer. */
static vae_view resnet(walker *w, const char *name, vae_view x, int cout) {
    char n[160];
    int t1, t2;
    temps(x.slot, &t1, &t2);
#define SUB(s) sub(n, name, s)
    vae_view h = norm(w, SUB("norm1"), 1, x, t1);
    h = conv(w, SUB("conv1"), VAE_CONV_3x3, 0, cout, h, t2);
    h = norm(w, SUB("norm2"), 1, h, t2);
    h = conv(w, SUB("conv2"), VAE_CONV_3x3, 0, cout, h, t1);
    if (x.C != cout) {
        vae_view s = conv(w, SUB("conv_shortcut"), VAE_CONV_1x1, 0, cout, x, t2);
        return add(w, s, h, x.slot);
    }
#undef SUB
    return add(w, x, h, x.slot);
}

/* Attention with one head over the positions, with a GroupNorm in front and the input added back. */
static vae_view attention(walker *w, const char *name, vae_view x) {
    char n[160];
    int t1, t2;
    temps(x.slot, &t1, &t2);
#define SUB(s) sub(n, name, s)
    vae_view a = norm(w, SUB("group_norm"), 0, x, t1);
    vae_view q = conv(w, SUB("to_q"), VAE_CONV_1x1, 1, x.C, a, t2);
    vae_view k = conv(w, SUB("to_k"), VAE_CONV_1x1, 1, x.C, a, VAE_SLOT_K);
    vae_view v = conv(w, SUB("to_v"), VAE_CONV_1x1, 1, x.C, a, VAE_SLOT_V);
    vae_view s = {VAE_SLOT_S, x.H * x.W, x.H * x.W, 1};
    vae_view o = {t1, x.H, x.W, x.C};
    note(w, s);
    note(w, o);
    if (w->be && !w->failed && w->be->attend(w->be->ctx, q, k, v, s, o)) w->failed = 1;
    o = conv(w, SUB("to_out.0"), VAE_CONV_1x1, 1, x.C, o, t2);
#undef SUB
    return add(w, x, o, x.slot);
}

static vae_view mid_block(walker *w, const char *half, vae_view x) {
    char n[160];
    snprintf(n, sizeof n, "%s.mid_block.resnets.0", half);
    x = resnet(w, n, x, x.C);
    snprintf(n, sizeof n, "%s.mid_block.attentions.0", half);
    x = attention(w, n, x);
    snprintf(n, sizeof n, "%s.mid_block.resnets.1", half);
    return resnet(w, n, x, x.C);
}

static void walk_encoder(walker *w, const float *image, int H, int W, float *moments) {
    const vae_hparams *hp = &w->cg->hp;
    char n[160];
    vae_view x = {VAE_SLOT_1, H, W, 3};
    note(w, x);
    if (w->be && w->be->load(w->be->ctx, image, x)) w->failed = 1;
    x = conv(w, "encoder.conv_in", VAE_CONV_3x3, 0, hp->ch[0], x, VAE_SLOT_0);
    for (int i = 0; i < hp->levels; i++) {
        for (int j = 0; j < hp->layers; j++) {
            snprintf(n, sizeof n, "encoder.down_blocks.%d.resnets.%d", i, j);
            x = resnet(w, n, x, hp->ch[i]);
        }
        if (i + 1 < hp->levels) {
            int t1, t2;
            temps(x.slot, &t1, &t2);
            snprintf(n, sizeof n, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            x = conv(w, n, VAE_CONV_DOWN, 0, hp->ch[i], x, t1);
        }
    }
    x = mid_block(w, "encoder", x);
    int t1, t2;
    temps(x.slot, &t1, &t2);
    x = norm(w, "encoder.conv_norm_out", 1, x, t1);
    x = conv(w, "encoder.conv_out", VAE_CONV_3x3, 0, 2 * hp->latent, x, t2);
    x = conv(w, "quant_conv", VAE_CONV_1x1, 0, 2 * hp->latent, x, t1);
    if (w->be && !w->failed && w->be->store_moments(w->be->ctx, x, moments)) w->failed = 1;
}

static void walk_decoder(walker *w, const float *latents, int h, int wd, float *image) {
    const vae_hparams *hp = &w->cg->hp;
    char n[160];
    vae_view x = {VAE_SLOT_1, h, wd, hp->latent};
    note(w, x);
    if (w->be && w->be->load(w->be->ctx, latents, x)) w->failed = 1;
    x = conv(w, "post_quant_conv", VAE_CONV_1x1, 0, hp->latent, x, VAE_SLOT_2);
    x = conv(w, "decoder.conv_in", VAE_CONV_3x3, 0, hp->ch[hp->levels - 1], x, VAE_SLOT_0);
    x = mid_block(w, "decoder", x);
    for (int i = 0; i < hp->levels; i++) {
        const int cout = hp->ch[hp->levels - 1 - i];
        for (int j = 0; j <= hp->layers; j++) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.resnets.%d", i, j);
            x = resnet(w, n, x, cout);
        }
        if (i + 1 < hp->levels) {
            int t1, t2;
            temps(x.slot, &t1, &t2);
            vae_view up = {t1, x.H * 2, x.W * 2, x.C};
            note(w, up);
            if (w->be && !w->failed && w->be->upsample(w->be->ctx, x, up)) w->failed = 1;
            snprintf(n, sizeof n, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            x = conv(w, n, VAE_CONV_3x3, 0, cout, up, t2);
        }
    }
    int t1, t2;
    temps(x.slot, &t1, &t2);
    x = norm(w, "decoder.conv_norm_out", 1, x, t1);
    x = conv(w, "decoder.conv_out", VAE_CONV_3x3, 0, 3, x, t2);
    if (w->be && !w->failed && w->be->store(w->be->ctx, x, image)) w->failed = 1;
}

int vae_graph_build(vae_graph *g, const vae_hparams *hp) {
    memset(g, 0, sizeof *g);
    g->hp = *hp;
    const int cap = 64 + 40 * hp->levels * (hp->layers + 2); /* convs and norms; 2 params each */
    g->conv = calloc((size_t)cap, sizeof *g->conv);
    g->norm = calloc((size_t)cap, sizeof *g->norm);
    g->params = calloc((size_t)cap * 4, sizeof *g->params);
    g->names = calloc((size_t)cap * 4, sizeof *g->names);
    if (!g->conv || !g->norm || !g->params || !g->names) {
        vae_graph_free(g);
        return -1;
    }
    walker w;
    memset(&w, 0, sizeof w);
    w.g = g, w.cg = g;
    walk_encoder(&w, NULL, 1 << (hp->levels - 1), 1 << (hp->levels - 1), NULL);
    walk_decoder(&w, NULL, 1, 1, NULL);
    if (w.failed) vae_graph_free(g);
    return w.failed ? -1 : 0;
}

void vae_graph_free(vae_graph *g) {
    for (size_t i = 0; g->names && i < g->nparams; i++) free(g->names[i]);
    free(g->conv), free(g->norm), free(g->params), free(g->names);
    memset(g, 0, sizeof *g);
}

static int run(const vae_graph *g, const vae_backend *be, int decoder, const float *in, int h, int w_, float *out,
               size_t slot_floats[VAE_SLOTS]) {
    walker w;
    memset(&w, 0, sizeof w);
    w.cg = g, w.be = be;
    if (decoder) walk_decoder(&w, in, h, w_, out);
    else walk_encoder(&w, in, h, w_, out);
    if (slot_floats) memcpy(slot_floats, w.slot_max, sizeof w.slot_max);
    return w.failed ? -1 : 0;
}

int vae_encode(const vae_graph *g, const vae_backend *be, const float *image, int H, int W, float *moments,
               size_t slot_floats[VAE_SLOTS]) {
    return run(g, be, 0, image, H, W, moments, slot_floats);
}

int vae_decode(const vae_graph *g, const vae_backend *be, const float *latents, int h, int w, float *image,
               size_t slot_floats[VAE_SLOTS]) {
    return run(g, be, 1, latents, h, w, image, slot_floats);
}

/* Replaces the first `from` in s[len] by `to`. */
static void substitute(char *s, size_t len, const char *from, const char *to) {
    char *p = strstr(s, from), tail[256];
    if (!p) return;
    snprintf(tail, sizeof tail, "%s", p + strlen(from));
    snprintf(p, len - (size_t)(p - s), "%s%s", to, tail);
}

void vae_ldm_name(const vae_graph *g, size_t i, char *out, size_t len) {
    const char *d = g->params[i].name;
    char half[16], rest[128];
    int a, b;
    static const char *const k_attn[][2] = {{".group_norm.", ".norm."}, {".to_q.", ".q."},      {".to_k.", ".k."},
                                            {".to_v.", ".v."},          {".to_out.0.", ".proj_out."}};
    if (sscanf(d, "%15[^.].down_blocks.%d.resnets.%d.%127s", half, &a, &b, rest) == 4)
        snprintf(out, len, "%s.down.%d.block.%d.%s", half, a, b, rest);
    else if (sscanf(d, "%15[^.].down_blocks.%d.downsamplers.0.%127s", half, &a, rest) == 3)
        snprintf(out, len, "%s.down.%d.downsample.%s", half, a, rest);
    else if (sscanf(d, "%15[^.].up_blocks.%d.resnets.%d.%127s", half, &a, &b, rest) == 4) /* LDM numbers up blocks */
        snprintf(out, len, "%s.up.%d.block.%d.%s", half, g->hp.levels - 1 - a, b, rest);   /* from the bottom */
    else if (sscanf(d, "%15[^.].up_blocks.%d.upsamplers.0.%127s", half, &a, rest) == 3)
        snprintf(out, len, "%s.up.%d.upsample.%s", half, g->hp.levels - 1 - a, rest);
    else if (sscanf(d, "%15[^.].mid_block.resnets.%d.%127s", half, &a, rest) == 3)
        snprintf(out, len, "%s.mid.block_%d.%s", half, a + 1, rest);
    else if (sscanf(d, "%15[^.].mid_block.attentions.0.%127s", half, rest) == 2) {
        snprintf(out, len, "%s.mid.attn_1.%s", half, rest);
        for (size_t k = 0; k < sizeof k_attn / sizeof *k_attn; k++) substitute(out, len, k_attn[k][0], k_attn[k][1]);
    } else
        snprintf(out, len, "%s", d);
    substitute(out, len, "conv_norm_out", "norm_out");
    substitute(out, len, "conv_shortcut", "nin_shortcut");
}

void vae_old_diffusers_name(const vae_graph *g, size_t i, char *out, size_t len) {
    static const char *const k_old[][2] = {
        {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
    snprintf(out, len, "%s", g->params[i].name);
    for (size_t k = 0; k < sizeof k_old / sizeof *k_old; k++) substitute(out, len, k_old[k][0], k_old[k][1]);
}

int vae_prepare(const vae_graph *g, float *arena) {
    size_t most = 0;
    for (int i = 0; i < g->nconv; i++)
        if ((size_t)g->conv[i].cout * g->conv[i].cin > most) most = (size_t)g->conv[i].cout * g->conv[i].cin;
    float *tmp = malloc(most * 9 * sizeof *tmp + 1);
    if (!tmp) return -1;
    for (int i = 0; i < g->nconv; i++) {
        const vae_conv *c = &g->conv[i];
        if (c->kind == VAE_CONV_1x1) continue; /* [cout, cin] either way */
        float *w = arena + c->w_off;
        memcpy(tmp, w, (size_t)c->cout * c->cin * 9 * sizeof *tmp);
        for (int o = 0; o < c->cout; o++)
            for (int ci = 0; ci < c->cin; ci++)
                for (int t = 0; t < 9; t++) w[((size_t)o * 9 + t) * c->cin + ci] = tmp[((size_t)o * c->cin + ci) * 9 + t];
    }
    free(tmp);
    return 0;
}

void vae_graph_info(const vae_graph *g, edm2_vae_info *info) {
    edm2_vae_info i;
    memset(&i, 0, sizeof i);
    i.struct_size = info->struct_size < sizeof i ? info->struct_size : (uint32_t)sizeof i;
    i.image_channels = 3;
    i.latent_channels = g->hp.latent;
    i.downsample = 1 << (g->hp.levels - 1);
    i.arena_floats = g->arena_floats;
    i.param_count = g->nparams;
    i.params = g->params;
    i.layout = "diffusers";
    memcpy(info, &i, i.struct_size);
}
