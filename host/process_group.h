/* process_group.h: what a job run by the several processes of an MPI launch (comm.h) checks and shares
 * beyond the collectives themselves: the same config on every process, and the node's cores divided among
 * its processes. Training, generation, evaluation, the sweep and encoding run this way; the other jobs run in
 * one process. */
#ifndef EDM2_HOST_PROCESS_GROUP_H
#define EDM2_HOST_PROCESS_GROUP_H

#include <stdint.h>

#include "config.h"
#include "errors.h"

/* CPU threads for this process: `configured` ([job] threads) when > 0, else the node's cores divided among
 * its processes when there are several (at least one), else 0 (all cores). */
int group_threads(int configured);
/* Every process runs the same config (every entry compared, files, extends and --set resolved), else -1 with
 * "process q runs another config than process 0". values[world] = every process's `value` (where it stands:
 * the images it has seen, the images it finds to make), for the caller to compare. */
int group_same_config(const cfg *c, uint64_t value, uint64_t *values, edm2_err *err);
/* Rounds of batches: `count` images in batches of `batch`, round r giving batch r world + rank to each process
 * (comm.h), so that rounds are where the processes meet. group_rounds: how many rounds the images take;
 * group_batch: the first image of this process's batch of round r into *first, and its size (0: none, in a
 * last round of fewer batches than processes); group_done: the images of every process's batches of rounds
 * 0 .. r - 1. One process: a round is a batch. */
int group_rounds(int count, int batch);
int group_batch(int r, int count, int batch, int *first);
int group_done(int r, int count, int batch);
/* The start of a round of batches: the signal that stops every process (the largest that any process noted
 * since stop_signals_install, stop_signal.h), or 0 into *sig. -1 with a reason when the others do not answer. */
int group_stop_signal(int *sig, edm2_err *err);
/* The start of a job's work on several processes: the same config and the same `count` of work on every process,
 * else -1 with "process q finds N <what>, process 0 M (<why>)". */
int group_same_start(const cfg *c, uint64_t count, const char *what, const char *why, edm2_err *err);

#endif
