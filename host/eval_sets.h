/* eval_sets.h: what an evaluation measures of its images, batch by batch: the SWD descriptors (metric_swd.h)
 * and the statistics of the [features] network's features (frechet.h). In one process each batch is added
 * as it comes. With the several processes of an MPI launch (comm.h) each process measures the batches it is
 * given, one per round (batch r world + rank), and the first process adds every process's measurements of
 * the round in batch order, so that its sets are bitwise those of one process measuring every batch; the
 * other processes hold no sets. */
#ifndef EDM2_HOST_EVAL_SETS_H
#define EDM2_HOST_EVAL_SETS_H

#include <stdint.h>

#include "feature_net.h"
#include "frechet.h"
#include "metric_swd.h"

typedef struct eval_sets {
    swd_set *swd;      /* the descriptors of the whole (the first process only), or NULL: no SWD */
    fid_accum *fd;     /* the features' statistics of the whole (likewise), or NULL: no Fréchet distance */
    feat_instance *fi; /* the features network, with fd */
    const swd_params *p;
    int batch, C, R;
    int world;
    swd_set part;     /* this process's batch of the round (several processes) */
    float *feat;      /* [batch, dim]: its features */
    float *gathered;  /* [world, batch, max(dim, patches x descriptor)]: a round's measurements of every process */
    int *counts;      /* [world]: images in each process's batch of the round */
} eval_sets;

/* Batches of up to `batch` images x[n, C, R, R] into *swd and/or *fd (each initialised by the caller; NULL: not
 * measured); on processes other than the first the two are not touched. 0, or -1 with a reason. */
int eval_sets_init(eval_sets *e, swd_set *swd, fid_accum *fd, feat_instance *fi, const swd_params *p, int batch, int C,
                   int R, edm2_err *err);
/* This process's batch of a round: m images (0 to batch; 0 when it has none this round), the first of index
 * `first` in the whole. Every process calls it once per round, in the same rounds. */
int eval_sets_add(eval_sets *e, const float *x, int m, uint64_t first, edm2_err *err);
void eval_sets_free(eval_sets *e);

#endif
