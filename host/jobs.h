/* jobs.h: the job entry points named in jobs.c's table. Each returns a process exit status (see job_def). */
#ifndef EDM2_HOST_JOBS_H
#define EDM2_HOST_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "metric_fid.h"
#include "metric_swd.h"
#include "validate.h"

/* A job's failure before its work: the one-line message into err, and the exit status 1 (job_def). */
#define JOB_FAIL(err, ...) (err_set((err), __VA_ARGS__), 1)

int job_train(const run_config *rc, edm2_err *err);
/* Where a train job would start: *path the newest checkpoint of its run_dir, its metadata checked against
 * the config as a resume checks it, *nimg its images seen; or path empty (a fresh start). 0, or -1 with
 * the error a resume would give. */
int train_resume_point(const run_config *rc, char *path, size_t len, int64_t *nimg, edm2_err *err);
/* The values of rc that differ from its run's config.ini (of the run's last start) into line[len], as
 * "[SECTION] KEY = WAS -> NOW; ..."; how many (0: none, or no config.ini yet). */
int train_config_changes(const run_config *rc, char *line, size_t len);
/* Opens the [data] section's dataset into *d and checks it against the network (image shape, classes).
 * 0, or -1 with the reason (the dataset closed). */
struct dataset;
int train_open_data(const run_config *rc, const edm2_network_info *net, struct dataset *d, edm2_err *err);
int job_generate(const run_config *rc, edm2_err *err);
int job_phema(const run_config *rc, edm2_err *err);
int job_evaluate(const run_config *rc, edm2_err *err);
int job_sweep(const run_config *rc, edm2_err *err);

/* The reference statistics of the evaluate job's metrics (either may be empty: levels 0, mu NULL). */
typedef struct eval_refs {
    swd_set swd;
    fid_stats fid;
} eval_refs;
void eval_refs_free(eval_refs *r);
/* What one evaluation measured; NAN where [evaluate] metrics did not ask for it. */
typedef struct eval_result {
    double swd, fid;
} eval_result;
/* The evaluate job's work on [evaluate] of rc: the snapshot's metrics into *res (also appended to its
 * metrics.jsonl). *refs holds the reference statistics: each loaded or computed when empty, reused
 * otherwise, so a caller evaluating many snapshots against one reference makes it once; the caller frees
 * it (eval_refs_free). */
int evaluate_snapshot(const run_config *rc, eval_refs *refs, eval_result *res, edm2_err *err);
/* The metrics that [section] metrics asks for: swd (the default) and/or one Fréchet distance into
 * fd[FD_NAME_MAX] (empty: none): fid, or fd_ID for a [features] plugin ID other than inception_v3 (fd_dinov2);
 * refused with the key's file and line where the config has no [features] network, or another one. */
int evaluate_metrics(const run_config *rc, const char *section, int *swd, char *fd, edm2_err *err);
/* The Fréchet distance that the [features] plugin's features give: fid (inception_v3) or fd_ID, into name. */
const char *fd_metric(const plugin_rec *features, char *name, size_t len);
/* A metric's name for people: FID, or FD_ID (FD_dinov2). */
const char *fd_display(const char *metric, char *name, size_t len);
int job_report(const run_config *rc, edm2_err *err);
int job_encode(const run_config *rc, edm2_err *err);
int job_convert(const run_config *rc, edm2_err *err);

#endif
