/* cpu_share.h: sharing the machine. CPU plugins compute with an OpenMP team whose idle threads spin
 * briefly before sleeping; that is what makes a run fast alone, but when two runs (or a run and a
 * build) share the cores, each run's spinning threads hold the cores the other's working threads need,
 * and both crawl (two training runs on 2 cores: under a tenth of the solo rate each). So the host watches
 * how much CPU the rest of the machine uses and lowers the thread count it lends the plugins
 * (edm2_host.threads, read at each call) to the cores left over, never below one; when the others stop,
 * it raises it again. Alone nothing changes. Results do not depend on the thread count.
 * bench/share.sh measures a run alone and two at once. */
#ifndef EDM2_HOST_CPU_SHARE_H
#define EDM2_HOST_CPU_SHARE_H

#include <stdint.h>

typedef struct cpu_share {
    int max_threads, threads, ncpu;
    int enabled;                /* 0 when /proc/stat cannot be read */
    double t_last;              /* monotonic seconds of the last sample */
    uint64_t busy_last;         /* machine-wide busy CPU time, clock ticks */
    double own_last;            /* this process's CPU time, seconds */
    double others;              /* cores the rest of the machine used in the last window */
} cpu_share;

/* Starts watching; `max_threads` is what the job was given ([job] threads or all cores). */
void cpu_share_init(cpu_share *s, int max_threads);
/* Call between units of work (training steps, sampling batches). At most twice a second it samples the
 * machine and returns the thread count for the next unit; otherwise the current one. Sets *changed when
 * the count changed (for a log line). */
int cpu_share_update(cpu_share *s, int *changed);
/* The log line for a change of the thread count. */
void cpu_share_log_change(const cpu_share *s);
/* The decision alone (tested): the thread count for `others` cores busy elsewhere on `ncpu` cores, from
 * `current` (hysteresis: lowered when fewer than current - 0.5 cores are left, raised when more than
 * current + 0.75 are). */
int cpu_share_decide(int current, int max_threads, int ncpu, double others);

#endif
