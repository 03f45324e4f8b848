/* test_posthoc.c: post-hoc EMA and the learning-rate schedule against the reference values of
 * tests/data/phema_lr.safetensors (sigma_rel <-> gamma, beta, reconstruction coefficients, lr), the
 * numerical inner products against the closed form, and the phema job: reconstructing a sigma_rel that
 * was tracked directly gives that EMA back (power: closed form; traditional: numerical integration). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../plugins/ema/power_math.h"
#include "net_fixture.h"
#include "phema.h"
#include "safetensors.h"
#include "test_util.h"

static st_file g_ref;
static fixture g_fx;

static int setup(void **state) {
    (void)state;
    edm2_err err;
    if (st_open(&g_ref, EDM2_TEST_DATA "/phema_lr.safetensors", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return fixture_open(&g_fx);
}

static int teardown(void **state) {
    (void)state;
    st_close(&g_ref);
    fixture_close(&g_fx);
    return 0;
}

static float *ref(const char *name, size_t *n) {
    const st_tensor *t = st_find(&g_ref, name);
    assert_non_null(t);
    float *v = malloc(t->numel * sizeof(float));
    st_to_f32(t, v);
    *n = t->numel;
    return v;
}

/* The reference values are float32 roundings of double results: ours must round to the same float
 * (1e-9 relative plus half a float32 ulp). */
static void assert_close(double ours, float want, const char *what, size_t i) {
    double tol = 1e-9 * fabs(want) + 0.5 * fabs(want) * 1.1920929e-07;
    if (fabs(ours - want) > tol) fprintf(stderr, "%s[%zu]: ours %.10g, reference %.10g\n", what, i, ours, (double)want);
    assert_true(fabs(ours - want) <= tol);
}

/* The decimal a stored float32 was rounded from (the reference computed from 0.05, not from its float). */
static double dec(float f) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", f);
    return strtod(buf, NULL);
}

static void test_std_exp(void **state) {
    (void)state;
    size_t n, m;
    float *std = ref("phema/std", &n), *exp_ = ref("phema/exp", &m), *back = ref("phema/exp_to_std", &m);
    for (size_t i = 0; i < n; i++) {
        double g = power_std_to_exp(dec(std[i]));
        assert_close(g, exp_[i], "std_to_exp", i);
        assert_close(power_exp_to_std(g), back[i], "exp_to_std", i);
    }
    assert_true(fabs(power_std_to_exp(0.05) - 16.97) < 0.01);
    assert_true(fabs(power_std_to_exp(0.10) - 6.94) < 0.01);
    free(std), free(exp_), free(back);
}

static void test_beta(void **state) {
    (void)state;
    size_t n;
    float *beta = ref("phema/beta", &n);
    assert_int_equal(n, 8);
    const double stds[2] = {0.05, 0.10}, t[4] = {2048, 4096, 1048576, 1073741824};
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 4; k++) assert_close(power_beta(stds[s], t[k], 2048), beta[s * 4 + k], "beta", (size_t)(s * 4 + k));
    free(beta);
}

static const edm2_ema_vtable *ema_plugin(const char *id, edm2_ema **out, const char *const *kv) {
    const plugin_rec *p = registry_find(&g_fx.reg, EDM2_KIND_EMA, id, EDM2_BACKEND_CPU);
    assert_non_null(p);
    cfg c = {0};
    config_view v;
    fixture_config(&c, &v, "ema", p, kv);
    const edm2_ema_vtable *vt = p->desc->vtable;
    assert_int_equal(vt->create(&g_fx.rt.services, &v.api, &g_fx.rt.ops, out), EDM2_OK);
    cfg_free(&c);
    return vt;
}

static void check_coefs(const edm2_ema_vtable *vt, edm2_ema *e, const char *name, int nsnap) {
    size_t nin, nstd, nout, ncoef;
    float *in_nimg = ref("phema/in_nimg", &nin), *in_std = ref("phema/in_std", &nstd), *out_std = ref("phema/out_std", &nout);
    float *coefs = ref(name, &ncoef);
    int rows = 2 * nsnap; /* inputs: snapshots x (0.05, 0.10) */
    assert_int_equal(ncoef, (size_t)rows * nout);
    double in_t[64], in_p[64], out_p[16], X[64 * 16], t_out = 0;
    for (int i = 0; i < rows; i++) {
        in_t[i] = in_nimg[i], in_p[i] = dec(in_std[i]);
        if (in_t[i] > t_out) t_out = in_t[i];
    }
    for (size_t j = 0; j < nout; j++) out_p[j] = dec(out_std[j]);
    edm2_err err;
    assert_int_equal(phema_solve(vt, e, in_t, in_p, rows, t_out, out_p, (int)nout, X, &err), 0);
    for (int i = 0; i < rows; i++)
        for (size_t j = 0; j < nout; j++) {
            double want = coefs[i * nout + j], got = X[i * nout + j];
            /* Coefficients near zero carry the solve's cancellation: relative to the column's scale. */
            /* Entries that are zero up to cancellation (1e-24) are judged against the column's scale. */
            double scale = 0;
            for (int k = 0; k < rows; k++) scale = fmax(scale, fabs(coefs[k * nout + j]));
            double tol = 1e-9 * scale + 0.5 * fabs(want) * 1.1920929e-07;
            if (fabs(got - want) > tol) fprintf(stderr, "%s[%d,%zu]: %.10g vs %.10g\n", name, i, j, got, want);
            assert_true(fabs(got - want) <= tol);
        }
    free(in_nimg), free(in_std), free(out_std), free(coefs);
}

static void test_coefficients(void **state) {
    (void)state;
    edm2_ema *e;
    const edm2_ema_vtable *vt = ema_plugin("power", &e, NULL);
    check_coefs(vt, e, "phema/coefs", 12);
    check_coefs(vt, e, "phema/coefs_mid", 6);
    /* Numerical integration agrees with the closed form. */
    const double cases[][4] = {{0.05, 1e6, 0.10, 2e6}, {0.10, 3e6, 0.05, 1e6}, {0.02, 8e6, 0.2, 8e6}, {0.15, 5, 0.15, 5}};
    for (size_t i = 0; i < 4; i++) {
        double a = vt->inner_product(e, cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
        double b = profile_inner_numeric(vt, e, cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
        assert_true(fabs(a - b) <= 1e-7 * fabs(a));
    }
    vt->destroy(e);
}

static void test_learning_rate(void **state) {
    (void)state;
    size_t n, m;
    float *t = ref("lr/cur_nimg", &n), *v = ref("lr/value", &m);
    const plugin_rec *p = registry_find(&g_fx.reg, EDM2_KIND_OPTIMIZER, "adam", EDM2_BACKEND_CPU);
    cfg c = {0};
    config_view view;
    const char *kv[] = {"ref_lr=0.012", "ref_batches=70000", "rampup_Mimg=10", NULL};
    fixture_config(&c, &view, "optimizer", p, kv);
    net_instance ni;
    const char *nk[] = {"img_resolution=8", "channel_mult=1", "num_blocks=0", "model_channels=4", "logvar_channels=4",
                        "channels_per_head=4", NULL};
    assert_int_equal(fixture_net(&g_fx, &ni, nk), 0);
    const edm2_optimizer_vtable *vt = p->desc->vtable;
    edm2_optimizer *o;
    assert_int_equal(vt->create(&g_fx.rt.services, &view.api, &g_fx.rt.ops, &ni.info, &o), EDM2_OK);
    for (size_t i = 0; i < n; i++) assert_close(vt->learning_rate(o, (int64_t)t[i], 2048), v[i], "lr", i);
    /* A step with three non-finite gradient entries reports them (ABI 1.3 nonfinite). */
    const size_t A = ni.info.arena_floats;
    float *g = calloc(A, sizeof *g);
    g[0] = NAN, g[A / 2] = INFINITY, g[A - 1] = -INFINITY;
    double lr;
    assert_int_equal(vt->step(o, ni.params, g, 0, 8, &lr), EDM2_OK);
    assert_non_null(vt->nonfinite);
    assert_int_equal(vt->nonfinite(o), 3);
    assert_int_equal(vt->step(o, ni.params, g, 8, 8, &lr), EDM2_OK); /* now all finite (zeroed) */
    assert_int_equal(vt->nonfinite(o), 0);
    free(g);
    vt->destroy(o);
    net_close(&ni, &g_fx.rt);
    cfg_free(&c);
    free(t), free(v);
}

/* Trains a tiny model with several snapshots, then reconstructs a tracked profile with the phema job. */
static void run_phema_roundtrip(const char *ema_section, const char *tracked, const char *extra, const char *label) {
    char *dir = make_temp_dir();
    char rd[600];
    snprintf(rd, sizeof rd, "job.run_dir=%s", dir);
    run_result r;
    int st = run_host(&r, "run", EDM2_SOURCE_DIR "/tests/configs/tiny_train.ini", "--set", rd, "--set",
                      "training.duration_kimg=4", "--set", ema_section, "--set", tracked, "--set", extra, NULL);
    if (st) fprintf(stderr, "%s\n", r.err);
    assert_int_equal(st, 0);
    char *cfgp = NULL;
    {
        char text[2048];
        const char *plugin = strstr(ema_section, "=") + 1;
        snprintf(text, sizeof text, "[job]\ntype = phema\n[ema]\nplugin = %s\n%s\n[phema]\nsnapshots = %s\nstds = %s\nat_kimg = 4\n",
                 plugin, strchr(extra, '.') + 1, dir, label);
        cfgp = write_text(dir, "phema.ini", text);
    }
    st = run_host(&r, "run", cfgp, NULL);
    if (st) fprintf(stderr, "%s\n", r.err);
    assert_int_equal(st, 0);
    /* Its outputs now lie beside the snapshots; a second run must not take them as inputs. */
    char inputs[128];
    const char *found = strstr(r.err, "post-hoc EMA: ");
    assert_non_null(found);
    snprintf(inputs, sizeof inputs, "%.*s", (int)strcspn(found, "("), found);
    assert_int_equal(run_host(&r, "run", cfgp, NULL), 0);
    assert_non_null(strstr(r.err, inputs));
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/phema-0000004-%s.safetensors", dir, label);
    snprintf(b, sizeof b, "%s/network-snapshot-0000004-%s.safetensors", dir, label);
    st_file fa, fb;
    edm2_err err;
    assert_int_equal(st_open(&fa, a, &err), 0);
    assert_int_equal(st_open(&fb, b, &err), 0);
    double worst = 0;
    for (size_t i = 0; i < fb.n; i++) {
        const st_tensor *ta = st_find(&fa, fb.t[i].name);
        assert_non_null(ta);
        float *x = malloc(ta->numel * 4), *y = malloc(ta->numel * 4);
        st_to_f32(ta, x), st_to_f32(&fb.t[i], y);
        for (size_t j = 0; j < ta->numel; j++) worst = fmax(worst, fabs(x[j] - y[j]) / (1 + fabs(y[j])));
        free(x), free(y);
    }
    fprintf(stderr, "%s: reconstruction vs tracked: max relative difference %.3g\n", ema_section, worst);
    assert_true(worst <= 1e-5);
    st_close(&fa), st_close(&fb);
    /* Clear errors: a time with no snapshot, a sigma_rel out of range. */
    run_host(&r, "run", cfgp, "--set", "phema.at_kimg=77", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "at_kimg = 77 matches no snapshot"));
    free(cfgp);
    rm_rf(dir);
    free(dir);
}

static void test_phema_power(void **state) {
    (void)state;
    run_phema_roundtrip("ema.plugin=power", "ema.stds=0.05,0.1", "ema.stds=0.05,0.1", "0.050");
}

static void test_phema_traditional(void **state) {
    (void)state;
    /* Without ramp-up, so the two half-lives give distinct profiles from the first snapshot on. */
    run_phema_roundtrip("ema.plugin=traditional", "ema.halflife_Mimg=0.0003,0.0006", "ema.rampup_ratio=0", "0.0006");
}

static void test_phema_errors(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char text[1024];
    snprintf(text, sizeof text, "[job]\ntype = phema\n[ema]\nplugin = power\n[phema]\nsnapshots = %s\nstds = 0.05\n", dir);
    char *p = write_text(dir, "p.ini", text);
    run_result r;
    run_host(&r, "run", p, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no snapshots of EMA profile 'power' there"));
    run_host(&r, "run", p, "--set", "phema.stds=0.3", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "0.3 is outside the valid range"));
    free(p);
    rm_rf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_std_exp),          cmocka_unit_test(test_beta),
        cmocka_unit_test(test_coefficients),     cmocka_unit_test(test_learning_rate),
        cmocka_unit_test(test_phema_power),      cmocka_unit_test(test_phema_traditional),
        cmocka_unit_test(test_phema_errors),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
