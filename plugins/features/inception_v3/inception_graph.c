/* inception_graph.c: the FID Inception-v3 graph (inception_graph.h): one walk over the layers that, without
 * a backend, builds the conv table, the weight table and the buffer sizes, and with one runs the forward
 * pass, so the table and the pass cannot disagree. Spatial sizes of a 299x299 input: stem 149, 147, 147,
 * pool 73, 73, 71, pool 35; Mixed_5b-d 35x35 (256, 288, 288 channels); Mixed_6a-e 17x17 (768); Mixed_7a-c
 * 8x8 (1280, 2048, 2048). */
#include "inception_graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct walker {
    incep_graph *g;          /* build mode: the table being filled */
    const incep_graph *cg;   /* run mode: the built table */
    const incep_backend *be; /* NULL in build mode */
    int next;                /* the next conv's index */
    size_t slot_max[INCEP_SLOTS];
    int failed;
} walker;

/* A dense view of C channels in `slot` (H, W set by whoever writes it). */
static incep_view dense(int slot, int C) { return (incep_view){slot, 0, 0, C, 0, C}; }
/* Channels [c0, c0 + C) of a concatenation of ld channels in `slot`. */
static incep_view part(int slot, int c0, int C, int ld) { return (incep_view){slot, 0, 0, C, c0, ld}; }

static void note_slot(walker *w, incep_view v) {
    size_t f = (size_t)v.H * v.W * v.ld;
    if (f > w->slot_max[v.slot]) w->slot_max[v.slot] = f;
}

static void add_param(incep_graph *g, const char *conv, const char *suffix, int ndim, int64_t s0, int64_t s1,
                      int64_t s2, int64_t s3, size_t *off) {
    edm2_param_desc *d = &g->params[g->nparams];
    char *name = g->names[g->nparams++];
    snprintf(name, 64, "%s.%s", conv, suffix);
    d->name = name;
    d->ndim = (uint32_t)ndim;
    d->shape[0] = s0, d->shape[1] = s1, d->shape[2] = s2, d->shape[3] = s3;
    d->numel = (size_t)s0 * (ndim > 1 ? (size_t)s1 * s2 * s3 : 1);
    d->offset = g->arena_floats;
    d->flags = 0;
    *off = d->offset;
    g->arena_floats += (d->numel + 63) / 64 * 64;
}

/* One BasicConv2d from `in` into `out` (whose slot, channel range and stride are given). */
static incep_view conv(walker *w, const char *block, const char *name, int kh, int kw, int stride, int ph, int pw,
                       incep_view in, incep_view out) {
    char full[40];
    snprintf(full, sizeof full, "%s%s%s", block, *block ? "." : "", name);
    out.H = incep_out_size(in.H, kh, stride, ph);
    out.W = incep_out_size(in.W, kw, stride, pw);
    note_slot(w, out);
    if (w->failed) return out;
    if (!w->be) {
        incep_graph *g = w->g;
        incep_conv *c = &g->conv[g->nconv++];
        snprintf(c->name, sizeof c->name, "%s", full);
        c->cin = in.C, c->cout = out.C, c->kh = kh, c->kw = kw, c->stride = stride, c->ph = ph, c->pw = pw;
        c->H = in.H, c->W = in.W, c->Ho = out.H, c->Wo = out.W;
        add_param(g, full, "conv.weight", 4, out.C, in.C, kh, kw, &c->w_off);
        add_param(g, full, "bn.weight", 1, out.C, 1, 1, 1, &c->gamma_off);
        add_param(g, full, "bn.bias", 1, out.C, 1, 1, 1, &c->beta_off);
        add_param(g, full, "bn.running_mean", 1, out.C, 1, 1, 1, &c->mean_off);
        add_param(g, full, "bn.running_var", 1, out.C, 1, 1, 1, &c->var_off);
        c->prep_w_off = g->prep_w_floats;
        c->prep_c_off = g->prep_c_floats;
        g->prep_w_floats += (size_t)out.C * in.C * kh * kw;
        g->prep_c_floats += 2 * (size_t)out.C;
        g->gflops += 2.0 * out.H * out.W * out.C * (double)in.C * kh * kw / 1e9;
        return out;
    }
    const incep_conv *c = &w->cg->conv[w->next++];
    if (c->cin != in.C || c->cout != out.C || strcmp(c->name, full)) w->failed = 1; /* cannot happen: same walk */
    else if (w->be->conv(w->be->ctx, c, in, out)) w->failed = 1;
    return out;
}

static incep_view pool(walker *w, incep_pool kind, incep_view in, incep_view out) {
    const int s2 = kind == INCEP_MAXPOOL_S2;
    out.H = incep_out_size(in.H, 3, s2 ? 2 : 1, s2 ? 0 : 1);
    out.W = incep_out_size(in.W, 3, s2 ? 2 : 1, s2 ? 0 : 1);
    note_slot(w, out);
    if (w->be && !w->failed && w->be->pool(w->be->ctx, kind, in, out)) w->failed = 1;
    return out;
}

/* Mixed_5b-d (torchvision's InceptionA): 1x1 64 | 1x1 48, 5x5 64 | 1x1 64, 3x3 96, 3x3 96 | avg pool, 1x1
 * pool_features. */
static incep_view block_a(walker *w, const char *b, incep_view x, int pool_features, int to) {
    const int ld = 224 + pool_features;
    incep_view t;
    conv(w, b, "branch1x1", 1, 1, 1, 0, 0, x, part(to, 0, 64, ld));
    t = conv(w, b, "branch5x5_1", 1, 1, 1, 0, 0, x, dense(INCEP_SLOT_T1, 48));
    conv(w, b, "branch5x5_2", 5, 5, 1, 2, 2, t, part(to, 64, 64, ld));
    t = conv(w, b, "branch3x3dbl_1", 1, 1, 1, 0, 0, x, dense(INCEP_SLOT_T1, 64));
    t = conv(w, b, "branch3x3dbl_2", 3, 3, 1, 1, 1, t, dense(INCEP_SLOT_T2, 96));
    conv(w, b, "branch3x3dbl_3", 3, 3, 1, 1, 1, t, part(to, 128, 96, ld));
    t = pool(w, INCEP_AVGPOOL_S1_EXCL_PAD, x, dense(INCEP_SLOT_T1, x.C));
    return conv(w, b, "branch_pool", 1, 1, 1, 0, 0, t, part(to, 224, pool_features, ld));
}

/* Mixed_6a (InceptionB): 3x3/2 384 | 1x1 64, 3x3 96, 3x3/2 96 | max pool/2. */
static incep_view block_b(walker *w, const char *b, incep_view x, int to) {
    const int ld = 384 + 96 + x.C;
    incep_view t;
    conv(w, b, "branch3x3", 3, 3, 2, 0, 0, x, part(to, 0, 384, ld));
    t = conv(w, b, "branch3x3dbl_1", 1, 1, 1, 0, 0, x, dense(INCEP_SLOT_T1, 64));
    t = conv(w, b, "branch3x3dbl_2", 3, 3, 1, 1, 1, t, dense(INCEP_SLOT_T2, 96));
    conv(w, b, "branch3x3dbl_3", 3, 3, 2, 0, 0, t, part(to, 384, 96, ld));
    return pool(w, INCEP_MAXPOOL_S2, x, part(to, 480, x.C, ld));
}

/* Mixed_6b-e (InceptionC): 1x1 192 | 1x1 c7, 1x7 c7, 7x1 192 | 1x1 c7, 7x1, 1x7, 7x1 c7, 1x7 192 | avg pool,
 * 1x1 192. */
static incep_view block_c(walker *w, const char *b, incep_view x, int c7, int to) {
    const int ld = 768;
    const int T1 = INCEP_SLOT_T1, T2 = INCEP_SLOT_T2;
    incep_view t;
    conv(w, b, "branch1x1", 1, 1, 1, 0, 0, x, part(to, 0, 192, ld));
    t = conv(w, b, "branch7x7_1", 1, 1, 1, 0, 0, x, dense(T1, c7));
    t = conv(w, b, "branch7x7_2", 1, 7, 1, 0, 3, t, dense(T2, c7));
    conv(w, b, "branch7x7_3", 7, 1, 1, 3, 0, t, part(to, 192, 192, ld));
    t = conv(w, b, "branch7x7dbl_1", 1, 1, 1, 0, 0, x, dense(T1, c7));
    t = conv(w, b, "branch7x7dbl_2", 7, 1, 1, 3, 0, t, dense(T2, c7));
    t = conv(w, b, "branch7x7dbl_3", 1, 7, 1, 0, 3, t, dense(T1, c7));
    t = conv(w, b, "branch7x7dbl_4", 7, 1, 1, 3, 0, t, dense(T2, c7));
    conv(w, b, "branch7x7dbl_5", 1, 7, 1, 0, 3, t, part(to, 384, 192, ld));
    t = pool(w, INCEP_AVGPOOL_S1_EXCL_PAD, x, dense(T1, x.C));
    return conv(w, b, "branch_pool", 1, 1, 1, 0, 0, t, part(to, 576, 192, ld));
}

/* Mixed_7a (InceptionD): 1x1 192, 3x3/2 320 | 1x1 192, 1x7, 7x1, 3x3/2 192 | max pool/2. */
static incep_view block_d(walker *w, const char *b, incep_view x, int to) {
    const int ld = 320 + 192 + x.C;
    const int T1 = INCEP_SLOT_T1, T2 = INCEP_SLOT_T2;
    incep_view t;
    t = conv(w, b, "branch3x3_1", 1, 1, 1, 0, 0, x, dense(T1, 192));
    conv(w, b, "branch3x3_2", 3, 3, 2, 0, 0, t, part(to, 0, 320, ld));
    t = conv(w, b, "branch7x7x3_1", 1, 1, 1, 0, 0, x, dense(T1, 192));
    t = conv(w, b, "branch7x7x3_2", 1, 7, 1, 0, 3, t, dense(T2, 192));
    t = conv(w, b, "branch7x7x3_3", 7, 1, 1, 3, 0, t, dense(T1, 192));
    conv(w, b, "branch7x7x3_4", 3, 3, 2, 0, 0, t, part(to, 320, 192, ld));
    return pool(w, INCEP_MAXPOOL_S2, x, part(to, 512, x.C, ld));
}

/* Mixed_7b-c (InceptionE): 1x1 320 | 1x1 384, (1x3 384 | 3x1 384) | 1x1 448, 3x3 384, (1x3 | 3x1 384) | pool
 * (average excluding the padding in 7b, max in 7c), 1x1 192. */
static incep_view block_e(walker *w, const char *b, incep_view x, incep_pool pool_kind, int to) {
    const int ld = 2048;
    const int T1 = INCEP_SLOT_T1, T2 = INCEP_SLOT_T2;
    incep_view t;
    conv(w, b, "branch1x1", 1, 1, 1, 0, 0, x, part(to, 0, 320, ld));
    t = conv(w, b, "branch3x3_1", 1, 1, 1, 0, 0, x, dense(T1, 384));
    conv(w, b, "branch3x3_2a", 1, 3, 1, 0, 1, t, part(to, 320, 384, ld));
    conv(w, b, "branch3x3_2b", 3, 1, 1, 1, 0, t, part(to, 704, 384, ld));
    t = conv(w, b, "branch3x3dbl_1", 1, 1, 1, 0, 0, x, dense(T1, 448));
    t = conv(w, b, "branch3x3dbl_2", 3, 3, 1, 1, 1, t, dense(T2, 384));
    conv(w, b, "branch3x3dbl_3a", 1, 3, 1, 0, 1, t, part(to, 1088, 384, ld));
    conv(w, b, "branch3x3dbl_3b", 3, 1, 1, 1, 0, t, part(to, 1472, 384, ld));
    t = pool(w, pool_kind, x, dense(T1, x.C));
    return conv(w, b, "branch_pool", 1, 1, 1, 0, 0, t, part(to, 1856, 192, ld));
}

/* A block's whole output from its last branch's view: the channel range widened to the concatenation. */
static incep_view whole(incep_view v) { return (incep_view){v.slot, v.H, v.W, v.ld, 0, v.ld}; }

static void walk(walker *w, const float *images, int C, int H, int W, float *features) {
    const int A = INCEP_SLOT_A, B = INCEP_SLOT_B;
    incep_view x = dense(A, 3);
    x.H = x.W = INCEPTION_RES;
    note_slot(w, x);
    if (w->be && w->be->resize(w->be->ctx, images, C, H, W, x)) w->failed = 1;
    x = conv(w, "", "Conv2d_1a_3x3", 3, 3, 2, 0, 0, x, dense(B, 32));
    x = conv(w, "", "Conv2d_2a_3x3", 3, 3, 1, 0, 0, x, dense(A, 32));
    x = conv(w, "", "Conv2d_2b_3x3", 3, 3, 1, 1, 1, x, dense(B, 64));
    x = pool(w, INCEP_MAXPOOL_S2, x, dense(A, 64));
    x = conv(w, "", "Conv2d_3b_1x1", 1, 1, 1, 0, 0, x, dense(B, 80));
    x = conv(w, "", "Conv2d_4a_3x3", 3, 3, 1, 0, 0, x, dense(A, 192));
    x = pool(w, INCEP_MAXPOOL_S2, x, dense(B, 192));
    /* Blocks alternate between slots B and A. */
    x = whole(block_a(w, "Mixed_5b", x, 32, A));
    x = whole(block_a(w, "Mixed_5c", x, 64, B));
    x = whole(block_a(w, "Mixed_5d", x, 64, A));
    x = whole(block_b(w, "Mixed_6a", x, B));
    x = whole(block_c(w, "Mixed_6b", x, 128, A));
    x = whole(block_c(w, "Mixed_6c", x, 160, B));
    x = whole(block_c(w, "Mixed_6d", x, 160, A));
    x = whole(block_c(w, "Mixed_6e", x, 192, B));
    x = whole(block_d(w, "Mixed_7a", x, A));
    x = whole(block_e(w, "Mixed_7b", x, INCEP_AVGPOOL_S1_EXCL_PAD, B));
    x = whole(block_e(w, "Mixed_7c", x, INCEP_MAXPOOL_S1_PAD1, A));
    if (w->be && !w->failed && w->be->mean(w->be->ctx, x, features)) w->failed = 1;
}

void incep_graph_build(incep_graph *g) {
    memset(g, 0, sizeof *g);
    walker w;
    memset(&w, 0, sizeof w);
    w.g = g;
    walk(&w, NULL, 3, INCEPTION_RES, INCEPTION_RES, NULL);
    memcpy(g->slot_floats, w.slot_max, sizeof w.slot_max);
}

int incep_forward(const incep_graph *g, const incep_backend *be, const float *images, int C, int H, int W,
                  float *features) {
    walker w;
    memset(&w, 0, sizeof w);
    w.cg = g;
    w.be = be;
    walk(&w, images, C, H, W, features);
    return w.failed ? -1 : 0;
}

void incep_graph_info(const incep_graph *g, edm2_features_info *info) {
    edm2_features_info i;
    memset(&i, 0, sizeof i);
    i.struct_size = info->struct_size < sizeof i ? info->struct_size : (uint32_t)sizeof i;
    i.dim = INCEPTION_DIM;
    i.input_resolution = INCEPTION_RES;
    i.arena_floats = g->arena_floats;
    i.param_count = g->nparams;
    i.params = g->params;
    i.gflops_per_image = g->gflops;
    memcpy(info, &i, i.struct_size);
}

void incep_prepare(const incep_graph *g, const float *arena, float *wout, float *alpha_beta) {
    for (int i = 0; i < g->nconv; i++) {
        const incep_conv *c = &g->conv[i];
        const float *src = arena + c->w_off;
        float *dst = wout + c->prep_w_off;
        const int taps = c->kh * c->kw;
        for (int o = 0; o < c->cout; o++)
            for (int ci = 0; ci < c->cin; ci++)
                for (int t = 0; t < taps; t++)
                    dst[((size_t)o * taps + t) * c->cin + ci] = src[((size_t)o * c->cin + ci) * taps + t];
        float *alpha = alpha_beta + c->prep_c_off, *beta = alpha + c->cout;
        for (int o = 0; o < c->cout; o++) {
            const float invstd = 1.0f / sqrtf(arena[c->var_off + o] + INCEPTION_BN_EPS);
            alpha[o] = invstd * arena[c->gamma_off + o];
            beta[o] = arena[c->beta_off + o] - arena[c->mean_off + o] * alpha[o];
        }
    }
}
