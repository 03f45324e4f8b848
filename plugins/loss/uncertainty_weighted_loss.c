/* uncertainty_weighted_loss.c: the loss plugins (CPU build), docs/formulas.md §4 (paper §2.1):
 *   "edm2": uncertainty-weighted  L = lambda(sigma) / exp(u) * (D - y)^2 + u, u = logvar(sigma)
 *   "edm" : plain EDM weighting    L = lambda(sigma) * (D - y)^2
 * with lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 and sigma = exp(P_mean + P_std n). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "edm2/edm2.h"
#include "loss_math.h"

struct edm2_loss {
    const edm2_host *host;
    const char *id;
    int uncertainty; /* 1 for edm2 */
    loss_params p;
    /* Per-batch buffers, grown as needed. */
    size_t cap_elems, cap_n;
    float *xn, *noise, *D, *dD;    /* [N, C, H, W] */
    float *sigma, *logvar, *dlogvar; /* [N] */
};

static edm2_status create_common(const edm2_host *host, const edm2_config *cfg, const char *id, int uncertainty,
                                 edm2_loss **out) {
    loss_params lp;
    edm2_status s = loss_params_read(host, cfg, id, &lp);
    if (s != EDM2_OK) return s;
    edm2_loss *l = calloc(1, sizeof *l);
    if (!l) return EDM2_ERR_NOMEM;
    l->host = host;
    l->id = id;
    l->uncertainty = uncertainty;
    l->p = lp;
    *out = l;
    return EDM2_OK;
}

static edm2_status edm2_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                               edm2_loss **out) {
    (void)backend;
    return create_common(host, cfg, "edm2", 1, out);
}

static edm2_status edm_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                              edm2_loss **out) {
    (void)backend;
    return create_common(host, cfg, "edm", 0, out);
}

static void free_buffers(edm2_loss *l) {
    free(l->xn), free(l->noise), free(l->D), free(l->dD);
    free(l->sigma), free(l->logvar), free(l->dlogvar);
    l->xn = l->noise = l->D = l->dD = l->sigma = l->logvar = l->dlogvar = NULL;
    l->cap_elems = l->cap_n = 0;
}

static void loss_destroy(edm2_loss *l) {
    if (!l) return;
    free_buffers(l);
    free(l);
}

static int reserve(edm2_loss *l, size_t elems, size_t n) {
    if (elems <= l->cap_elems && n <= l->cap_n) return 0;
    free_buffers(l);
    l->xn = malloc(elems * sizeof(float)), l->noise = malloc(elems * sizeof(float));
    l->D = malloc(elems * sizeof(float)), l->dD = malloc(elems * sizeof(float));
    l->sigma = malloc(n * sizeof(float)), l->logvar = malloc(n * sizeof(float)), l->dlogvar = malloc(n * sizeof(float));
    if (!l->xn || !l->noise || !l->D || !l->dD || !l->sigma || !l->logvar || !l->dlogvar) {
        free_buffers(l);
        return -1;
    }
    l->cap_elems = elems, l->cap_n = n;
    return 0;
}

static edm2_status loss_compute(edm2_loss *l, edm2_network_ref net, const float *params, float *grads,
                                const edm2_loss_batch *b, double *objective) {
    size_t per;
    edm2_status s = loss_check_batch(l->host, l->id, net, b, &per);
    if (s != EDM2_OK) return s;
    const int N = b->N;
    const size_t elems = per * (size_t)N;
    if (reserve(l, elems, (size_t)N))
        return edm2_logf(l->host, EDM2_LOG_ERROR, l->id, EDM2_ERR_NOMEM, "out of memory for a batch of %d", N);
    /* Noise levels and noise, image by image (loss_draw_offset). */
    const float *sigma = b->sigma, *noise = b->noise;
    if (!sigma || !noise) {
#pragma omp parallel for schedule(static) if (elems > 16384)
        for (int n = 0; n < N; n++) {
            const uint64_t at = loss_draw_offset(b->rng, (uint64_t)n, per);
            l->sigma[n] = loss_sigma(edm2_philox_normal(b->rng.seed, b->rng.stream, at), (float)l->p.P_mean, (float)l->p.P_std);
            edm2_philox_normals(b->rng.seed, b->rng.stream, at + 1, per, l->noise + (size_t)n * per);
        }
        sigma = l->sigma, noise = l->noise;
    }
#pragma omp parallel for schedule(static) if (elems > 16384)
    for (int n = 0; n < N; n++)
        for (size_t i = 0; i < per; i++) l->xn[n * per + i] = b->y[n * per + i] + noise[n * per + i] * sigma[n];
    edm2_forward_args fa;
    memset(&fa, 0, sizeof fa);
    fa.struct_size = sizeof fa;
    fa.params = params, fa.x = l->xn, fa.sigma = sigma, fa.labels = b->labels, fa.N = N, fa.training = 1;
    fa.dropout_rng = b->dropout_rng, fa.D = l->D, fa.logvar = l->uncertainty ? l->logvar : NULL;
    if ((s = net.vt->forward(net.net, &fa)) != EDM2_OK) return s;
    /* Loss, objective and gradients. */
    const float sd = (float)l->p.sigma_data;
    const double scale = l->p.loss_scaling / b->batch_total;
    double total = 0;
    /* Per image in parallel; each image's sums run in a fixed order, then the images in order. */
    double *sums = malloc((size_t)N * sizeof(double));
    if (!sums) return edm2_logf(l->host, EDM2_LOG_ERROR, l->id, EDM2_ERR_NOMEM, "out of memory");
#pragma omp parallel for schedule(static) if (elems > 16384)
    for (int n = 0; n < N; n++) {
        float sg = sigma[n];
        float weight = loss_lambda(sg, sd);
        float u = l->uncertainty ? l->logvar[n] : 0.0f;
        float w = l->uncertainty ? weight / expf(u) : weight;
        double sum_n = 0, sum_werr = 0;
        for (size_t i = 0; i < per; i++) {
            size_t k = n * per + i;
            float diff = l->D[k] - b->y[k];
            float werr = w * (diff * diff);
            float loss = werr + u;
            if (b->loss_out) b->loss_out[k] = loss;
            sum_n += loss;
            sum_werr += werr;
            l->dD[k] = (float)(scale * 2.0 * w * diff);
        }
        sums[n] = sum_n;
        l->dlogvar[n] = (float)(scale * ((double)per - sum_werr));
    }
    for (int n = 0; n < N; n++) total += sums[n];
    free(sums);
    *objective = total * scale;
    return net.vt->backward(net.net, params, l->dD, l->uncertainty ? l->dlogvar : NULL, grads);
}

LOSS_PLUGINS(EDM2_BACKEND_CPU, "")
