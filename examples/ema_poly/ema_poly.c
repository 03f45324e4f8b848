/* ema_poly.c: an example third-party EMA-profile plugin, built against the installed edm2 headers only.
 * "poly" tracks averages whose weight over training time grows like tau^gamma, parameterised directly
 * by the exponent gamma (EDM2's power EMA parameterises the same family by sigma_rel). It offers no
 * closed-form inner product, so post-hoc reconstruction (`edm2host run` with [job] type = phema)
 * integrates its weight function numerically. Backend-agnostic: all arithmetic goes through the host's
 * backend operations, so it runs on the CPU and CUDA backends alike. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <edm2/edm2.h>

#define MAX_AVG 16

struct edm2_ema {
    const edm2_host *host;
    edm2_backend_ops ops;
    double gamma[MAX_AVG];
    char label[MAX_AVG][24];
    size_t count;
};

static const edm2_config_key k_keys[] = {
    {"exponents", EDM2_CFG_FLOAT_LIST, "4,12", "exponents gamma >= 0 of the tracked averages"},
};

static edm2_status poly_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                               edm2_ema **out) {
    edm2_ema *e = calloc(1, sizeof *e);
    if (!e) return EDM2_ERR_NOMEM;
    e->host = host;
    e->ops = *backend;
    int n = edm2_cfg_floats(cfg, "exponents", e->gamma, MAX_AVG);
    if (n < 1 || n > MAX_AVG) {
        free(e);
        return edm2_logf(host, EDM2_LOG_ERROR, "poly", EDM2_ERR_INVALID, "exponents: expected 1 to %d values", MAX_AVG);
    }
    e->count = (size_t)n;
    for (size_t i = 0; i < e->count; i++) {
        if (!(e->gamma[i] >= 0)) {
            edm2_logf(host, EDM2_LOG_ERROR, "poly", EDM2_ERR_INVALID, "exponents: %g must be >= 0", e->gamma[i]);
            free(e);
            return EDM2_ERR_INVALID;
        }
        snprintf(e->label[i], sizeof e->label[i], "g%g", e->gamma[i]);
    }
    *out = e;
    return EDM2_OK;
}

static void poly_destroy(edm2_ema *e) { free(e); }
static size_t poly_count(edm2_ema *e) { return e->count; }
static double poly_param(edm2_ema *e, size_t i) { return e->gamma[i]; }
static const char *poly_label(edm2_ema *e, size_t i) { return e->label[i]; }

/* avg <- avg + (1 - beta) (params - avg), beta = (1 - dt / t)^(gamma + 1). */
static edm2_status poly_update(edm2_ema *e, float *const *avg, const float *params, size_t n, int64_t t, int64_t dt) {
    for (size_t i = 0; i < e->count; i++) {
        double beta = pow(1.0 - (double)dt / (double)t, e->gamma[i] + 1.0);
        edm2_status s = e->ops.vt->lerp(e->ops.b, avg[i], params, (float)(1.0 - beta), n);
        if (s != EDM2_OK) return s;
    }
    return EDM2_OK;
}

/* w(tau) = (gamma + 1) tau^gamma / t^(gamma + 1) on [0, t]. */
static double poly_weight(edm2_ema *e, double gamma, double t, double tau) {
    (void)e;
    if (tau < 0 || tau > t || t <= 0) return 0;
    return (gamma + 1) / t * pow(tau / t, gamma);
}

static void poly_range(edm2_ema *e, double *lo, double *hi) {
    (void)e;
    *lo = -1e-300; /* gamma = 0 (a plain average) is valid */
    *hi = 1e6;
}

static const edm2_ema_vtable k_vt = {sizeof(edm2_ema_vtable), poly_create, poly_destroy, poly_count, poly_param,
                                     poly_label, poly_update, poly_weight, NULL, poly_range};
static const edm2_plugin_desc k_desc = {sizeof(edm2_plugin_desc), "poly", EDM2_KIND_EMA, EDM2_BACKEND_ANY, "0.1.0",
                                        "example: tau^gamma-weighted EMAs by exponent (numerical post-hoc)",
                                        k_keys, 1, NULL, &k_vt};
static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
