/* test_vae.c: the VAE plugin sd_vae against an independent implementation, diffusers' AutoencoderKL
 * (tests/data/vae_ref.safetensors, made by make_vae_ref.py): a small random configuration with its weights
 * in diffusers' names and in the single-file (LDM) names, and the real SD configuration with synthetic weights
 * (vae_weights.h) on a small image; the posterior's mean and std and the decoding, through the host's
 * vae_net.c. Also: decoding independent of the batch and the thread count (bitwise), EDM2's latent scaling,
 * and weight files refused with the file and tensor named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_fixture.h"
#include "config.h"
#include "safetensors.h"
#include "test_util.h"
#include "vae_net.h"
#include "vae_weights.h"
#include "validate.h"

#define TOL 1e-5 /* of the largest value: float32 sums in another order (seen: 1.9e-6) */

static plugin_registry g_reg;
static runtime g_rt;
static char *g_dir;
static st_file g_ref;

static runtime *g_on = &g_rt; /* the runtime open_vae uses */

static const plugin_rec *plugin(void) {
    return registry_find(&g_reg, EDM2_KIND_VAE, "sd_vae", g_on->backend_rec->desc->backend);
}

/* Opens sd_vae with "key=value" settings (NULL-terminated); identity scaling unless `scaled`. */
static int open_vae(vae_instance *vi, const char *weights, const char *const *kv, int scaled, edm2_err *err) {
    cfg c = {0};
    assert_int_equal(cfg_put(&c, "vae", "weights", weights), 0);
    if (!scaled) {
        assert_int_equal(cfg_put(&c, "vae", "latent_mean", "0,0,0,0"), 0);
        assert_int_equal(cfg_put(&c, "vae", "latent_std", "1,1,1,1"), 0);
        assert_int_equal(cfg_put(&c, "vae", "final_std", "1"), 0);
    }
    for (; kv && *kv; kv++) {
        char key[64];
        const char *eq = strchr(*kv, '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - *kv), *kv);
        assert_int_equal(cfg_put(&c, "vae", key, eq + 1), 0);
    }
    config_view v;
    config_view_init(&v, &c, "vae", plugin()->desc->keys, plugin()->desc->key_count);
    int rc = vae_open(vi, g_on, plugin(), &v.api, err);
    cfg_free(&c);
    return rc;
}

static float *ref(const char *name, size_t *n) {
    const st_tensor *t = st_find(&g_ref, name);
    if (!t) fail_msg("%s missing from vae_ref.safetensors", name);
    float *x = malloc(t->numel * sizeof(float));
    st_to_f32(t, x);
    if (n) *n = t->numel;
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

/* Writes the tensors of vae_ref.safetensors under `prefix` (without it) to DIR/name; old = 1 renames the
 * attention's projections as diffusers did before 0.14 (query, key, value, proj_attn); old = 2 puts every name
 * under "first_stage_model." as in a whole Stable Diffusion checkpoint. */
static void write_prefixed(const char *prefix, const char *name, int old, char *path, size_t len) {
    static const char *const k_now[] = {".to_q.", ".to_k.", ".to_v.", ".to_out.0."};
    static const char *const k_then[] = {".query.", ".key.", ".value.", ".proj_attn."};
    char (*names)[200] = calloc(g_ref.n, sizeof *names);
    snprintf(path, len, "%s/%s", g_dir, name);
    st_out *outs = calloc(g_ref.n, sizeof *outs);
    float **data = calloc(g_ref.n, sizeof *data);
    size_t n = 0, plen = strlen(prefix);
    for (size_t i = 0; i < g_ref.n; i++) {
        const st_tensor *t = &g_ref.t[i];
        if (strncmp(t->name, prefix, plen)) continue;
        data[n] = malloc(t->numel * sizeof(float) + 1);
        st_to_f32(t, data[n]);
        snprintf(names[n], sizeof names[n], "%s%s", old == 2 ? "first_stage_model." : "", t->name + plen);
        for (int k = 0; old == 1 && k < 4; k++) {
            char *at = strstr(names[n], k_now[k]);
            if (!at) continue;
            char tail[200];
            snprintf(tail, sizeof tail, "%s", at + strlen(k_now[k]));
            snprintf(at, sizeof names[n] - (size_t)(at - names[n]), "%s%s", k_then[k], tail);
        }
        outs[n] = (st_out){names[n], ST_F32, t->ndim, {0}, data[n]};
        for (int k = 0; k < t->ndim; k++) outs[n].shape[k] = t->shape[k];
        n++;
    }
    edm2_err err;
    assert_int_equal(st_write(path, outs, n, NULL, NULL, 0, &err), 0);
    for (size_t i = 0; i < n; i++) free(data[i]);
    free(data), free(outs), free(names);
}

/* Encodes GROUP/images and decodes GROUP/latents; compares with diffusers' mean, std and decoding. */
static void check(vae_instance *vi, const char *group, const char *label) {
    char name[64];
    size_t ni, nm;
    snprintf(name, sizeof name, "%s/images", group);
    float *images = ref(name, &ni);
    snprintf(name, sizeof name, "%s/latents", group);
    float *lat = ref(name, NULL);
    snprintf(name, sizeof name, "%s/mean", group);
    float *mean = ref(name, &nm);
    snprintf(name, sizeof name, "%s/std", group);
    float *std = ref(name, NULL);
    snprintf(name, sizeof name, "%s/decoded", group);
    float *dec = ref(name, NULL);
    snprintf(name, sizeof name, "%s/images", group);
    const st_tensor *ti = st_find(&g_ref, name);
    snprintf(name, sizeof name, "%s/latents", group);
    const st_tensor *tl = st_find(&g_ref, name);
    const int n = (int)ti->shape[0], H = (int)ti->shape[2], W = (int)ti->shape[3], d = vi->info.downsample;
    const int L = vi->info.latent_channels, h = H / d, w = W / d, lh = (int)tl->shape[2], lw = (int)tl->shape[3];
    const size_t nd = (size_t)n * 3 * lh * d * lw * d;
    float *mom = malloc(2 * nm * sizeof(float)), *img = malloc(nd * sizeof(float));
    edm2_err err;
    if (vae_encode_images(vi, images, n, H, W, mom, &err)) fail_msg("%s", err.msg);
    /* moments [n, 2L, h, w] -> mean, std [n, L, h, w] */
    float *gm = malloc(nm * sizeof(float)), *gs = malloc(nm * sizeof(float));
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < (size_t)L * h * w; k++) {
            gm[(size_t)i * L * h * w + k] = mom[(size_t)i * 2 * L * h * w + k];
            gs[(size_t)i * L * h * w + k] = mom[(size_t)i * 2 * L * h * w + (size_t)L * h * w + k];
        }
    if (vae_decode_latents(vi, lat, n, lh, lw, img, &err)) fail_msg("%s", err.msg);
    for (size_t k = 0; k < nd; k++) img[k] = (img[k] + 1.0f) / 2.0f;
    const double em = rel_err(gm, mean, nm), es = rel_err(gs, std, nm), ed = rel_err(img, dec, nd);
    print_message("%s: mean %.2e, std %.2e, decoded %.2e of the largest value\n", label, em, es, ed);
    assert_true(em <= TOL && es <= TOL && ed <= TOL);
    free(images), free(lat), free(mean), free(std), free(dec), free(mom), free(img), free(gm), free(gs);
}

static const char *const k_small[] = {"block_out_channels=16,32", "layers_per_block=1", "norm_num_groups=8", NULL};

static void test_small_diffusers_and_ldm(void **state) {
    (void)state;
    char path[600];
    vae_instance vi;
    edm2_err err;
    write_prefixed("small/w/", "small.safetensors", 0, path, sizeof path);
    if (open_vae(&vi, path, k_small, 0, &err)) fail_msg("%s", err.msg);
    assert_non_null(strstr(vi.layout, "diffusers"));
    check(&vi, "small", "small, diffusers names");
    vae_close(&vi);
    write_prefixed("small/ldm/", "small-ldm.safetensors", 0, path, sizeof path);
    if (open_vae(&vi, path, k_small, 0, &err)) fail_msg("%s", err.msg);
    assert_non_null(strstr(vi.layout, "alias names 1"));
    check(&vi, "small", "small, single-file names");
    vae_close(&vi);
    write_prefixed("small/ldm/", "sd-checkpoint.safetensors", 2, path, sizeof path);
    if (open_vae(&vi, path, k_small, 0, &err)) fail_msg("%s", err.msg);
    assert_non_null(strstr(vi.layout, "alias names 1 under first_stage_model."));
    check(&vi, "small", "small, a whole SD checkpoint's names");
    vae_close(&vi);
    write_prefixed("small/w/", "small-old.safetensors", 1, path, sizeof path);
    if (open_vae(&vi, path, k_small, 0, &err)) fail_msg("%s", err.msg);
    assert_non_null(strstr(vi.layout, "alias names 2"));
    check(&vi, "small", "small, diffusers names before 0.14");
    vae_close(&vi);
}

static void test_real_shapes(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/sd-synthetic.safetensors", g_dir);
    const vae_hparams hp = {4, {128, 256, 512, 512}, 2, 32, 4};
    edm2_err err;
    assert_int_equal(write_vae_weights(path, &hp, NULL, NULL, &err), 0);
    vae_instance vi;
    if (open_vae(&vi, path, NULL, 0, &err)) fail_msg("%s", err.msg);
    assert_int_equal(vi.info.downsample, 8);
    size_t total = 0;
    for (size_t i = 0; i < vi.info.param_count; i++) total += vi.info.params[i].numel;
    assert_int_equal(total, 83653863); /* diffusers' AutoencoderKL with the SD configuration */
    check(&vi, "sd", "SD configuration");
    vae_close(&vi);
    remove(path);
}

/* Two latents decoded together, alone, and with one thread: bitwise the same. */
static void test_batch_and_threads(void **state) {
    (void)state;
    char path[600];
    write_prefixed("small/w/", "small.safetensors", 0, path, sizeof path);
    vae_instance vi;
    edm2_err err;
    if (open_vae(&vi, path, k_small, 1, &err)) fail_msg("%s", err.msg);
    float *lat = ref("small/latents", NULL), *both = malloc(2 * 3 * 8 * 8 * sizeof(float));
    float *one = malloc(3 * 8 * 8 * sizeof(float));
    assert_int_equal(vae_decode_latents(&vi, lat, 2, 4, 4, both, &err), 0);
    g_rt.services.threads = 1;
    assert_int_equal(vae_decode_latents(&vi, lat + 4 * 4 * 4, 1, 4, 4, one, &err), 0);
    g_rt.services.threads = 2;
    assert_memory_equal(one, both + 3 * 8 * 8, 3 * 8 * 8 * sizeof(float));
    /* EDM2's scaling of the SD VAE's latents: scale = 0.5 / std, bias = -mean scale, in float32. */
    assert_true(vi.scale[0] == 0.5f / 4.17f && vi.bias[3] == 0.0f - -2.15f * (0.5f / 3.28f));
    vae_close(&vi);
    free(lat), free(both), free(one);
}

static void test_bad_weights(void **state) {
    (void)state;
    const vae_hparams hp = {2, {16, 32}, 1, 8, 4};
    char path[600];
    snprintf(path, sizeof path, "%s/bad.safetensors", g_dir);
    edm2_err err;
    vae_instance vi;
    assert_int_equal(write_vae_weights(path, &hp, "decoder.up_blocks.1.resnets.0.conv1.weight", "missing", &err), 0);
    assert_int_equal(open_vae(&vi, path, k_small, 0, &err), -1);
    vae_close(&vi);
    print_message("missing: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "decoder.up_blocks.1.resnets.0.conv1.weight"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(write_vae_weights(path, &hp, "decoder.up_blocks.1.resnets.0.conv1.weight", "nan", &err), 0);
    assert_int_equal(open_vae(&vi, path, k_small, 0, &err), -1);
    vae_close(&vi);
    assert_non_null(strstr(err.msg, "holds nan"));
    /* weights of another architecture than the keys describe */
    assert_int_equal(write_vae_weights(path, &hp, NULL, NULL, &err), 0);
    const char *const wider[] = {"block_out_channels=16,64", "layers_per_block=1", "norm_num_groups=8", NULL};
    assert_int_equal(open_vae(&vi, path, wider, 0, &err), -1);
    vae_close(&vi);
    print_message("other architecture: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "check the [vae] architecture keys"));
    const char *const groups[] = {"block_out_channels=16,32", "norm_num_groups=5", NULL};
    assert_int_equal(open_vae(&vi, path, groups, 0, &err), -1);
    vae_close(&vi);
}

/* The CUDA build against diffusers on the same data, where a GPU is present. */
static void test_cuda_matches(void **state) {
    (void)state;
    runtime rt;
    char why[512], path[600];
    if (open_backend(&g_reg, &rt, "edm2_backend_cuda.so", "cuda", why, sizeof why)) {
        print_message("skipped: the CUDA build needs a CUDA device (%s)\n", why);
        skip();
    }
    g_on = &rt;
    if (!plugin()) fail_msg("no CUDA build of sd_vae although a CUDA backend runs");
    write_prefixed("small/ldm/", "small-ldm.safetensors", 0, path, sizeof path);
    vae_instance vi;
    edm2_err err;
    if (open_vae(&vi, path, k_small, 0, &err)) fail_msg("%s", err.msg);
    check(&vi, "small", "cuda, small");
    vae_close(&vi);
    snprintf(path, sizeof path, "%s/sd-synthetic.safetensors", g_dir);
    const vae_hparams hp = {4, {128, 256, 512, 512}, 2, 32, 4};
    assert_int_equal(write_vae_weights(path, &hp, NULL, NULL, &err), 0);
    if (open_vae(&vi, path, NULL, 0, &err)) fail_msg("%s", err.msg);
    check(&vi, "sd", "cuda, SD configuration");
    vae_close(&vi);
    remove(path);
    g_on = &g_rt;
    runtime_close(&rt);
}

static int setup(void **state) {
    (void)state;
    edm2_err err;
    registry_default_dirs(&g_reg, EDM2_BUILD_DIR "/plugins");
    registry_scan(&g_reg);
    char why[512];
    if (open_backend(&g_reg, &g_rt, "edm2_backend_cpu.so", "cpu", why, sizeof why) || !plugin()) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    g_dir = make_temp_dir();
    return st_open(&g_ref, EDM2_TEST_DATA "/vae_ref.safetensors", &err) ? (fprintf(stderr, "%s\n", err.msg), -1) : 0;
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
        cmocka_unit_test(test_small_diffusers_and_ldm),
        cmocka_unit_test(test_real_shapes),
        cmocka_unit_test(test_batch_and_threads),
        cmocka_unit_test(test_bad_weights),
        cmocka_unit_test(test_cuda_matches),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
