/* log.h: the host's logger: one line per message to stderr (and to a run's log.txt once opened), and
 * the edm2_host services table handed to plugins. */
#ifndef EDM2_HOST_LOG_H
#define EDM2_HOST_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "edm2/edm2_plugin.h"
#include "errors.h"

void log_set_level(edm2_log_level min_level);
edm2_log_level log_get_level(void);
/* Also append every message to `path` (e.g. RUN_DIR/log.txt); NULL closes it. Returns 0 or -1. */
int log_open_file(const char *path);
void log_msg(edm2_log_level level, const char *who, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets a one-line error: the host's context (printf-style), then ": " and the plugin's held reason if a
 * plugin logged one. Returns -1 like err_set. */
int err_plugin(edm2_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Holds an error met inside a host service a plugin called (as if the plugin had logged it), so that the
 * host's err_plugin folds it into its one line. */
void log_hold_error(const char *msg);
/* Prints a held plugin error, if any (at exit, so that nothing a plugin said is lost). */
void log_flush(void);
/* The services table for plugins; `threads` is what plugins may use. */
edm2_host log_host_services(int threads);

#define LOG_ERROR(...) log_msg(EDM2_LOG_ERROR, NULL, __VA_ARGS__)
#define LOG_WARN(...) log_msg(EDM2_LOG_WARN, NULL, __VA_ARGS__)
#define LOG_INFO(...) log_msg(EDM2_LOG_INFO, NULL, __VA_ARGS__)
#define LOG_DEBUG(...) log_msg(EDM2_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
