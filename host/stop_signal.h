/* stop_signal.h: stopping a long job cleanly on SIGINT or SIGTERM: while installed, a signal is only noted;
 * the job asks after each unit of work, saves what it has (a checkpoint, the encode job's state) and exits
 * with status 128 + the signal, and the same command continues it. */
#ifndef EDM2_HOST_STOP_SIGNAL_H
#define EDM2_HOST_STOP_SIGNAL_H

#include <signal.h>

typedef struct stop_signals {
    struct sigaction old_int, old_term;
} stop_signals;

/* Notes SIGINT and SIGTERM from now on (the previous handlers kept in *saved). */
void stop_signals_install(stop_signals *saved);
/* The signal noted since stop_signals_install, or 0. */
int stop_signal(void);
/* The previous handlers back. */
void stop_signals_restore(const stop_signals *saved);

#endif
