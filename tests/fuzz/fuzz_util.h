/* fuzz_util.h: shared by the libFuzzer harnesses: a private scratch folder (removed at exit), writing a
 * file there, splitting one input into parts, and the plugin registry of the build tree. Each harness
 * defines LLVMFuzzerTestOneInput; none may print, leak or crash on any input, and every input must end
 * in success or a one-line error. */
#ifndef EDM2_FUZZ_UTIL_H
#define EDM2_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "plugin_loader.h"

static char g_fuzz_dir[64];

static void fuzz_cleanup(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_fuzz_dir);
    if (g_fuzz_dir[0] && system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", g_fuzz_dir);
}

/* The scratch folder, created at the first call. */
static inline const char *fuzz_dir(void) {
    if (!g_fuzz_dir[0]) {
        snprintf(g_fuzz_dir, sizeof g_fuzz_dir, "/tmp/edm2_fuzz_XXXXXX");
        if (!mkdtemp(g_fuzz_dir)) abort();
        atexit(fuzz_cleanup);
        log_set_level(EDM2_LOG_ERROR + 1); /* plugins' and the host's messages would only be noise */
    }
    return g_fuzz_dir;
}

/* Writes data to fuzz_dir()/name; returns the path (static buffer per call site is the caller's). */
static inline void fuzz_write(const char *name, const uint8_t *data, size_t n, char *path, size_t len) {
    snprintf(path, len, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

/* Splits data at the separator "\n--8<--\n" into at most `cap` parts; returns how many. */
static inline int fuzz_split(const uint8_t *data, size_t n, const uint8_t **part, size_t *len, int cap) {
    static const char sep[] = "\n--8<--\n";
    const size_t sl = sizeof sep - 1;
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i + sl <= n && k < cap - 1; i++)
        if (!memcmp(data + i, sep, sl)) {
            part[k] = data + start, len[k] = i - start, k++;
            start = i + sl;
            i += sl - 1;
        }
    part[k] = data + start, len[k] = n - start;
    return k + 1;
}

/* The plugins of this build (EDM2_FUZZ_PLUGIN_DIR), scanned once; aborts when the network is missing. */
static inline const plugin_registry *fuzz_registry(void) {
    static plugin_registry reg;
    static int scanned;
    if (!scanned) {
        registry_default_dirs(&reg, EDM2_FUZZ_PLUGIN_DIR);
        registry_scan(&reg);
        scanned = 1;
        if (!registry_find(&reg, EDM2_KIND_NETWORK, "mp_unet", EDM2_BACKEND_CPU)) {
            fprintf(stderr, "fuzz: no plugins found in %s\n", EDM2_FUZZ_PLUGIN_DIR);
            abort();
        }
    }
    return &reg;
}

/* An error message must be one line. */
static inline void fuzz_one_line(const edm2_err *e) {
    if (strchr(e->msg, '\n') || !e->msg[0]) abort();
}

#endif
