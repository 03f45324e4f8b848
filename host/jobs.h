/* jobs.h: the job entry points named in jobs.c's table. Each returns a process exit status (see job_def). */
#ifndef EDM2_HOST_JOBS_H
#define EDM2_HOST_JOBS_H

#include "validate.h"

int job_train(const run_config *rc, edm2_err *err);
int job_generate(const run_config *rc, edm2_err *err);
int job_phema(const run_config *rc, edm2_err *err);
int job_evaluate(const run_config *rc, edm2_err *err);
int job_sweep(const run_config *rc, edm2_err *err);

/* The evaluate job's work on [evaluate] of rc: *swd = the snapshot's SWD (also appended to its metrics.jsonl).
 * *ref holds the reference statistics: loaded or computed when empty (levels 0), reused otherwise, so a
 * caller evaluating many snapshots against one reference makes it once; the caller frees it. */
struct swd_set;
int evaluate_snapshot(const run_config *rc, struct swd_set *ref, double *swd, edm2_err *err);
int job_report(const run_config *rc, edm2_err *err);

#endif
