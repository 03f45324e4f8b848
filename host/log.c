/* log.c: one-line messages to stderr and an optional log file; the plugin-facing log callback. A
 * plugin's error message is held back until the host either folds it into its own one-line error
 * (err_plugin) or logs anything else, so a failure reads as one line, never as the plugin's
 * reason followed by "see the message above". */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static edm2_log_level g_min_level = EDM2_LOG_INFO;
static FILE *g_file;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_held[1200]; /* "who: message" of the latest plugin error not yet reported */
static char g_held_who[64];

static void emit(edm2_log_level level, const char *who, const char *msg);

/* Prints a held plugin error (caller holds g_mu). */
static void flush_held(void) {
    if (!g_held[0]) return;
    char msg[sizeof g_held], who[sizeof g_held_who];
    memcpy(msg, g_held, sizeof msg), memcpy(who, g_held_who, sizeof who);
    g_held[0] = 0;
    emit(EDM2_LOG_ERROR, who[0] ? who : NULL, msg);
}

static const char *level_name(edm2_log_level level) {
    switch (level) {
    case EDM2_LOG_DEBUG: return "debug";
    case EDM2_LOG_INFO: return "";
    case EDM2_LOG_WARN: return "warning";
    default: return "error";
    }
}

void log_set_level(edm2_log_level min_level) { g_min_level = min_level; }
edm2_log_level log_get_level(void) { return g_min_level; }

int log_open_file(const char *path) {
    if (g_file) fclose(g_file);
    g_file = NULL;
    if (!path) return 0;
    g_file = fopen(path, "a");
    return g_file ? 0 : -1;
}

static void emit(edm2_log_level level, const char *who, const char *text) {
    char msg[2048]; /* one line, whatever a plugin or a quoted input holds */
    size_t n = 0;
    for (; text[n] && n < sizeof msg - 1; n++) msg[n] = (unsigned char)text[n] < 0x20 ? '?' : text[n];
    msg[n] = 0;
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

/* Whether a message of this level is printed or written to the log file. */
static int shown(edm2_log_level level) { return level >= g_min_level || (g_file && level >= EDM2_LOG_INFO); }

void log_msg(edm2_log_level level, const char *who, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_mu);
    if (shown(level)) flush_held();
    emit(level, who, msg);
    pthread_mutex_unlock(&g_mu);
}

/* A plugin's error is held. One from another plugin while it is held is its context (a network reporting
 * the pass that failed after its backend reported the allocation that failed): the two are held as one line,
 * "LATER (WHO: EARLIER)"; a further one from the same plugin adds nothing to the first, its cause. Another
 * message shown meanwhile prints the held error first, in its order; one not shown (debug lines without -v)
 * leaves it held. */
static void plugin_log(void *ctx, edm2_log_level level, const char *who, const char *msg) {
    (void)ctx;
    if (!msg) msg = "(null)";
    if (!who) who = "";
    pthread_mutex_lock(&g_mu);
    if (level == EDM2_LOG_ERROR) {
        if (!g_held[0] || strcmp(who, g_held_who)) {
            char cause[sizeof g_held] = "";
            if (g_held[0]) snprintf(cause, sizeof cause, " (%s%s%.900s)", g_held_who, g_held_who[0] ? ": " : "", g_held);
            snprintf(g_held, sizeof g_held, "%.1000s%s", msg, cause);
            snprintf(g_held_who, sizeof g_held_who, "%s", who);
        }
    } else {
        if (shown(level)) flush_held();
        emit(level, who[0] ? who : NULL, msg);
    }
    pthread_mutex_unlock(&g_mu);
}

void log_hold_error(const char *msg) { plugin_log(NULL, EDM2_LOG_ERROR, "", msg); }

/* Moves the held plugin error into who/msg (empty when none). */
static void take_held(char *who, size_t wlen, char *msg, size_t mlen) {
    pthread_mutex_lock(&g_mu);
    snprintf(who, wlen, "%s", g_held[0] ? g_held_who : "");
    snprintf(msg, mlen, "%s", g_held);
    g_held[0] = 0;
    pthread_mutex_unlock(&g_mu);
}

void log_flush(void) {
    pthread_mutex_lock(&g_mu);
    flush_held();
    pthread_mutex_unlock(&g_mu);
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

int err_plugin(edm2_err *e, const char *fmt, ...) {
    char what[1024], who[sizeof g_held_who], msg[sizeof g_held];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    take_held(who, sizeof who, msg, sizeof msg);
    if (!msg[0]) return err_set(e, "%s", what);
    /* "[sampler] heun: need ..." rather than "[sampler] heun: heun: need ...". */
    int named = who[0] && strstr(what, who);
    return err_set(e, "%s: %s%s%s", what, named ? "" : who, named || !who[0] ? "" : ": ", msg);
}
