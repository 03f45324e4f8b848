/* uncertainty_weighted_loss.c: the loss plugins (CPU build), docs/formulas.md §4 (paper §2.1):
 *   "edm2": uncertainty-weighted  L = lambda(sigma) / exp(u) * (D - y)^2 + u, u = logvar(sigma)
 *   "edm" : plain EDM weighting    L = lambda(sigma) * (D - y)^2
 * with lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 and sigma = exp(P_mean + P_std n). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "edm2/edm2.h"

struct edm2_loss {
    const edm2_host *host;
    const char *id;
    int uncertainty; /* 1 for edm2 */
    double P_mean, P_std, sigma_data, loss_scaling;
    /* Per-batch buffers, grown as needed. */
    size_t cap_elems, cap_n;
    float *xn, *noise, *D, *dD;    /* [N, C, H, W] */
    float *sigma, *logvar, *dlogvar; /* [N] */
};

static const edm2_config_key k_keys[] = {
    {"P_mean", EDM2_CFG_FLOAT, "-0.4", "mean of ln(sigma) of the training noise levels"},
    {"P_std", EDM2_CFG_FLOAT, "1.0", "standard deviation of ln(sigma)"},
    {"sigma_data", EDM2_CFG_FLOAT, "0.5", "expected standard deviation of the training data"},
    {"loss_scaling", EDM2_CFG_FLOAT, "1", "multiplier of the objective (and its gradients)"},
};

static edm2_status create_common(const edm2_host *host, const edm2_config *cfg, const char *id, int uncertainty,
                                 edm2_loss **out) {
    edm2_loss *l = calloc(1, sizeof *l);
    if (!l) return EDM2_ERR_NOMEM;
    l->host = host;
    l->id = id;
    l->uncertainty = uncertainty;
    l->P_mean = edm2_cfg_float(cfg, "P_mean", -0.4);
    l->P_std = edm2_cfg_float(cfg, "P_std", 1.0);
    l->sigma_data = edm2_cfg_float(cfg, "sigma_data", 0.5);
    l->loss_scaling = edm2_cfg_float(cfg, "loss_scaling", 1.0);
    if (!(l->P_std >= 0) || !(l->sigma_data > 0)) {
        free(l);
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "P_std must be >= 0 and sigma_data > 0");
    }
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
    edm2_network_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    edm2_status s = net.vt->get_info(net.net, &info);
    if (s != EDM2_OK) return s;
    const int N = b->N;
    const size_t per = (size_t)info.img_channels * info.img_resolution * info.img_resolution, elems = per * (size_t)N;
    if (N < 1 || b->batch_total < N)
        return edm2_logf(l->host, EDM2_LOG_ERROR, l->id, EDM2_ERR_INVALID, "batch N = %d, batch_total = %d", N,
                         b->batch_total);
    if (reserve(l, elems, (size_t)N))
        return edm2_logf(l->host, EDM2_LOG_ERROR, l->id, EDM2_ERR_NOMEM, "out of memory for a batch of %d", N);
    /* Noise levels and noise. */
    const float *sigma = b->sigma, *noise = b->noise;
    if (!sigma || !noise) {
        for (int n = 0; n < N; n++) {
            float rnd = edm2_philox_normal(b->rng.seed, b->rng.stream, b->rng.offset + (uint64_t)n);
            l->sigma[n] = expf(rnd * (float)l->P_std + (float)l->P_mean);
        }
#pragma omp parallel for schedule(static) if (elems > 16384)
        for (size_t i = 0; i < elems; i++) l->noise[i] = edm2_philox_normal(b->rng.seed, b->rng.stream, b->rng.offset + N + i);
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
    const float sd = (float)l->sigma_data;
    const double scale = l->loss_scaling / b->batch_total;
    double total = 0;
    /* Per image in parallel; each image's sums run in a fixed order, then the images in order. */
    double *sums = malloc((size_t)N * sizeof(double));
    if (!sums) return edm2_logf(l->host, EDM2_LOG_ERROR, l->id, EDM2_ERR_NOMEM, "out of memory");
#pragma omp parallel for schedule(static) if (elems > 16384)
    for (int n = 0; n < N; n++) {
        float sg = sigma[n];
        float weight = (sg * sg + sd * sd) / ((sg * sd) * (sg * sd));
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

static const edm2_loss_vtable k_edm2_vt = {sizeof(edm2_loss_vtable), edm2_create, loss_destroy, loss_compute};
static const edm2_loss_vtable k_edm_vt = {sizeof(edm2_loss_vtable), edm_create, loss_destroy, loss_compute};

static const edm2_plugin_desc k_edm2 = {
    sizeof(edm2_plugin_desc), "edm2", EDM2_KIND_LOSS, EDM2_BACKEND_CPU, "1.0.0",
    "EDM2 loss: EDM weighting divided by the learned uncertainty exp(logvar), plus logvar",
    k_keys, sizeof k_keys / sizeof *k_keys, NULL, &k_edm2_vt,
};
static const edm2_plugin_desc k_edm = {
    sizeof(edm2_plugin_desc), "edm", EDM2_KIND_LOSS, EDM2_BACKEND_CPU, "1.0.0",
    "plain EDM loss: lambda(sigma) (D - y)^2, no learned uncertainty",
    k_keys, sizeof k_keys / sizeof *k_keys, NULL, &k_edm_vt,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_edm2, &k_edm};
EDM2_DEFINE_ENTRY(k_plugins)
