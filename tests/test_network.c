/* test_network.c: the mp_unet network and the edm2 loss against the PyTorch reference (through
 * check-ref on tests/data/edm2_small.safetensors: eval forward, step1/step2 objectives, losses and
 * gradients), check-ref on reference-format files of other shapes (unconditional, three levels, other
 * attention), the whole network's backward against finite differences, dropout determinism, and the
 * parameter table. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "arena.h"
#include "commands.h"
#include "fileio.h"
#include "net_fixture.h"
#include "safetensors.h"
#include "test_util.h"

static fixture g_fx;

static int setup(void **state) {
    (void)state;
    return fixture_open(&g_fx);
}
static int teardown(void **state) {
    (void)state;
    fixture_close(&g_fx);
    return 0;
}

static int check_ref(const char *file, const char *dump) {
    char *argv[6] = {(char *)file, NULL};
    int argc = 1;
    if (dump) argv[argc++] = "--dump", argv[argc++] = (char *)dump;
    return cmd_check_ref(argc, argv);
}

static void test_reference_small(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char dump[512];
    snprintf(dump, sizeof dump, "%s/dump.safetensors", dir);
    assert_int_equal(check_ref(EDM2_TEST_DATA "/edm2_small.safetensors", dump), 0);
    st_file f;
    edm2_err err;
    assert_int_equal(st_open(&f, dump, &err), 0);
    assert_non_null(st_find(&f, "eval/D"));
    assert_non_null(st_find(&f, "step2/grad/unet.enc.16x16_conv.weight"));
    assert_non_null(st_find(&f, "step1/loss"));
    st_close(&f);
    rm_rf(dir);
    free(dir);
}

static const char *const k_uncond[] = {
    "img_resolution=16", "img_channels=3", "label_dim=0", "model_channels=8", "channel_mult=1,2,2", "num_blocks=1",
    "attn_resolutions=8,4", "channels_per_head=8", "logvar_channels=8", NULL};

/* Writes a reference-format file for an unconditional 3-level network: metadata and the init, in and eval groups,
 * computed here; `perturb` adds an error to eval/D. */
static void write_uncond_ref(const char *path, float perturb) {
    net_instance ni;
    assert_int_equal(fixture_net(&g_fx, &ni, k_uncond), 0);
    const edm2_network_info *info = &ni.info;
    const int N = 3, E = N * 3 * 16 * 16;
    float *x = malloc(E * sizeof(float)), *noise = malloc(E * sizeof(float)), *xn = malloc(E * sizeof(float));
    float *D = malloc(E * sizeof(float)), sigma[3] = {0.05f, 1.3f, 20.0f}, lv[3];
    for (int i = 0; i < E; i++) x[i] = edm2_philox_normal(5, 1, i) * 0.5f, noise[i] = edm2_philox_normal(5, 2, i);
    for (int i = 0; i < E; i++) xn[i] = x[i] + noise[i] * sigma[i / (E / N)];
    fixture_init_with_gains(&ni, 11, 0.6f); /* non-zero gains, as the reference file has */
    edm2_forward_args fa = {sizeof fa, ni.params, xn, sigma, NULL, N, 0, {0, 0, 0}, D, lv};
    assert_int_equal(ni.vt->forward(ni.net, &fa), EDM2_OK);
    D[7] += perturb;
    st_out *outs;
    char **names;
    size_t n;
    assert_int_equal(arena_outputs(info, ni.params, "init/", 0, ST_F32, &outs, &names, &n), 0);
    st_out *all = calloc(n + 6, sizeof *all);
    memcpy(all, outs, n * sizeof *outs);
    st_out extra[] = {{"in/x", ST_F32, 4, {N, 3, 16, 16}, x},   {"in/noise", ST_F32, 4, {N, 3, 16, 16}, noise},
                      {"in/sigma", ST_F32, 1, {N}, sigma},     {"eval/D", ST_F32, 4, {N, 3, 16, 16}, D},
                      {"eval/logvar", ST_F32, 1, {N}, lv}};
    memcpy(all + n, extra, sizeof extra);
    const char *mk[] = {"img_resolution", "img_channels", "label_dim", "model_channels", "channel_mult", "num_blocks",
                        "attn_resolutions", "channels_per_head", "logvar_channels"};
    const char *mv[] = {"16", "3", "0", "8", "1,2,2", "1", "8,4", "8", "8"};
    edm2_err err;
    assert_int_equal(st_write(path, all, n + 5, mk, mv, 9, &err), 0);
    arena_outputs_free(outs, names, n);
    free(all), free(x), free(noise), free(xn), free(D);
    net_close(&ni, &g_fx.rt);
}

static void test_check_ref_other_shapes(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/uncond.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/uncond_bad.safetensors", dir);
    write_uncond_ref(good, 0);
    write_uncond_ref(bad, 1e-2f);
    assert_int_equal(check_ref(good, NULL), 0); /* step groups absent: skipped, not failed */
    assert_int_equal(check_ref(bad, NULL), 1);  /* an error above tolerance fails */
    /* A truncated file is a clear error, not a crash. */
    unsigned char *data;
    size_t size;
    edm2_err err;
    assert_int_equal(read_file(good, &data, &size, &err), 0);
    FILE *f = fopen(bad, "wb");
    fwrite(data, 1, size / 2, f);
    fclose(f);
    free(data);
    assert_int_equal(check_ref(bad, NULL), 1);
    rm_rf(dir);
    free(dir);
}

static void test_param_table(void **state) {
    (void)state;
    net_instance ni;
    const char *kv[] = {"img_resolution=16", "img_channels=4", "label_dim=10", "model_channels=16", "channel_mult=1,2",
                        "num_blocks=1", "attn_resolutions=8", "channels_per_head=16", "logvar_channels=16", NULL};
    assert_int_equal(fixture_net(&g_fx, &ni, kv), 0);
    /* Exactly the reference's names and shapes. */
    st_file f;
    edm2_err err;
    assert_int_equal(st_open(&f, EDM2_TEST_DATA "/edm2_small.safetensors", &err), 0);
    float *host = malloc(ni.info.arena_floats * sizeof(float));
    assert_int_equal(arena_load(&ni.info, &f, "init/", host, &err), 0);
    size_t trained = 0;
    for (size_t i = 0; i < ni.info.param_count; i++) trained += (ni.info.params[i].flags & EDM2_PARAM_TRAINED) != 0;
    assert_int_equal(ni.info.param_count, 63);
    assert_int_equal(trained, 59);
    /* A network of another shape refuses these weights with a clear message. */
    net_instance other;
    const char *kv2[] = {"img_resolution=16", "img_channels=4", "label_dim=10", "model_channels=8", "channel_mult=1,2",
                         "num_blocks=1", "attn_resolutions=8", "channels_per_head=16", "logvar_channels=16", NULL};
    assert_int_equal(fixture_net(&g_fx, &other, kv2), 0);
    float *h2 = malloc(other.info.arena_floats * sizeof(float));
    assert_int_equal(arena_load(&other.info, &f, "init/", h2, &err), -1);
    assert_non_null(strstr(err.msg, "init/unet.emb_fourier.freqs' has shape [16], the network expects [8]"));
    free(h2);
    free(host);
    st_close(&f);
    net_close(&other, &g_fx.rt);
    net_close(&ni, &g_fx.rt);
}

/* Whole-network finite differences: L = sum(r * D) + sum(q * logvar). */
typedef struct whole_ctx {
    net_instance *ni;
    float *x, *sigma, *labels, *D, *lv, *r, *q;
    int N;
    size_t E;
} whole_ctx;

static double whole_loss(whole_ctx *c) {
    edm2_forward_args fa = {sizeof fa, c->ni->params, c->x, c->sigma, c->labels, c->N, 1, {0, 0, 0}, c->D, c->lv};
    assert_int_equal(c->ni->vt->forward(c->ni->net, &fa), EDM2_OK);
    double s = 0;
    for (size_t i = 0; i < c->E; i++) s += (double)c->r[i] * c->D[i];
    for (int n = 0; n < c->N; n++) s += (double)c->q[n] * c->lv[n];
    return s;
}

static void test_whole_network_gradients(void **state) {
    (void)state;
    net_instance ni;
    const char *kv[] = {"img_resolution=8", "img_channels=2", "label_dim=3", "model_channels=8", "channel_mult=1,2",
                        "num_blocks=1", "attn_resolutions=4", "channels_per_head=8", "logvar_channels=8", NULL};
    assert_int_equal(fixture_net(&g_fx, &ni, kv), 0);
    fixture_init_with_gains(&ni, 3, 0.7f);
    whole_ctx c = {&ni, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 2, 2 * 2 * 8 * 8};
    c.x = malloc(c.E * sizeof(float)), c.D = malloc(c.E * sizeof(float)), c.r = malloc(c.E * sizeof(float));
    float sigma[2] = {0.3f, 2.0f}, labels[6] = {1, 0, 0, 0, 0, 1}, lv[2], q[2] = {0.7f, -1.1f};
    c.sigma = sigma, c.labels = labels, c.lv = lv, c.q = q;
    for (size_t i = 0; i < c.E; i++) c.x[i] = edm2_philox_normal(8, 1, i), c.r[i] = edm2_philox_normal(8, 2, i);
    whole_loss(&c);
    float *grads = calloc(ni.info.arena_floats, sizeof(float)), *dD = malloc(c.E * sizeof(float));
    memcpy(dD, c.r, c.E * sizeof(float));
    assert_int_equal(ni.vt->backward(ni.net, ni.params, dD, q, grads), EDM2_OK);
    int checked = 0;
    for (size_t i = 0; i < ni.info.param_count; i++) {
        const edm2_param_desc *d = &ni.info.params[i];
        if (!(d->flags & EDM2_PARAM_TRAINED)) continue;
        double gs = 0;
        for (size_t j = 0; j < d->numel; j++) gs += fabs(grads[d->offset + j]);
        gs = gs / d->numel + 1e-6;
        for (size_t j = 0; j < d->numel; j += d->numel / 3 + 1) {
            float *p = &ni.params[d->offset + j], v = *p, h = 1e-2f;
            *p = v + h;
            double lp = whole_loss(&c);
            *p = v - h;
            double lm = whole_loss(&c);
            *p = v;
            double fd = (lp - lm) / (2 * h), g = grads[d->offset + j];
            /* float32 forward noise: about 1e-4 in the difference quotient */
            double tol = 3e-2 * (fabs(g) + gs) + 3e-4;
            if (fabs(fd - g) > tol) fprintf(stderr, "%s[%zu]: fd %g backward %g\n", d->name, j, fd, g);
            assert_true(fabs(fd - g) <= tol);
            checked++;
        }
    }
    assert_true(checked > 50);
    free(c.x), free(c.D), free(c.r), free(grads), free(dD);
    net_close(&ni, &g_fx.rt);
}

static void test_dropout_is_seeded(void **state) {
    (void)state;
    net_instance ni;
    const char *kv[] = {"img_resolution=8", "img_channels=1", "label_dim=0", "model_channels=8", "channel_mult=1,2",
                        "num_blocks=1", "attn_resolutions=", "channels_per_head=8", "logvar_channels=8", "dropout=0.3",
                        NULL};
    assert_int_equal(fixture_net(&g_fx, &ni, kv), 0);
    fixture_init_with_gains(&ni, 1, 1.0f);
    float x[128], D1[128], D2[128], D3[128], D4[128], sigma[2] = {1, 1};
    for (int i = 0; i < 128; i++) x[i] = edm2_philox_normal(4, 4, i);
    edm2_forward_args fa = {sizeof fa, ni.params, x, sigma, NULL, 2, 1, {9, 1, 0}, D1, NULL};
    ni.vt->forward(ni.net, &fa);
    fa.D = D2;
    ni.vt->forward(ni.net, &fa);
    assert_memory_equal(D1, D2, sizeof D1); /* same stream, same masks */
    fa.dropout_rng.offset = 12345, fa.D = D3;
    ni.vt->forward(ni.net, &fa);
    assert_memory_not_equal(D1, D3, sizeof D1);
    fa.training = 0, fa.D = D4; /* evaluation: no dropout */
    ni.vt->forward(ni.net, &fa);
    assert_memory_not_equal(D1, D4, sizeof D1);
    net_close(&ni, &g_fx.rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_small),       cmocka_unit_test(test_check_ref_other_shapes),
        cmocka_unit_test(test_param_table),           cmocka_unit_test(test_whole_network_gradients),
        cmocka_unit_test(test_dropout_is_seeded),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
