/* adam.c: the optimizer plugin "adam" (CPU build): Adam with bias correction and no weight decay, after
 * replacing non-finite gradients by 0, with the EDM2 learning-rate schedule (docs/formulas.md §4):
 *   lr(t) = ref_lr / sqrt(max(t / (ref_batches * batch), 1)) * min(t / (rampup_Mimg * 1e6), 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2.h"

#define ID "adam"

struct edm2_optimizer {
    const edm2_host *host;
    edm2_backend_ops ops;
    double ref_lr, ref_batches, rampup_Mimg, beta1, beta2, eps;
    const edm2_param_desc *params;
    size_t nparams, n;
    float *m, *v; /* [n] first and second moments, arena layout */
    int64_t step;
};

static const edm2_config_key k_keys[] = {
    {"ref_lr", EDM2_CFG_FLOAT, "0.01", "reference learning rate (alpha_ref)"},
    {"ref_batches", EDM2_CFG_FLOAT, "70000", "batches before the inverse-square-root decay starts (t_ref); 0 = no decay"},
    {"rampup_Mimg", EDM2_CFG_FLOAT, "10", "linear learning-rate ramp-up, in millions of images; 0 = none"},
    {"beta1", EDM2_CFG_FLOAT, "0.9", "first-moment decay"},
    {"beta2", EDM2_CFG_FLOAT, "0.99", "second-moment decay"},
    {"eps", EDM2_CFG_FLOAT, "1e-8", "denominator epsilon"},
};

static edm2_status adam_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                               const edm2_network_info *net, edm2_optimizer **out) {
    edm2_optimizer *o = calloc(1, sizeof *o);
    if (!o) return EDM2_ERR_NOMEM;
    o->host = host;
    o->ops = *backend;
    o->ref_lr = edm2_cfg_float(cfg, "ref_lr", 0.01);
    o->ref_batches = edm2_cfg_float(cfg, "ref_batches", 70000);
    o->rampup_Mimg = edm2_cfg_float(cfg, "rampup_Mimg", 10);
    o->beta1 = edm2_cfg_float(cfg, "beta1", 0.9);
    o->beta2 = edm2_cfg_float(cfg, "beta2", 0.99);
    o->eps = edm2_cfg_float(cfg, "eps", 1e-8);
    if (!(o->ref_lr > 0) || o->ref_batches < 0 || o->rampup_Mimg < 0 || !(o->beta1 >= 0 && o->beta1 < 1) ||
        !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0)) {
        free(o);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID,
                         "need ref_lr > 0, ref_batches >= 0, rampup_Mimg >= 0, 0 <= beta1, beta2 < 1, eps > 0");
    }
    o->params = net->params;
    o->nparams = net->param_count;
    o->n = net->arena_floats;
    void *m = NULL, *v = NULL;
    if (backend->vt->alloc(backend->b, o->n * sizeof(float), &m) != EDM2_OK ||
        backend->vt->alloc(backend->b, o->n * sizeof(float), &v) != EDM2_OK) {
        backend->vt->free(backend->b, m);
        free(o);
        return EDM2_ERR_NOMEM;
    }
    o->m = m, o->v = v;
    *out = o;
    return EDM2_OK;
}

static void adam_destroy(edm2_optimizer *o) {
    if (!o) return;
    o->ops.vt->free(o->ops.b, o->m);
    o->ops.vt->free(o->ops.b, o->v);
    free(o);
}

static double adam_lr(edm2_optimizer *o, int64_t nimg, int64_t batch) {
    double lr = o->ref_lr, t = (double)nimg;
    if (o->ref_batches > 0) lr /= sqrt(fmax(t / (o->ref_batches * (double)batch), 1.0));
    if (o->rampup_Mimg > 0) lr *= fmin(t / (o->rampup_Mimg * 1e6), 1.0);
    return lr;
}

static edm2_status adam_step(edm2_optimizer *o, float *params, float *grads, int64_t nimg, int64_t batch,
                             double *lr_used) {
    size_t replaced = 0;
    edm2_status s = o->ops.vt->nan_to_zero(o->ops.b, grads, o->n, &replaced);
    if (s != EDM2_OK) return s;
    if (replaced) edm2_logf(o->host, EDM2_LOG_DEBUG, ID, EDM2_OK, "%zu non-finite gradient entries set to 0", replaced);
    const double lr = adam_lr(o, nimg, batch);
    o->step++;
    const double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float b1 = (float)(1.0 - o->beta1), b2 = (float)o->beta2, nb2 = (float)(1.0 - o->beta2), eps = (float)o->eps;
    /* One pass over the trained tensors, spread over the threads (each element independent). */
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < o->nparams; i++) {
        const edm2_param_desc *d = &o->params[i];
        if (!(d->flags & EDM2_PARAM_TRAINED)) continue;
        float *p = params + d->offset, *g = grads + d->offset, *m = o->m + d->offset, *v = o->v + d->offset;
        for (size_t j = 0; j < d->numel; j++) {
            m[j] += b1 * (g[j] - m[j]);
            v[j] = v[j] * b2 + nb2 * g[j] * g[j];
            float denom = sqrtf(v[j]) / bc2_sqrt + eps;
            p[j] += -step_size * (m[j] / denom);
        }
    }
    if (lr_used) *lr_used = lr;
    return EDM2_OK;
}

static size_t adam_state_count(edm2_optimizer *o) {
    (void)o;
    return 2;
}

static edm2_status adam_state_buffer(edm2_optimizer *o, size_t i, edm2_state_buffer *out) {
    if (i > 1) return EDM2_ERR_INVALID;
    out->name = i == 0 ? "exp_avg" : "exp_avg_sq";
    out->data = i == 0 ? o->m : o->v;
    out->numel = o->n;
    return EDM2_OK;
}

static int64_t adam_get_step(edm2_optimizer *o) { return o->step; }
static void adam_set_step(edm2_optimizer *o, int64_t step) { o->step = step; }

static const edm2_optimizer_vtable k_vtable = {
    sizeof(edm2_optimizer_vtable), adam_create,       adam_destroy,  adam_lr,       adam_step,
    adam_state_count,              adam_state_buffer, adam_get_step, adam_set_step,
};

static const edm2_plugin_desc k_desc = {
    sizeof(edm2_plugin_desc), ID, EDM2_KIND_OPTIMIZER, EDM2_BACKEND_CPU, "1.0.0",
    "Adam with EDM2's inverse-square-root learning-rate decay and linear ramp-up",
    k_keys, sizeof k_keys / sizeof *k_keys, NULL, &k_vtable,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
