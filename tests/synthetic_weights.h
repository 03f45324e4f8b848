/* synthetic_weights.h: weights that are a pure function of each tensor's name and index, the same as the
 * reference scripts in tests/data make for the independent implementations (make_inception_ref.py,
 * make_vae_ref.py): h = FNV-1a-64(name), u_i = (splitmix64(h + i) >> 40) / 2^24 in [0, 1). Written as a
 * weights file, so tests run real networks without their files. */
#ifndef EDM2_TEST_SYNTHETIC_WEIGHTS_H
#define EDM2_TEST_SYNTHETIC_WEIGHTS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_network.h"
#include "safetensors.h"

/* h = FNV-1a-64(name), once per tensor. */
static inline uint64_t synthetic_hash(const char *name) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001B3ull;
    return h;
}

/* u_i of the tensor whose name hashes to h. */
static inline double synthetic_u(uint64_t h, size_t i) {
    uint64_t z = h + i + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 40) / 16777216.0;
}

static inline int synthetic_ends(const char *name, const char *suffix) {
    const size_t n = strlen(name), m = strlen(suffix);
    return n >= m && !strcmp(name + n - m, suffix);
}

/* Writes every entry of a parameter table, each filled by fill(d, values[numel]), to `path`. With `spoil` (a
 * tensor name), that tensor is written in another shape of the same size (how = "shape": [1, numel / (d2 d3),
 * d2, d3]), left out ("missing"), with a NaN at index 3 ("nan") or scaled by 1.5 ("scale"). 0 or -1. */
static inline int write_synthetic(const char *path, const edm2_param_desc *params, size_t count, size_t arena_floats,
                                  void (*fill)(const edm2_param_desc *d, float *values), const char *spoil,
                                  const char *how, edm2_err *err) {
    float *arena = malloc((arena_floats + 1) * sizeof(float));
    st_out *outs = calloc(count + 1, sizeof *outs);
    size_t n = 0;
    for (size_t i = 0; arena && outs && i < count; i++) {
        const edm2_param_desc *d = &params[i];
        const int spoilt = spoil && !strcmp(d->name, spoil);
        fill(d, arena + d->offset);
        if (spoilt && !strcmp(how, "scale"))
            for (size_t k = 0; k < d->numel; k++) arena[d->offset + k] *= 1.5f;
        if (spoilt && !strcmp(how, "missing")) continue;
        st_out o = {d->name, ST_F32, (int)d->ndim, {0}, arena + d->offset};
        for (uint32_t k = 0; k < d->ndim; k++) o.shape[k] = d->shape[k];
        if (spoilt && !strcmp(how, "shape")) o.shape[0] = 1, o.shape[1] = (int64_t)d->numel / d->shape[2] / d->shape[3];
        if (spoilt && !strcmp(how, "nan")) arena[d->offset + 3] = NAN;
        outs[n++] = o;
    }
    int rc = arena && outs ? st_write(path, outs, n, NULL, NULL, 0, err) : err_set(err, "out of memory");
    free(outs), free(arena);
    return rc;
}

#endif
