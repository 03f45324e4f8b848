/* test_inception.c: the features plugin inception_v3 (FID's Inception-v3) against an independent
 * implementation, the pytorch-fid package's InceptionV3, on the real layer shapes: tests/data/
 * inception_ref.safetensors holds images and the features pytorch-fid computed for them with synthetic
 * weights that are a pure function of each tensor's name and index (make_inception_ref.py); this test writes
 * the same weights file in C, runs the CPU build (and the CUDA build where a GPU is present) through the
 * host's feature_net.c (8-bit quantisation of generated images, resizing, grey as RGB) and compares. Also:
 * features independent of the batch and the thread count (bitwise), and weights files with a missing,
 * misshaped or non-finite tensor refused with the file and tensor named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_fixture.h"
#include "config.h"
#include "feature_net.h"
#include "fid_weights.h"
#include "safetensors.h"
#include "test_util.h"
#include "validate.h"

#define TOL 5e-6 /* of the largest feature: float32 sums in another order through 47 layers (seen: 5e-7) */

static plugin_registry g_reg;
static runtime g_rt;
static char *g_dir, g_weights[1024];
static st_file g_ref;

static const plugin_rec *plugin(edm2_backend_id b) { return registry_find(&g_reg, EDM2_KIND_FEATURES, "inception_v3", b); }

/* The plugin's own table is the graph's (fid_weights.h writes from the graph). */
static void check_table(void) {
    edm2_features *f = NULL;
    const plugin_rec *p = plugin(EDM2_BACKEND_CPU);
    const edm2_features_vtable *vt = p->desc->vtable;
    cfg c = {0};
    config_view v;
    config_view_init(&v, &c, "features", p->desc->keys, p->desc->key_count);
    assert_int_equal(vt->create(&g_rt.services, &v.api, &g_rt.ops, &f), EDM2_OK);
    edm2_features_info info = {.struct_size = sizeof info};
    assert_int_equal(vt->get_info(f, &info), EDM2_OK);
    assert_int_equal(info.dim, 2048);
    assert_int_equal(info.param_count, 94 * 5);
    incep_graph *g = malloc(sizeof *g);
    incep_graph_build(g);
    assert_int_equal(info.arena_floats, g->arena_floats);
    for (size_t i = 0; i < info.param_count; i++) assert_string_equal(info.params[i].name, g->params[i].name);
    free(g);
    vt->destroy(f);
}

static void write_weights(const char *path, const char *spoil, const char *how) {
    edm2_err err;
    if (write_fid_weights(path, spoil, how, &err)) fail_msg("%s", err.msg);
}

static int open_features(feat_instance *fi, runtime *rt, edm2_backend_id b, const char *weights, edm2_err *err) {
    cfg c = {0};
    assert_int_equal(cfg_put(&c, "features", "weights", weights), 0);
    config_view v;
    config_view_init(&v, &c, "features", plugin(b)->desc->keys, plugin(b)->desc->key_count);
    int rc = feat_open(fi, rt, plugin(b), &v.api, err);
    cfg_free(&c);
    return rc;
}

/* The images of one group of the reference file, encoded as generated images (x / 127.5 - 1 of 8-bit
 * values), and their reference features. */
static float *ref_images(const char *group, int *n, int *C, int *R, float **want) {
    char name[64];
    snprintf(name, sizeof name, "%s/images", group);
    const st_tensor *t = st_find(&g_ref, name);
    assert_non_null(t);
    *n = (int)t->shape[0], *C = (int)t->shape[1], *R = (int)t->shape[2];
    float *x = malloc(t->numel * sizeof(float));
    st_to_f32(t, x);
    for (size_t i = 0; i < t->numel; i++) x[i] = roundf(x[i] * 255.0f) / 127.5f - 1.0f;
    snprintf(name, sizeof name, "%s/features", group);
    const st_tensor *f = st_find(&g_ref, name);
    assert_non_null(f);
    assert_int_equal(f->numel, (size_t)*n * 2048);
    *want = malloc(f->numel * sizeof(float));
    st_to_f32(f, *want);
    return x;
}

static double rel_err(const float *got, const float *want, size_t n) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - want[i]);
        m = d > m || isnan(d) ? d : m;
        s = fmax(s, fabs((double)want[i]));
    }
    return m / s;
}

static void check_backend(runtime *rt, edm2_backend_id b, const char *label) {
    feat_instance fi;
    edm2_err err;
    if (open_features(&fi, rt, b, g_weights, &err)) fail_msg("%s", err.msg);
    const char *groups[] = {"rgb32", "grey28", "rgb64"};
    for (int g = 0; g < 3; g++) {
        int n, C, R;
        float *want, *x = ref_images(groups[g], &n, &C, &R, &want), *got = malloc((size_t)n * 2048 * sizeof(float));
        assert_int_equal(feat_extract(&fi, x, n, C, R, got, &err), 0);
        const double e = rel_err(got, want, (size_t)n * 2048);
        print_message("%s %s: %d images %dx%dx%d, max |ours - pytorch-fid| = %.2e of the largest feature\n", label,
                      groups[g], n, C, R, R, e);
        assert_true(e <= TOL);
        free(x), free(want), free(got);
    }
    feat_close(&fi);
}

static void test_cpu_matches_pytorch_fid(void **state) {
    (void)state;
    check_backend(&g_rt, EDM2_BACKEND_CPU, "cpu");
}

/* An image's features alone, in a batch, and with one or two threads: bitwise the same. */
static void test_batch_and_threads(void **state) {
    (void)state;
    feat_instance fi;
    edm2_err err;
    if (open_features(&fi, &g_rt, EDM2_BACKEND_CPU, g_weights, &err)) fail_msg("%s", err.msg);
    int n, C, R;
    float *want, *x = ref_images("rgb32", &n, &C, &R, &want);
    float *all = malloc((size_t)n * 2048 * sizeof(float)), *one = malloc(2048 * sizeof(float));
    assert_int_equal(feat_extract(&fi, x, n, C, R, all, &err), 0);
    g_rt.services.threads = 1;
    assert_int_equal(feat_extract(&fi, x + (size_t)2 * C * R * R, 1, C, R, one, &err), 0);
    g_rt.services.threads = 2;
    assert_memory_equal(one, all + 2 * 2048, 2048 * sizeof(float));
    feat_close(&fi);
    free(x), free(want), free(all), free(one);
}

static void test_bad_weights(void **state) {
    (void)state;
    const char *spoil = "Mixed_6c.branch7x7dbl_3.conv.weight";
    const char *how[] = {"missing", "shape", "nan"}, *expect[] = {"missing tensor", "has shape [1, 25600, 1, 7], inception_v3 expects [160, 160, 1, 7]", "holds nan"};
    char path[1100];
    snprintf(path, sizeof path, "%s/bad.safetensors", g_dir);
    for (int k = 0; k < 3; k++) {
        write_weights(path, spoil, how[k]);
        feat_instance fi;
        edm2_err err;
        assert_int_equal(open_features(&fi, &g_rt, EDM2_BACKEND_CPU, path, &err), -1);
        feat_close(&fi);
        print_message("%s: %s\n", how[k], err.msg);
        assert_non_null(strstr(err.msg, path));
        assert_non_null(strstr(err.msg, "Mixed_6c.branch7x7dbl_3.conv.weight"));
        assert_non_null(strstr(err.msg, expect[k]));
    }
    feat_instance fi;
    edm2_err err;
    assert_int_equal(open_features(&fi, &g_rt, EDM2_BACKEND_CPU, "/nonexistent/fid.safetensors", &err), -1);
    feat_close(&fi);
    assert_non_null(strstr(err.msg, "/nonexistent/fid.safetensors"));
}

static void test_cuda_matches(void **state) {
    (void)state;
    runtime rt;
    char why[512];
    if (open_backend(&g_reg, &rt, "edm2_backend_cuda.so", "cuda", why, sizeof why)) {
        print_message("skipped: the CUDA build needs a CUDA device (%s)\n", why);
        skip();
    }
    if (!plugin(EDM2_BACKEND_CUDA)) fail_msg("no CUDA build of inception_v3 although a CUDA backend runs");
    check_backend(&rt, EDM2_BACKEND_CUDA, "cuda");
    runtime_close(&rt);
}

static int setup(void **state) {
    (void)state;
    edm2_err err;
    registry_default_dirs(&g_reg, EDM2_BUILD_DIR "/plugins");
    registry_scan(&g_reg);
    char why[512];
    if (open_backend(&g_reg, &g_rt, "edm2_backend_cpu.so", "cpu", why, sizeof why)) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    if (!plugin(EDM2_BACKEND_CPU)) return -1;
    check_table();
    g_dir = make_temp_dir();
    snprintf(g_weights, sizeof g_weights, "%s/fid-synthetic.safetensors", g_dir);
    write_weights(g_weights, NULL, NULL);
    return st_open(&g_ref, EDM2_TEST_DATA "/inception_ref.safetensors", &err) ? (fprintf(stderr, "%s\n", err.msg), -1) : 0;
}

static int teardown(void **state) {
    (void)state;
    st_close(&g_ref);
    runtime_close(&g_rt);
    registry_free(&g_reg);
    rm_rf(g_dir);
    free(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_matches_pytorch_fid),
        cmocka_unit_test(test_batch_and_threads),
        cmocka_unit_test(test_bad_weights),
        cmocka_unit_test(test_cuda_matches),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
