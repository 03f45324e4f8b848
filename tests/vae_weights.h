/* vae_weights.h: synthetic weights for the SD VAE (plugins/vae/sd_vae), as tests/data/make_vae_ref.py makes
 * them for diffusers (synthetic_weights.h; in float64, cast to float32: tensors of 2+ dimensions
 * (2u - 1) sqrt(3 / fan_in); 1-d tensors of norms 0.5 + u, other 1-d tensors 0.1 (2u - 1)). */
#ifndef EDM2_TEST_VAE_WEIGHTS_H
#define EDM2_TEST_VAE_WEIGHTS_H

#include <math.h>

#include "synthetic_weights.h"
#include "vae_graph.h"

static inline void vae_synthetic(const edm2_param_desc *d, float *values) {
    const uint64_t h = synthetic_hash(d->name);
    const int norm = strstr(d->name, "norm") != NULL;
    const double bound = d->ndim >= 2 ? sqrt(3.0 / (double)(d->numel / (size_t)d->shape[0])) : 0;
    for (size_t i = 0; i < d->numel; i++) {
        const double u = synthetic_u(h, i);
        values[i] = d->ndim >= 2 ? (float)((2 * u - 1) * bound) : norm ? (float)(0.5 + u) : (float)(0.1 * (2 * u - 1));
    }
}

/* Writes synthetic weights of the VAE with these hyperparameters to `path` (spoil, how: see write_synthetic). */
static inline int write_vae_weights(const char *path, const vae_hparams *hp, const char *spoil, const char *how,
                                    edm2_err *err) {
    vae_graph g;
    if (vae_graph_build(&g, hp)) return err_set(err, "out of memory");
    int rc = write_synthetic(path, g.params, g.nparams, g.arena_floats, vae_synthetic, spoil, how, err);
    vae_graph_free(&g);
    return rc;
}

#endif
