/* run_stats.h: a training run's RUN/stats.jsonl read back (for the report and `inspect`): kimg and loss of
 * each status record, and the training time. */
#ifndef EDM2_HOST_RUN_STATS_H
#define EDM2_HOST_RUN_STATS_H

#include "errors.h"

#define RUN_STATS_MAX 100000 /* records read */

typedef struct run_stats {
    double *kimg, *loss; /* [n] */
    int n;
    double seconds, timed_kimg; /* training time over the status intervals, and the kimg they cover */
} run_stats;

/* Reads DIR/stats.jsonl: each interval's kimg times its sec/kimg makes the time (an interval that a resume
 * from an earlier checkpoint repeats is counted once). 0, or -1 when it is missing or has no record. */
int run_stats_read(run_stats *s, const char *dir, edm2_err *err);
void run_stats_free(run_stats *s);

#endif
