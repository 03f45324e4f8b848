/* test_log.c: the host's logger as plugins meet it: a plugin's error is held until the host folds it into
 * its own one-line error; an error from a second plugin while one is held wraps it as its cause ("LATER
 * (WHO: EARLIER)"), a repeat from the same plugin adds nothing; a message that is shown prints a held error
 * first, one that is not (debug lines without -v) leaves it held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "test_util.h"

static edm2_host g_host;
static char *g_dir, *g_err_path;
static int g_saved_stderr = -1;

/* stderr into a file of the test's folder, so that what the logger printed can be read back. */
static int setup(void **state) {
    (void)state;
    g_host = log_host_services(1);
    g_dir = make_temp_dir();
    g_err_path = write_text(g_dir, "stderr.txt", "");
    fflush(stderr);
    g_saved_stderr = dup(2);
    if (!freopen(g_err_path, "w", stderr)) return -1;
    log_set_level(EDM2_LOG_INFO);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fflush(stderr);
    dup2(g_saved_stderr, 2);
    close(g_saved_stderr);
    rm_rf(g_dir);
    free(g_dir), free(g_err_path);
    return 0;
}

/* What the logger printed since the last call (the file emptied). */
static char *printed(void) {
    fflush(stderr);
    char *text = read_text(g_err_path);
    if (!freopen(g_err_path, "w", stderr)) fail_msg("cannot reopen %s", g_err_path);
    return text;
}

static void plugin(edm2_log_level level, const char *who, const char *msg) { g_host.log(NULL, level, who, msg); }

/* assert_string_equal, saying the difference on stdout (cmocka's own message goes to the captured stderr). */
static void same(const char *got, const char *want) {
    if (strcmp(got, want)) printf("got:\n%s\nexpected:\n%s\n", got, want);
    assert_string_equal(got, want);
}

static void test_one_error_folded(void **state) {
    (void)state;
    edm2_err err;
    plugin(EDM2_LOG_ERROR, "mp_unet", "forward: sigma[0] = 0 must be > 0");
    err_plugin(&err, "loss computation failed at kimg %.3f", 1.0);
    same(err.msg, "loss computation failed at kimg 1.000: mp_unet: forward: sigma[0] = 0 must be > 0");
    char *out = printed();
    same(out, ""); /* held, then folded: nothing printed */
    free(out);
}

static void test_cause_wrapped(void **state) {
    (void)state;
    edm2_err err;
    plugin(EDM2_LOG_ERROR, "cuda", "cannot allocate 131072 bytes of device memory: out of memory");
    plugin(EDM2_LOG_DEBUG, "mp_unet", "a debug line, not shown"); /* leaves the error held */
    plugin(EDM2_LOG_ERROR, "cuda", "cannot allocate 262144 bytes of device memory: out of memory"); /* a repeat */
    LOG_DEBUG("the host's debug line, not shown either");
    plugin(EDM2_LOG_ERROR, "mp_unet", "forward on the GPU: block workspace: out of device memory");
    err_plugin(&err, "a pass of 64 images did not fit in memory");
    same(err.msg, "a pass of 64 images did not fit in memory: mp_unet: forward on the GPU: block workspace: "
                                 "out of device memory (cuda: cannot allocate 131072 bytes of device memory: out of "
                                 "memory)");
    char *out = printed();
    same(out, "");
    free(out);
}

static void test_shown_message_prints_held_error_first(void **state) {
    (void)state;
    edm2_err err;
    plugin(EDM2_LOG_ERROR, "cuda", "no CUDA device");
    plugin(EDM2_LOG_INFO, "mp_unet", "a line that is shown");
    err_plugin(&err, "nothing held any more");
    same(err.msg, "nothing held any more");
    char *out = printed();
    same(out, "error: cuda: no CUDA device\nmp_unet: a line that is shown\n");
    free(out);
    /* With -v the debug line is shown, so it prints the held error first too. */
    log_set_level(EDM2_LOG_DEBUG);
    plugin(EDM2_LOG_ERROR, "cuda", "no CUDA device");
    LOG_DEBUG("shown now");
    log_set_level(EDM2_LOG_INFO);
    out = printed();
    same(out, "error: cuda: no CUDA device\ndebug: shown now\n");
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_error_folded),
        cmocka_unit_test(test_cause_wrapped),
        cmocka_unit_test(test_shown_message_prints_held_error_first),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
