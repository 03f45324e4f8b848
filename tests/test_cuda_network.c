/* test_cuda_network.c: the CUDA plugins mp_unet, edm2 and adam against their CPU builds on one small network
 * with every kind of module (labels, three levels, skip convolutions, attention at two resolutions,
 * dropout): the initial arena and forced weight normalisation (bitwise), the evaluation and training
 * forward and the backward (within float32 rounding of another product order: 2e-4 of each tensor's
 * largest value), the same training step twice on the GPU (bitwise), the losses edm2 and edm with their
 * own noise draw,
 * Adam on the same gradients with a NaN among them (bitwise), `check-ref --backend cuda` against the
 * PyTorch reference, and the bf16/fp16 precisions against the CPU's float32 (relative L2 error of D and of
 * every gradient tensor within stated bounds, and above float32 rounding: the precision is really used;
 * bf16 with its 3x3 weight gradients from cuDNN and as products over padded copies, each forced by
 * EDM2_CUDNN_WGRAD; fp16 as timed),
 * evaluation and training passes replayed from CUDA graphs (bitwise the eager ones), and the bf16 cuDNN
 * plans' reports (each kind's algorithm run as planned and timed), the plans kept in and taken from
 * EDM2_CUDNN_PLANS's file, the evaluation's convolutions with their epilogues fused (EDM2_CUDNN_FUSE), and the
 * one-line errors for bad cuDNN settings in the environment and bad lines in that file. Exits 77 (skipped,
 * with the reason) without a CUDA device. */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "edm2/edm2_philox.h"
#include "log.h"
#include "net_fixture.h"
#include "test_util.h"

static plugin_registry g_reg;
static runtime g_rt[2]; /* 0: CPU, 1: CUDA */
static const edm2_backend_id k_backend[2] = {EDM2_BACKEND_CPU, EDM2_BACKEND_CUDA};
static net_instance g_net[2];
static net_instance g_lp[3]; /* CUDA with precision = bf16 (EDM2_CUDNN_WGRAD=cudnn), fp16, bf16 (=gemm) */
static net_instance g_nd;    /* CUDA, float32, without dropout (its training passes run from CUDA graphs) */
static const char *const k_lp_name[3] = {"bf16", "fp16", "bf16, weight gradients as products"};

static const char *const k_net[] = {"img_resolution=16", "img_channels=3",   "label_dim=5",          "model_channels=16",
                                    "channel_mult=1,2,3", "num_blocks=2",    "attn_resolutions=8",   "channels_per_head=16",
                                    "dropout=0.1",       "logvar_channels=8", NULL};
#define NB 5 /* batch */
#define R 16
#define CH 3
#define L 5
#define E ((size_t)NB * CH * R * R)

static const plugin_rec *find(edm2_kind kind, const char *id, int k) { return registry_find(&g_reg, kind, id, k_backend[k]); }

static float *host_copy(int k, const float *p, size_t n) {
    float *h = malloc((n + 1) * sizeof(float));
    edm2_err err;
    assert_int_equal(rt_download(&g_rt[k], h, p, n, &err), 0);
    return h;
}

static float *dev_copy(int k, const float *h, size_t n) {
    edm2_err err;
    float *d = rt_alloc(&g_rt[k], n, &err);
    assert_non_null(d);
    assert_int_equal(rt_upload(&g_rt[k], d, h, n, &err), 0);
    return d;
}

/* max |a - b| over n values, relative to 1 + max |a|; reports what and where. */
static double rel_diff(const char *what, const float *a, const float *b, size_t n) {
    double m = 0, s = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d, at = i;
        s = fmax(s, fabs((double)a[i]));
    }
    double r = m / (s > 0 ? s : 1);
    if (r > 2e-4) fprintf(stderr, "%s: max diff %g at %zu (largest value %g)\n", what, m, at, s);
    return r;
}

static void bitwise(const char *what, const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    if (bad) fprintf(stderr, "%s: %zu of %zu values differ\n", what, bad, n);
    assert_int_equal(bad, 0);
}

/* Both networks' arenas set to the CPU's initial values with every gain 0.7 (so every path carries signal). */
static float *set_params(void) {
    net_instance *c = &g_net[0];
    fixture_init_with_gains(c, 7, 0.7f);
    edm2_err err;
    assert_int_equal(rt_upload(&g_rt[1], g_net[1].params, c->params, c->info.arena_floats, &err), 0);
    return c->params;
}

static void inputs(float *x, float *sigma, float *labels) {
    for (size_t i = 0; i < E; i++) x[i] = 0.8f * edm2_philox_normal(5, 1, i);
    for (int n = 0; n < NB; n++) sigma[n] = expf(-0.4f + 1.2f * edm2_philox_normal(5, 2, (uint64_t)n));
    memset(labels, 0, sizeof(float) * NB * L);
    for (int n = 0; n < NB; n++) labels[n * L + (n * 3) % L] = 1.0f;
}

static void test_init_and_weight_norm(void **state) {
    (void)state;
    const size_t A = g_net[0].info.arena_floats;
    for (int k = 0; k < 2; k++) assert_int_equal(g_net[k].vt->init_params(g_net[k].net, g_net[k].params, 99), EDM2_OK);
    float *gpu = host_copy(1, g_net[1].params, A);
    bitwise("init_params", g_net[0].params, gpu, A);
    free(gpu);
    for (int k = 0; k < 2; k++) assert_int_equal(g_net[k].vt->normalize_weights(g_net[k].net, g_net[k].params), EDM2_OK);
    gpu = host_copy(1, g_net[1].params, A);
    bitwise("normalize_weights", g_net[0].params, gpu, A);
    free(gpu);
}

/* Forward (eval, then training with dropout) and backward of network ni on backend k; D[2E] holds the two
 * forwards' outputs, grads_out the gradient arena. */
static void forward_backward_of(net_instance *ni, int k, const float *hx, const float *hs, const float *hl,
                                const float *hdD, const float *hdlv, float *D, float *lv, float *grads_out) {
    const size_t A = ni->info.arena_floats;
    edm2_err err;
    float *x = dev_copy(k, hx, E), *s = dev_copy(k, hs, NB), *lab = dev_copy(k, hl, (size_t)NB * L);
    float *dD = dev_copy(k, hdD, E), *dlv = dev_copy(k, hdlv, NB);
    float *Dd = rt_alloc(&g_rt[k], E, &err), *lvd = rt_alloc(&g_rt[k], NB, &err), *g = rt_alloc(&g_rt[k], A, &err);
    edm2_forward_args fa;
    memset(&fa, 0, sizeof fa);
    fa.struct_size = sizeof fa;
    fa.params = ni->params, fa.x = x, fa.sigma = s, fa.labels = lab, fa.N = NB, fa.D = Dd, fa.logvar = lvd;
    assert_int_equal(ni->vt->forward(ni->net, &fa), EDM2_OK);
    assert_int_equal(rt_download(&g_rt[k], D, Dd, E, &err), 0);
    assert_int_equal(rt_download(&g_rt[k], lv, lvd, NB, &err), 0);
    fa.training = 1, fa.dropout_rng = (edm2_rng){31, 4, 1000};
    assert_int_equal(ni->vt->forward(ni->net, &fa), EDM2_OK);
    assert_int_equal(ni->vt->backward(ni->net, ni->params, dD, dlv, g), EDM2_OK);
    assert_int_equal(rt_download(&g_rt[k], D + E, Dd, E, &err), 0); /* the training forward's D after the eval one */
    assert_int_equal(rt_download(&g_rt[k], grads_out, g, A, &err), 0);
    float *all[] = {x, s, lab, dD, dlv, Dd, lvd, g};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) rt_free(&g_rt[k], all[i]);
}

static void forward_backward(int k, const float *hx, const float *hs, const float *hl, const float *hdD,
                             const float *hdlv, float *D, float *lv, float *grads_out) {
    forward_backward_of(&g_net[k], k, hx, hs, hl, hdD, hdlv, D, lv, grads_out);
}

/* Inputs and output gradients of the forward/backward tests. */
static void test_data(float *x, float *sigma, float *labels, float *dD, float *dlv) {
    inputs(x, sigma, labels);
    for (size_t i = 0; i < E; i++) dD[i] = 1e-3f * edm2_philox_normal(6, 1, i);
    for (int n = 0; n < NB; n++) dlv[n] = 0.1f * edm2_philox_normal(6, 2, (uint64_t)n);
}

static void test_forward_backward(void **state) {
    (void)state;
    set_params();
    const size_t A = g_net[0].info.arena_floats;
    float *x = malloc(E * sizeof(float)), sigma[NB], labels[NB * L], *dD = malloc(E * sizeof(float)), dlv[NB];
    test_data(x, sigma, labels, dD, dlv);
    float *D[2], lv[2][NB], *g[2];
    for (int k = 0; k < 2; k++) {
        D[k] = malloc(2 * E * sizeof(float)), g[k] = calloc(A + 1, sizeof(float));
        forward_backward(k, x, sigma, labels, dD, dlv, D[k], lv[k], g[k]);
    }
    assert_true(rel_diff("eval D", D[0], D[1], E) <= 2e-4);
    assert_true(rel_diff("eval logvar", lv[0], lv[1], NB) <= 2e-4);
    assert_true(rel_diff("training D (dropout)", D[0] + E, D[1] + E, E) <= 2e-4);
    /* Dropout is on: the training forward differs from the evaluation one. */
    assert_true(rel_diff("eval vs training (must differ)", D[0], D[0] + E, E) > 1e-3);
    int worst = 0;
    for (size_t i = 0; i < g_net[0].info.param_count; i++) {
        const edm2_param_desc *d = &g_net[0].info.params[i];
        double r = rel_diff(d->name, g[0] + d->offset, g[1] + d->offset, d->numel);
        worst |= !(r <= 2e-4);
        size_t nonzero = 0; /* every trained tensor receives a gradient: every path of the network is exercised */
        for (size_t j = 0; j < d->numel; j++) nonzero += g[0][d->offset + j] != 0;
        if (d->flags & EDM2_PARAM_TRAINED) assert_true(nonzero > 0);
    }
    assert_false(worst);
    /* The same step again on the GPU: bitwise the same gradients. */
    float *again = calloc(A + 1, sizeof(float));
    forward_backward(1, x, sigma, labels, dD, dlv, D[0], lv[0], again);
    bitwise("GPU gradients, second run", g[1], again, A);
    free(again);
    for (int k = 0; k < 2; k++) free(D[k]), free(g[k]);
    free(x), free(dD);
}

/* Loss `id` on backend k with its own draw of sigma and noise: the objective, the per-element loss
 * (host copy in *loss_out) and the gradient arena (device memory). */
static float *loss_on(int k, const char *id, const float *y, const float *labels, double *obj, float **loss_out) {
    const size_t A = g_net[k].info.arena_floats;
    const plugin_rec *lr = find(EDM2_KIND_LOSS, id, k);
    assert_non_null(lr);
    cfg c = {0};
    config_view v;
    fixture_config(&c, &v, "loss", lr, NULL);
    const edm2_loss_vtable *lvt = lr->desc->vtable;
    edm2_loss *loss = NULL;
    assert_int_equal(lvt->create(&g_rt[k].services, &v.api, &g_rt[k].ops, &loss), EDM2_OK);
    cfg_free(&c);
    edm2_err err;
    float *yd = dev_copy(k, y, E), *ld = dev_copy(k, labels, (size_t)NB * L), *lo = rt_alloc(&g_rt[k], E, &err);
    float *g = rt_alloc(&g_rt[k], A, &err);
    edm2_loss_batch b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    b.y = yd, b.labels = ld, b.N = NB, b.batch_total = 2 * NB, b.rng = (edm2_rng){3, 9, 500};
    b.dropout_rng = (edm2_rng){3, 10, 0}, b.loss_out = lo;
    assert_int_equal(lvt->compute(loss, net_ref(&g_net[k]), g_net[k].params, g, &b, obj), EDM2_OK);
    *loss_out = host_copy(k, lo, E);
    lvt->destroy(loss);
    rt_free(&g_rt[k], yd), rt_free(&g_rt[k], ld), rt_free(&g_rt[k], lo);
    return g;
}

/* Both losses on both backends, then Adam on the CPU's edm2 gradients (with a NaN) on both. */
static void test_loss_and_adam(void **state) {
    (void)state;
    float *p0 = set_params();
    const size_t A = g_net[0].info.arena_floats;
    float *y = malloc(E * sizeof(float)), sigma[NB], labels[NB * L];
    inputs(y, sigma, labels);
    float *hg[2], *hloss[2];
    double obj[2];
    edm2_err err;
    edm2_optimizer *opt[2];
    const edm2_optimizer_vtable *ovt[2];
    float *g[2];
    for (int k = 0; k < 2; k++) { /* plain EDM first: its gradients are compared, then dropped */
        g[k] = loss_on(k, "edm", y, labels, &obj[k], &hloss[k]);
        hg[k] = host_copy(k, g[k], A);
        rt_free(&g_rt[k], g[k]);
    }
    assert_true(fabs(obj[0] - obj[1]) <= 1e-5 * fabs(obj[0]));
    assert_true(rel_diff("edm: per-element loss", hloss[0], hloss[1], E) <= 2e-4);
    assert_true(rel_diff("edm: gradients", hg[0], hg[1], A) <= 2e-4);
    for (int k = 0; k < 2; k++) free(hg[k]), free(hloss[k]);
    for (int k = 0; k < 2; k++) {
        g[k] = loss_on(k, "edm2", y, labels, &obj[k], &hloss[k]);
        hg[k] = host_copy(k, g[k], A);
        const plugin_rec *orc = find(EDM2_KIND_OPTIMIZER, "adam", k);
        assert_non_null(orc);
        cfg c = {0};
        config_view v;
        fixture_config(&c, &v, "optimizer", orc, (const char *const[]){"rampup_Mimg=0", "ref_lr=0.05", NULL});
        ovt[k] = orc->desc->vtable;
        assert_int_equal(ovt[k]->create(&g_rt[k].services, &v.api, &g_rt[k].ops, &g_net[k].info, &opt[k]), EDM2_OK);
        cfg_free(&c);
    }
    assert_true(fabs(obj[0] - obj[1]) <= 1e-5 * fabs(obj[0]));
    assert_true(rel_diff("per-element loss", hloss[0], hloss[1], E) <= 2e-4);
    assert_true(rel_diff("loss gradients", hg[0], hg[1], A) <= 2e-4);
    /* Adam: the same (CPU) gradients on both, with a NaN and an Inf that both must zero; two steps. */
    const edm2_param_desc *w = &g_net[0].info.params[3];
    hg[0][w->offset] = NAN, hg[0][w->offset + 1] = -INFINITY;
    for (int step = 0; step < 2; step++)
        for (int k = 0; k < 2; k++) {
            assert_int_equal(rt_upload(&g_rt[k], g[k], hg[0], A, &err), 0);
            double lr;
            assert_int_equal(ovt[k]->step(opt[k], g_net[k].params, g[k], 1000 * (step + 1), 2 * NB, &lr), EDM2_OK);
        }
    float *p1 = host_copy(1, g_net[1].params, A);
    bitwise("parameters after two Adam steps", p0, p1, A);
    for (size_t i = 0; i < 2; i++) {
        edm2_state_buffer sb[2];
        for (int k = 0; k < 2; k++) assert_int_equal(ovt[k]->state_buffer(opt[k], i, &sb[k]), EDM2_OK);
        float *m1 = host_copy(1, sb[1].data, A);
        bitwise(sb[0].name, sb[0].data, m1, A);
        free(m1);
    }
    free(p1);
    for (int k = 0; k < 2; k++) {
        ovt[k]->destroy(opt[k]);
        rt_free(&g_rt[k], g[k]);
        free(hg[k]), free(hloss[k]);
    }
    free(y);
}

/* ||a - b|| / ||a|| over n values (0 for a zero a and b). */
static double rel_l2(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)a[i] * a[i];
    return s > 0 ? sqrt(d / s) : d > 0 ? INFINITY : 0;
}

/* bf16 and fp16 against the CPU's float32, by relative L2 error, within about five times what the
 * PyTorch reference itself gives for this network with its body in bf16/fp16 (torch 2.15 on a CPU, same
 * arena, inputs and output gradients; bench/precision_reference.py): D 6.8e-3 / 8.8e-4; the worst weight tensor's gradient 3.4e-2 /
 * 1.6e-2; the scalar gains' gradients as one vector 1.2e-2 / 3.4e-3 (alone, a gain's gradient, a sum with
 * much cancellation, is off by up to 0.23 / 0.05); the whole gradient arena 2.8e-3 / 7.5e-4. The
 * uncertainty head is float32 in both, and D must be farther from float32 than float32's own rounding
 * (the precision is really in effect). An indexing or layout fault gives errors of order 1. */
static void test_precisions(void **state) {
    (void)state;
    set_params();
    const edm2_network_info *info = &g_net[0].info;
    const size_t A = info->arena_floats;
    edm2_err err;
    for (int p = 0; p < 3; p++) assert_int_equal(rt_upload(&g_rt[1], g_lp[p].params, g_net[0].params, A, &err), 0);
    float *x = malloc(E * sizeof(float)), sigma[NB], labels[NB * L], *dD = malloc(E * sizeof(float)), dlv[NB];
    test_data(x, sigma, labels, dD, dlv);
    float *D32 = malloc(2 * E * sizeof(float)), lv32[NB], *g32 = calloc(A + 1, sizeof(float));
    forward_backward(0, x, sigma, labels, dD, dlv, D32, lv32, g32);
    /* bounds: D, a weight tensor's gradient, the gains' gradients, the whole arena; bf16 then fp16 */
    const double bound[3][4] = {{3e-2, 0.15, 6e-2, 1.5e-2}, {5e-3, 8e-2, 2e-2, 4e-3}, {3e-2, 0.15, 6e-2, 1.5e-2}};
    float *ga = malloc((A + 1) * sizeof(float)), *gb = malloc((A + 1) * sizeof(float)), *g_cudnn = NULL;
    for (int p = 0; p < 3; p++) {
        float *D = malloc(2 * E * sizeof(float)), lv[NB], *g = calloc(A + 1, sizeof(float));
        forward_backward_of(&g_lp[p], 1, x, sigma, labels, dD, dlv, D, lv, g);
        const double eD = rel_l2(D32, D, E), eT = rel_l2(D32 + E, D + E, E), eL = rel_l2(lv32, lv, NB);
        double worst = 0;
        const char *worst_name = "";
        size_t ngain = 0;
        for (size_t i = 0; i < info->param_count; i++) {
            const edm2_param_desc *d = &info->params[i];
            if (!(d->flags & EDM2_PARAM_TRAINED)) continue;
            if (d->numel == 1) { /* a gain: gathered into one vector */
                ga[ngain] = g32[d->offset], gb[ngain++] = g[d->offset];
                continue;
            }
            const double e = rel_l2(g32 + d->offset, g + d->offset, d->numel);
            if (!(e <= worst)) worst = e, worst_name = d->name;
        }
        const double eG = rel_l2(ga, gb, ngain), eA = rel_l2(g32, g, A);
        printf("%s vs CPU fp32 (relative L2): eval D %.2e, training D %.2e (bound %.0e), logvar %.2e; gradients: worst "
               "tensor %.2e (%s; bound %.0e), gains %.2e (bound %.0e), all %.2e (bound %.0e)\n",
               k_lp_name[p], eD, eT, bound[p][0], eL, worst, worst_name, bound[p][1], eG, bound[p][2], eA, bound[p][3]);
        assert_true(eD <= bound[p][0] && eT <= bound[p][0]);
        assert_true(eL <= 1e-5); /* the uncertainty head is float32 */
        assert_true(eD > 1e-6);  /* not float32 */
        assert_true(worst <= bound[p][1] && eG <= bound[p][2] && eA <= bound[p][3]);
        if (p == 2) { /* the products against cuDNN: another rounding (float32 out, not bf16), the same gradient */
            const double e = rel_l2(g_cudnn, g, A);
            printf("bf16 weight gradients, products vs cuDNN (relative L2): %.2e\n", e);
            assert_true(e > 0 && e <= 5e-3);
        }
        free(D);
        if (p == 0) g_cudnn = g;
        else free(g);
    }
    free(g_cudnn), free(ga), free(gb), free(D32), free(g32), free(x), free(dD);
}

/* An evaluation forward's arguments for network ni (backend 1) on device copies of x, sigma and labels;
 * eval_args_free frees them. */
static void eval_args(edm2_forward_args *fa, const net_instance *ni, const float *x, const float *sigma,
                      const float *labels) {
    edm2_err err;
    memset(fa, 0, sizeof *fa);
    fa->struct_size = sizeof *fa;
    fa->params = ni->params, fa->x = dev_copy(1, x, E), fa->sigma = dev_copy(1, sigma, NB), fa->N = NB;
    fa->labels = dev_copy(1, labels, (size_t)NB * L), fa->D = rt_alloc(&g_rt[1], E, &err);
    fa->logvar = rt_alloc(&g_rt[1], NB, &err);
}
static void eval_args_free(edm2_forward_args *fa) {
    float *bufs[] = {(float *)fa->x, (float *)fa->sigma, (float *)fa->labels, fa->D, fa->logvar};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) rt_free(&g_rt[1], bufs[i]);
}

/* Evaluation forwards of net (backend 1) with the arguments of fa, `times` times; D of each into out[times*E]. */
static void evaluations(net_instance *ni, edm2_forward_args *fa, int times, float *out) {
    edm2_err err;
    for (int t = 0; t < times; t++) {
        assert_int_equal(ni->vt->forward(ni->net, fa), EDM2_OK);
        assert_int_equal(rt_download(&g_rt[1], out + (size_t)t * E, fa->D, E, &err), 0);
    }
}

/* The host's log (at debug level, stderr sent to a file) of what runs between log_begin and a test's end:
 * a graph test requires that at least `captures` graphs were captured and checked, and that they were
 * never turned off (a replay that differs, or a failed capture), which its bitwise comparisons alone would
 * not show: eager passes agree with each other too; the plan test reads the cuDNN plans' reports. */
static char *g_log_dir;
static int g_stderr;
#define LOG_CAPTURED "CUDA graph captured" /* pass_graph's line for each graph captured and checked */
static void log_path(char *path, size_t size) { snprintf(path, size, "%s/stderr.txt", g_log_dir); }
static void log_begin(void) {
    g_log_dir = make_temp_dir();
    char path[1024];
    log_path(path, sizeof path);
    fflush(stderr);
    g_stderr = dup(2);
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(g_stderr >= 0 && fd >= 0 && dup2(fd, 2) == 2);
    close(fd);
    log_set_level(EDM2_LOG_DEBUG);
}

/* A bf16/fp16 plan's report (conv_cuda.c): whether it was timed, and whether it names each kind's choice
 * (a legacy algorithm with Find's time, or a graph-API engine) with its time as planned (a number, within
 * that kind's part of the line) and, where the weight gradient's two ways were compared, the products' time
 * and the decision. */
static int plan_line_ok(const char *line) {
    static const char *const kinds[] = {"; forward ", "; backward data ", "; backward filter "};
    for (int k = 0; k < 3; k++) {
        const char *s = strstr(line, kinds[k]), *end = s ? strstr(s + 2, "; ") : NULL;
        const char *t = s ? s + strlen(kinds[k]) : NULL, *u = t ? strstr(t, ", as planned ") : NULL;
        float find_ms, ms;
        const int legacy = t && !strncmp(t, "algo ", 5), graph = t && !strncmp(t, "graph engine ", 13);
        const char *f = legacy ? strstr(t, ": Find ") : NULL;
        const int find_ok = !legacy || (f && f < u && sscanf(f, ": Find %f ms", &find_ms) == 1);
        if (!u || (end && u > end) || !(legacy || graph) || !find_ok || sscanf(u, ", as planned %f ms", &ms) != 1 ||
            !(ms >= 0))
            return 0;
    }
    const char *p = strstr(line, "; backward filter as products ");
    return !p || strstr(p, ": taken") || strstr(p, ": not taken");
}

typedef struct log_counts {
    int captured, off;   /* CUDA graphs captured; turned off */
    int plans, plans_ok; /* bf16/fp16 cuDNN plans reported as timed (or failing to be); well-formed ones */
    int any, nondet;     /* plans allowing any determinism; plans that chose or tried a nondeterministic one */
    int graph_fwd;       /* plans (timed or taken from the file) whose forward runs a graph-API plan */
    int graph_none;      /* plans of a kind for which the graph API offered no plan (the line says why) */
    int f32_plans;       /* float32 cuDNN plans: none, the first and last convolutions run thin_conv's kernels */
    int saved, restored; /* plans saved to EDM2_CUDNN_PLANS's file; plans taken from it ("from FILE:LINE") */
    int gemm_restored;   /* of those, the ones whose weight gradient runs as products */
    int fused_lines;     /* EDM2_CUDNN_FUSE's reports (conv_fused.c), one per shape and epilogue */
    int fused, timed;    /* of those, the fused ones; the ones that also give the unfused way's time */
    char plans_error[400]; /* the first line that names EDM2_CUDNN_PLANS outside the plans' reports */
} log_counts;

/* stderr back, the log's lines but the debug ones passed on to it; *n counted from them. Also a test's
 * teardown, so that a failed assertion's message is seen (a no-op once the log is back). */
static int log_restore(log_counts *n) {
    memset(n, 0, sizeof *n);
    if (!g_log_dir) return 0;
    log_set_level(EDM2_LOG_INFO);
    fflush(stderr);
    dup2(g_stderr, 2);
    close(g_stderr);
    char path[1024], line[8192];
    log_path(path, sizeof path);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        n->captured += strstr(line, LOG_CAPTURED) != NULL;
        n->off += strstr(line, "turned off") != NULL;
        n->f32_plans += strstr(line, "cuDNN 3x3 convolution") && strstr(line, ", float32, ");
        if (strstr(line, "cuDNN 3x3 convolution") && (strstr(line, ", timed") || strstr(line, "timing failed"))) {
            const int ok = plan_line_ok(line);
            n->plans++, n->plans_ok += ok;
            n->any += strstr(line, ", any determinism;") != NULL;
            n->nondet += strstr(line, ", nondeterministic, ") != NULL;
            n->graph_fwd += strstr(line, "; forward graph engine ") != NULL;
            n->graph_none += strstr(line, "(graph API: ") != NULL;
            if (!ok) fprintf(stderr, "malformed plan report: %s", line);
        }
        n->saved += strstr(line, "cuDNN 3x3 convolution") && strstr(line, "; saved to ");
        if (strstr(line, "cuDNN 3x3 convolution") && strstr(line, ", from ")) {
            n->restored++;
            n->gemm_restored += strstr(line, "; backward filter as products: taken") != NULL;
            n->graph_fwd += strstr(line, "; forward graph engine ") != NULL;
        }
        if (strstr(line, "cuDNN fused 3x3 convolution")) {
            n->fused_lines++;
            n->fused += strstr(line, "): fused, graph engine ") != NULL;
            float ms;
            const char *apart = strstr(line, "; apart ");
            n->timed += apart && sscanf(apart, "; apart %f ms", &ms) == 1;
        }
        if (!n->plans_error[0] && strstr(line, "EDM2_CUDNN_PLANS: ") && !strstr(line, "cuDNN 3x3 convolution"))
            snprintf(n->plans_error, sizeof n->plans_error, "%.399s", line);
        if (strncmp(line, "debug: ", 7)) fputs(line, stderr);
    }
    if (f) fclose(f);
    rm_rf(g_log_dir);
    free(g_log_dir);
    g_log_dir = NULL;
    return f ? 0 : -1;
}
/* The CUDA graphs captured so far in the log of log_begin (still being written). */
static int log_captures_so_far(void) {
    char path[1024], line[8192];
    log_path(path, sizeof path);
    fflush(stderr);
    FILE *f = fopen(path, "r");
    int captured = 0;
    while (f && fgets(line, sizeof line, f)) captured += strstr(line, LOG_CAPTURED) != NULL;
    if (f) fclose(f);
    return captured;
}
static int log_teardown(void **state) {
    (void)state;
    log_counts n;
    log_restore(&n);
    return 0;
}
static void graph_log_end(int captures) {
    log_counts n;
    assert_int_equal(log_restore(&n), 0);
    printf("CUDA graphs: %d captured, %s\n", n.captured, n.off ? "turned off" : "never turned off");
    assert_int_equal(n.off, 0);
    assert_true(n.captured >= captures);
}

/* Evaluations with the same arguments run from a CUDA graph after a few eager ones (pass_graph.h): each
 * output is bitwise the first (eager) one, and new values in the same buffers give bitwise what an eager
 * evaluation (other buffers: a new graph slot) gives; in float32 and bf16. */
static void test_forward_graph(void **state) {
    (void)state;
    set_params();
    log_begin();
    const size_t A = g_net[0].info.arena_floats;
    edm2_err err;
    assert_int_equal(rt_upload(&g_rt[1], g_lp[0].params, g_net[0].params, A, &err), 0);
    float *x = malloc(E * sizeof(float)), sigma[NB], labels[NB * L], *dD = malloc(E * sizeof(float)), dlv[NB];
    test_data(x, sigma, labels, dD, dlv);
    net_instance *nets[2] = {&g_net[1], &g_lp[0]};
    float *out = malloc(8 * E * sizeof(float)), *fresh = malloc(E * sizeof(float));
    for (int k = 0; k < 2; k++) {
        edm2_forward_args fa;
        eval_args(&fa, nets[k], x, sigma, labels);
        /* eager while the workspaces settle (at most four passes here), capture + check, replays */
        evaluations(nets[k], &fa, 7, out);
        for (int t = 1; t < 7; t++) bitwise("evaluation from a CUDA graph", out, out + (size_t)t * E, E);
        for (size_t i = 0; i < E; i++) x[i] = -0.5f * x[i] + 0.1f;
        assert_int_equal(rt_upload(&g_rt[1], (float *)fa.x, x, E, &err), 0);
        evaluations(nets[k], &fa, 1, out + 7 * E); /* replayed on the new values */
        edm2_forward_args other = fa;
        other.x = dev_copy(1, x, E);
        evaluations(nets[k], &other, 1, fresh); /* other arguments: eager */
        bitwise("replayed graph on new values vs eager", fresh, out + 7 * E, E);
        assert_true(rel_l2(out, fresh, E) > 1e-3); /* the new values do change D */
        eval_args_free(&fa);
        rt_free(&g_rt[1], (float *)other.x);
        test_data(x, sigma, labels, dD, dlv);
    }
    free(out), free(fresh), free(x), free(dD);
    graph_log_end(1); /* one evaluation graph per network, unless an earlier test's (same arguments) is replayed */
}

/* Training passes (forward, backward) with the same arguments run from CUDA graphs after a few eager ones
 * (two once the workspaces stop growing; the first passes grow them):
 * D and the gradients bitwise the first (eager) pass's each time, on a network without dropout (with
 * dropout the training passes stay eager); also an eager backward after a replayed forward with an
 * evaluation of another batch size between them. */
static void test_training_graph(void **state) {
    (void)state;
    set_params();
    log_begin();
    const size_t A = g_net[0].info.arena_floats;
    edm2_err err;
    runtime *rt = &g_rt[1];
    assert_int_equal(rt_upload(rt, g_nd.params, g_net[0].params, A, &err), 0);
    float *x = malloc(E * sizeof(float)), sigma[NB], labels[NB * L], *dD = malloc(E * sizeof(float)), dlv[NB];
    test_data(x, sigma, labels, dD, dlv);
    edm2_forward_args fa;
    memset(&fa, 0, sizeof fa);
    fa.struct_size = sizeof fa;
    fa.params = g_nd.params, fa.x = dev_copy(1, x, E), fa.sigma = dev_copy(1, sigma, NB), fa.N = NB, fa.training = 1;
    fa.labels = dev_copy(1, labels, (size_t)NB * L), fa.D = rt_alloc(rt, E, &err), fa.logvar = rt_alloc(rt, NB, &err);
    fa.dropout_rng = (edm2_rng){31, 4, 1000};
    float *dDd = dev_copy(1, dD, E), *dlvd = dev_copy(1, dlv, NB), *gd = rt_alloc(rt, A, &err);
    float *D = malloc(2 * E * sizeof(float)), *g = malloc(2 * (A + 1) * sizeof(float));
    for (int t = 0; t < 9; t++) { /* eager while the workspaces settle, capture + check, replays */
        float *Dt = D + (t ? E : 0), *gt = g + (t ? A + 1 : 0);
        assert_int_equal(rt->bvt->fill(rt->b, gd, 0.0f, A), EDM2_OK);
        fa.dropout_rng.offset = 1000 + 64 * (uint64_t)t; /* as a trainer's would: no dropout, no effect */
        assert_int_equal(g_nd.vt->forward(g_nd.net, &fa), EDM2_OK);
        assert_int_equal(g_nd.vt->backward(g_nd.net, g_nd.params, dDd, dlvd, gd), EDM2_OK);
        assert_int_equal(rt_download(rt, Dt, fa.D, E, &err), 0);
        assert_int_equal(rt_download(rt, gt, gd, A, &err), 0);
        if (t) bitwise("training D from a CUDA graph", D, Dt, E), bitwise("gradients from a CUDA graph", g, gt, A);
    }
    /* An evaluation of another batch size between a replayed training forward and an eager backward (other
     * gradient buffers: no graph yet): the replay restores all that the backward reads of its forward. */
    edm2_forward_args fe = fa;
    fe.N = 2, fe.training = 0, fe.logvar = NULL, fe.D = rt_alloc(rt, E, &err);
    assert_int_equal(g_nd.vt->forward(g_nd.net, &fe), EDM2_OK);
    float *gd2 = rt_alloc(rt, A, &err);
    assert_int_equal(rt->bvt->fill(rt->b, gd2, 0.0f, A), EDM2_OK);
    assert_int_equal(g_nd.vt->forward(g_nd.net, &fa), EDM2_OK);
    assert_int_equal(g_nd.vt->backward(g_nd.net, g_nd.params, dDd, dlvd, gd2), EDM2_OK);
    assert_int_equal(rt_download(rt, g + A + 1, gd2, A, &err), 0);
    bitwise("gradients, eager after a replayed forward and another evaluation", g, g + A + 1, A);
    rt_free(rt, fe.D), rt_free(rt, gd2);
    float *bufs[] = {(float *)fa.x, (float *)fa.sigma, (float *)fa.labels, fa.D, fa.logvar, dDd, dlvd, gd};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) rt_free(rt, bufs[i]);
    free(D), free(g), free(x), free(dD);
    graph_log_end(2); /* the training forward's and the backward's */
}

static void test_check_ref_cuda(void **state) {
    (void)state;
    char *argv[] = {EDM2_TEST_DATA "/edm2_small.safetensors", "--backend", "cuda", NULL};
    assert_int_equal(cmd_check_ref(3, argv), 0);
}

/* The test network on the GPU with one more setting; 0, or 1 with the reason in *err. */
static int open_variant_err(net_instance *ni, const char *setting, edm2_err *err) {
    const plugin_rec *rec = find(EDM2_KIND_NETWORK, "mp_unet", 1);
    const char *kv[16];
    int n = 0;
    while (k_net[n]) kv[n] = k_net[n], n++;
    kv[n++] = setting;
    kv[n] = NULL;
    cfg c = {0};
    config_view v;
    fixture_config(&c, &v, "network", rec, kv);
    const int rc = net_open(ni, &g_rt[1], rec, &v.api, err);
    cfg_free(&c);
    return rc ? 1 : 0;
}
/* The same; 0, or 1 with the error printed. */
static int open_variant(net_instance *ni, const char *setting) {
    edm2_err err;
    const int rc = open_variant_err(ni, setting, &err);
    if (rc) fprintf(stderr, "error: network with %s: %s\n", setting, err.msg);
    return rc;
}

/* A bad value of one of the cuDNN settings in the environment: the bf16 network is not made, with one line
 * naming the variable and what it expects. */
static void test_bad_environment(void **state) {
    (void)state;
    static const struct {
        const char *name, *value, *expected;
    } env[] = {{"EDM2_CUDNN_API", "graphs", "expected legacy (the default), graph or any"},
               {"EDM2_CUDNN_FUSE", "yes", "expected off (the default), timed or on"},
               {"EDM2_CUDNN_DETERMINISTIC", "no", "expected 1"},
               {"EDM2_CUDNN_WGRAD", "fast", "expected gemm or cudnn"}};
    for (size_t i = 0; i < sizeof env / sizeof *env; i++) {
        setenv(env[i].name, env[i].value, 1);
        net_instance ni;
        edm2_err err;
        memset(&err, 0, sizeof err);
        const int rc = open_variant_err(&ni, "precision=bf16", &err);
        unsetenv(env[i].name);
        printf("bad setting: %s\n", err.msg);
        if (!rc) net_close(&ni, &g_rt[1]);
        assert_int_equal(rc, 1);
        assert_non_null(strstr(err.msg, env[i].name));
        assert_non_null(strstr(err.msg, env[i].expected));
        assert_null(strchr(err.msg, '\n'));
    }
}

/* The bf16 plans of a new network, chosen by timing (EDM2_CUDNN_ALGO unset): each 3x3 shape's debug line
 * reports, for each kind, its choice with its time as run as planned (conv_cuda.c's plan_choose), and the
 * weight gradient's products against it; a plan whose timing failed, or left a kind untimed, fails the test.
 * Three ways: the default (legacy algorithms, deterministic: none nondeterministic is chosen or even tried;
 * the emulation's Find offers one first for each backward kind); EDM2_CUDNN_DETERMINISTIC=0 (the bf16 plans
 * say they allow any; the float32 first and last convolutions have no cuDNN plan in any way: thin_conv's
 * deterministic kernels run them); EDM2_CUDNN_API=graph (every forward runs a graph-API plan, unless the
 * line says cuDNN offered none). The other two ways agree with the default within bf16's rounding
 * (test_precisions' bf16 bounds against float32: D 3e-2, the gradient arena 1.5e-2), and their
 * evaluations run from CUDA graphs (whose check allows another order of sums where any determinism is
 * allowed). */
static void test_plan_reports(void **state) {
    (void)state;
    set_params();
    unsetenv("EDM2_CUDNN_ALGO"), unsetenv("EDM2_CUDNN_WGRAD");
    static const char *const name[3] = {"default", "any determinism", "graph API"};
    static const char *const env[3][2] = {{NULL, NULL}, {"EDM2_CUDNN_DETERMINISTIC", "0"}, {"EDM2_CUDNN_API", "graph"}};
    const size_t A = g_net[0].info.arena_floats;
    float *x = malloc(E * sizeof(float)), sigma[NB], labels[NB * L], *dD = malloc(E * sizeof(float)), dlv[NB];
    test_data(x, sigma, labels, dD, dlv);
    float *D[3], lv[NB], *g[3];
    for (int k = 0; k < 3; k++) {
        if (env[k][0]) setenv(env[k][0], env[k][1], 1);
        log_begin();
        net_instance ni;
        const int rc = open_variant(&ni, "precision=bf16");
        if (env[k][0]) unsetenv(env[k][0]);
        assert_int_equal(rc, 0);
        edm2_err err;
        assert_int_equal(rt_upload(&g_rt[1], ni.params, g_net[0].params, A, &err), 0);
        D[k] = malloc(2 * E * sizeof(float)), g[k] = calloc(A + 1, sizeof(float));
        forward_backward_of(&ni, 1, x, sigma, labels, dD, dlv, D[k], lv, g[k]);
        if (k) { /* evaluations from a CUDA graph, checked against the eager pass */
            edm2_forward_args fa;
            eval_args(&fa, &ni, x, sigma, labels);
            /* Eager while the workspaces settle (three passes in the emulation), then captured and checked
             * against its eager pass (the fourth), then one replay; up to 10 where a GPU settles later. */
            float *out = malloc(E * sizeof(float));
            for (int t = 0, captured = 0; t < 10; t++) {
                evaluations(&ni, &fa, 1, out);
                if (captured) break; /* that was the replay */
                captured = log_captures_so_far() >= 1;
            }
            eval_args_free(&fa);
            free(out);
        }
        net_close(&ni, &g_rt[1]);
        log_counts n;
        assert_int_equal(log_restore(&n), 0);
        printf("%s: cuDNN plans timed: %d, reported in full: %d, choosing or trying a nondeterministic algorithm: %d, "
               "forward through the graph API: %d", name[k], n.plans, n.plans_ok, n.nondet, n.graph_fwd);
        if (k) printf("; CUDA graphs: %d captured, %s", n.captured, n.off ? "turned off" : "never turned off");
        printf("\n");
        assert_true(n.plans >= 3); /* the network's bf16 3x3 shapes: three resolutions at least */
        assert_int_equal(n.plans_ok, n.plans);
        assert_int_equal(n.any, k == 1 ? n.plans : 0);
        if (k != 1) assert_int_equal(n.nondet, 0);
        if (k == 2) /* a graph plan for every forward, unless cuDNN offered none for the shape (said so) */
            assert_true(n.graph_fwd >= 1 && n.graph_fwd + n.graph_none >= n.plans);
        else
            assert_int_equal(n.graph_fwd, 0);
        assert_int_equal(n.f32_plans, 0); /* float32 (deterministic kernels of its own) whatever the environment */
        if (k) assert_true(n.captured >= 1 && n.off == 0);
    }
    for (int k = 1; k < 3; k++) {
        const double eD = rel_l2(D[0], D[k], 2 * E), eA = rel_l2(g[0], g[k], A);
        printf("%s vs default (relative L2): D %.2e, gradients %.2e\n", name[k], eD, eA);
        assert_true(eD <= 3e-2 && eA <= 1.5e-2);
    }
    free(x), free(dD);
    for (int k = 0; k < 3; k++) free(D[k]), free(g[k]);
}

/* The record lines (not comments) of a plan file; with flip, each line's "wgrad gemm" and "wgrad cudnn"
 * swapped, or with algo >= 0 each forward's algorithm set to algo, and the file rewritten. */
static int plan_lines(const char *path, int flip, int algo) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1100], *out = calloc(1, 1 << 16);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *w = strstr(line, " ; wgrad "), *a = strstr(line, " ; forward algo ");
        if (line[0] != '#') n++;
        if (line[0] != '#' && flip && w) strcpy(w, strstr(w, "gemm") ? " ; wgrad cudnn\n" : " ; wgrad gemm\n");
        if (line[0] != '#' && algo >= 0 && a) {
            char rest[1100];
            snprintf(rest, sizeof rest, "%s", strstr(a + 16, " math "));
            snprintf(a, sizeof line - (size_t)(a - line), " ; forward algo %d%s", algo, rest);
        }
        strcat(out, line);
    }
    fclose(f);
    if (flip || algo >= 0) {
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(out, f);
        fclose(f);
    }
    free(out);
    return n;
}

/* EDM2_CUDNN_PLANS (plan_file.h): a bf16 network that times its plans saves each shape's choices into the
 * file (a line per plan, each plan's report saying so); a second network with the file takes them from it
 * (each report says "from FILE:LINE", none is timed, the file is left as it was) and gives bitwise the
 * first one's outputs and gradients. What the file says is what runs: with each line's weight-gradient way
 * swapped (cuDNN's algorithm for the products and back), the reports say so, the outputs are still bitwise
 * the same and the gradients are not (another order of sums, within bf16's rounding: test_precisions'
 * bound). A line that cuDNN cannot run (a forward algorithm it does not have) fails the first forward,
 * and a malformed line the network's making, each with one line naming the file and line; a float32
 * network, which times no plans, is made whatever the file holds. */
static void test_plan_file(void **state) {
    (void)state;
    set_params();
    unsetenv("EDM2_CUDNN_ALGO"), unsetenv("EDM2_CUDNN_WGRAD");
    const size_t A = g_net[0].info.arena_floats;
    float *x = malloc(E * sizeof(float)), sigma[NB], labels[NB * L], *dD = malloc(E * sizeof(float)), dlv[NB];
    test_data(x, sigma, labels, dD, dlv);
    char *dir = make_temp_dir(), path[1024], graph_path[1024];
    snprintf(path, sizeof path, "%s/plans.txt", dir);
    snprintf(graph_path, sizeof graph_path, "%s/graph-plans.txt", dir);
    float *D[5], lv[NB], *g[5];
    log_counts n[5];
    char *saved = NULL;
    /* timed and saved; from the file; from the file with the ways swapped; the same first two with the graph
     * API's plans (EDM2_CUDNN_API=graph) in a file of their own */
    for (int k = 0; k < 5; k++) {
        const char *file = k < 3 ? path : graph_path;
        setenv("EDM2_CUDNN_PLANS", file, 1);
        if (k == 3) setenv("EDM2_CUDNN_API", "graph", 1);
        if (k == 2) plan_lines(path, 1, -1);
        log_begin();
        net_instance ni;
        assert_int_equal(open_variant(&ni, "precision=bf16"), 0);
        edm2_err err;
        assert_int_equal(rt_upload(&g_rt[1], ni.params, g_net[0].params, A, &err), 0);
        D[k] = malloc(2 * E * sizeof(float)), g[k] = calloc(A + 1, sizeof(float));
        forward_backward_of(&ni, 1, x, sigma, labels, dD, dlv, D[k], lv, g[k]);
        net_close(&ni, &g_rt[1]);
        assert_int_equal(log_restore(&n[k]), 0);
        const int lines = plan_lines(file, 0, -1);
        printf("run %d: plans timed %d, saved %d, taken from the file %d (weight gradient as products: %d; forward "
               "through the graph API: %d); %d lines in the file\n", k, n[k].plans, n[k].saved, n[k].restored,
               n[k].gemm_restored, n[k].graph_fwd, lines);
        if (k == 0 || k == 3) {
            assert_true(n[k].plans >= 3);
            assert_int_equal(n[k].saved, n[k].plans);
            assert_int_equal(lines, n[k].plans);
            assert_int_equal(n[k].restored, 0);
            free(saved);
            saved = read_text(file);
        } else {
            assert_int_equal(n[k].plans, 0);
            assert_int_equal(n[k].saved, 0);
            assert_int_equal(n[k].restored, lines);
        }
        if (k == 1 || k == 4) {
            char *now = read_text(file);
            assert_string_equal(now, saved);
            free(now);
        }
        if (k == 3) /* as test_plan_reports: a graph plan for every forward, unless cuDNN offered none */
            assert_true(n[3].graph_fwd >= 1 && n[3].graph_fwd + n[3].graph_none >= n[3].plans);
        if (k == 4) assert_int_equal(n[4].graph_fwd, n[3].graph_fwd);
    }
    unsetenv("EDM2_CUDNN_API");
    setenv("EDM2_CUDNN_PLANS", path, 1);
    bitwise("D from the file's graph plans", D[3], D[4], 2 * E);
    bitwise("gradients from the file's graph plans", g[3], g[4], A);
    assert_int_equal(n[2].gemm_restored, n[1].restored - n[1].gemm_restored); /* every way swapped */
    bitwise("D from the file's plans", D[0], D[1], 2 * E);
    bitwise("gradients from the file's plans", g[0], g[1], A);
    bitwise("D with the weight gradients' ways swapped", D[0], D[2], 2 * E);
    size_t differ = 0;
    for (size_t i = 0; i < A; i++) differ += memcmp(&g[0][i], &g[2][i], sizeof(float)) != 0;
    const double e = rel_l2(g[0], g[2], A);
    printf("gradients with the ways swapped: %zu of %zu differ, relative L2 %.2e\n", differ, A, e);
    assert_true(differ > 0 && e <= 1.5e-2);
    /* a forward algorithm that cuDNN does not have: the first forward fails, naming the file and a line */
    plan_lines(path, 0, 77);
    log_begin();
    net_instance ni;
    assert_int_equal(open_variant(&ni, "precision=bf16"), 0);
    edm2_forward_args fa;
    eval_args(&fa, &ni, x, sigma, labels);
    const edm2_status st = ni.vt->forward(ni.net, &fa);
    log_flush(); /* the plugin's error, held for the host's own message, into the log */
    eval_args_free(&fa);
    net_close(&ni, &g_rt[1]);
    log_counts bad;
    assert_int_equal(log_restore(&bad), 0);
    printf("unusable line: %s", bad.plans_error);
    char where[1100];
    snprintf(where, sizeof where, "%s:", path);
    assert_int_not_equal(st, EDM2_OK);
    assert_non_null(strstr(bad.plans_error, where));
    assert_non_null(strstr(bad.plans_error, ": forward algo 77 math "));
    /* a malformed line: the network is not made */
    FILE *f = fopen(path, "a");
    fputs("a key ; forward algo 1\n", f);
    fclose(f);
    memset(&ni, 0, sizeof ni);
    edm2_err err;
    memset(&err, 0, sizeof err);
    const int rc = open_variant_err(&ni, "precision=bf16", &err);
    if (!rc) net_close(&ni, &g_rt[1]);
    printf("malformed line: %s\n", err.msg);
    assert_int_equal(rc, 1);
    snprintf(where, sizeof where, "EDM2_CUDNN_PLANS: %s:%d: expected 5 parts", path, n[0].plans + 4);
    assert_non_null(strstr(err.msg, where));
    assert_null(strchr(err.msg, '\n'));
    /* a float32 network times no plans and does not read the file */
    memset(&ni, 0, sizeof ni);
    assert_int_equal(open_variant_err(&ni, "precision=fp32", &err), 0);
    net_close(&ni, &g_rt[1]);
    unsetenv("EDM2_CUDNN_PLANS");
    rm_rf(dir);
    free(dir), free(saved), free(x), free(dD);
    for (int k = 0; k < 5; k++) free(D[k]), free(g[k]);
}

/* EDM2_CUDNN_FUSE (conv_fused.h) on the bf16 network: with =on, each evaluation's 3x3 convolutions run with
 * the layer after them (modulation + MP-SiLU; MP sum, clipped or not) as one cuDNN graph where cuDNN fuses
 * them: D within test_precisions' bf16 bound of the CPU's float32 (3e-2, relative L2) and of the unfused
 * (=off, the default) run, and not bitwise the unfused (another rounding: the convolution's output is never
 * stored in bf16); each shape and epilogue reported once; the evaluations then replay from a CUDA graph
 * (bitwise their eager pass: pass_graph's check, never turned off). The training forward and backward never
 * fuse: bitwise the unfused run's. =timed reports both ways' times. Where cuDNN fuses nothing (in the
 * emulation EDM2_EMU_NO_FUSION=1, as a cuDNN without runtime fusion), every report says so and D is bitwise
 * the unfused. The convolutions' algorithms are cuDNN's ranking (EDM2_CUDNN_ALGO=heuristic), the same in
 * every network. In the emulation (EDM2_TEST_EMULATED) every shape must fuse under =on; on a GPU the reports
 * say which did, and only off and on run (cuDNN compiles each fused plan: seconds; gpu-check's fused step
 * times =timed at XS). */
static void test_plan_fused(void **state) {
    (void)state;
    set_params();
    /* The convolutions' algorithms as cuDNN's heuristics rank them, the weight gradients cuDNN's: the same in
     * every network made here (timed choices may differ from one network to the next, and so would the
     * bits that are compared below). */
    setenv("EDM2_CUDNN_ALGO", "heuristic", 1), unsetenv("EDM2_CUDNN_WGRAD");
    static const char *const mode[4] = {"off", "on", "timed", "on"};
    static const char *const name[4] = {"off", "on", "timed", "on, nothing fused"};
    const size_t A = g_net[0].info.arena_floats;
    float *x = malloc(E * sizeof(float)), sigma[NB], labels[NB * L], *dD = malloc(E * sizeof(float)), dlv[NB];
    test_data(x, sigma, labels, dD, dlv);
    float *D32 = malloc(2 * E * sizeof(float)), lv[NB], *g32 = calloc(A + 1, sizeof(float)), *D[4] = {0}, *g[4] = {0};
    forward_backward(0, x, sigma, labels, dD, dlv, D32, lv, g32);
#ifdef EDM2_TEST_EMULATED
    const int ways = 4;
#else
    const int ways = 2;
#endif
    for (int k = 0; k < ways; k++) {
        setenv("EDM2_CUDNN_FUSE", mode[k], 1);
        if (k == 3) setenv("EDM2_EMU_NO_FUSION", "1", 1);
        log_begin();
        net_instance ni;
        const int rc = open_variant(&ni, "precision=bf16");
        unsetenv("EDM2_CUDNN_FUSE"); /* read when the network is made; EDM2_EMU_NO_FUSION when plans are */
        assert_int_equal(rc, 0);
        edm2_err err;
        assert_int_equal(rt_upload(&g_rt[1], ni.params, g_net[0].params, A, &err), 0);
        D[k] = malloc(2 * E * sizeof(float)), g[k] = calloc(A + 1, sizeof(float));
        forward_backward_of(&ni, 1, x, sigma, labels, dD, dlv, D[k], lv, g[k]);
        if (k == 1) { /* evaluations from a CUDA graph (test_plan_reports) */
            edm2_forward_args fa;
            eval_args(&fa, &ni, x, sigma, labels);
            float *out = malloc(E * sizeof(float));
            for (int t = 0, captured = 0; t < 10; t++) {
                evaluations(&ni, &fa, 1, out);
                if (captured) break;
                captured = log_captures_so_far() >= 1;
            }
            bitwise("replayed fused evaluation", D[k], out, E);
            eval_args_free(&fa);
            free(out);
        }
        net_close(&ni, &g_rt[1]);
        unsetenv("EDM2_EMU_NO_FUSION");
        log_counts n;
        assert_int_equal(log_restore(&n), 0);
        const double e32 = rel_l2(D32, D[k], E), e0 = k ? rel_l2(D[0], D[k], E) : 0;
        printf("EDM2_CUDNN_FUSE=%s: %d reports, %d fused, %d timed against the unfused way; eval D vs CPU fp32 %.2e, vs "
               "unfused %.2e", name[k], n.fused_lines, n.fused, n.timed, e32, e0);
        if (k == 1) printf("; CUDA graphs: %d captured, %s", n.captured, n.off ? "turned off" : "never turned off");
        printf("\n");
        assert_true(e32 <= 3e-2);
        if (k == 0) {
            assert_int_equal(n.fused_lines, 0);
            continue;
        }
        /* the network's 3x3 shapes at three resolutions, each with both epilogues (attention at one: sums
         * without the clip there) */
        assert_true(n.fused_lines >= 6);
        assert_int_equal(n.timed, k == 2 ? n.fused_lines : 0);
        bitwise("training forward", D[0] + E, D[k] + E, E);
        bitwise("gradients", g[0], g[k], A);
        if (k == 1) assert_true(n.captured >= 1 && n.off == 0);
#ifdef EDM2_TEST_EMULATED
        if (k == 1) assert_int_equal(n.fused, n.fused_lines);
        if (k == 3) assert_int_equal(n.fused, 0);
#endif
        if (n.fused) assert_true(e0 > 0 && e0 <= 3e-2);
        else bitwise("evaluation, nothing fused", D[0], D[k], E);
    }
    unsetenv("EDM2_CUDNN_ALGO");
    free(x), free(dD), free(D32), free(g32);
    for (int k = 0; k < 4; k++) free(D[k]), free(g[k]);
}

int main(void) {
    char why[512];
    unsetenv("EDM2_CUDNN_PLANS"); /* the plan tests time plans, or set a file of their own */
    registry_default_dirs(&g_reg, EDM2_BUILD_DIR "/plugins");
    registry_scan(&g_reg);
    if (open_backend(&g_reg, &g_rt[0], "edm2_backend_cpu.so", "cpu", why, sizeof why)) {
        fprintf(stderr, "error: %s\n", why);
        return 1;
    }
    if (open_backend(&g_reg, &g_rt[1], "edm2_backend_cuda.so", "cuda", why, sizeof why)) {
        printf("SKIP: CUDA network: %s\n", why);
        return 77;
    }
    for (int k = 0; k < 2; k++) {
        const plugin_rec *p = find(EDM2_KIND_NETWORK, "mp_unet", k);
        if (!p) {
            printf("SKIP: CUDA network: no mp_unet plugin for backend %d (built without cuDNN?)\n", k);
            return 77;
        }
        cfg c = {0};
        config_view v;
        fixture_config(&c, &v, "network", p, k_net);
        edm2_err err;
        if (net_open(&g_net[k], &g_rt[k], p, &v.api, &err)) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
        cfg_free(&c);
    }
    /* The same network on the GPU at bf16 and fp16, and without dropout. */
    int failed = 0;
    for (int p = 0; p < 3; p += 2) { /* the weight gradients' two ways, each forced (read when a network is made) */
        setenv("EDM2_CUDNN_WGRAD", p ? "gemm" : "cudnn", 1);
        failed |= open_variant(&g_lp[p], "precision=bf16");
    }
    unsetenv("EDM2_CUDNN_WGRAD");
    if (failed || open_variant(&g_lp[1], "precision=fp16") || open_variant(&g_nd, "dropout=0"))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_init_and_weight_norm), cmocka_unit_test(test_forward_backward),
                                       cmocka_unit_test(test_loss_and_adam), cmocka_unit_test(test_precisions),
                                       cmocka_unit_test_teardown(test_forward_graph, log_teardown),
                                       cmocka_unit_test_teardown(test_training_graph, log_teardown),
                                       cmocka_unit_test_teardown(test_plan_reports, log_teardown),
                                       cmocka_unit_test(test_bad_environment),
                                       cmocka_unit_test_teardown(test_plan_file, log_teardown),
                                       cmocka_unit_test_teardown(test_plan_fused, log_teardown),
                                       cmocka_unit_test(test_check_ref_cuda)};
    test_filter_from_env();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    net_close(&g_nd, &g_rt[1]);
    for (int p = 2; p >= 0; p--) net_close(&g_lp[p], &g_rt[1]);
    for (int k = 1; k >= 0; k--) net_close(&g_net[k], &g_rt[k]), runtime_close(&g_rt[k]);
    registry_free(&g_reg);
    return rc;
}
