/* uncertainty_weighted_loss_cuda.cu: the loss plugins "edm2" and "edm" (CUDA build), docs/formulas.md §4
 * (paper §2.1), the CPU build's uncertainty_weighted_loss.c on the GPU: noise levels and noise from the same
 * Philox stream, the loss, its gradients dD and dlogvar (formed in double, as on the CPU) and the objective.
 * Each image's sums are a fixed-order tree in one thread block (deterministic); the host adds the images'
 * sums in order. All work is queued on the backend's stream. */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2.h"
#include "edm2/edm2_philox.h"
#include "launch_cuda.h"
#include "loss_math.h"

struct edm2_loss {
    const edm2_host *host;
    const char *id;
    int uncertainty; /* 1 for edm2 */
    loss_params p;
    edm2_backend_ops ops;
    int device;
    cudaStream_t stream;
    /* Per-batch device buffers, grown as needed; sums_host mirrors sums. */
    size_t cap_elems, cap_n;
    float *xn, *noise, *D, *dD;      /* [N, C, H, W] */
    float *sigma, *logvar, *dlogvar; /* [N] */
    double *sums;                    /* [N] per-image loss sums */
    double *sums_host;
};

static edm2_status create_common(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                                 const char *id, int uncertainty, edm2_loss **out) {
    loss_params lp;
    edm2_status s = loss_params_read(host, cfg, id, &lp);
    if (s != EDM2_OK) return s;
    edm2_backend_native n;
    memset(&n, 0, sizeof n);
    n.struct_size = sizeof n;
    if (!backend || backend->vt->struct_size < offsetof(edm2_backend_vtable, native) + sizeof(void *) ||
        !backend->vt->native || backend->vt->native(backend->b, &n) != EDM2_OK || n.device < 0 || !n.stream)
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "the CUDA loss needs the cuda backend (ABI 1.1)");
    edm2_loss *l = (edm2_loss *)calloc(1, sizeof *l);
    if (!l) return EDM2_ERR_NOMEM;
    l->host = host;
    l->id = id;
    l->uncertainty = uncertainty;
    l->p = lp;
    l->ops = *backend;
    l->device = n.device;
    l->stream = (cudaStream_t)n.stream;
    *out = l;
    return EDM2_OK;
}

static edm2_status edm2_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                               edm2_loss **out) {
    return create_common(host, cfg, backend, "edm2", 1, out);
}

static edm2_status edm_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                              edm2_loss **out) {
    return create_common(host, cfg, backend, "edm", 0, out);
}

static void free_buffers(edm2_loss *l) {
    void *all[] = {l->xn, l->noise, l->D, l->dD, l->sigma, l->logvar, l->dlogvar, l->sums};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) l->ops.vt->free(l->ops.b, all[i]);
    free(l->sums_host);
    l->xn = l->noise = l->D = l->dD = l->sigma = l->logvar = l->dlogvar = NULL;
    l->sums = NULL;
    l->sums_host = NULL;
    l->cap_elems = l->cap_n = 0;
}

static void loss_destroy(edm2_loss *l) {
    if (!l) return;
    cudaSetDevice(l->device);
    free_buffers(l);
    free(l);
}

static int reserve(edm2_loss *l, size_t elems, size_t n) {
    if (elems <= l->cap_elems && n <= l->cap_n) return 0;
    free_buffers(l);
    void *p[8] = {0};
    const size_t bytes[8] = {elems * 4, elems * 4, elems * 4, elems * 4, n * 4, n * 4, n * 4, n * 8};
    for (int i = 0; i < 8; i++)
        if (l->ops.vt->alloc(l->ops.b, bytes[i], &p[i]) != EDM2_OK) {
            for (int k = 0; k < i; k++) l->ops.vt->free(l->ops.b, p[k]);
            return -1;
        }
    l->xn = (float *)p[0], l->noise = (float *)p[1], l->D = (float *)p[2], l->dD = (float *)p[3];
    l->sigma = (float *)p[4], l->logvar = (float *)p[5], l->dlogvar = (float *)p[6], l->sums = (double *)p[7];
    l->sums_host = (double *)malloc(n * sizeof(double));
    if (!l->sums_host) {
        free_buffers(l);
        return -1;
    }
    l->cap_elems = elems, l->cap_n = n;
    return 0;
}

/* Image n's draws (loss_draw_offset): its noise level's normal at that offset, its noise at the per after it. */
__global__ void k_sigma(float *sigma, int N, size_t per, edm2_rng rng, float P_mean, float P_std) {
    STRIDE_LOOP(n, (size_t)N)
        sigma[n] = loss_sigma(edm2_philox_normal(rng.seed, rng.stream, loss_draw_offset(rng, n, per)), P_mean, P_std);
}
__global__ void k_noise(float *noise, size_t per, size_t elems, edm2_rng rng) {
    STRIDE_LOOP(i, elems)
        noise[i] = edm2_philox_normal(rng.seed, rng.stream, loss_draw_offset(rng, i / per, per) + 1 + i % per);
}

/* xn = y + noise * sigma[n]. */
__global__ void k_noisy(float *xn, const float *y, const float *noise, const float *sigma, size_t per, size_t elems) {
    STRIDE_LOOP(i, elems)
        xn[i] = y[i] + noise[i] * sigma[i / per];
}

/* One block per image: the loss per element, dD, and the image's sums (a fixed-order tree in double). */
__global__ void k_loss(double *sums, float *dD, float *dlogvar, float *loss_out, const float *D, const float *y,
                       const float *sigma, const float *logvar, size_t per, float sd, double scale, int uncertainty) {
    __shared__ double s_loss[THREADS], s_werr[THREADS];
    const int n = blockIdx.x;
    const float sg = sigma[n], weight = loss_lambda(sg, sd);
    const float u = uncertainty ? logvar[n] : 0.0f, w = uncertainty ? weight / expf(u) : weight;
    double sum_n = 0, sum_werr = 0;
    for (size_t i = threadIdx.x; i < per; i += THREADS) {
        const size_t k = n * per + i;
        const float diff = D[k] - y[k], werr = w * (diff * diff), loss = werr + u;
        if (loss_out) loss_out[k] = loss;
        sum_n += loss;
        sum_werr += werr;
        dD[k] = (float)(scale * 2.0 * w * diff);
    }
    s_loss[threadIdx.x] = sum_n, s_werr[threadIdx.x] = sum_werr;
    __syncthreads();
    for (int h = THREADS / 2; h > 0; h >>= 1) {
        if (threadIdx.x < h) s_loss[threadIdx.x] += s_loss[threadIdx.x + h], s_werr[threadIdx.x] += s_werr[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        sums[n] = s_loss[0];
        dlogvar[n] = (float)(scale * ((double)per - s_werr[0]));
    }
}

static edm2_status cuda_failed(edm2_loss *l, const char *what) {
    cudaError_t e = cudaGetLastError();
    return edm2_logf(l->host, EDM2_LOG_ERROR, l->id, EDM2_ERR_INTERNAL, "%s on the GPU: %s", what, cudaGetErrorString(e));
}

static edm2_status loss_compute(edm2_loss *l, edm2_network_ref net, const float *params, float *grads,
                                const edm2_loss_batch *b, double *objective) {
    size_t per = 0; /* (set by loss_check_batch; g++ cannot see it) */
    edm2_status s = loss_check_batch(l->host, l->id, net, b, &per);
    if (s != EDM2_OK) return s;
    const int N = b->N;
    const size_t elems = per * (size_t)N;
    cudaSetDevice(l->device);
    if (reserve(l, elems, (size_t)N))
        return edm2_logf(l->host, EDM2_LOG_ERROR, l->id, EDM2_ERR_NOMEM, "out of device memory for a batch of %d", N);
    /* Noise levels and noise, image by image (loss_draw_offset), bitwise the CPU's. */
    const float *sigma = b->sigma, *noise = b->noise;
    if (!sigma || !noise) {
        k_sigma<<<blocks_for((size_t)N), THREADS, 0, l->stream>>>(l->sigma, N, per, b->rng, (float)l->p.P_mean,
                                                                 (float)l->p.P_std);
        k_noise<<<blocks_for(elems), THREADS, 0, l->stream>>>(l->noise, per, elems, b->rng);
        if (cudaPeekAtLastError() != cudaSuccess) return cuda_failed(l, "drawing sigma and noise");
        sigma = l->sigma, noise = l->noise;
    }
    k_noisy<<<blocks_for(elems), THREADS, 0, l->stream>>>(l->xn, b->y, noise, sigma, per, elems);
    if (cudaPeekAtLastError() != cudaSuccess) return cuda_failed(l, "adding noise");
    edm2_forward_args fa;
    memset(&fa, 0, sizeof fa);
    fa.struct_size = sizeof fa;
    fa.params = params, fa.x = l->xn, fa.sigma = sigma, fa.labels = b->labels, fa.N = N, fa.training = 1;
    fa.dropout_rng = b->dropout_rng, fa.D = l->D, fa.logvar = l->uncertainty ? l->logvar : NULL;
    if ((s = net.vt->forward(net.net, &fa)) != EDM2_OK) return s;
    const double scale = l->p.loss_scaling / b->batch_total;
    k_loss<<<N, THREADS, 0, l->stream>>>(l->sums, l->dD, l->dlogvar, b->loss_out, l->D, b->y, sigma, l->logvar, per,
                                         (float)l->p.sigma_data, scale, l->uncertainty);
    if (cudaPeekAtLastError() != cudaSuccess) return cuda_failed(l, "the loss");
    if ((s = net.vt->backward(net.net, params, l->dD, l->uncertainty ? l->dlogvar : NULL, grads)) != EDM2_OK) return s;
    if ((s = l->ops.vt->download(l->ops.b, l->sums_host, l->sums, (size_t)N * sizeof(double))) != EDM2_OK) return s;
    double total = 0;
    for (int n = 0; n < N; n++) total += l->sums_host[n];
    *objective = total * scale;
    return EDM2_OK;
}

LOSS_PLUGINS(EDM2_BACKEND_CUDA, " (CUDA)")
