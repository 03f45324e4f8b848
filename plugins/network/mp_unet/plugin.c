/* plugin.c: the network plugin "mp_unet" (CPU build): config schema, hyperparameter checks, and the
 * edm2_network_vtable over unet.c (config keys and checks: unet_config.c). */
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2.h"
#include "forced_weight_norm.h"
#include "unet.h"
#include "unet_config.h"

#define ID "mp_unet"

struct edm2_network {
    const edm2_host *host;
    unet u;
    int threads;
};

static edm2_status net_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                              edm2_network **out) {
    (void)backend;
    edm2_network *net = calloc(1, sizeof *net);
    if (!net) return EDM2_ERR_NOMEM;
    net->host = host;
    net->threads = host && host->threads > 0 ? host->threads : 1;
    unet_hparams hp;
    edm2_status s = unet_parse_hparams(host, cfg, &hp);
    if (s != EDM2_OK) {
        free(net);
        return s;
    }
    if (hp.precision != UNET_FP32) /* e.g. a snapshot trained on a GPU in bf16, sampled here */
        edm2_logf(host, EDM2_LOG_INFO, ID, EDM2_OK, "precision = %s: the CPU build computes in fp32",
                  hp.precision == UNET_BF16 ? "bf16" : "fp16");
    char err[256];
    if (unet_build(&net->u, &hp, err, sizeof err)) {
        free(net);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "%s", err);
    }
    *out = net;
    return EDM2_OK;
}

static void net_destroy(edm2_network *net) {
    if (!net) return;
    unet_free(&net->u);
    free(net);
}

static edm2_status net_get_info(edm2_network *net, edm2_network_info *info) {
    unet_graph_info(&net->u.g, info);
    return EDM2_OK;
}

/* Threads are set per call (OpenMP keeps them process-wide); OpenMP is the plugin's only thread pool. The
 * host may lower its count between calls while other work competes for the cores; results do not depend
 * on it. */
static void use_threads(edm2_network *net) {
    int t = net->host ? net->host->threads : net->threads;
    omp_set_num_threads(t < 1 ? 1 : t > net->threads ? net->threads : t);
}

static edm2_status net_init_params(edm2_network *net, float *params, uint64_t seed) {
    unet_init_params(&net->u.g, params, seed);
    return EDM2_OK;
}

static edm2_status net_normalize_weights(edm2_network *net, float *params) {
    use_threads(net);
    unet_normalize_weights(&net->u.g, params);
    return EDM2_OK;
}

static edm2_status net_forward(edm2_network *net, const edm2_forward_args *a) {
    if (a->N < 1) return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "forward: batch N = %d", a->N);
    for (int n = 0; n < a->N; n++)
        if (!(a->sigma[n] > 0))
            return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "forward: sigma[%d] = %g must be > 0", n,
                             a->sigma[n]);
    use_threads(net);
    if (unet_forward(&net->u, a))
        return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "forward: out of memory (batch %d)", a->N);
    return EDM2_OK;
}

static edm2_status net_backward(edm2_network *net, const float *params, const float *dD, const float *dlogvar,
                                float *grads) {
    if (!net->u.have_saved)
        return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "backward without a training forward");
    use_threads(net);
    if (unet_backward(&net->u, params, dD, dlogvar, grads))
        return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "backward: out of memory");
    return EDM2_OK;
}

static const edm2_network_vtable k_vtable = {
    sizeof(edm2_network_vtable), net_create,  net_destroy,  net_get_info, net_init_params, net_normalize_weights,
    net_forward,                 net_backward,
};

static const edm2_plugin_desc k_desc = {
    sizeof(edm2_plugin_desc), ID, EDM2_KIND_NETWORK, EDM2_BACKEND_CPU, "1.0.0",
    "EDM2 magnitude-preserving U-Net with preconditioning and uncertainty head",
    unet_config_keys, UNET_CONFIG_KEY_COUNT, NULL, &k_vtable,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
