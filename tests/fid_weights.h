/* fid_weights.h: synthetic weights for the FID Inception-v3 (plugins/features/inception_v3), as
 * tests/data/make_inception_ref.py makes them for pytorch-fid (synthetic_weights.h; in float64, cast to
 * float32: conv.weight (2u - 1) sqrt(6 / fan_in); bn.weight, bn.running_var 0.5 + u; bn.bias, bn.running_mean
 * 0.2 (2u - 1)). */
#ifndef EDM2_TEST_FID_WEIGHTS_H
#define EDM2_TEST_FID_WEIGHTS_H

#include <math.h>

#include "inception_graph.h"
#include "synthetic_weights.h"

static inline void fid_synthetic(const edm2_param_desc *d, float *values) {
    const uint64_t h = synthetic_hash(d->name);
    const int conv = synthetic_ends(d->name, "conv.weight");
    const int around_half = synthetic_ends(d->name, "bn.weight") || synthetic_ends(d->name, "bn.running_var");
    const double bound = conv ? sqrt(6.0 / (double)(d->numel / (size_t)d->shape[0])) : 0;
    for (size_t i = 0; i < d->numel; i++) {
        const double u = synthetic_u(h, i);
        values[i] = conv ? (float)((2 * u - 1) * bound) : around_half ? (float)(0.5 + u) : (float)(0.2 * (2 * u - 1));
    }
}

/* Writes the synthetic weights to `path` (spoil, how: see write_synthetic). 0 or -1. */
static inline int write_fid_weights(const char *path, const char *spoil, const char *how, edm2_err *err) {
    incep_graph *g = malloc(sizeof *g);
    if (!g) return err_set(err, "out of memory");
    incep_graph_build(g);
    int rc = write_synthetic(path, g->params, g->nparams, g->arena_floats, fid_synthetic, spoil, how, err);
    free(g);
    return rc;
}

#endif
