/* test_config.c: INI loading: extends chains (relative paths, overrides), --set, duplicates, malformed
 * lines, keys outside sections, over-long lines; [plugins] path resolved against the config's folder;
 * typed views with schema defaults; value checks and suggestions; the thread count when sharing the
 * machine. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "cpu_share.h"
#include "schema.h"
#include "setup.h"
#include "test_util.h"
#include "validate.h"

static void test_extends_and_overrides(void **state) {
    (void)state;
    cfg c = {0};
    edm2_err err;
    assert_int_equal(cfg_load(&c, EDM2_SOURCE_DIR "/tests/configs/child.ini", &err), 0);
    assert_string_equal(cfg_value(&c, "network", "model_channels", NULL), "16"); /* child wins */
    assert_string_equal(cfg_value(&c, "network", "channel_mult", NULL), "1,2");  /* from base */
    const cfg_entry *e = cfg_get(&c, "training", "batch");
    assert_non_null(strstr(e->file, "child.ini"));
    assert_int_equal(e->line, 8);
    e = cfg_get(&c, "loss", "P_std");
    assert_non_null(strstr(e->file, "base.ini"));
    assert_int_equal(cfg_set(&c, "training.batch=32", &err), 0);
    assert_string_equal(cfg_value(&c, "training", "batch", NULL), "32");
    assert_int_equal(cfg_set(&c, "nodot=3", &err), -1);
    assert_non_null(strstr(err.msg, "expected section.key=value"));
    cfg_free(&c);
}

static void test_plugin_switch_drops_inherited_keys(void **state) {
    (void)state;
    cfg c = {0};
    edm2_err err;
    /* The variant names another EMA plugin: the base's [ema] keys (for 'power') are dropped. */
    assert_int_equal(cfg_load(&c, EDM2_SOURCE_DIR "/configs/fashion-mnist-demo-traditional-ema.ini", &err), 0);
    assert_string_equal(cfg_value(&c, "ema", "plugin", NULL), "traditional");
    assert_null(cfg_get(&c, "ema", "stds"));
    assert_non_null(cfg_get(&c, "ema", "halflife_Mimg"));
    assert_non_null(cfg_get(&c, "network", "model_channels")); /* other sections untouched */
    /* The same plugin again keeps them; --set of another plugin drops them. */
    cfg_free(&c);
    assert_int_equal(cfg_load(&c, EDM2_SOURCE_DIR "/configs/fashion-mnist-demo.ini", &err), 0);
    assert_int_equal(cfg_set(&c, "ema.plugin=power", &err), 0);
    assert_non_null(cfg_get(&c, "ema", "stds"));
    assert_int_equal(cfg_set(&c, "ema.plugin=traditional", &err), 0);
    assert_null(cfg_get(&c, "ema", "stds"));
    cfg_free(&c);
}

static void test_malformed_files(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    edm2_err err;
    struct {
        const char *text, *expect;
    } cases[] = {
        {"[job]\ntype = train\ntype = generate\n", "x.ini:3: [job] type is set twice (first on line 2)"},
        {"[job]\nthis line has no equals sign\n", "x.ini:2: malformed line"},
        {"stray = 1\n[job]\ntype = train\n", "x.ini:1: key 'stray' outside any section"},
        {"extends = nope.ini\n", "x.ini:1: extends: cannot open"},
        {"[job]\ntype = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
         "x.ini:2: line too long"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *p = write_text(dir, "x.ini", cases[i].text);
        cfg c = {0};
        assert_int_equal(cfg_load(&c, p, &err), -1);
        if (!strstr(err.msg, cases[i].expect)) fprintf(stderr, "got: %s\nwant: %s\n", err.msg, cases[i].expect);
        assert_non_null(strstr(err.msg, cases[i].expect));
        cfg_free(&c);
        free(p);
    }
    /* A config of 5000 keys is refused at once (lookups are linear; no quadratic load). */
    char *big = malloc(5000 * 16 + 16);
    size_t n = (size_t)sprintf(big, "[job]\n");
    for (int i = 0; i < 5000; i++) n += (size_t)sprintf(big + n, "k%d = 1\n", i);
    char *p = write_text(dir, "x.ini", big);
    cfg c = {0};
    assert_int_equal(cfg_load(&c, p, &err), -1);
    assert_non_null(strstr(err.msg, "x.ini:4098: more than 4096 keys in one config file"));
    cfg_free(&c);
    free(p), free(big);
    rm_rf(dir);
    free(dir);
}

static void test_plugin_path_relative_to_config(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char sub[512], text[1200];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(text, sizeof text, "[job]\ntype = train\n[plugins]\npath = sub:%s\n", dir);
    char *p = write_text(dir, "c.ini", text);
    setup s;
    edm2_err err;
    setup_from_config(&s, p, NULL, 0, &err); /* validation fails later (no sections); the path is set */
    assert_true(s.reg.ndirs >= 2);
    assert_string_equal(s.reg.dirs[0], sub);
    assert_string_equal(s.reg.dirs[1], dir);
    setup_free(&s);
    free(p);
    /* A folder that is not there is a mistake in the config, named at its line. */
    p = write_text(dir, "d.ini", "[job]\ntype = train\n[plugins]\npath = sub:/abs/elsewhere\n");
    assert_int_equal(setup_from_config(&s, p, NULL, 0, &err), -1);
    snprintf(text, sizeof text, "%s:4: [plugins] path: '/abs/elsewhere' is not a folder", p);
    assert_string_equal(err.msg, text);
    setup_free(&s);
    free(p);
    rm_rf(dir);
    free(dir);
}

static void test_values_and_suggestions(void **state) {
    (void)state;
    assert_int_equal(value_check(EDM2_CFG_INT, " 42 "), 0);
    assert_int_equal(value_check(EDM2_CFG_INT, "4.2"), -1);
    assert_int_equal(value_check(EDM2_CFG_FLOAT, "1e-3"), 0);
    assert_int_equal(value_check(EDM2_CFG_FLOAT, "nan"), -1);
    assert_int_equal(value_check(EDM2_CFG_BOOL, "Yes"), 0);
    assert_int_equal(value_check(EDM2_CFG_BOOL, "maybe"), -1);
    assert_int_equal(value_check(EDM2_CFG_INT_LIST, "1, 2,3"), 0);
    assert_int_equal(value_check(EDM2_CFG_INT_LIST, ""), 0);
    assert_int_equal(value_check(EDM2_CFG_INT_LIST, "1,,2"), -1);
    assert_int_equal(value_check(EDM2_CFG_FLOAT_LIST, "0.05,0.1"), 0);
    const char *cands[] = {"model_channels", "channel_mult", "num_blocks"};
    assert_string_equal(closest_name("model_chanels", cands, 3), "model_channels");
    assert_string_equal(closest_name("num_block", cands, 3), "num_blocks");
    assert_null(closest_name("learning_rate", cands, 3));
}

/* The entry an error is about: by "[SECTION] KEY" or by the value it quotes (a file that cannot be read). */
static void test_entry_an_error_is_about(void **state) {
    (void)state;
    cfg c;
    memset(&c, 0, sizeof c);
    assert_int_equal(cfg_put(&c, "evaluate", "net", "a.safetensors"), 0);
    assert_int_equal(cfg_put(&c, "generate", "net", "a.safetensors"), 0);
    assert_int_equal(cfg_put(&c, "sweep", "runs", "runs/x, runs/y"), 0);
    assert_int_equal(cfg_put(&c, "data", "resolution", "32"), 0);
    assert_ptr_equal(cfg_about(&c, NULL, "[data] resolution = 32: expected"), cfg_get(&c, "data", "resolution"));
    assert_ptr_equal(cfg_about(&c, NULL, "[data] resolution: expected"), cfg_get(&c, "data", "resolution"));
    assert_null(cfg_about(&c, NULL, "[data] resolutions: expected"));
    assert_null(cfg_about(&c, NULL, "data resolution: expected"));
    assert_ptr_equal(cfg_with_value(&c, "generate", "a.safetensors"), cfg_get(&c, "generate", "net"));
    assert_ptr_equal(cfg_with_value(&c, "evaluate", "a.safetensors"), cfg_get(&c, "evaluate", "net"));
    assert_ptr_equal(cfg_with_value(&c, NULL, "a.safetensors"), cfg_get(&c, "evaluate", "net"));
    assert_ptr_equal(cfg_with_value(&c, "job", "runs/y"), cfg_get(&c, "sweep", "runs")); /* an item of a list */
    assert_ptr_equal(cfg_with_value(&c, "job", "runs/x"), cfg_get(&c, "sweep", "runs"));
    assert_null(cfg_with_value(&c, NULL, "runs"));
    assert_null(cfg_with_value(&c, NULL, "a.safetensor"));
    assert_null(cfg_with_value(&c, NULL, ""));
    cfg_free(&c);
}

static void test_typed_view_defaults(void **state) {
    (void)state;
    static const edm2_config_key keys[] = {{"a", EDM2_CFG_INT, "5", "x"}, {"b", EDM2_CFG_FLOAT_LIST, "0.5,0.25", "y"}};
    cfg c = {0};
    cfg_put(&c, "s", "a", "7");
    config_view v;
    config_view_init(&v, &c, "s", keys, 2);
    assert_int_equal(edm2_cfg_int(&v.api, "a", 0), 7);
    double l[4];
    assert_int_equal(edm2_cfg_floats(&v.api, "b", l, 4), 2);
    assert_float_equal(l[1], 0.25, 0);
    assert_null(v.api.get(v.api.ctx, "unknown"));
    cfg_free(&c);
}

/* The thread count that leaves other programs their cores: lowered to what is left (at least 1), raised
 * again when they stop, with hysteresis so that a tenth of a core of noise changes nothing. */
static void test_cpu_share_decisions(void **state) {
    (void)state;
    struct {
        int current, max, ncpu;
        double others;
        int expect;
    } cases[] = {
        {2, 2, 2, 0.05, 2}, /* alone */
        {2, 2, 2, 1.0, 1},  /* another run: one core left */
        {1, 2, 2, 1.0, 1},  /* stays */
        {1, 2, 2, 0.6, 1},  /* not yet: 1.4 left */
        {1, 2, 2, 0.1, 2},  /* the other stopped */
        {2, 2, 2, 3.0, 1},  /* never below one */
        {8, 8, 8, 4.0, 4},  /* 8 cores, another run of 4 threads */
        {4, 8, 8, 4.1, 4},  /* steady */
        {4, 8, 8, 0.2, 8},  /* alone again */
        {6, 6, 8, 0.0, 6},  /* never above the job's threads */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_int_equal(cpu_share_decide(cases[i].current, cases[i].max, cases[i].ncpu, cases[i].others), cases[i].expect);
    cpu_share s;
    cpu_share_init(&s, 3);
    assert_int_equal(cpu_share_update(&s, NULL), 3); /* within the first window: unchanged */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extends_and_overrides),        cmocka_unit_test(test_plugin_switch_drops_inherited_keys),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_plugin_path_relative_to_config), cmocka_unit_test(test_values_and_suggestions),
        cmocka_unit_test(test_entry_an_error_is_about), cmocka_unit_test(test_typed_view_defaults),     cmocka_unit_test(test_cpu_share_decisions),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
