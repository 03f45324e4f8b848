/* adam_core.h: the state both builds of "adam" keep (moments m and v in the arena layout, in backend memory,
 * and the step counter) and what they do alike with it: create, destroy, the checkpoint buffers. Each build
 * adds its own step (adam.c: OpenMP loops; adam_cuda.cu: a kernel). */
#ifndef EDM2_ADAM_CORE_H
#define EDM2_ADAM_CORE_H

#include <stdlib.h>

#include "adam_math.h"

typedef struct adam_core {
    size_t replaced; /* non-finite gradient entries the last step set to 0 */
    const edm2_host *host;
    edm2_backend_ops ops;
    adam_params a;
    const edm2_param_desc *params;
    size_t nparams, n;
    float *m, *v; /* [n] first and second moments, arena layout */
    int64_t step;
} adam_core;

static inline edm2_status adam_core_init(adam_core *c, const edm2_host *host, const edm2_config *cfg,
                                         const edm2_backend_ops *backend, const edm2_network_info *net) {
    edm2_status s = adam_params_read(host, cfg, &c->a);
    if (s != EDM2_OK) return s;
    c->host = host;
    c->ops = *backend;
    c->params = net->params;
    c->nparams = net->param_count;
    c->n = net->arena_floats;
    void *m = NULL, *v = NULL;
    if (backend->vt->alloc(backend->b, c->n * sizeof(float), &m) != EDM2_OK ||
        backend->vt->alloc(backend->b, c->n * sizeof(float), &v) != EDM2_OK) {
        backend->vt->free(backend->b, m);
        return EDM2_ERR_NOMEM;
    }
    c->m = (float *)m, c->v = (float *)v;
    return EDM2_OK;
}

static inline void adam_core_free(adam_core *c) {
    c->ops.vt->free(c->ops.b, c->m);
    c->ops.vt->free(c->ops.b, c->v);
}

/* Replaces non-finite gradients by 0 (logged), advances the step counter and returns its constants. */
static inline edm2_status adam_core_begin_step(adam_core *c, float *grads, int64_t nimg, int64_t batch, double *lr,
                                               adam_step_consts *k) {
    size_t replaced = 0;
    edm2_status s = c->ops.vt->nan_to_zero(c->ops.b, grads, c->n, &replaced);
    if (s != EDM2_OK) return s;
    c->replaced = replaced;
    if (replaced)
        edm2_logf(c->host, EDM2_LOG_DEBUG, "adam", EDM2_OK, "%zu non-finite gradient entries set to 0", replaced);
    *lr = adam_schedule(&c->a, nimg, batch);
    c->step++;
    *k = adam_consts(&c->a, *lr, c->step);
    return EDM2_OK;
}

static inline edm2_status adam_core_state_buffer(adam_core *c, size_t i, edm2_state_buffer *out) {
    if (i > 1) return EDM2_ERR_INVALID;
    out->name = i == 0 ? "exp_avg" : "exp_avg_sq";
    out->data = i == 0 ? c->m : c->v;
    out->numel = c->n;
    return EDM2_OK;
}

/* The plugin of a build (its table, descriptor and entry symbol), from adam_create, adam_destroy and
 * adam_step, which the build defines over `struct edm2_optimizer { adam_core c; ... }`. */
#define ADAM_PLUGIN(backend, note)                                                                        \
    static double adam_lr(edm2_optimizer *o, int64_t nimg, int64_t batch) {                               \
        return adam_schedule(&o->c.a, nimg, batch);                                                       \
    }                                                                                                     \
    static size_t adam_state_count(edm2_optimizer *o) {                                                   \
        (void)o;                                                                                          \
        return 2;                                                                                         \
    }                                                                                                     \
    static edm2_status adam_state_buffer(edm2_optimizer *o, size_t i, edm2_state_buffer *out) {           \
        return adam_core_state_buffer(&o->c, i, out);                                                     \
    }                                                                                                     \
    static int64_t adam_get_step(edm2_optimizer *o) { return o->c.step; }                                 \
    static void adam_set_step(edm2_optimizer *o, int64_t step) { o->c.step = step; }                      \
    static size_t adam_nonfinite(edm2_optimizer *o) { return o->c.replaced; }                             \
    static const edm2_optimizer_vtable k_vtable = {                                                       \
        sizeof(edm2_optimizer_vtable), adam_create,       adam_destroy,  adam_lr,       adam_step,        \
        adam_state_count,              adam_state_buffer, adam_get_step, adam_set_step, adam_nonfinite,   \
    };                                                                                                    \
    static const edm2_plugin_desc k_desc = {                                                              \
        sizeof(edm2_plugin_desc), "adam", EDM2_KIND_OPTIMIZER, backend, "1.0.0",                          \
        "Adam with EDM2's inverse-square-root learning-rate decay and linear ramp-up" note,               \
        adam_config_keys, ADAM_CONFIG_KEY_COUNT, NULL, &k_vtable,                                         \
    };                                                                                                    \
    static const edm2_plugin_desc *const k_plugins[] = {&k_desc};                                         \
    EDM2_DEFINE_ENTRY(k_plugins)

#endif
