/* log.c: one-line messages to stderr and an optional log file; the plugin-facing log callback. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static edm2_log_level g_min_level = EDM2_LOG_INFO;
static FILE *g_file;

static const char *level_name(edm2_log_level level) {
    switch (level) {
    case EDM2_LOG_DEBUG: return "debug";
    case EDM2_LOG_INFO: return "";
    case EDM2_LOG_WARN: return "warning";
    default: return "error";
    }
}

void log_set_level(edm2_log_level min_level) { g_min_level = min_level; }

int log_open_file(const char *path) {
    if (g_file) fclose(g_file);
    g_file = NULL;
    if (!path) return 0;
    g_file = fopen(path, "a");
    return g_file ? 0 : -1;
}

static void emit(edm2_log_level level, const char *who, const char *msg) {
    const char *name = level_name(level);
    char prefix[128] = "";
    if (*name && who) snprintf(prefix, sizeof prefix, "%s: %s: ", name, who);
    else if (*name) snprintf(prefix, sizeof prefix, "%s: ", name);
    else if (who) snprintf(prefix, sizeof prefix, "%s: ", who);
    if (level >= g_min_level) {
        fprintf(stderr, "%s%s\n", prefix, msg);
        fflush(stderr);
    }
    if (g_file && level >= EDM2_LOG_INFO) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tmv);
        fprintf(g_file, "%s %s%s\n", stamp, prefix, msg);
        fflush(g_file);
    }
}

void log_msg(edm2_log_level level, const char *who, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, who, msg);
}

static void plugin_log(void *ctx, edm2_log_level level, const char *who, const char *msg) {
    (void)ctx;
    emit(level, who, msg ? msg : "(null)");
}

edm2_host log_host_services(int threads) {
    edm2_host h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    h.abi.major = EDM2_ABI_MAJOR;
    h.abi.minor = EDM2_ABI_MINOR;
    h.log = plugin_log;
    h.threads = threads > 0 ? threads : 1;
    return h;
}
