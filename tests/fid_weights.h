/* fid_weights.h: synthetic weights for the FID Inception-v3 (plugins/features/inception_v3), the same as
 * tests/data/make_inception_ref.py makes for pytorch-fid: each tensor a pure function of its name and index,
 * h = FNV-1a-64(name), u = (splitmix64(h + i) >> 40) / 2^24, in float64, cast to float32: conv.weight
 * (2u - 1) sqrt(6 / fan_in); bn.weight, bn.running_var 0.5 + u; bn.bias, bn.running_mean 0.2 (2u - 1).
 * Written as a weights file so tests run the real network without its 95 MB. */
#ifndef EDM2_TEST_FID_WEIGHTS_H
#define EDM2_TEST_FID_WEIGHTS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inception_graph.h"
#include "safetensors.h"

static inline float fid_synthetic(const edm2_param_desc *d, size_t i) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)d->name; *p; p++) h = (h ^ *p) * 0x100000001B3ull;
    uint64_t z = h + i + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = (double)(z >> 40) / 16777216.0;
    const size_t n = strlen(d->name);
#define FID_ENDS(s) (n >= strlen(s) && !strcmp(d->name + n - strlen(s), s))
    if (FID_ENDS("conv.weight")) return (float)((2 * u - 1) * sqrt(6.0 / (double)(d->numel / (size_t)d->shape[0])));
    if (FID_ENDS("bn.weight") || FID_ENDS("bn.running_var")) return (float)(0.5 + u);
    return (float)(0.2 * (2 * u - 1));
#undef FID_ENDS
}

/* Writes the synthetic weights to `path`. With `spoil` (a tensor name), that tensor is written in another
 * shape (how = "shape"), left out ("missing"), with a NaN ("nan") or scaled by 1.5 ("scale"). 0 or -1. */
static inline int write_fid_weights(const char *path, const char *spoil, const char *how, edm2_err *err) {
    incep_graph *g = malloc(sizeof *g);
    if (!g) return err_set(err, "out of memory");
    incep_graph_build(g);
    float *arena = malloc(g->arena_floats * sizeof(float));
    st_out *outs = calloc(g->nparams, sizeof *outs);
    size_t n = 0;
    for (size_t i = 0; arena && outs && i < g->nparams; i++) {
        const edm2_param_desc *d = &g->params[i];
        const int spoilt = spoil && !strcmp(d->name, spoil);
        const float scale = spoilt && !strcmp(how, "scale") ? 1.5f : 1.0f;
        for (size_t k = 0; k < d->numel; k++) arena[d->offset + k] = fid_synthetic(d, k) * scale;
        if (spoilt && !strcmp(how, "missing")) continue;
        st_out o = {d->name, ST_F32, (int)d->ndim, {0}, arena + d->offset};
        for (uint32_t k = 0; k < d->ndim; k++) o.shape[k] = d->shape[k];
        if (spoilt && !strcmp(how, "shape")) o.shape[0] = 1, o.shape[1] = (int64_t)d->numel / d->shape[2] / d->shape[3];
        if (spoilt && !strcmp(how, "nan")) arena[d->offset + 3] = NAN;
        outs[n++] = o;
    }
    int rc = arena && outs ? st_write(path, outs, n, NULL, NULL, 0, err) : err_set(err, "out of memory");
    free(outs), free(arena), free(g);
    return rc;
}

#endif
