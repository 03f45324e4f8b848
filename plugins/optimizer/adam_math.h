/* adam_math.h: what the CPU and CUDA builds of the optimizer "adam" share (docs/formulas.md §4): config keys
 * and checks, the EDM2 learning-rate schedule
 *   lr(t) = ref_lr / sqrt(max(t / (ref_batches * batch), 1)) * min(t / (rampup_Mimg * 1e6), 1),
 * the per-step constants (bias corrections), and the update of one element, written once so that the two
 * builds compute bitwise the same parameters (CUDA compiles it with --fmad=false). */
#ifndef EDM2_ADAM_MATH_H
#define EDM2_ADAM_MATH_H

#include <math.h>
#include <stdint.h>

#include "edm2/edm2.h"

#ifdef __CUDACC__
#define ADAM_FN __host__ __device__ static inline
#else
#define ADAM_FN static inline
#endif

typedef struct adam_params {
    double ref_lr, ref_batches, rampup_Mimg, beta1, beta2, eps;
} adam_params;

static const edm2_config_key adam_config_keys[] = {
    {"ref_lr", EDM2_CFG_FLOAT, "0.01", "reference learning rate (alpha_ref)"},
    {"ref_batches", EDM2_CFG_FLOAT, "70000", "batches before the inverse-square-root decay starts (t_ref); 0 = no decay"},
    {"rampup_Mimg", EDM2_CFG_FLOAT, "10", "linear learning-rate ramp-up, in millions of images; 0 = none"},
    {"beta1", EDM2_CFG_FLOAT, "0.9", "first-moment decay"},
    {"beta2", EDM2_CFG_FLOAT, "0.99", "second-moment decay"},
    {"eps", EDM2_CFG_FLOAT, "1e-8", "denominator epsilon"},
};
#define ADAM_CONFIG_KEY_COUNT (sizeof adam_config_keys / sizeof *adam_config_keys)

static inline edm2_status adam_params_read(const edm2_host *host, const edm2_config *cfg, adam_params *a) {
    a->ref_lr = edm2_cfg_float(cfg, "ref_lr", 0.01);
    a->ref_batches = edm2_cfg_float(cfg, "ref_batches", 70000);
    a->rampup_Mimg = edm2_cfg_float(cfg, "rampup_Mimg", 10);
    a->beta1 = edm2_cfg_float(cfg, "beta1", 0.9);
    a->beta2 = edm2_cfg_float(cfg, "beta2", 0.99);
    a->eps = edm2_cfg_float(cfg, "eps", 1e-8);
    if (!(a->ref_lr > 0) || a->ref_batches < 0 || a->rampup_Mimg < 0 || !(a->beta1 >= 0 && a->beta1 < 1) ||
        !(a->beta2 >= 0 && a->beta2 < 1) || !(a->eps > 0))
        return edm2_logf(host, EDM2_LOG_ERROR, "adam", EDM2_ERR_INVALID,
                         "need ref_lr > 0, ref_batches >= 0, rampup_Mimg >= 0, 0 <= beta1, beta2 < 1, eps > 0");
    return EDM2_OK;
}

static inline double adam_schedule(const adam_params *a, int64_t nimg, int64_t batch) {
    double lr = a->ref_lr, t = (double)nimg;
    if (a->ref_batches > 0) lr /= sqrt(fmax(t / (a->ref_batches * (double)batch), 1.0));
    if (a->rampup_Mimg > 0) lr *= fmin(t / (a->rampup_Mimg * 1e6), 1.0);
    return lr;
}

/* The float constants of step number `step` (1-based) at learning rate lr. */
typedef struct adam_step_consts {
    float step_size, bc2_sqrt, b1, b2, nb2, eps;
} adam_step_consts;

static inline adam_step_consts adam_consts(const adam_params *a, double lr, int64_t step) {
    const double bc1 = 1.0 - pow(a->beta1, (double)step), bc2 = 1.0 - pow(a->beta2, (double)step);
    adam_step_consts k;
    k.step_size = (float)(lr / bc1), k.bc2_sqrt = (float)sqrt(bc2);
    k.b1 = (float)(1.0 - a->beta1), k.b2 = (float)a->beta2, k.nb2 = (float)(1.0 - a->beta2), k.eps = (float)a->eps;
    return k;
}

/* One element: moments m, v and parameter p from gradient g. */
ADAM_FN void adam_update1(float *p, float g, float *m, float *v, adam_step_consts k) {
    *m += k.b1 * (g - *m);
    *v = *v * k.b2 + k.nb2 * g * g;
    const float denom = sqrtf(*v) / k.bc2_sqrt + k.eps;
    *p += -k.step_size * (*m / denom);
}

#endif
