/* test_cli.c: the edm2host program as a user meets it: plugins listing and describing, check of good
 * configs, and the one-line errors (non-zero exit) for a misspelled key, a bad value, a missing plugin,
 * an unknown section, a plugin of another ABI major, a .so that is not a plugin, and values of the right
 * type that cannot work, each named where it was set (FILE:LINE, or --set SECTION.KEY). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define CFG(name) EDM2_SOURCE_DIR "/tests/configs/" name
#define FIX(name) EDM2_BUILD_DIR "/tests/fixtures/" name

static void assert_one_line_error(const run_result *r, const char *needle) {
    if (r->status == 0 || r->err_lines != 1 || !strstr(r->err, needle))
        fprintf(stderr, "status %d, stderr (%d lines):\n%s\nstdout:\n%s\n", r->status, r->err_lines, r->err, r->out);
    assert_int_not_equal(r->status, 0);
    assert_int_equal(r->err_lines, 1);
    assert_non_null(strstr(r->err, needle));
}

/* An error's first words: "error: WHERE: ". */
static void assert_error_at(const run_result *r, const char *where) {
    char head[700];
    snprintf(head, sizeof head, "error: %s: ", where);
    if (strncmp(r->err, head, strlen(head))) fprintf(stderr, "expected '%s' first:\n%s", head, r->err);
    assert_int_equal(strncmp(r->err, head, strlen(head)), 0);
}

static void test_version_and_help(void **state) {
    (void)state;
    run_result r;
    assert_int_equal(run_host(&r, "--version", NULL), 0);
    assert_non_null(strstr(r.out, "plugin ABI 1."));
    assert_int_equal(run_host(&r, "--help", NULL), 0);
    assert_non_null(strstr(r.out, "check-ref"));
    assert_non_null(strstr(r.out, "train"));
    const char *cmds[] = {"run", "check", "plugins", "check-ref"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(run_host(&r, cmds[i], "--help", NULL), 0);
        assert_non_null(strstr(r.out, "usage: edm2host"));
    }
    assert_int_equal(run_host(&r, "frobnicate", NULL), 2);
}

static void test_plugins_lists_built_plugins(void **state) {
    (void)state;
    run_result r;
    assert_int_equal(run_host(&r, "plugins", NULL), 0);
    const char *expect[] = {"cpu", "mp_unet", "edm2", "adam", "power", "heun"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) assert_non_null(strstr(r.out, expect[i]));
    assert_int_equal(r.err_lines, 0); /* nothing on the default path fails to load */
    /* What `[backend] plugin = auto` chooses here, and why (tests/cuda_emu/train_emu.sh: cuda there). */
    assert_true(strstr(r.out, "\n[backend] plugin = auto chooses cpu here (") ||
                strstr(r.out, "\n[backend] plugin = auto chooses cuda here (a CUDA device is present)"));
}

static void test_plugins_describe(void **state) {
    (void)state;
    run_result r;
    assert_int_equal(run_host(&r, "plugins", "--describe", "mp_unet", NULL), 0);
    assert_non_null(strstr(r.out, "model_channels"));
    assert_non_null(strstr(r.out, "an integer"));
    assert_non_null(strstr(r.out, "channel_mult"));
    assert_int_equal(run_host(&r, "plugins", "--describe", "training", NULL), 0);
    assert_non_null(strstr(r.out, "batch"));
    assert_non_null(strstr(r.out, "images per optimizer step [1 to 16777216]")); /* the range check's */
    run_host(&r, "plugins", "--describe", "mp_unt", NULL);
    assert_one_line_error(&r, "did you mean 'mp_unet'?");
}

static void test_check_accepts_good_configs(void **state) {
    (void)state;
    run_result r;
    assert_int_equal(run_host(&r, "check", CFG("base.ini"), NULL), 0);
    assert_int_equal(run_host(&r, "check", CFG("child.ini"), NULL), 0);
    assert_int_equal(run_host(&r, "check", CFG("base.ini"), "--set", "network.model_channels=32", NULL), 0);
}

static void test_misspelled_key(void **state) {
    (void)state;
    run_result r;
    run_host(&r, "check", CFG("misspelled_key.ini"), NULL);
    assert_one_line_error(&r, "misspelled_key.ini:4: [network] unknown key 'model_chanels'");
    assert_non_null(strstr(r.err, "did you mean 'model_channels'?"));
    run_host(&r, "run", CFG("misspelled_key.ini"), NULL);
    assert_one_line_error(&r, "did you mean 'model_channels'?");
}

static void test_bad_value(void **state) {
    (void)state;
    run_result r;
    run_host(&r, "check", CFG("bad_value.ini"), NULL);
    assert_one_line_error(&r, "bad_value.ini:4: [network] num_blocks = 'three': expected an integer");
    run_host(&r, "check", CFG("base.ini"), "--set", "ema.stds=0.05,x", NULL);
    assert_one_line_error(&r, "[ema] stds = '0.05,x': expected comma-separated numbers");
    assert_error_at(&r, "--set ema.stds");
}

static void test_missing_plugin(void **state) {
    (void)state;
    run_result r;
    run_host(&r, "check", CFG("missing_plugin.ini"), NULL);
    assert_one_line_error(&r, "missing_plugin.ini:4: [loss] plugin 'edm3' not found");
    assert_non_null(strstr(r.err, "did you mean 'edm2'?"));
}

static void test_unknown_section_and_cycle(void **state) {
    (void)state;
    run_result r;
    run_host(&r, "check", CFG("unknown_section.ini"), NULL);
    assert_one_line_error(&r, "unknown section [netwrok]; did you mean 'network'?");
    run_host(&r, "check", CFG("extends_cycle.ini"), NULL);
    assert_one_line_error(&r, "extends chain deeper than");
    run_host(&r, "check", CFG("does_not_exist.ini"), NULL);
    assert_one_line_error(&r, "does_not_exist.ini: cannot open config file (No such file or directory)");
    run_host(&r, "check", EDM2_SOURCE_DIR "/configs", NULL);
    assert_one_line_error(&r, "/configs: a folder, not a config file");
}

static void test_wrong_major_plugin(void **state) {
    (void)state;
    run_result r;
    run_host(&r, "plugins", "--file", FIX("wrong_major.so"), NULL);
    assert_one_line_error(&r, "wrong_major.so: built for edm2 plugin ABI 2.0, but this host speaks ABI 1.");
    /* Named by a config: the same line, prefixed with the config location. */
    run_host(&r, "check", CFG("base.ini"), "--set", "plugins.load=" FIX("wrong_major.so"), NULL);
    assert_one_line_error(&r, "[plugins] load: ");
    assert_non_null(strstr(r.err, "ABI 2.0"));
}

static void test_not_a_plugin(void **state) {
    (void)state;
    run_result r;
    run_host(&r, "plugins", "--file", FIX("not_a_plugin.so"), NULL);
    assert_one_line_error(&r, "not_a_plugin.so: not an edm2 plugin (no 'edm2_plugin_entry' symbol)");
    run_host(&r, "plugins", "--file", EDM2_SOURCE_DIR "/tests/configs/base.ini", NULL);
    assert_one_line_error(&r, "base.ini: cannot load:");
}

/* Function tables are checked at load time (ABI 1.1): a NULL required function is a one-line refusal. */
static void test_bad_vtable(void **state) {
    (void)state;
    run_result r;
    run_host(&r, "plugins", "--file", FIX("bad_vtable.so"), NULL);
    assert_one_line_error(&r, "bad_vtable.so: plugin 'no_sample': its sampler function table lacks the required 'create'");
}

static void test_bad_plugins_on_path_do_not_crash(void **state) {
    (void)state;
    run_result r;
    /* A folder holding a wrong-major plugin, a non-plugin and a valid one: list works, warns per file. */
    assert_int_equal(run_host(&r, "plugins", "--path", EDM2_BUILD_DIR "/tests/fixtures", NULL), 0);
    assert_non_null(strstr(r.out, "extra_euler"));
    assert_non_null(strstr(r.err, "wrong_major.so: built for edm2 plugin ABI 2.0"));
    assert_non_null(strstr(r.err, "not_a_plugin.so: not an edm2 plugin"));
    run_host(&r, "plugins", "--path", EDM2_BUILD_DIR "/tests/fixtures:/nonexistent", NULL);
    assert_one_line_error(&r, "plugins --path: '/nonexistent' is not a folder");
    /* A config whose plugin lives only in a folder given by [plugins] path. */
    assert_int_equal(run_host(&r, "check", CFG("extra_plugin.ini"), NULL), 1);
    assert_non_null(strstr(r.err, "[sampler] plugin 'extra_euler' not found"));
    assert_int_equal(run_host(&r, "check", CFG("extra_plugin.ini"), "--set", "plugins.path=" EDM2_BUILD_DIR "/tests/fixtures",
                              NULL),
                     0);
    /* EDM2_PLUGIN_PATH works the same way. */
    const char *argv[] = {EDM2_BUILD_DIR "/edm2host", "check", CFG("extra_plugin.ini"), NULL};
    const char *env[] = {"EDM2_PLUGIN_PATH=" EDM2_BUILD_DIR "/tests/fixtures", NULL};
    assert_int_equal(run_capture(&r, argv, env), 0);
}

/* Values of the right type that cannot work are refused by `check`, in one line, before anything runs,
 * after where the value was set: the --set (the host's checks, and a plugin's that names the key first),
 * else the config file. */
static void test_values_that_cannot_work(void **state) {
    (void)state;
    struct {
        const char *set, *expect;
        int keyed; /* the message names the key it refuses first: located at its --set */
    } cases[] = {
        {"job.threads=-1", "[job] threads = -1: expected an integer from 0 to 4096", 1},
        {"training.batch=0", "[training] batch = 0: expected an integer from 1 to", 1},
        {"training.batch_gpu=-4", "[training] batch_gpu = -4: expected an integer from 0 to 16777216 or 'auto'", 1},
        {"training.batch_gpu=automatic", "[training] batch_gpu = 'automatic': expected an integer or 'auto'", 1},
        {"training.status_kimg=-1", "[training] status_kimg = -1: expected a number from 0", 1},
        {"training.keep_checkpoints=-2", "[training] keep_checkpoints = -2", 1},
        {"training.grid_columns=0", "[training] grid_columns = 0", 1},
        {"data.resolution=0", "[data] resolution = 0", 1},
        {"data.max_images=-5", "[data] max_images = -5", 1},
        {"network.model_channels=0", "network mp_unet: model_channels = 0: must be in 1..4096", 1},
        {"network.channels_per_head=3", "channels_per_head = 3 does not divide the 16 channels of the attention blocks at 4x4", 1},
        {"network.img_resolution=4294967304", "img_resolution = 2147483647: must be in 1..4096", 1},
        {"network.dropout=1", "dropout = 1: must be in [0, 1)", 1},
        {"network.label_balance=2", "label_balance = 2: must be in [0, 1]", 1},
        {"network.precision=fp8", "network mp_unet: precision = 'fp8': expected fp32, bf16 or fp16", 1},
        {"sampler.num_steps=0", "[sampler] heun: need 2 <= num_steps <= 100000", 0},
        {"sampler.sigma_min=0", "[sampler] heun: need", 0},
        {"optimizer.beta2=1", "[optimizer] adam: need", 0},
        {"loss.sigma_data=0", "[loss] edm2:", 0},
        {"ema.stds=0.5", "[ema] power: stds: 0.5 is outside", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_result r;
        run_host(&r, "check", CFG("base.ini"), "--set", "sampler.plugin=heun", "--set", cases[i].set, NULL);
        assert_one_line_error(&r, cases[i].expect);
        char where[300];
        snprintf(where, sizeof where, "--set %.*s", (int)strcspn(cases[i].set, "="), cases[i].set);
        assert_error_at(&r, cases[i].keyed ? where : CFG("base.ini"));
    }
    /* In a file: the line that set the key, also in a file that another extends. */
    run_result r;
    run_host(&r, "check", CFG("bad_plugin_value.ini"), NULL);
    assert_one_line_error(&r, "network mp_unet: precision = 'fp16x': expected fp32, bf16 or fp16");
    assert_error_at(&r, CFG("bad_plugin_value.ini") ":6");
    char *dir = make_temp_dir(), text[600];
    snprintf(text, sizeof text, "; extends the file that sets the value\nextends = %s\n", CFG("bad_plugin_value.ini"));
    char *top = write_text(dir, "top.ini", text);
    run_host(&r, "check", top, NULL);
    assert_error_at(&r, CFG("bad_plugin_value.ini") ":6");
    run_host(&r, "check", top, "--set", "network.precision=fp4", NULL); /* the override, not the file */
    assert_one_line_error(&r, "precision = 'fp4'");
    assert_error_at(&r, "--set network.precision");
    free(top);
    /* A job's own refusal of a value ("[SECTION] KEY ..."): at its line too. */
    char *phema = write_text(dir, "phema.ini", "[job]\ntype = phema\n[ema]\nplugin = power\n[phema]\n"
                                               "snapshots = /nonexistent-run\nstds = 0.05\noutdir = /nonexistent-out\n");
    run_host(&r, "run", phema, NULL);
    assert_one_line_error(&r, "[phema] snapshots = '/nonexistent-run': cannot open folder");
    snprintf(text, sizeof text, "%s:6", phema);
    assert_error_at(&r, text);
    free(phema);
    rm_rf(dir);
    free(dir);
}

/* edm2-bench runs a config's training and evaluation passes and reports both; an option value that is not
 * a whole integer in range (or not a pass) is a one-line usage error, exit status 2. */
static void test_bench(void **state) {
    (void)state;
    run_result r;
    const char *ok[] = {EDM2_BUILD_DIR "/edm2-bench", CFG("base.ini"), "--steps", "1", "--warmup", "0", "--no-gemm", NULL};
    assert_int_equal(run_capture(&r, ok, NULL), 0);
    assert_non_null(strstr(r.out, "training:"));
    assert_non_null(strstr(r.out, "eval:"));
    struct {
        const char *opt, *value, *expect;
    } bad[] = {
        {"--steps", "x", "edm2-bench: --steps 'x': expected an integer from 1 to 1000000"},
        {"--steps", "0", "--steps '0': expected an integer from 1"},
        {"--warmup", "2k", "--warmup '2k': expected an integer from 0"},
        {"--threads", "-1", "--threads '-1': expected an integer from 0"},
        {"--only", "trian", "--only 'trian': expected train or eval"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *argv[] = {EDM2_BUILD_DIR "/edm2-bench", CFG("base.ini"), bad[i].opt, bad[i].value, NULL};
        assert_int_equal(run_capture(&r, argv, NULL), 2);
        assert_one_line_error(&r, bad[i].expect);
    }
}

static void test_shipped_configs_check(void **state) {
    (void)state;
    const char *configs[] = {SHIPPED_CONFIGS NULL};
    assert_non_null(configs[0]);
    for (size_t i = 0; configs[i]; i++) {
        run_result r;
        int st = run_host(&r, "check", configs[i], NULL);
        /* check opens a job's inputs: the paper's presets read data the user supplies, the demo's other jobs
         * what the demo writes. Everything before that (sections, keys, values, plugins) checks. */
        const char *inputs[] = {"[data] path = 'datasets/img512-sd.safetensors': no such file",
                                "[data] source = folder needs 'path = FOLDER'",
                                "[encode] source: 'datasets/imagenet/train': no such folder or .zip archive",
                                "[convert] source: 'datasets/imagenet/train': no such folder or .zip archive",
                                "[data] path = 'datasets/img64': no such folder or .zip archive",
                                "network-snapshot-0000000-0.100.safetensors: cannot open",
                                "network-snapshot-0000090-0.100.safetensors: cannot open",
                                "[phema] snapshots = 'runs/fashion-mnist-demo': ",
                                "[sweep] runs: 'runs/fashion-mnist-demo': ",
                                "[report] runs: 'runs/fashion-mnist-demo': not a folder"};
        int missing_input = 0, problems = 0; /* (info lines aside: the presets' precision on this CPU build) */
        for (size_t k = 0; k < sizeof inputs / sizeof *inputs; k++) missing_input |= strstr(r.err, inputs[k]) != NULL;
        for (const char *line = r.err; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
            problems += !strncmp(line, "error: ", 7) || !strncmp(line, "warning: ", 9);
        if (st && !missing_input) fprintf(stderr, "%s: %s", configs[i], r.err);
        assert_true(st == 0 || (st == 1 && missing_input && problems == 1));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_plugins_lists_built_plugins),
        cmocka_unit_test(test_plugins_describe),
        cmocka_unit_test(test_check_accepts_good_configs),
        cmocka_unit_test(test_misspelled_key),
        cmocka_unit_test(test_bad_value),
        cmocka_unit_test(test_missing_plugin),
        cmocka_unit_test(test_unknown_section_and_cycle),
        cmocka_unit_test(test_wrong_major_plugin),
        cmocka_unit_test(test_not_a_plugin),
        cmocka_unit_test(test_bad_vtable),
        cmocka_unit_test(test_bad_plugins_on_path_do_not_crash),
        cmocka_unit_test(test_values_that_cannot_work),
        cmocka_unit_test(test_shipped_configs_check),
        cmocka_unit_test(test_bench),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
