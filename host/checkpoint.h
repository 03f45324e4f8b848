/* checkpoint.h: training checkpoints (training-state-KKKKKKK.safetensors in the run folder): every arena
 * (parameters, optimizer moments, EMAs) with the images seen and the optimizer step, written atomically;
 * finding the newest one to resume from. Data order and random streams are functions of the images
 * seen, so nothing else is needed to resume exactly. */
#ifndef EDM2_HOST_CHECKPOINT_H
#define EDM2_HOST_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "safetensors.h"

typedef struct ckpt_buffer {
    const char *name; /* "params", "optimizer/exp_avg", "ema/0.050", ... */
    float *host;      /* host copy, n floats */
    size_t n;
} ckpt_buffer;

typedef struct ckpt_info {
    int64_t nimg, optimizer_step, batch, seed;
    const char *fingerprint; /* network plugin and hyperparameters; must match to resume */
} ckpt_info;

int ckpt_write(const char *path, const ckpt_buffer *bufs, size_t n, const ckpt_info *info, edm2_err *err);
/* The newest checkpoint in run_dir (by images seen), or 0 with *path_out empty when there is none. */
int ckpt_find_latest(const char *run_dir, char *path_out, size_t len, edm2_err *err);
#define CKPT_MAX_NIMG ((int64_t)1 << 50)
#define CKPT_MAX_BATCH ((int64_t)1 << 24)

/* Reads every buffer and the info, after validating the whole file: metadata present, integral, in range
 * and consistent (nimg a multiple of batch, step <= nimg / batch), the fingerprint, batch and seed of this
 * run, exactly the expected float32 tensors with the expected sizes, every value finite. Errors are one
 * line naming the file and the field. */
int ckpt_read(const char *path, const ckpt_buffer *bufs, size_t n, ckpt_info *info, edm2_err *err);
/* The same for an open file. */
int ckpt_read_file(const st_file *f, const ckpt_buffer *bufs, size_t n, ckpt_info *info, edm2_err *err);
/* Its metadata part alone: present, integral, in range, consistent, and the fingerprint, batch and seed of
 * info; then info->nimg and optimizer_step are the file's. */
int ckpt_check_meta(const st_file *f, ckpt_info *info, edm2_err *err);
/* Removes all but the newest `keep` checkpoints (keep 0 = keep all). */
void ckpt_prune(const char *run_dir, int keep);
/* Removes temporary files (*.tmp.*) a killed run left behind. Returns how many. */
int remove_stale_temporaries(const char *run_dir);

#endif
