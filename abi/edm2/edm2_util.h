/* edm2_util.h: small header-only helpers for plugin authors: formatted logging through the host and
 * typed reads of already-validated config values. Optional; everything here uses only the ABI. */
#ifndef EDM2_UTIL_H
#define EDM2_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm2_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define EDM2_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EDM2_PRINTF(a, b)
#endif

/* Logs one formatted line through the host; returns `status` so that errors read
 *     return edm2_logf(host, EDM2_LOG_ERROR, "mp_unet", EDM2_ERR_INVALID, "bad %s", key);       */
static inline edm2_status edm2_logf(const edm2_host *host, edm2_log_level level, const char *who,
                                    edm2_status status, const char *fmt, ...) EDM2_PRINTF(5, 6);
static inline edm2_status edm2_logf(const edm2_host *host, edm2_log_level level, const char *who,
                                    edm2_status status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (host && host->log) host->log(host->ctx, level, who, msg);
    return status;
}

static inline double edm2_cfg_float(const edm2_config *cfg, const char *key, double fallback) {
    const char *s = cfg ? cfg->get(cfg->ctx, key) : NULL;
    return (s && *s) ? strtod(s, NULL) : fallback;
}

static inline long long edm2_cfg_int(const edm2_config *cfg, const char *key, long long fallback) {
    const char *s = cfg ? cfg->get(cfg->ctx, key) : NULL;
    return (s && *s) ? strtoll(s, NULL, 10) : fallback;
}

static inline int edm2_cfg_bool(const edm2_config *cfg, const char *key, int fallback) {
    const char *s = cfg ? cfg->get(cfg->ctx, key) : NULL;
    if (!s || !*s) return fallback;
    return s[0] == '1' || s[0] == 't' || s[0] == 'T' || s[0] == 'y' || s[0] == 'Y' ||
           ((s[0] == 'o' || s[0] == 'O') && (s[1] == 'n' || s[1] == 'N'));
}

/* Reads a comma-separated list into out[0..cap); returns the number of elements in the list (which
 * may exceed cap: only cap are stored). */
static inline int edm2_cfg_floats(const edm2_config *cfg, const char *key, double *out, int cap) {
    const char *s = cfg ? cfg->get(cfg->ctx, key) : NULL;
    int n = 0;
    while (s && *s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s) break;
        if (n < cap) out[n] = v;
        n++;
        s = end;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == ',') s++;
    }
    return n;
}
#ifdef __cplusplus
}
#endif
#endif /* EDM2_UTIL_H */
