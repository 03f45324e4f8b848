/* stop_signal.c: SIGINT/SIGTERM noted for a clean stop (see stop_signal.h). */
#include "stop_signal.h"

#include <string.h>

static volatile sig_atomic_t g_signal; /* (a signal handler's only way to tell the program) */

static void on_signal(int sig) { g_signal = sig; }

void stop_signals_install(stop_signals *saved) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    g_signal = 0;
    sigaction(SIGINT, &sa, &saved->old_int);
    sigaction(SIGTERM, &sa, &saved->old_term);
}

int stop_signal(void) { return g_signal; }

void stop_signals_restore(const stop_signals *saved) {
    sigaction(SIGINT, &saved->old_int, NULL);
    sigaction(SIGTERM, &saved->old_term, NULL);
}
