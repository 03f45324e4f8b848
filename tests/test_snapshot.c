/* test_snapshot.c: loading snapshots is strict and tolerant where it should be: a file whose metadata
 * disagree with its tensors (no label_dim but a label embedding; a missing tensor; another shape), absurd
 * or non-finite values are one-line errors naming the file; metadata written by other tools ("None" for
 * automatic settings, Python lists) load. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "net_fixture.h"
#include "snapshot.h"
#include "st_rewrite.h"
#include "test_util.h"

static fixture g_fx;
static char *g_dir;
static char g_snap[600];
static float *g_params;
static size_t g_floats;

static const char *const k_net[] = {"img_resolution=8", "img_channels=1", "label_dim=10", "model_channels=8",
                                    "channel_mult=1,2", "num_blocks=1", "attn_resolutions=4", "channels_per_head=8",
                                    "logvar_channels=8", NULL};

static int setup(void **state) {
    (void)state;
    if (fixture_open(&g_fx)) return -1;
    g_dir = make_temp_dir();
    snprintf(g_snap, sizeof g_snap, "%s/network-snapshot-0000002-0.100.safetensors", g_dir);
    net_instance ni;
    if (fixture_net(&g_fx, &ni, k_net)) return -1;
    fixture_init_with_gains(&ni, 3, 0.7f);
    g_floats = ni.info.arena_floats;
    g_params = malloc(g_floats * sizeof(float));
    memcpy(g_params, ni.params, g_floats * sizeof(float));
    cfg c = {0};
    config_view v;
    fixture_config(&c, &v, "network", ni.rec, k_net);
    snapshot_meta meta = {2048, "power", 0.1, "0.100", NULL, 0, NULL, NULL, NULL};
    edm2_err err;
    int rc = snapshot_write(g_snap, &ni, g_params, &c, "network", &meta, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    cfg_free(&c);
    net_close(&ni, &g_fx.rt);
    return rc;
}

static int teardown(void **state) {
    (void)state;
    rm_rf(g_dir);
    free(g_dir);
    free(g_params);
    fixture_close(&g_fx);
    return 0;
}

/* Opens `path` as a snapshot; returns 0 or -1 with the message in err. */
static int open_snap(const char *path, edm2_err *err, int compare) {
    net_instance ni;
    st_file f;
    memset(&f, 0, sizeof f);
    int rc = snapshot_open(path, &g_fx.reg, &g_fx.rt, &ni, &f, NULL, err);
    if (!rc && compare) {
        assert_int_equal(ni.info.arena_floats, g_floats);
        assert_memory_equal(ni.params, g_params, g_floats * sizeof(float));
    }
    if (ni.net) net_close(&ni, &g_fx.rt);
    st_close(&f);
    return rc;
}

static void expect_error(const st_change *ch, size_t n, const char *expect) {
    char path[700];
    snprintf(path, sizeof path, "%s/changed-0000002-0.100.safetensors", g_dir);
    assert_int_equal(st_rewrite(g_snap, path, ch, n), 0);
    edm2_err err;
    assert_int_equal(open_snap(path, &err, 0), -1);
    if (!strstr(err.msg, expect) || !strstr(err.msg, path)) fprintf(stderr, "expected '%s', got: %s\n", expect, err.msg);
    assert_non_null(strstr(err.msg, expect));
    assert_non_null(strstr(err.msg, path));
    assert_null(strchr(err.msg, '\n'));
}

static void test_loads_exactly(void **state) {
    (void)state;
    edm2_err err;
    assert_int_equal(open_snap(g_snap, &err, 1), 0);
}

static void test_metadata_disagrees_with_tensors(void **state) {
    (void)state;
    /* No label_dim: an unconditional network, but the file holds a label embedding. */
    const st_change nolabel[] = {{"label_dim", NULL, NULL, NULL, 0}};
    expect_error(nolabel, 1, "unexpected tensor 'unet.emb_label.weight': not a parameter of the network its metadata describe");
    const st_change missing[] = {{NULL, NULL, "unet.enc.8x8_block0.conv_res1.weight", NULL, 0}};
    expect_error(missing, 1, "missing tensor 'unet.enc.8x8_block0.conv_res1.weight'");
    const st_change wider[] = {{"model_channels", "16", NULL, NULL, 0}};
    expect_error(wider, 1, "tensor 'unet.emb_fourier.freqs' has shape [8], the network expects [16]");
}

static void test_bad_values(void **state) {
    (void)state;
    const st_change huge[] = {{"model_channels", "1000000000", NULL, NULL, 0}};
    expect_error(huge, 1, "its metadata describe no valid mp_unet network (network mp_unet: model_channels = 1000000000: "
                          "must be in 1..4096)");
    const st_change wrapped[] = {{"img_resolution", "4294967304", NULL, NULL, 0}}; /* 2^32 + 8: not 8 */
    expect_error(wrapped, 1, "its metadata describe no valid mp_unet network");
    const st_change nan[] = {{"label_balance", "nan", NULL, NULL, 0}};
    expect_error(nan, 1, "metadata label_balance = 'nan': expected a number");
    const st_change neg[] = {{"num_blocks", "-1", NULL, NULL, 0}};
    expect_error(neg, 1, "its metadata describe no valid mp_unet network");
    const st_change heads[] = {{"channels_per_head", "3", NULL, NULL, 0}};
    expect_error(heads, 1, "its metadata describe no valid mp_unet network");
    const st_change inf[] = {{NULL, NULL, NULL, "unet.out_gain", INFINITY}};
    expect_error(inf, 1, "tensor 'unet.out_gain' holds inf");
    const st_change nimg[] = {{"edm2.nimg", "-5", NULL, NULL, 0}};
    char path[700];
    snprintf(path, sizeof path, "%s/nimg-0000002-0.100.safetensors", g_dir);
    assert_int_equal(st_rewrite(g_snap, path, nimg, 1), 0);
    st_file f;
    edm2_err err;
    assert_int_equal(st_open(&f, path, &err), 0);
    int64_t n;
    assert_int_equal(snapshot_nimg(&f, &n, &err), -1);
    assert_non_null(strstr(err.msg, "metadata edm2.nimg = '-5': expected an integer in 0.."));
    st_close(&f);
}

/* Metadata as other tools write them: None for automatic settings, Python lists and tuples. */
static void test_foreign_metadata(void **state) {
    (void)state;
    const st_change py[] = {{"channel_mult_noise", "None", NULL, NULL, 0},
                            {"channel_mult_emb", "null", NULL, NULL, 0},
                            {"channel_mult", "[1, 2]", NULL, NULL, 0},
                            {"attn_resolutions", "(4,)", NULL, NULL, 0},
                            {"dropout", "0.0", NULL, NULL, 0}};
    char path[700];
    snprintf(path, sizeof path, "%s/foreign-0000002-0.100.safetensors", g_dir);
    assert_int_equal(st_rewrite(g_snap, path, py, 5), 0);
    edm2_err err;
    if (open_snap(path, &err, 1)) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(open_snap(path, &err, 1), 0);
    const st_change badlist[] = {{"channel_mult", "[1, two]", NULL, NULL, 0}};
    expect_error(badlist, 1, "metadata channel_mult = '1, two': expected comma-separated integers");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_exactly),
        cmocka_unit_test(test_metadata_disagrees_with_tensors),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_foreign_metadata),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
