/* adam.c: the optimizer plugin "adam" (CPU build): Adam with bias correction and no weight decay, after
 * replacing non-finite gradients by 0, with the EDM2 learning-rate schedule (adam_math.h, docs/formulas.md §4). */
#include <stdlib.h>

#include "adam_core.h"

struct edm2_optimizer {
    adam_core c;
};

static edm2_status adam_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                               const edm2_network_info *net, edm2_optimizer **out) {
    edm2_optimizer *o = calloc(1, sizeof *o);
    if (!o) return EDM2_ERR_NOMEM;
    edm2_status s = adam_core_init(&o->c, host, cfg, backend, net);
    if (s != EDM2_OK) {
        free(o);
        return s;
    }
    *out = o;
    return EDM2_OK;
}

static void adam_destroy(edm2_optimizer *o) {
    if (!o) return;
    adam_core_free(&o->c);
    free(o);
}


static edm2_status adam_step(edm2_optimizer *o, float *params, float *grads, int64_t nimg, int64_t batch,
                             double *lr_used) {
    adam_core *c = &o->c;
    double lr;
    adam_step_consts k;
    edm2_status s = adam_core_begin_step(c, grads, nimg, batch, &lr, &k);
    if (s != EDM2_OK) return s;
    /* One pass over the trained tensors, spread over the threads (each element independent). */
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < c->nparams; i++) {
        const edm2_param_desc *d = &c->params[i];
        if (!(d->flags & EDM2_PARAM_TRAINED)) continue;
        float *p = params + d->offset, *g = grads + d->offset, *m = c->m + d->offset, *v = c->v + d->offset;
        for (size_t j = 0; j < d->numel; j++) adam_update1(&p[j], g[j], &m[j], &v[j], k);
    }
    if (lr_used) *lr_used = lr;
    return EDM2_OK;
}

ADAM_PLUGIN(EDM2_BACKEND_CPU, "")
