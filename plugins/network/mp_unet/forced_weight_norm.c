/* forced_weight_norm.c: forced weight normalisation of one weight and of a whole network's arena. */
#include "forced_weight_norm.h"

#include <math.h>
#include <stddef.h>

#include "mp_ops.h"
#include "unet_graph.h"

void forced_weight_norm(float *w, int O, int fan_in) {
    const float inv_sqrt_f = 1.0f / sqrtf((float)fan_in);
    for (int o = 0; o < O; o++) mp_force_normalize_unit(w + (size_t)o * fan_in, fan_in, inv_sqrt_f);
}

void unet_normalize_weights(const unet_graph *g, float *params) {
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < g->nweights; i++) {
        const weight_ref *w = &g->weights[i].ref;
        forced_weight_norm(params + w->offset, w->O, w->C * w->k * w->k);
    }
}
