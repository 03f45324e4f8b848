/* jobs.h: the job entry points named in jobs.c's table. Each returns a process exit status (see job_def). */
#ifndef EDM2_HOST_JOBS_H
#define EDM2_HOST_JOBS_H

#include "validate.h"

int job_train(const run_config *rc, edm2_err *err);
int job_generate(const run_config *rc, edm2_err *err);
int job_phema(const run_config *rc, edm2_err *err);
int job_evaluate(const run_config *rc, edm2_err *err);
int job_sweep(const run_config *rc, edm2_err *err);
int job_report(const run_config *rc, edm2_err *err);

#endif
