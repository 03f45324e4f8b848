/* test_plan_file.c: EDM2_CUDNN_PLANS's file (plugins/network/mp_unet_cuda/plan_file.h), without a GPU: records
 * written and read back (with and without a graph-API plan), a record replaced in place with the other lines
 * and comments kept, no temporary file left behind, a line per malformed part rejected with the file, the
 * line and what was expected, and a file that cannot be written refused with its path. test_cuda_network
 * runs the network with such a file (the emulation, or a GPU). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan_file.h"
#include "test_util.h"

static plan_rec rec(const char *key, int algo, int64_t engine, int wgrad_gemm) {
    plan_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.key, sizeof r.key, "%s", key);
    for (int k = 0; k < 3; k++)
        r.kind[k] = (plan_kind_rec){algo + k, 1 + (k == 2), (uint64_t)k << 20, k == 1 ? engine : -1,
                                    k == 1 && engine >= 0 ? 4096u : 0u};
    r.wgrad_gemm = wgrad_gemm;
    return r;
}

static void same(const plan_rec *a, const plan_rec *b) {
    assert_string_equal(a->key, b->key);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(a->kind[k].algo, b->kind[k].algo);
        assert_int_equal(a->kind[k].math, b->kind[k].math);
        assert_int_equal(a->kind[k].ws, b->kind[k].ws);
        assert_int_equal(a->kind[k].engine, b->kind[k].engine);
        assert_int_equal(a->kind[k].graph_ws, b->kind[k].graph_ws);
    }
    assert_int_equal(a->wgrad_gemm, b->wgrad_gemm);
}

/* Two keys written, read back; the first replaced in place; comments and the other line kept. */
static void test_round_trip(void **state) {
    (void)state;
    char *dir = make_temp_dir(), path[1024], why[600];
    snprintf(path, sizeof path, "%s/plans.txt", dir);
    plan_rec got;
    int line = 0;
    assert_int_equal(plan_file_check(path, why, sizeof why), 0); /* no file yet: nothing wrong */
    assert_int_equal(plan_file_find(path, "GPU bf16 8x8", &got, &line, why, sizeof why), 0);
    const plan_rec a = rec("GPU bf16 8x8 16->16", 1, -1, 0), b = rec("GPU bf16 4x4 32->32", 0, 12, 1);
    assert_int_equal(plan_file_put(path, &a, why, sizeof why), 0);
    assert_int_equal(plan_file_put(path, &b, why, sizeof why), 0);
    char *text = read_text(path);
    printf("%s", text);
    assert_true(text[0] == '#');                            /* the header */
    assert_non_null(strstr(text, " ; backward-data algo 1 math 1 ws 1048576 graph 12 ws 4096 ; "));
    assert_int_equal(plan_file_check(path, why, sizeof why), 0);
    assert_int_equal(plan_file_find(path, a.key, &got, &line, why, sizeof why), 1);
    same(&got, &a);
    const int line_a = line;
    assert_int_equal(plan_file_find(path, b.key, &got, &line, why, sizeof why), 1);
    same(&got, &b);
    assert_int_equal(line, line_a + 1);
    assert_int_equal(plan_file_find(path, "GPU bf16 8x8", &got, &line, why, sizeof why), 0); /* the whole key */
    /* a comment of the user's, then a's line replaced: in its place, the rest as it was */
    FILE *f = fopen(path, "ab");
    fputs("# kept\n", f);
    fclose(f);
    const plan_rec a2 = rec(a.key, 0, 7, 1);
    assert_int_equal(plan_file_put(path, &a2, why, sizeof why), 0);
    assert_int_equal(plan_file_find(path, a.key, &got, &line, why, sizeof why), 1);
    same(&got, &a2);
    assert_int_equal(line, line_a);
    assert_int_equal(plan_file_find(path, b.key, &got, &line, why, sizeof why), 1);
    same(&got, &b);
    char *after = read_text(path), la[1024], la2[1024], expected[4096];
    plan_rec_format(&a, la, sizeof la), plan_rec_format(&a2, la2, sizeof la2);
    const char *at = strstr(text, la);
    assert_non_null(at);
    snprintf(expected, sizeof expected, "%.*s%s%s# kept\n", (int)(at - text), text, la2, at + strlen(la));
    assert_string_equal(after, expected);
    free(text), free(after);
    /* nothing but the file in the folder: the temporary one was renamed */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A '%s')\" = plans.txt", dir);
    assert_int_equal(system(cmd), 0);
    rm_rf(dir);
    free(dir);
}

/* Each malformed line: -1 from check, find and put alike, naming the file and line and what was expected;
 * the file is left as it was. */
static void test_malformed(void **state) {
    (void)state;
    static const struct {
        const char *line, *expected;
    } bad[] = {
        {"K ; forward algo 1 math 1 ws 0 ; backward-data algo 1 math 1 ws 0 ; backward-filter algo 1 math 1 ws 0",
         "expected 5 parts"},
        {"K ; forward algo 1 math 1 ws 0 ; backward-data algo 1 math 1 ws 0 ; backward-filter algo 1 math 1 ws 0 ; "
         "wgrad gemm ; x", "found more"},
        {"K ; forward algo 1 math 9 ws 0 ; backward-data algo 1 math 1 ws 0 ; backward-filter algo 1 math 1 ws 0 ; "
         "wgrad gemm", "part 2 (\"forward algo 1 math 9 ws 0\"): expected \"forward algo A math M ws BYTES"},
        {"K ; forward algo 1 math 1 ws 0 ; backward-filter algo 1 math 1 ws 0 ; backward-filter algo 1 math 1 ws 0 ; "
         "wgrad gemm", "part 3"},
        {"K ; forward algo 1 math 1 ws 0 ; backward-data algo 1 math 1 ws 0 graph x ; backward-filter algo 1 math 1 "
         "ws 0 ; wgrad gemm", "part 3"},
        {"K ; forward algo 1 math 1 ws 0 ; backward-data algo 1 math 1 ws 0 ; backward-filter algo 1 math 1 ws 0 "
         "extra ; wgrad gemm", "part 4"},
        {"K ; forward algo 1 math 1 ws 0 ; backward-data algo 1 math 1 ws 0 ; backward-filter algo 1 math 1 ws 0 ; "
         "wgrad fast", "expected \"wgrad gemm\" or \"wgrad cudnn\""},
        {" ; forward algo 1 math 1 ws 0 ; backward-data algo 1 math 1 ws 0 ; backward-filter algo 1 math 1 ws 0 ; "
         "wgrad gemm", "expected a key"},
    };
    char *dir = make_temp_dir(), why[600];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[1024];
        snprintf(text, sizeof text, "# a comment\n\n%s\n", bad[i].line);
        char *path = write_text(dir, "plans.txt", text);
        char where[1100];
        snprintf(where, sizeof where, "%s:3: ", path);
        plan_rec r = rec("K", 1, -1, 0);
        int line;
        why[0] = 0;
        assert_int_equal(plan_file_check(path, why, sizeof why), -1);
        printf("%s\n", why);
        assert_non_null(strstr(why, where));
        assert_non_null(strstr(why, bad[i].expected));
        assert_null(strchr(why, '\n'));
        assert_int_equal(plan_file_find(path, "K", &r, &line, why, sizeof why), -1);
        assert_int_equal(plan_file_put(path, &r, why, sizeof why), -1);
        char *after = read_text(path);
        assert_string_equal(after, text);
        free(after), free(path);
    }
    rm_rf(dir);
    free(dir);
}

/* A file that cannot be written (its folder does not exist): -1 naming it. */
static void test_unwritable(void **state) {
    (void)state;
    char *dir = make_temp_dir(), path[1024], why[600] = "";
    snprintf(path, sizeof path, "%s/no-such-folder/plans.txt", dir);
    const plan_rec r = rec("K", 1, -1, 0);
    assert_int_equal(plan_file_put(path, &r, why, sizeof why), -1);
    printf("%s\n", why);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "cannot write it"));
    rm_rf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip), cmocka_unit_test(test_malformed),
                                       cmocka_unit_test(test_unwritable)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
