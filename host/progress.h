/* progress.h: how the long jobs (training, generation, evaluation, encoding) tell their progress: a monotonic
 * clock, durations in human units, and one log line of images done, rate, elapsed and remaining time. */
#ifndef EDM2_HOST_PROGRESS_H
#define EDM2_HOST_PROGRESS_H

#include <stdint.h>

/* Seconds on the monotonic clock (for intervals only). */
double now_s(void);

/* `seconds` as "4.2s", "45s", "12m05s", "3h07m" or "2d04h" (the two largest units, rounded down); "?" when not
 * finite or negative. Writes into `out` (16 bytes) and returns it. */
const char *fmt_duration(double seconds, char out[16]);

/* Logs "[WHAT: ]DONE/TOTAL UNITS  R UNITS/s  elapsed E  ETA T[EXTRA]" (UNITS: "images", "snapshots"), the
 * rate over `done - start` units since `t0` (now_s() when the first of them began). `what` and `extra` may be
 * NULL. */
void progress_log(const char *what, const char *units, int64_t done, int64_t total, int64_t start, double t0,
                  const char *extra);

#endif
