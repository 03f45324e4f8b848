/* heun_sampler.c: the EDM samplers (backend-agnostic; docs/formulas.md §6), arithmetic through the backend's ops:
 *   "heun"  deterministic 2nd-order Heun (2N - 1 denoiser calls), optional stochastic churn
 *   "euler" 1st-order Euler (N calls), same noise schedule and churn.
 * t_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, t_N = 0, in float32 as
 * the reference computes them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2.h"

struct edm2_sampler {
    const edm2_host *host;
    edm2_backend_ops ops;
    const char *id;
    int heun;
    int num_steps;
    double sigma_min, sigma_max, rho, S_churn, S_min, S_max, S_noise;
};

static const edm2_config_key k_keys[] = {
    {"num_steps", EDM2_CFG_INT, "32", "noise levels N (Heun makes 2N - 1 network evaluations)"},
    {"sigma_min", EDM2_CFG_FLOAT, "0.002", "lowest noise level"},
    {"sigma_max", EDM2_CFG_FLOAT, "80", "highest noise level"},
    {"rho", EDM2_CFG_FLOAT, "7", "time-step exponent"},
    {"S_churn", EDM2_CFG_FLOAT, "0", "stochasticity strength (0 = deterministic)"},
    {"S_min", EDM2_CFG_FLOAT, "0", "churn only for sigma >= S_min"},
    {"S_max", EDM2_CFG_FLOAT, "1e30", "churn only for sigma <= S_max"},
    {"S_noise", EDM2_CFG_FLOAT, "1", "noise inflation of the churn"},
};

static edm2_status create_common(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                                 int heun, edm2_sampler **out) {
    edm2_sampler *s = calloc(1, sizeof *s);
    if (!s) return EDM2_ERR_NOMEM;
    s->host = host;
    s->ops = *backend;
    s->heun = heun;
    s->id = heun ? "heun" : "euler";
    long long steps = edm2_cfg_int(cfg, "num_steps", 32);
    s->num_steps = steps < 2 || steps > 100000 ? 0 : (int)steps;
    s->sigma_min = edm2_cfg_float(cfg, "sigma_min", 0.002);
    s->sigma_max = edm2_cfg_float(cfg, "sigma_max", 80);
    s->rho = edm2_cfg_float(cfg, "rho", 7);
    s->S_churn = edm2_cfg_float(cfg, "S_churn", 0);
    s->S_min = edm2_cfg_float(cfg, "S_min", 0);
    s->S_max = edm2_cfg_float(cfg, "S_max", 1e30);
    s->S_noise = edm2_cfg_float(cfg, "S_noise", 1);
    if (!s->num_steps || !(s->sigma_min > 0) || !(s->sigma_max > s->sigma_min) || !(s->rho > 0) || !(s->S_churn >= 0) ||
        !(s->S_noise >= 0) || !(s->S_min <= s->S_max)) {
        free(s);
        return edm2_logf(host, EDM2_LOG_ERROR, heun ? "heun" : "euler", EDM2_ERR_INVALID,
                         "need 2 <= num_steps <= 100000, 0 < sigma_min < sigma_max, rho > 0, S_churn >= 0, "
                         "S_noise >= 0, S_min <= S_max (num_steps = %lld)", steps);
    }
    *out = s;
    return EDM2_OK;
}

static edm2_status heun_create(const edm2_host *h, const edm2_config *c, const edm2_backend_ops *b, edm2_sampler **o) {
    return create_common(h, c, b, 1, o);
}
static edm2_status euler_create(const edm2_host *h, const edm2_config *c, const edm2_backend_ops *b, edm2_sampler **o) {
    return create_common(h, c, b, 0, o);
}
static void sampler_destroy(edm2_sampler *s) { free(s); }
static int sampler_evals(edm2_sampler *s) { return s->heun ? 2 * s->num_steps - 1 : s->num_steps; }

/* Noise level i of the schedule, in float32 like the reference. */
static float t_step(const edm2_sampler *s, int i) {
    if (i >= s->num_steps) return 0.0f;
    float a = (float)pow(s->sigma_max, 1 / s->rho), b = (float)(pow(s->sigma_min, 1 / s->rho) - pow(s->sigma_max, 1 / s->rho));
    float frac = (float)i / (float)(s->num_steps - 1);
    return powf(a + frac * b, (float)s->rho);
}

#define CK(call)                             \
    do {                                     \
        edm2_status st_ = (call);            \
        if (st_ != EDM2_OK) goto done;       \
    } while (0)

/* d = (x - D(x; t)) / t, with D written into d first. */
static edm2_status slope(edm2_sampler *s, const edm2_denoiser *den, const float *x, float t, float *d) {
    edm2_status st = den->denoise(den->ctx, x, t, d);
    if (st != EDM2_OK) return st;
    return s->ops.vt->axpby(s->ops.b, d, 1.0f / t, x, -1.0f / t, den->n);
}

static edm2_status sampler_sample(edm2_sampler *s, const edm2_denoiser *den, float *x) {
    const edm2_backend_vtable *vt = s->ops.vt;
    edm2_backend *b = s->ops.b;
    const size_t n = den->n;
    void *buf = NULL;
    edm2_status st = vt->alloc(b, 3 * n * sizeof(float), &buf);
    if (st != EDM2_OK) return st;
    float *x_hat = buf, *d = x_hat + n, *d2 = d + n;
    uint64_t draw = 0;
    st = vt->scale(b, x, t_step(s, 0), n); /* x = noise * t_0 */
    for (int i = 0; st == EDM2_OK && i < s->num_steps; i++) {
        float t_cur = t_step(s, i), t_next = t_step(s, i + 1), t_hat = t_cur;
        CK(st = vt->copy(b, x_hat, x, n * sizeof(float)));
        if (s->S_churn > 0 && t_cur >= s->S_min && t_cur <= s->S_max) {
            float gamma = (float)fmin(s->S_churn / s->num_steps, sqrt(2.0) - 1);
            t_hat = t_cur + gamma * t_cur;
            if (!den->randn) {
                st = edm2_logf(s->host, EDM2_LOG_ERROR, s->id, EDM2_ERR_UNSUPPORTED, "churn needs the host's randn");
                goto done;
            }
            CK(st = den->randn(den->ctx, d, draw++));
            CK(st = vt->axpby(b, x_hat, sqrtf(t_hat * t_hat - t_cur * t_cur) * (float)s->S_noise, d, 1.0f, n));
        }
        CK(st = slope(s, den, x_hat, t_hat, d));
        CK(st = vt->copy(b, x, x_hat, n * sizeof(float)));
        CK(st = vt->axpby(b, x, t_next - t_hat, d, 1.0f, n));
        if (s->heun && i < s->num_steps - 1) {
            CK(st = slope(s, den, x, t_next, d2));
            CK(st = vt->axpby(b, d, 0.5f, d2, 0.5f, n)); /* d = (d + d') / 2 */
            CK(st = vt->copy(b, x, x_hat, n * sizeof(float)));
            CK(st = vt->axpby(b, x, t_next - t_hat, d, 1.0f, n));
        }
    }
done:
    vt->free(b, buf);
    return st;
}

static const edm2_sampler_vtable k_heun_vt = {sizeof(edm2_sampler_vtable), heun_create, sampler_destroy, sampler_evals,
                                              sampler_sample};
static const edm2_sampler_vtable k_euler_vt = {sizeof(edm2_sampler_vtable), euler_create, sampler_destroy,
                                               sampler_evals, sampler_sample};

static const edm2_plugin_desc k_heun = {
    sizeof(edm2_plugin_desc), "heun", EDM2_KIND_SAMPLER, EDM2_BACKEND_ANY, "1.0.0",
    "EDM 2nd-order Heun sampler (deterministic unless S_churn > 0)", k_keys, sizeof k_keys / sizeof *k_keys, NULL,
    &k_heun_vt,
};
static const edm2_plugin_desc k_euler = {
    sizeof(edm2_plugin_desc), "euler", EDM2_KIND_SAMPLER, EDM2_BACKEND_ANY, "1.0.0",
    "EDM 1st-order Euler sampler on the same schedule", k_keys, sizeof k_keys / sizeof *k_keys, NULL, &k_euler_vt,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_heun, &k_euler};
EDM2_DEFINE_ENTRY(k_plugins)
