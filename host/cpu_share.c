/* cpu_share.c: the thread count that leaves other programs their share of the cores (cpu_share.h). The
 * rest of the machine's load is the machine-wide busy time (/proc/stat) minus this process's own CPU
 * time (getrusage), over windows of at least half a second. */
#include "cpu_share.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"

#define WINDOW_S 0.5

static double own_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* Busy time of all CPUs (user, nice, system, irq, softirq, steal) in clock ticks; 0 when unreadable. */
static uint64_t machine_busy_ticks(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    if (n < 8) return 0;
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* not idle (3) and iowait (4) */
}

int cpu_share_decide(int current, int max_threads, int ncpu, double others) {
    double left = ncpu - others;
    int t = current;
    if (left < current - 0.5) t = (int)floor(left + 0.5);
    else if (left > current + 0.75) t = (int)floor(left + 0.25);
    return t < 1 ? 1 : t > max_threads ? max_threads : t;
}

void cpu_share_init(cpu_share *s, int max_threads) {
    memset(s, 0, sizeof *s);
    s->max_threads = s->threads = max_threads < 1 ? 1 : max_threads;
    s->ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    s->busy_last = machine_busy_ticks();
    s->enabled = s->busy_last > 0 && s->ncpu > 0 && sysconf(_SC_CLK_TCK) > 0;
    s->t_last = now_s();
    s->own_last = own_cpu_s();
}

int cpu_share_update(cpu_share *s, int *changed) {
    if (changed) *changed = 0;
    double now = now_s();
    if (!s->enabled || now - s->t_last < WINDOW_S) return s->threads;
    uint64_t busy = machine_busy_ticks();
    double own = own_cpu_s();
    if (busy < s->busy_last) { /* unreadable or reset: start a new window */
        s->t_last = now, s->busy_last = busy, s->own_last = own;
        return s->threads;
    }
    double busy_s = (double)(busy - s->busy_last) / (double)sysconf(_SC_CLK_TCK);
    s->others = fmax(0.0, (busy_s - (own - s->own_last)) / (now - s->t_last));
    s->t_last = now, s->busy_last = busy, s->own_last = own;
    int t = cpu_share_decide(s->threads, s->max_threads, s->ncpu, s->others);
    if (changed) *changed = t != s->threads;
    s->threads = t;
    return t;
}

void cpu_share_log_change(const cpu_share *s) {
    LOG_INFO("other programs use %.1f of %d cores: computing with %d thread%s", s->others, s->ncpu, s->threads,
             s->threads == 1 ? "" : "s");
}
