/* test_gradcheck.c: finite-difference checks of every layer's backward (channels-last CPU layers of the
 * mp_unet plugin): pixel/qkv normalisation, mp_silu, mp_sum, mp_cat, embedding modulation, resampling,
 * clipping, k x k and 1x1 convolutions, fully connected, MPConv weight normalisation with gain, cosine
 * attention, and a whole Block in each flavour. The loss is L = sum(r * y) for a fixed random r. Each
 * backward runs with acc = 0 into NaN-filled buffers and again with acc = 1 (the result must double). Also:
 * the fused forwards equal their compositions bitwise, and the activation workspace's sizing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "attention.h"
#include "block.h"
#include "gemm.h"
#include "forced_weight_norm.h"
#include "mp_conv.h"
#include "mp_ops.h"
#include "test_util.h"

static uint64_t g_stream;

static float *randn(size_t n, float scale) {
    float *x = malloc(n * sizeof(float) + 4);
    g_stream++;
    for (size_t i = 0; i < n; i++) x[i] = scale * edm2_philox_normal(99, g_stream, i);
    return x;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A gradient buffer whose stale contents an overwriting backward (acc = 0) must not read. */
static float *nan_filled(size_t n) {
    float *x = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* After a backward with acc = 0 left g0, running it again with acc = 1 must double it: exactly, or up to
 * rounding where the gradient is itself a sum added term by term (rel). */
static void assert_doubled(const float *g, const float *g0, size_t n, float rel) {
    for (size_t i = 0; i < n; i++) assert_true(fabsf(g[i] - 2.0f * g0[i]) <= rel * fabsf(g0[i]));
}

static float *copy_of(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float) + 4);
    memcpy(y, x, n * sizeof(float));
    return y;
}

typedef double (*loss_fn)(void *ctx);

/* Compares analytic g with central differences of f along up to 40 coordinates of x. */
static void check_grad(const char *what, float *x, const float *g, size_t n, loss_fn f, void *ctx, float h) {
    double gscale = 0;
    for (size_t i = 0; i < n; i++) gscale += fabs(g[i]);
    gscale = gscale / n + 1e-6;
    size_t stride = n > 40 ? n / 40 : 1;
    for (size_t k = 0; k < n; k += stride) {
        size_t i = (k * 7 + 3) % n;
        float v = x[i];
        x[i] = v + h;
        double lp = f(ctx);
        x[i] = v - h;
        double lm = f(ctx);
        x[i] = v;
        double fd = (lp - lm) / (2.0 * h);
        double tol = 2e-2 * (fabs(g[i]) + gscale);
        if (fabs(fd - g[i]) > tol)
            fprintf(stderr, "%s: d/dx[%zu]: finite difference %.6g, backward %.6g\n", what, i, fd, (double)g[i]);
        assert_true(fabs(fd - g[i]) <= tol);
    }
}

/* ---- Element-wise layers --------------------------------------------------------------------- */

typedef struct ew_ctx {
    int op;
    float *a, *b, *y, *r, *aux;
    size_t n, P;
    int C, Cb, N, H, W;
} ew_ctx;

enum { OP_NORM, OP_SILU, OP_SUM, OP_CAT, OP_MODSILU, OP_DOWN, OP_UP, OP_CLIP };

static size_t ew_out_n(const ew_ctx *c) {
    switch (c->op) {
    case OP_CAT: return c->P * (size_t)(c->C + c->Cb);
    case OP_DOWN: return c->n / 4;
    case OP_UP: return c->n * 4;
    default: return c->n;
    }
}

static double ew_loss(void *vc) {
    ew_ctx *c = vc;
    switch (c->op) {
    case OP_NORM: normalize_rows_forward(c->y, c->aux, c->a, c->P, c->C, c->C, c->C); break;
    case OP_SILU: mp_silu_forward(c->y, c->a, c->n); break;
    case OP_SUM: mp_sum_forward(c->y, c->a, c->b, 0.3f, c->n); break;
    case OP_CAT: mp_cat_forward(c->y, c->a, c->C, c->b, c->Cb, c->P, 0.4f); break;
    case OP_MODSILU: modulate_silu_forward(c->y, c->a, c->b, c->N, (size_t)c->H * c->W, c->C); break;
    case OP_DOWN: resample_down_forward(c->y, c->a, c->N, c->H, c->W, c->C); break;
    case OP_UP: resample_up_forward(c->y, c->a, c->N, c->H, c->W, c->C); break;
    case OP_CLIP: mp_sum_clip_forward(c->y, NULL, c->a, c->a, 0.0f, 1.0f, c->n); break; /* t = 0: clip(a) */
    }
    return dot(c->y, c->r, ew_out_n(c));
}

/* Backward of the element-wise layer c->op: overwrites da/db (acc = 0) or accumulates into them. */
static void ew_backward(ew_ctx *pc, float *da, float *db, int acc) {
    ew_ctx c = *pc;
    switch (c.op) {
    case OP_NORM: normalize_rows_backward(da, c.r, c.a, c.aux, c.P, c.C, c.C, c.C, acc); break;
    case OP_SILU: mp_silu_backward(da, c.r, c.a, c.n, acc); break;
    case OP_SUM: mp_sum_backward(da, db, c.r, 0.3f, c.n, acc); break;
    case OP_CAT: mp_cat_backward(da, db, c.r, c.C, c.Cb, c.P, 0.4f, acc); break;
    case OP_MODSILU: modulate_silu_backward(da, db, c.r, c.a, c.b, c.N, (size_t)c.H * c.W, c.C, acc); break;
    case OP_DOWN: resample_down_backward(da, c.r, c.N, c.H, c.W, c.C, acc); break;
    case OP_UP: resample_up_backward(da, c.r, c.N, c.H, c.W, c.C, acc); break;
    case OP_CLIP: clip_backward(da, c.r, c.a, 1.0f, c.n, acc); break;
    }
}

static void run_elementwise(int op, const char *what) {
    ew_ctx c = {op, NULL, NULL, NULL, NULL, NULL, 0, 0, 4, 3, 2, 4, 6};
    c.P = (size_t)c.N * c.H * c.W;
    c.n = c.P * c.C;
    c.a = randn(c.n, 1.0f);
    c.b = randn(op == OP_MODSILU ? (size_t)c.N * c.C : op == OP_CAT ? c.P * c.Cb : c.n, 1.0f);
    size_t on = ew_out_n(&c);
    c.y = malloc(on * sizeof(float));
    c.r = randn(on, 1.0f);
    c.aux = malloc(c.P * sizeof(float));
    if (op == OP_CLIP)
        for (size_t i = 0; i < c.n; i++)
            if (fabsf(fabsf(c.a[i]) - 1.0f) < 0.05f) c.a[i] = 0.5f; /* keep away from the kink */
    ew_loss(&c);
    size_t nb = op == OP_MODSILU ? (size_t)c.N * c.C : op == OP_CAT ? c.P * c.Cb : c.n;
    float *da = nan_filled(c.n), *db = nan_filled(nb);
    ew_backward(&c, da, db, 0);
    check_grad(what, c.a, da, c.n, ew_loss, &c, 1e-2f);
    if (op == OP_SUM || op == OP_CAT || op == OP_MODSILU) check_grad(what, c.b, db, nb, ew_loss, &c, 1e-2f);
    float *da0 = copy_of(da, c.n), *db0 = copy_of(db, nb);
    ew_loss(&c); /* saved state as for the first backward (check_grad left it perturbed) */
    ew_backward(&c, da, db, 1);
    assert_doubled(da, da0, c.n, 0.0f);
    if (op == OP_SUM || op == OP_CAT || op == OP_MODSILU) assert_doubled(db, db0, nb, op == OP_MODSILU ? 1e-5f : 0.0f);
    free(da0), free(db0);
    free(c.a), free(c.b), free(c.y), free(c.r), free(c.aux), free(da), free(db);
}

static void test_pixel_norm(void **s) { (void)s; run_elementwise(OP_NORM, "pixel_norm"); }
static void test_mp_silu(void **s) { (void)s; run_elementwise(OP_SILU, "mp_silu"); }
static void test_mp_sum(void **s) { (void)s; run_elementwise(OP_SUM, "mp_sum"); }
static void test_mp_cat(void **s) { (void)s; run_elementwise(OP_CAT, "mp_cat"); }
static void test_modulate_silu(void **s) { (void)s; run_elementwise(OP_MODSILU, "modulate_silu"); }
static void test_resample(void **s) {
    (void)s;
    run_elementwise(OP_DOWN, "resample_down");
    run_elementwise(OP_UP, "resample_up");
}
static void test_clip(void **s) { (void)s; run_elementwise(OP_CLIP, "clip"); }

/* The fused forwards are bitwise the compositions they replace. */
static void test_fused_forwards(void **s) {
    (void)s;
    const int N = 3, C = 5;
    const size_t HW = 7, n = (size_t)N * HW * C;
    const uint64_t stream = g_stream; /* leave the other tests' random numbers as they were */
    float *x = randn(n, 2.0f), *b = randn(n, 2.0f), *c = randn((size_t)N * C, 1.0f);
    g_stream = stream;
    float *y = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float)), *t = malloc(n * sizeof(float));
    modulate_silu_forward(y, x, c, N, HW, C);
    for (size_t i = 0; i < n; i++) t[i] = x[i] * c[(i / (HW * C)) * C + i % C];
    mp_silu_forward(ref, t, n);
    assert_memory_equal(y, ref, n * sizeof(float));
    size_t clipped = mp_sum_clip_forward(y, t, x, b, 0.3f, 1.5f, n), expect = 0;
    mp_sum_forward(ref, x, b, 0.3f, n);
    assert_memory_equal(t, ref, n * sizeof(float)); /* the unclipped sum */
    for (size_t i = 0; i < n; i++) {
        float v = ref[i] > 1.5f ? 1.5f : ref[i] < -1.5f ? -1.5f : ref[i];
        expect += v != ref[i];
        assert_true(y[i] == v);
    }
    assert_true(expect > 0 && clipped == expect);
    free(x), free(b), free(c), free(y), free(ref), free(t);
}

/* ---- Convolutions and MPConv weights ---------------------------------------------------------- */

typedef struct conv_ctx {
    float *x, *w, *w_hat, *norm, *gain, *y, *r;
    conv_scratch sc;
    int N, H, W, C, O, k, linear;
} conv_ctx;

static size_t conv_out_n(const conv_ctx *c) { return (size_t)c->N * c->H * c->W * c->O; }

static double conv_loss(void *vc) {
    conv_ctx *c = vc;
    mpconv_weight_forward(c->w_hat, c->norm, c->w, *c->gain, c->O, c->C, c->k);
    if (c->linear) linear_forward(c->y, c->x, c->w_hat, (size_t)c->N * c->H * c->W, c->C, c->O, 0, &c->sc);
    else conv2d_forward(c->y, c->x, c->w_hat, &c->sc, c->N, c->H, c->W, c->C, c->O, c->k);
    return dot(c->y, c->r, conv_out_n(c));
}

static void run_conv_shape(int k, int linear, const char *what, int H, int W) {
    conv_ctx c = {0};
    c.N = 2, c.H = H, c.W = W, c.C = 3, c.O = 4, c.k = k, c.linear = linear;
    size_t nx = (size_t)c.N * c.H * c.W * c.C, nw = (size_t)c.O * c.C * k * k;
    float gain = 0.7f;
    c.gain = &gain;
    c.x = randn(nx, 1.0f);
    c.w = randn(nw, 1.0f);
    c.w_hat = malloc(nw * sizeof(float));
    c.norm = malloc(c.O * sizeof(float));
    c.y = malloc(conv_out_n(&c) * sizeof(float));
    c.r = randn(conv_out_n(&c), 1.0f);
    size_t npack = 0, nwt = 0, npart = 0;
    conv_scratch_need(c.C, c.O, k, &npack, &nwt, &npart);
    c.sc.pack = aligned_alloc(64, (npack * 4 + 63) / 64 * 64);
    c.sc.wt = malloc((nwt + 1) * sizeof(float));
    c.sc.part = malloc(npart * sizeof(float));
    conv_loss(&c);
    float *dx = nan_filled(nx), *dwh = calloc(nw, sizeof(float)), *dw = calloc(nw, sizeof(float));
    float dgain = 0;
    const size_t P = (size_t)c.N * c.H * c.W;
    if (linear) linear_backward(dx, dwh, c.r, c.x, c.w_hat, P, c.C, c.O, &c.sc, 0);
    else conv2d_backward(dx, dwh, c.r, c.x, c.w_hat, &c.sc, c.N, c.H, c.W, c.C, c.O, k, 0);
    mpconv_weight_backward(dw, &dgain, dwh, c.w, c.norm, gain, c.O, c.C, k);
    check_grad(what, c.x, dx, nx, conv_loss, &c, 1e-2f);
    check_grad(what, c.w, dw, nw, conv_loss, &c, 1e-2f);
    check_grad(what, &gain, &dgain, 1, conv_loss, &c, 1e-2f);
    /* Again with acc = 1: dx and the prepared-weight gradient (which always accumulates) double. */
    float *dx0 = copy_of(dx, nx), *dwh0 = copy_of(dwh, nw);
    conv_loss(&c);
    if (linear) linear_backward(dx, dwh, c.r, c.x, c.w_hat, P, c.C, c.O, &c.sc, 1);
    else conv2d_backward(dx, dwh, c.r, c.x, c.w_hat, &c.sc, c.N, c.H, c.W, c.C, c.O, k, 1);
    assert_doubled(dx, dx0, nx, 0.0f);
    assert_doubled(dwh, dwh0, nw, 1e-5f);
    free(dx0), free(dwh0);
    free(c.x), free(c.w), free(c.w_hat), free(c.norm), free(c.y), free(c.r), free(c.sc.pack), free(c.sc.wt), free(c.sc.part), free(dx), free(dwh), free(dw);
}

static void run_conv(int k, int linear, const char *what) { run_conv_shape(k, linear, what, 5, 4); }

static void test_conv3x3(void **s) {
    (void)s;
    run_conv(3, 0, "conv3x3");
    /* Images with no interior pixels, or a single row or column: every tap is a border case. */
    run_conv_shape(3, 0, "conv3x3 1x1", 1, 1);
    run_conv_shape(3, 0, "conv3x3 2x3", 2, 3);
    run_conv_shape(3, 0, "conv3x3 1x5", 1, 5);
}
static void test_conv1x1(void **s) { (void)s; run_conv(1, 0, "conv1x1"); }
static void test_linear(void **s) { (void)s; run_conv(1, 1, "linear"); }

static void test_force_normalize(void **s) {
    (void)s;
    float *w = randn(3 * 8, 3.0f);
    forced_weight_norm(w, 3, 8);
    for (int o = 0; o < 3; o++) {
        double ss = 0;
        for (int i = 0; i < 8; i++) ss += (double)w[o * 8 + i] * w[o * 8 + i];
        assert_float_equal(sqrt(ss / 8), 1.0, 1e-3); /* RMS 1 (up to eps) */
    }
    free(w);
}

/* ---- Attention ---------------------------------------------------------------------------------- */

typedef struct attn_ctx {
    float *qkv, *y, *qkvn, *norm, *attn, *r;
    int N, HW, heads, cph;
} attn_ctx;

static double attn_loss(void *vc) {
    attn_ctx *c = vc;
    if (attention_forward(c->y, c->qkvn, c->norm, c->attn, c->qkv, c->N, c->HW, c->heads, c->cph)) return NAN;
    return dot(c->y, c->r, (size_t)c->N * c->HW * c->heads * c->cph);
}

static void test_attention(void **s) {
    (void)s;
    attn_ctx c = {0};
    c.N = 2, c.HW = 6, c.heads = 2, c.cph = 4;
    size_t C = (size_t)c.heads * c.cph, nq = (size_t)c.N * c.HW * 3 * C, ny = (size_t)c.N * c.HW * C;
    c.qkv = randn(nq, 1.0f);
    c.y = malloc(ny * sizeof(float));
    c.qkvn = malloc(nq * sizeof(float));
    c.norm = malloc((size_t)c.N * c.heads * 3 * c.HW * sizeof(float));
    c.attn = malloc((size_t)c.N * c.heads * c.HW * c.HW * sizeof(float));
    c.r = randn(ny, 1.0f);
    attn_loss(&c);
    float *dq = nan_filled(nq);
    assert_int_equal(attention_backward(dq, c.r, c.qkv, c.qkvn, c.norm, c.attn, c.N, c.HW, c.heads, c.cph, 0), 0);
    check_grad("attention", c.qkv, dq, nq, attn_loss, &c, 1e-2f);
    float *dq0 = copy_of(dq, nq);
    attn_loss(&c);
    assert_int_equal(attention_backward(dq, c.r, c.qkv, c.qkvn, c.norm, c.attn, c.N, c.HW, c.heads, c.cph, 1), 0);
    assert_doubled(dq, dq0, nq, 0.0f);
    free(dq0);
    free(c.qkv), free(c.y), free(c.qkvn), free(c.norm), free(c.attn), free(c.r), free(dq);
}

/* ---- Workspace ---------------------------------------------------------------------------------- */

/* The first pass sizes the workspace (overflow blocks); the next pass runs in one block of that size. */
static void test_workspace(void **s) {
    (void)s;
    workspace ws;
    memset(&ws, 0, sizeof ws);
    for (int pass = 0; pass < 2; pass++) {
        float *a = ws_alloc(&ws, 100), *b = ws_zeros(&ws, 1000);
        assert_non_null(a), assert_non_null(b);
        for (int i = 0; i < 1000; i++) assert_true(b[i] == 0.0f);
        for (int i = 0; i < 100; i++) a[i] = 1.0f;
        assert_int_equal(ws.need, 128 + 1024); /* 64-float granules */
        assert_int_equal(ws.nextra, pass == 0 ? 2 : 0);
        if (pass == 1) assert_ptr_equal(a, ws.base), assert_ptr_equal(b, ws.base + 128);
        assert_int_equal(ws_reset(&ws), 0);
        assert_int_equal(ws.cap, 128 + 1024);
    }
    ws_free(&ws);
}

/* ---- A whole Block ------------------------------------------------------------------------------ */

typedef struct block_fix {
    block_def b;
    float *params, *w_hat, *w_norm, *emb, *x, *r;
    conv_scratch sc;
    size_t nparams;
    workspace ws, bws;
    int N;
} block_fix;

static weight_ref make_w(size_t *off, size_t *noff, int O, int C, int k) {
    weight_ref w = {1, O, C, k, *off, *noff};
    *off += (size_t)O * C * k * k;
    *noff += (size_t)O;
    return w;
}

static void prepare(block_fix *f) {
    const weight_ref *ws[] = {&f->b.res0, &f->b.res1, &f->b.skip, &f->b.qkv, &f->b.proj, &f->b.emb_linear};
    for (size_t i = 0; i < 6; i++)
        if (ws[i]->present)
            mpconv_weight_forward(f->w_hat + ws[i]->offset, f->w_norm + ws[i]->norm_offset, f->params + ws[i]->offset,
                                  ws[i] == &f->b.emb_linear ? f->params[f->b.emb_gain] : 1.0f, ws[i]->O, ws[i]->C, ws[i]->k);
}

static double block_loss(void *vc) {
    block_fix *f = vc;
    prepare(f);
    ws_reset(&f->ws);
    block_ctx ctx = {f->params, f->w_hat, f->emb, f->N, 1, 0, 0, 0, &f->sc, &f->ws};
    float *out = block_forward(&f->b, &ctx, f->x, NULL);
    return dot(out, f->r, (size_t)f->N * f->b.H * f->b.W * f->b.cout);
}

static void run_block_dropout(int enc, int resample, int cin, int cout, int heads, float dropout,
                              const char *what) {
    block_fix f;
    memset(&f, 0, sizeof f);
    f.N = 2;
    block_def *b = &f.b;
    b->enc = enc, b->resample = resample, b->cin = cin, b->cout = cout, b->cemb = 5;
    b->Hin = b->Win = 4;
    b->H = b->W = resample == RESAMPLE_DOWN ? 2 : resample == RESAMPLE_UP ? 8 : 4;
    b->heads = heads, b->cph = heads ? cout / heads : 0;
    b->res_balance = 0.3f, b->attn_balance = 0.3f, b->clip_act = 256, b->dropout = dropout;
    size_t off = 1, noff = 0;
    b->emb_gain = 0;
    b->res0 = make_w(&off, &noff, cout, enc ? cout : cin, 3);
    b->emb_linear = make_w(&off, &noff, cout, 5, 1);
    b->res1 = make_w(&off, &noff, cout, cout, 3);
    if (cin != cout) b->skip = make_w(&off, &noff, cout, cin, 1);
    if (heads) b->qkv = make_w(&off, &noff, 3 * cout, cout, 1), b->proj = make_w(&off, &noff, cout, cout, 1);
    f.nparams = off;
    f.params = randn(off, 1.0f);
    f.params[0] = 0.8f; /* emb_gain */
    f.w_hat = malloc(off * sizeof(float));
    f.w_norm = malloc(noff * sizeof(float));
    f.emb = randn((size_t)f.N * 5, 1.0f);
    size_t nin = (size_t)f.N * b->Hin * b->Win * cin, nout = (size_t)f.N * b->H * b->W * cout;
    f.x = randn(nin, 1.0f);
    f.r = randn(nout, 1.0f);
    int cmax = cin > cout ? cin : cout;
    size_t npack = 0, nwt = 0, npart = 0;
    conv_scratch_need(cmax, 3 * cmax, 3, &npack, &nwt, &npart);
    conv_scratch_need(3 * cmax, cmax, 3, &npack, &nwt, &npart);
    f.sc.pack = aligned_alloc(64, (npack * 4 + 63) / 64 * 64);
    f.sc.wt = malloc((nwt + 1) * sizeof(float));
    f.sc.part = malloc(npart * sizeof(float));
    /* Analytic: forward with saved activations, backward. */
    prepare(&f);
    block_saved saved;
    block_ctx ctx = {f.params, f.w_hat, f.emb, f.N, 1, 0, 0, 0, &f.sc, &f.ws};
    float *out = block_forward(b, &ctx, f.x, &saved);
    assert_non_null(out);
    float *dout = malloc(nout * sizeof(float));
    memcpy(dout, f.r, nout * sizeof(float));
    float *demb = calloc((size_t)f.N * 5, sizeof(float));
    float *dwh = calloc(off, sizeof(float)), *dp = calloc(off, sizeof(float));
    float *dx = block_backward(b, &ctx, &saved, dout, demb, dwh, &f.bws);
    assert_non_null(dx);
    const weight_ref *wl[] = {&b->res0, &b->res1, &b->skip, &b->qkv, &b->proj, &b->emb_linear};
    for (size_t i = 0; i < 6; i++)
        if (wl[i]->present)
            mpconv_weight_backward(dp + wl[i]->offset, wl[i] == &b->emb_linear ? &dp[0] : NULL, dwh + wl[i]->offset,
                                   f.params + wl[i]->offset, f.w_norm + wl[i]->norm_offset,
                                   wl[i] == &b->emb_linear ? f.params[0] : 1.0f, wl[i]->O, wl[i]->C, wl[i]->k);
    check_grad(what, f.x, dx, nin, block_loss, &f, 1e-2f);
    check_grad(what, f.emb, demb, (size_t)f.N * 5, block_loss, &f, 1e-2f);
    check_grad(what, f.params, dp, off, block_loss, &f, 1e-2f);
    ws_free(&f.ws), ws_free(&f.bws);
    free(f.params), free(f.w_hat), free(f.w_norm), free(f.emb), free(f.x), free(f.r), free(f.sc.pack), free(f.sc.wt), free(f.sc.part);
    free(dout), free(demb), free(dwh), free(dp);
}

static void run_block(int enc, int resample, int cin, int cout, int heads, const char *what) {
    run_block_dropout(enc, resample, cin, cout, heads, 0.0f, what);
}

static void test_block_enc_down(void **s) { (void)s; run_block(1, RESAMPLE_DOWN, 3, 3, 0, "block enc down"); }
static void test_block_enc_skip_attn(void **s) { (void)s; run_block(1, RESAMPLE_KEEP, 3, 4, 2, "block enc skip+attn"); }
static void test_block_dec_up(void **s) { (void)s; run_block(0, RESAMPLE_UP, 4, 4, 0, "block dec up"); }
static void test_block_dec_skip_attn(void **s) { (void)s; run_block(0, RESAMPLE_KEEP, 6, 4, 1, "block dec skip+attn"); }
/* Training with dropout: a fixed mask (same seed in every pass), so finite differences see it too. */
static void test_block_dropout(void **s) {
    (void)s;
    run_block_dropout(0, RESAMPLE_KEEP, 4, 4, 0, 0.3f, "block dropout");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pixel_norm),      cmocka_unit_test(test_mp_silu),
        cmocka_unit_test(test_mp_sum),          cmocka_unit_test(test_mp_cat),
        cmocka_unit_test(test_modulate_silu),  cmocka_unit_test(test_resample),
        cmocka_unit_test(test_clip), cmocka_unit_test(test_fused_forwards), cmocka_unit_test(test_workspace),            cmocka_unit_test(test_conv3x3),
        cmocka_unit_test(test_conv1x1),         cmocka_unit_test(test_linear),
        cmocka_unit_test(test_force_normalize), cmocka_unit_test(test_attention),
        cmocka_unit_test(test_block_enc_down),  cmocka_unit_test(test_block_enc_skip_attn),
        cmocka_unit_test(test_block_dec_up),    cmocka_unit_test(test_block_dec_skip_attn),
        cmocka_unit_test(test_block_dropout),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
