/* trainer.h: the state of a `train` job and its parts, one file each: the loop, setup and resume
 * (job_train.c), checkpoints (train_checkpoint.c), EMA snapshots (train_snapshots.c), the final sample
 * grid (train_grid.c), and the progress bar with status lines and stats.jsonl (train_progress.c). */
#ifndef EDM2_HOST_TRAINER_H
#define EDM2_HOST_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "cpu_share.h"
#include "dataset.h"
#include "loader.h"
#include "progress.h"
#include "runtime.h"
#include "validate.h"

#define MAX_EMA 64
#define MAX_PASSES 4096 /* gradient-accumulation passes per process and step */

typedef struct trainer {
    const run_config *rc;
    char run_dir[2048];
    runtime rt;
    net_instance net;
    const edm2_loss_vtable *lvt;
    edm2_loss *loss;
    const edm2_optimizer_vtable *ovt;
    edm2_optimizer *opt;
    const edm2_ema_vtable *evt;
    edm2_ema *ema;
    size_t nema;
    float *avg[MAX_EMA];
    float *grads, *y, *labels; /* backend */
    float *host;               /* host arena scratch */
    dataset data;
    loader ld;
    int64_t nimg, total, batch, batch_gpu, seed;
    /* Data-parallel runs (comm.h): this process is `rank` of `world`; each step it computes `passes` of the
     * batch / batch_gpu passes (the contiguous range from rank * passes), each into its own gradient arena
     * (part[0] is grads), which the backend's reduce_sum adds in one fixed order. One process: passes = all,
     * accumulated straight into grads. */
    int rank, world, passes;
    int grouped; /* the data-parallel path: world > 1, or EDM2_GROUP_OF_ONE=1 (that path checked with one process) */
    int auto_pass; /* batch_gpu = auto: a step whose pass runs out of memory is done again in smaller passes */
    float *part[MAX_PASSES];
    double *objectives; /* [world * (passes + 2)]: every process's pass objectives, stop request and whether a
                         * pass ran out of memory */
    char fingerprint[4096];
    FILE *stats;
    double last_progress; /* when the progress bar was last drawn */
    size_t nonfinite;     /* gradient entries the optimizer set to 0 since the last status line */
    cpu_share share;      /* threads lent to the plugins, lowered while other programs use the cores */
} trainer;

/* Checkpoints: training-state-KKKKKKK.safetensors with every arena, written atomically (keeping the newest
 * `keep`), and read back (validated) to resume. */
int trainer_write_checkpoint(trainer *t, int keep, edm2_err *err);
int trainer_read_checkpoint(trainer *t, const char *path, edm2_err *err);
/* One snapshot per tracked EMA at the current images seen. */
int trainer_write_snapshots(trainer *t, edm2_err *err);
/* Checks [training] grid_ema and the sampler before training (so a bad value fails at once). */
int trainer_grid_check(const trainer *t, edm2_err *err);
/* samples.png: a grid from one EMA with the [sampler] plugin (Heun defaults without one). */
int trainer_write_grid(trainer *t, edm2_err *err);
/* The progress bar (terminal only), redrawn at most 4 times a second. */
void trainer_progress(trainer *t, double t_start, int64_t start_nimg);
/* A status line and a stats.jsonl record for the interval that started at `int_start` images, time t_int, of
 * the session that started at t_start (its elapsed time; the time left at the interval's rate). */
void trainer_status(trainer *t, double loss_mean, double lr, int64_t int_start, double t_int, double t_start,
                    double now);

/* Adjusts the plugins' thread count to what other programs leave free (cpu_share.h), with a log line. */
void trainer_share_cpu(trainer *t);

#endif
