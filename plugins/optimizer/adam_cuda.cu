/* adam_cuda.cu: the optimizer plugin "adam" (CUDA build): the CPU build's update (adam_math.h, compiled with
 * --fmad=false, so the parameters and moments are bitwise the CPU's for the same gradients) as one kernel
 * per run of consecutive trained tensors, on the backend's stream. Non-finite gradients are zeroed first
 * (the backend's nan_to_zero). */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "adam_core.h"
#include "launch_cuda.h"

struct edm2_optimizer {
    adam_core c;
    int device;
    cudaStream_t stream;
    size_t *runs; /* [2 * nruns]: begin, end (arena floats) of runs of trained tensors */
    size_t nruns;
};

/* Consecutive trained tensors form one run, with the padding between them: padding holds zero parameters and
 * zero gradients, which the update keeps at zero. */
static int find_runs(edm2_optimizer *o) {
    const adam_core *c = &o->c;
    o->runs = (size_t *)malloc((2 * c->nparams + 2) * sizeof *o->runs);
    if (!o->runs) return -1;
    for (size_t i = 0; i < c->nparams; i++) {
        const edm2_param_desc *d = &c->params[i];
        if (!(d->flags & EDM2_PARAM_TRAINED) || d->numel == 0) continue;
        const int extends = o->nruns && i > 0 && (c->params[i - 1].flags & EDM2_PARAM_TRAINED) &&
                            c->params[i - 1].offset + c->params[i - 1].numel <= d->offset;
        if (extends) o->runs[2 * o->nruns - 1] = d->offset + d->numel;
        else o->runs[2 * o->nruns] = d->offset, o->runs[2 * o->nruns + 1] = d->offset + d->numel, o->nruns++;
    }
    return 0;
}

static edm2_status adam_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                               const edm2_network_info *net, edm2_optimizer **out) {
    edm2_backend_native n;
    memset(&n, 0, sizeof n);
    n.struct_size = sizeof n;
    if (!backend || backend->vt->struct_size < offsetof(edm2_backend_vtable, native) + sizeof(void *) ||
        !backend->vt->native || backend->vt->native(backend->b, &n) != EDM2_OK || n.device < 0 || !n.stream)
        return edm2_logf(host, EDM2_LOG_ERROR, "adam", EDM2_ERR_INVALID, "the CUDA adam needs the cuda backend (ABI 1.1)");
    edm2_optimizer *o = (edm2_optimizer *)calloc(1, sizeof *o);
    if (!o) return EDM2_ERR_NOMEM;
    o->device = n.device;
    o->stream = (cudaStream_t)n.stream;
    edm2_status s = adam_core_init(&o->c, host, cfg, backend, net);
    if (s == EDM2_OK && find_runs(o)) {
        adam_core_free(&o->c);
        s = EDM2_ERR_NOMEM;
    }
    if (s != EDM2_OK) {
        free(o);
        return s;
    }
    *out = o;
    return EDM2_OK;
}

static void adam_destroy(edm2_optimizer *o) {
    if (!o) return;
    cudaSetDevice(o->device);
    adam_core_free(&o->c);
    free(o->runs);
    free(o);
}


__global__ void k_adam(float *p, const float *g, float *m, float *v, size_t n, adam_step_consts k) {
    STRIDE_LOOP(i, n)
        adam_update1(&p[i], g[i], &m[i], &v[i], k);
}

static edm2_status adam_step(edm2_optimizer *o, float *params, float *grads, int64_t nimg, int64_t batch,
                             double *lr_used) {
    adam_core *c = &o->c;
    cudaSetDevice(o->device);
    double lr;
    adam_step_consts k;
    edm2_status s = adam_core_begin_step(c, grads, nimg, batch, &lr, &k);
    if (s != EDM2_OK) return s;
    for (size_t r = 0; r < o->nruns; r++) {
        const size_t b = o->runs[2 * r], n = o->runs[2 * r + 1] - b;
        k_adam<<<blocks_for(n), THREADS, 0, o->stream>>>(params + b, grads + b, c->m + b, c->v + b, n, k);
    }
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return edm2_logf(c->host, EDM2_LOG_ERROR, "adam", EDM2_ERR_INTERNAL, "update on the GPU: %s", cudaGetErrorString(e));
    if (lr_used) *lr_used = lr;
    return EDM2_OK;
}

ADAM_PLUGIN(EDM2_BACKEND_CUDA, " (CUDA)")
