/* test_util.c: process running with captured output, temporary files. */
#include "test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"

static void drain(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, cap - 1 - n)) > 0) {
        n += (size_t)r;
        if (n >= cap - 1) {
            char sink[4096];
            while (read(fd, sink, sizeof sink) > 0) {
            }
            break;
        }
    }
    buf[n] = 0;
}

int run_capture(run_result *r, const char *const *argv, const char *const *env) {
    memset(r, 0, sizeof *r);
    char out_path[] = "/tmp/edm2_out_XXXXXX", err_path[] = "/tmp/edm2_err_XXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        for (const char *const *e = env; e && *e; e++) putenv((char *)*e);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    lseek(fo, 0, SEEK_SET);
    lseek(fe, 0, SEEK_SET);
    drain(fo, r->out, sizeof r->out);
    drain(fe, r->err, sizeof r->err);
    close(fo), close(fe);
    unlink(out_path), unlink(err_path);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    for (const char *p = r->err; *p; p++) r->err_lines += *p == '\n';
    return r->status;
}

int run_host(run_result *r, ...) {
    const char *argv[64];
    int n = 0;
    argv[n++] = EDM2_BUILD_DIR "/edm2host";
    va_list ap;
    va_start(ap, r);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 63) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return run_capture(r, argv, NULL);
}

int run_interrupted(const char *config, const char *wait_for) {
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execl(EDM2_BUILD_DIR "/edm2host", "edm2host", "run", config, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) return -1;
    for (int i = 0; i < 1000 && access(wait_for, F_OK) != 0; i++) usleep(10000);
    kill(pid, SIGINT);
    int ws;
    if (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws)) return -1;
    return WEXITSTATUS(ws);
}

char *make_temp_dir(void) {
    char *t = strdup("/tmp/edm2_test_XXXXXX");
    if (!mkdtemp(t)) {
        free(t);
        return NULL;
    }
    return t;
}

void rm_rf(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

char *write_text(const char *dir, const char *name, const char *text) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    snprintf(p, len, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

char *read_text(const char *path) {
    unsigned char *data = NULL;
    size_t size;
    edm2_err err;
    if (read_file(path, &data, &size, &err)) fail_msg("%s", err.msg);
    return (char *)data;
}

void test_filter_from_env(void) {
    const char *filter = getenv("EDM2_TEST_FILTER"), *skip = getenv("EDM2_TEST_SKIP");
    if (filter && *filter) cmocka_set_test_filter(filter);
    if (skip && *skip) cmocka_set_skip_filter(skip);
}
