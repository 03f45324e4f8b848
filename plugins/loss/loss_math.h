/* loss_math.h: what the CPU and CUDA builds of the loss plugins "edm2" and "edm" share (docs/formulas.md §4,
 * paper §2.1): their config keys and checks, the training noise levels sigma = exp(P_mean + P_std n), and
 * the EDM weighting lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2, written once so the two
 * builds compute the same float values. */
#ifndef EDM2_LOSS_MATH_H
#define EDM2_LOSS_MATH_H

#include <math.h>
#include <string.h>

#include "edm2/edm2.h"

#ifdef __CUDACC__
#define LOSS_FN __host__ __device__ static inline
#else
#define LOSS_FN static inline
#endif

typedef struct loss_params {
    double P_mean, P_std, sigma_data, loss_scaling;
} loss_params;

static const edm2_config_key loss_config_keys[] = {
    {"P_mean", EDM2_CFG_FLOAT, "-0.4", "mean of ln(sigma) of the training noise levels"},
    {"P_std", EDM2_CFG_FLOAT, "1.0", "standard deviation of ln(sigma)"},
    {"sigma_data", EDM2_CFG_FLOAT, "0.5", "expected standard deviation of the training data"},
    {"loss_scaling", EDM2_CFG_FLOAT, "1", "multiplier of the objective (and its gradients)"},
};
#define LOSS_CONFIG_KEY_COUNT (sizeof loss_config_keys / sizeof *loss_config_keys)

static inline edm2_status loss_params_read(const edm2_host *host, const edm2_config *cfg, const char *id,
                                           loss_params *p) {
    p->P_mean = edm2_cfg_float(cfg, "P_mean", -0.4);
    p->P_std = edm2_cfg_float(cfg, "P_std", 1.0);
    p->sigma_data = edm2_cfg_float(cfg, "sigma_data", 0.5);
    p->loss_scaling = edm2_cfg_float(cfg, "loss_scaling", 1.0);
    if (!(p->P_std >= 0) || !(p->sigma_data > 0))
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "P_std must be >= 0 and sigma_data > 0");
    return EDM2_OK;
}

/* The batch's values per image (C*H*W of the network), after checking N and batch_total. */
static inline edm2_status loss_check_batch(const edm2_host *host, const char *id, edm2_network_ref net,
                                           const edm2_loss_batch *b, size_t *per) {
    edm2_network_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    edm2_status s = net.vt->get_info(net.net, &info);
    if (s != EDM2_OK) return s;
    if (b->N < 1 || b->batch_total < b->N)
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "batch N = %d, batch_total = %d", b->N,
                         b->batch_total);
    *per = (size_t)info.img_channels * info.img_resolution * info.img_resolution;
    return EDM2_OK;
}

/* sigma of a standard normal draw n. */
LOSS_FN float loss_sigma(float n, float P_mean, float P_std) { return expf(n * P_std + P_mean); }

/* Where image n's random numbers come from when the host gives none (edm2_loss.h): the normal at this offset
 * of the pass's rng for its noise level, the per = C H W after it for its noise. The host gives a pass the
 * offset (images seen + its first image's index in the batch) (per + 1), so each image's draws depend only on
 * its place in the batch: passes of any size draw the same. */
LOSS_FN uint64_t loss_draw_offset(edm2_rng rng, uint64_t n, uint64_t per) { return rng.offset + n * (per + 1); }

/* lambda(sigma). */
LOSS_FN float loss_lambda(float sg, float sd) { return (sg * sg + sd * sd) / ((sg * sd) * (sg * sd)); }

/* The two plugins of a build (its tables and descriptors, and the entry symbol), from the functions
 * edm2_create, edm_create, loss_destroy and loss_compute the build defines; `note` ends the descriptions. */
#define LOSS_PLUGINS(backend, note)                                                                       \
    static const edm2_loss_vtable k_edm2_vt = {sizeof(edm2_loss_vtable), edm2_create, loss_destroy, loss_compute}; \
    static const edm2_loss_vtable k_edm_vt = {sizeof(edm2_loss_vtable), edm_create, loss_destroy, loss_compute};   \
    static const edm2_plugin_desc k_edm2 = {                                                              \
        sizeof(edm2_plugin_desc), "edm2", EDM2_KIND_LOSS, backend, "1.0.0",                               \
        "EDM2 loss: EDM weighting divided by the learned uncertainty exp(logvar), plus logvar" note,      \
        loss_config_keys, LOSS_CONFIG_KEY_COUNT, NULL, &k_edm2_vt,                                        \
    };                                                                                                    \
    static const edm2_plugin_desc k_edm = {                                                               \
        sizeof(edm2_plugin_desc), "edm", EDM2_KIND_LOSS, backend, "1.0.0",                                \
        "plain EDM loss: lambda(sigma) (D - y)^2, no learned uncertainty" note,                           \
        loss_config_keys, LOSS_CONFIG_KEY_COUNT, NULL, &k_edm_vt,                                         \
    };                                                                                                    \
    static const edm2_plugin_desc *const k_plugins[] = {&k_edm2, &k_edm};                                 \
    EDM2_DEFINE_ENTRY(k_plugins)

#endif
