/* progress.c: the clock, duration formatting and progress line of the long jobs (see progress.h). */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *fmt_duration(double seconds, char out[16]) {
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e9) {
        snprintf(out, 16, "?");
        return out;
    }
    const int s = (int)seconds, m = s / 60, h = s / 3600, d = s / 86400; /* (at most 1e9 s: 11574 days) */
    if (seconds < 10) snprintf(out, 16, "%.1fs", seconds);
    else if (s < 60) snprintf(out, 16, "%ds", s);
    else if (s < 3600) snprintf(out, 16, "%dm%02ds", m, s % 60);
    else if (s < 86400) snprintf(out, 16, "%dh%02dm", h, m % 60);
    else snprintf(out, 16, "%dd%02dh", d, h % 24);
    return out;
}

void progress_log(const char *what, const char *units, int64_t done, int64_t total, int64_t start, double t0,
                  const char *extra) {
    const double el = now_s() - t0, rate = (double)(done - start) / fmax(el, 1e-9);
    char e[16], r[16];
    fmt_duration(el, e);
    fmt_duration(rate > 0 ? (double)(total - done) / rate : NAN, r);
    LOG_INFO("%s%s%lld/%lld %s  %.2f %s/s  elapsed %s  ETA %s%s", what ? what : "", what ? ": " : "", (long long)done,
             (long long)total, units, rate, units, e, r, extra ? extra : "");
}
