/* test_dinov2.c: the features plugin dinov2 (FD_DINOv2's network) against the original DINOv2 code:
 * tests/data/dinov2_ref.safetensors holds a small random DinoVisionTransformer's weights (converted by
 * scripts/convert_dinov2_weights.py, pos_embed interpolated from the 37x37 grid of a 518 model), images, and
 * the features DINOv2 computed for them after the EDM2 detector's resizing and normalisation
 * (make_dinov2_ref.py); this test runs the CPU build (and the CUDA build where a GPU is present, or in the CPU
 * emulation as test_dinov2_emu) through the host's feature_net.c (8-bit quantisation, grey as RGB) with that
 * file as the weights and compares, enlarged and shrunk images both. Also: features
 * independent of the batch and the thread count (bitwise), the ViT-L/14 table by default, a shape the network
 * cannot have refused, and weights of another shape refused with the tensor named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_fixture.h"
#include "config.h"
#include "feature_net.h"
#include "safetensors.h"
#include "test_util.h"
#include "validate.h"

#define REF EDM2_TEST_DATA "/dinov2_ref.safetensors"
#define DIM 64
#define TOL 5e-6 /* of the largest feature: float32 sums in another order (seen: 6.2e-7) */

static plugin_registry g_reg;
static runtime g_rt;
static st_file g_ref;

static const plugin_rec *plugin_of(edm2_backend_id b) { return registry_find(&g_reg, EDM2_KIND_FEATURES, "dinov2", b); }
static const plugin_rec *plugin(void) { return plugin_of(EDM2_BACKEND_CPU); }

/* The small network of the reference file (its metadata give the shape), or `extra` settings, on rt. */
static int open_on(feat_instance *fi, runtime *rt, edm2_backend_id b, const char *const *extra, edm2_err *err) {
    cfg c = {0};
    const char *keys[] = {"dim", "depth", "heads", "patch", "resolution"};
    assert_int_equal(cfg_put(&c, "features", "weights", REF), 0);
    for (int k = 0; k < 5; k++) assert_int_equal(cfg_put(&c, "features", keys[k], st_meta(&g_ref, keys[k])), 0);
    for (int k = 0; extra && extra[k]; k += 2) assert_int_equal(cfg_put(&c, "features", extra[k], extra[k + 1]), 0);
    config_view v;
    config_view_init(&v, &c, "features", plugin_of(b)->desc->keys, plugin_of(b)->desc->key_count);
    int rc = feat_open(fi, rt, plugin_of(b), &v.api, err);
    cfg_free(&c);
    return rc;
}

static int open_features(feat_instance *fi, const char *const *extra, edm2_err *err) {
    return open_on(fi, &g_rt, EDM2_BACKEND_CPU, extra, err);
}

/* The images of one group (values k/255), encoded as generated images (x / 127.5 - 1), and their features. */
static float *ref_images(const char *group, int *n, int *C, int *R, float **want) {
    char name[64];
    snprintf(name, sizeof name, "ref.%s.images", group);
    const st_tensor *t = st_find(&g_ref, name);
    assert_non_null(t);
    *n = (int)t->shape[0], *C = (int)t->shape[1], *R = (int)t->shape[2];
    float *x = malloc(t->numel * sizeof(float));
    st_to_f32(t, x);
    for (size_t i = 0; i < t->numel; i++) x[i] = roundf(x[i] * 255.0f) / 127.5f - 1.0f;
    snprintf(name, sizeof name, "ref.%s.features", group);
    const st_tensor *f = st_find(&g_ref, name);
    assert_non_null(f);
    assert_int_equal(f->numel, (size_t)*n * DIM);
    *want = malloc(f->numel * sizeof(float));
    st_to_f32(f, *want);
    return x;
}

static void check_backend(runtime *rt, edm2_backend_id b, const char *label) {
    feat_instance fi;
    edm2_err err;
    if (open_on(&fi, rt, b, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(fi.info.dim, DIM);
    const char *groups[] = {"rgb32", "grey28", "rgb300"};
    for (int g = 0; g < 3; g++) {
        int n, C, R;
        float *want, *x = ref_images(groups[g], &n, &C, &R, &want), *got = malloc((size_t)n * DIM * sizeof(float));
        assert_int_equal(feat_extract(&fi, x, n, C, R, got, &err), 0);
        double m = 0, s = 0;
        for (size_t i = 0; i < (size_t)n * DIM; i++) {
            const double d = fabs((double)got[i] - want[i]);
            m = d > m || isnan(d) ? d : m;
            s = fmax(s, fabs((double)want[i]));
        }
        print_message("%s %s: %d images %dx%dx%d, max |ours - DINOv2| = %.2e of the largest feature (%.3f)\n", label,
                      groups[g], n, C, R, R, m / s, s);
        assert_true(m / s <= TOL);
        free(x), free(want), free(got);
    }
    feat_close(&fi);
}

static void test_matches_dinov2(void **state) {
    (void)state;
    check_backend(&g_rt, EDM2_BACKEND_CPU, "cpu");
}

static void test_cuda_matches(void **state) {
    (void)state;
    runtime rt;
    char why[512];
    if (open_backend(&g_reg, &rt, "edm2_backend_cuda.so", "cuda", why, sizeof why)) {
        print_message("skipped: the CUDA build needs a CUDA device (%s)\n", why);
        skip();
    }
    if (!plugin_of(EDM2_BACKEND_CUDA)) fail_msg("no CUDA build of dinov2 although a CUDA backend runs");
    check_backend(&rt, EDM2_BACKEND_CUDA, "cuda");
    runtime_close(&rt);
}

/* An image's features alone, in a batch, and with one or two threads: bitwise the same. */
static void test_batch_and_threads(void **state) {
    (void)state;
    feat_instance fi;
    edm2_err err;
    if (open_features(&fi, NULL, &err)) fail_msg("%s", err.msg);
    int n, C, R;
    float *want, *x = ref_images("rgb32", &n, &C, &R, &want);
    float *all = malloc((size_t)n * DIM * sizeof(float)), one[DIM];
    assert_int_equal(feat_extract(&fi, x, n, C, R, all, &err), 0);
    g_rt.services.threads = 1;
    assert_int_equal(feat_extract(&fi, x + (size_t)C * R * R, 1, C, R, one, &err), 0);
    g_rt.services.threads = 2;
    assert_memory_equal(one, all + DIM, sizeof one);
    feat_close(&fi);
    free(x), free(want), free(all);
}

/* The default shape is ViT-L/14 at 224 (the released weights' table); shapes it cannot be and weights of
 * another shape are refused. */
static void test_table_and_refusals(void **state) {
    (void)state;
    const plugin_rec *p = plugin();
    const edm2_features_vtable *vt = p->desc->vtable;
    cfg c = {0};
    config_view v;
    config_view_init(&v, &c, "features", p->desc->keys, p->desc->key_count);
    edm2_features *f = NULL;
    assert_int_equal(vt->create(&g_rt.services, &v.api, &g_rt.ops, &f), EDM2_OK);
    edm2_features_info info = {.struct_size = sizeof info};
    assert_int_equal(vt->get_info(f, &info), EDM2_OK);
    assert_int_equal(info.dim, 1024);
    assert_int_equal(info.input_resolution, 224);
    assert_int_equal(info.param_count, 4 + 24 * 14 + 2);
    size_t total = 0;
    for (size_t i = 0; i < info.param_count; i++) total += info.params[i].numel;
    /* dinov2_vitl14's 304,368,640 without mask_token (1024) and with pos_embed for 16 x 16 patches instead of
     * 37 x 37 (1,139,712 fewer) */
    assert_int_equal(total, 303227904);
    assert_string_equal(info.params[1].name, "pos_embed");
    assert_int_equal(info.params[1].shape[1], 257);
    assert_string_equal(info.params[4 + 23 * 14 + 2].name, "blocks.23.attn.qkv.weight");
    vt->destroy(f);
    feat_instance fi;
    edm2_err err;
    const char *heads[] = {"heads", "5", NULL}, *res[] = {"resolution", "100", NULL}, *wide[] = {"dim", "128", "heads",
                                                                                                   "4", NULL};
    assert_int_equal(open_features(&fi, heads, &err), -1);
    feat_close(&fi);
    assert_non_null(strstr(err.msg, "[features] dinov2"));
    assert_int_equal(open_features(&fi, res, &err), -1);
    feat_close(&fi);
    assert_int_equal(open_features(&fi, wide, &err), -1);
    feat_close(&fi);
    print_message("dim 128: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "tensor 'cls_token' has shape [1, 1, 64], dinov2 expects [1, 1, 128]"));
    assert_non_null(strstr(err.msg, "edm2host plugins --describe dinov2"));
    /* Another network's converted weights (their edm2.features) are named as such. */
    char *d = make_temp_dir(), path[600];
    snprintf(path, sizeof path, "%s/fid.safetensors", d);
    const float one = 1;
    const st_out o = {"Conv2d_1a_3x3.conv.weight", ST_F32, 1, {1}, &one};
    const char *mk[] = {"edm2.features"}, *mv[] = {"inception_v3"}, *other[] = {"weights", path, NULL};
    assert_int_equal(st_write(path, &o, 1, mk, mv, 1, &err), 0);
    assert_int_equal(open_features(&fi, other, &err), -1);
    feat_close(&fi);
    assert_non_null(strstr(err.msg, "fid.safetensors: the weights of the features plugin inception_v3 (its "
                                    "edm2.features), not of dinov2 (edm2host plugins --describe dinov2"));
    rm_rf(d);
    free(d);
    cfg_free(&c);
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
    if (!plugin()) return -1;
    return st_open(&g_ref, REF, &err) ? (fprintf(stderr, "%s\n", err.msg), -1) : 0;
}

static int teardown(void **state) {
    (void)state;
    st_close(&g_ref);
    runtime_close(&g_rt);
    registry_free(&g_reg);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_dinov2),
        cmocka_unit_test(test_batch_and_threads),
        cmocka_unit_test(test_table_and_refusals),
        cmocka_unit_test(test_cuda_matches),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
