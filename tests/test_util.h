/* test_util.h: helpers shared by the CMocka tests: paths of the build and source trees, running the
 * edm2host program with captured output, temporary folders and files. */
#ifndef EDM2_TEST_UTIL_H
#define EDM2_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
/* cmocka.h needs the three above first */
#include <cmocka.h>

typedef struct run_result {
    int status;    /* exit status, or -1 */
    char out[65536];
    char err[65536];
    int err_lines; /* lines written to stderr */
} run_result;

/* Runs argv (argv[0] = path) with extra environment entries "K=V" (NULL-terminated, may be NULL). */
int run_capture(run_result *r, const char *const *argv, const char *const *env);
/* Runs BUILD/edm2host with the given arguments (NULL-terminated). */
int run_host(run_result *r, ...);
/* Runs `BUILD/edm2host run CONFIG` (its output discarded), sends it SIGINT once `wait_for` is there (or after
 * 10 s), and returns its exit status (130 when the signal stopped it, 0 when it finished before), or -1 when
 * it did not exit normally. */
int run_interrupted(const char *config, const char *wait_for);
/* A fresh temporary folder (removed by rm_rf). */
char *make_temp_dir(void);
void rm_rf(const char *path);
/* Writes text to dir/name; returns the malloc'ed full path. */
char *write_text(const char *dir, const char *name, const char *text);
/* The whole file at path, NUL-terminated (malloc'ed; host/fileio.h's read_file); the test fails when it
 * cannot be read. */
char *read_text(const char *path);
/* Runs only the cmocka tests whose names match $EDM2_TEST_FILTER, when set and not empty (e.g. gpu-check's
 * memcheck of a program's CUDA tests), and none that match $EDM2_TEST_SKIP (cmocka's patterns: * and ?). */
void test_filter_from_env(void);

#endif
