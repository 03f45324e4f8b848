/* ema_power.c: the EMA-profile plugins (backend-agnostic; all arithmetic through the backend's lerp):
 *   "power"       power-function EMA, one average per sigma_rel (docs/formulas.md §5)
 *   "traditional" exponential EMA with half-life in Mimg and ramp-up ratio (the paper's baseline). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2.h"
#include "power_math.h"

#define MAX_PROFILES 64
#define LN2 0.69314718055994530942

struct edm2_ema {
    const edm2_host *host;
    edm2_backend_ops ops;
    int traditional;
    double param[MAX_PROFILES];
    double gamma[MAX_PROFILES]; /* power */
    double rampup_ratio;        /* traditional */
    char label[MAX_PROFILES][32];
    size_t count;
};

static const edm2_config_key k_power_keys[] = {
    {"stds", EDM2_CFG_FLOAT_LIST, "0.050,0.100", "relative standard deviations (sigma_rel) of the tracked averages"},
};
static const edm2_config_key k_trad_keys[] = {
    {"halflife_Mimg", EDM2_CFG_FLOAT_LIST, "0.5", "half-lives of the tracked averages, in millions of images"},
    {"rampup_ratio", EDM2_CFG_FLOAT, "0.09", "half-life capped at rampup_ratio x training images so far; 0 = no cap"},
};

static edm2_status create_common(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                                 int traditional, edm2_ema **out) {
    const char *id = traditional ? "traditional" : "power";
    edm2_ema *e = calloc(1, sizeof *e);
    if (!e) return EDM2_ERR_NOMEM;
    e->host = host;
    e->ops = *backend;
    e->traditional = traditional;
    int n = edm2_cfg_floats(cfg, traditional ? "halflife_Mimg" : "stds", e->param, MAX_PROFILES);
    if (n < 1 || n > MAX_PROFILES) {
        free(e);
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "%s: expected 1 to %d values",
                         traditional ? "halflife_Mimg" : "stds", MAX_PROFILES);
    }
    e->count = (size_t)n;
    e->rampup_ratio = edm2_cfg_float(cfg, "rampup_ratio", 0.09);
    for (size_t i = 0; i < e->count; i++) {
        double p = e->param[i];
        if (!traditional && !(p > 0 && p < power_exp_to_std(0))) {
            free(e);
            return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "stds: %g is outside (0, %.4f)", p,
                             power_exp_to_std(0));
        }
        if (traditional && !(p > 0)) {
            free(e);
            return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "halflife_Mimg: %g must be > 0", p);
        }
        e->gamma[i] = traditional ? 0 : power_std_to_exp(p);
        /* Power EMAs are named like the reference's snapshots (0.050); half-lives by value (0.0005). */
        snprintf(e->label[i], sizeof e->label[i], traditional ? "%g" : "%.3f", p);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(e->label[i], e->label[j])) {
                edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "value %s listed twice", e->label[i]);
                free(e);
                return EDM2_ERR_INVALID;
            }
    }
    *out = e;
    return EDM2_OK;
}

static edm2_status power_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                                edm2_ema **out) {
    return create_common(host, cfg, backend, 0, out);
}
static edm2_status trad_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                               edm2_ema **out) {
    return create_common(host, cfg, backend, 1, out);
}
static void ema_destroy(edm2_ema *e) { free(e); }
static size_t ema_count(edm2_ema *e) { return e->count; }
static double ema_param(edm2_ema *e, size_t i) { return i < e->count ? e->param[i] : 0; }
static const char *ema_label(edm2_ema *e, size_t i) { return i < e->count ? e->label[i] : ""; }

/* Half-life (images) of the traditional EMA at time t. */
static double trad_halflife(const edm2_ema *e, double hl_Mimg, double t) {
    double h = hl_Mimg * 1e6;
    if (e->rampup_ratio > 0) h = fmin(h, t * e->rampup_ratio);
    return fmax(h, 1e-8);
}

static edm2_status ema_update(edm2_ema *e, float *const *avg, const float *params, size_t n, int64_t t, int64_t dt) {
    if (t <= 0 || dt <= 0 || dt > t)
        return edm2_logf(e->host, EDM2_LOG_ERROR, e->traditional ? "traditional" : "power", EDM2_ERR_INVALID,
                         "update: bad times t = %lld, dt = %lld", (long long)t, (long long)dt);
    for (size_t i = 0; i < e->count; i++) {
        double beta = e->traditional ? pow(0.5, (double)dt / trad_halflife(e, e->param[i], (double)t))
                                     : pow(1.0 - (double)dt / (double)t, e->gamma[i] + 1.0);
        edm2_status s = e->ops.vt->lerp(e->ops.b, avg[i], params, (float)(1.0 - beta), n);
        if (s != EDM2_OK) return s;
    }
    return EDM2_OK;
}

static double power_weight_fn(edm2_ema *e, double p, double t, double tau) {
    (void)e;
    return power_weight(p, t, tau);
}
static double power_inner_fn(edm2_ema *e, double pa, double ta, double pb, double tb) {
    (void)e;
    return power_inner(pa, ta, pb, tb);
}
static void power_range(edm2_ema *e, double *lo, double *hi) {
    (void)e;
    *lo = 0;
    *hi = power_exp_to_std(0);
}

/* Continuous-time traditional EMA: rate lambda(s) = ln 2 / h(s) with h(s) = min(H, r s);
 * w(tau) = lambda(tau) exp(-integral_tau^t lambda(s) ds). */
static double trad_weight(edm2_ema *e, double hl_Mimg, double t, double tau) {
    if (tau <= 0 || tau > t) return 0;
    double H = hl_Mimg * 1e6, r = e->rampup_ratio;
    double knee = r > 0 ? H / r : 0; /* below it the half-life grows with time */
    double lam = LN2 / (r > 0 && tau < knee ? r * tau : H);
    double integral;
    if (r <= 0 || tau >= knee) integral = LN2 / H * (t - tau);
    else if (t <= knee) integral = LN2 / r * log(t / tau);
    else integral = LN2 / r * log(knee / tau) + LN2 / H * (t - knee);
    return lam * exp(-integral);
}
static void trad_range(edm2_ema *e, double *lo, double *hi) {
    (void)e;
    *lo = 0;
    *hi = INFINITY;
}

static const edm2_ema_vtable k_power_vt = {sizeof(edm2_ema_vtable), power_create, ema_destroy, ema_count, ema_param,
                                           ema_label, ema_update, power_weight_fn, power_inner_fn, power_range};
static const edm2_ema_vtable k_trad_vt = {sizeof(edm2_ema_vtable), trad_create, ema_destroy, ema_count, ema_param,
                                          ema_label, ema_update, trad_weight, NULL, trad_range};

static const edm2_plugin_desc k_power = {
    sizeof(edm2_plugin_desc), "power", EDM2_KIND_EMA, EDM2_BACKEND_ANY, "1.0.0",
    "power-function EMA (EDM2), one average per sigma_rel; closed-form post-hoc inner products",
    k_power_keys, 1, NULL, &k_power_vt,
};
static const edm2_plugin_desc k_trad = {
    sizeof(edm2_plugin_desc), "traditional", EDM2_KIND_EMA, EDM2_BACKEND_ANY, "1.0.0",
    "exponential EMA with half-life in Mimg and ramp-up ratio (post-hoc by numerical integration)",
    k_trad_keys, 2, NULL, &k_trad_vt,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_power, &k_trad};
EDM2_DEFINE_ENTRY(k_plugins)
