/* dpm_solver.c: a third-party sampler plugin, "dpmpp2m": DPM-Solver++(2M) (Lu et al., "DPM-Solver++: Fast
 * Solver for Guided Sampling of Diffusion Probabilistic Models", 2022, Algorithm 2) on the EDM noise schedule
 * (Karras et al. 2022). Written as an outside author would: it includes only the installed edm2 headers and
 * computes through the backend operations the host lends it, so it runs on every backend.
 *
 * With x = y + sigma n (EDM, no scaling) and lambda = -log sigma, each step from sigma_i to sigma_{i+1}
 * (h = log(sigma_i / sigma_{i+1})) is
 *   x <- (sigma_{i+1} / sigma_i) x + (1 - sigma_{i+1} / sigma_i) D',
 * D' = D_i at the first step and at the last (sigma = 0: x = D'), otherwise the second-order multistep
 *   D' = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1},  r = h_{i-1} / h_i.
 * One network evaluation per noise level: num_steps levels (the last one 0 excluded) make num_steps
 * evaluations, so dpmpp2m with 2N - 1 steps costs what Heun with N steps does. */
#include <math.h>
#include <stdlib.h>

#include <edm2/edm2.h>

struct edm2_sampler {
    const edm2_host *host;
    edm2_backend_ops ops;
    int num_steps;
    double sigma_min, sigma_max, rho;
};

static const edm2_config_key k_keys[] = {
    {"num_steps", EDM2_CFG_INT, "32", "noise levels N above 0 (N network evaluations)"},
    {"sigma_min", EDM2_CFG_FLOAT, "0.002", "lowest noise level"},
    {"sigma_max", EDM2_CFG_FLOAT, "80", "highest noise level"},
    {"rho", EDM2_CFG_FLOAT, "7", "time-step exponent of the EDM schedule"},
};

static edm2_status dpm_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                              edm2_sampler **out) {
    long long steps = edm2_cfg_int(cfg, "num_steps", 32);
    double smin = edm2_cfg_float(cfg, "sigma_min", 0.002), smax = edm2_cfg_float(cfg, "sigma_max", 80);
    double rho = edm2_cfg_float(cfg, "rho", 7);
    if (steps < 1 || steps > 100000 || !(smin > 0) || !(smax > smin) || !(rho > 0))
        return edm2_logf(host, EDM2_LOG_ERROR, "dpmpp2m", EDM2_ERR_INVALID,
                         "need 1 <= num_steps <= 100000, 0 < sigma_min < sigma_max, rho > 0 (num_steps = %lld)", steps);
    edm2_sampler *s = calloc(1, sizeof *s);
    if (!s) return EDM2_ERR_NOMEM;
    s->host = host, s->ops = *backend, s->num_steps = (int)steps;
    s->sigma_min = smin, s->sigma_max = smax, s->rho = rho;
    *out = s;
    return EDM2_OK;
}

static void dpm_destroy(edm2_sampler *s) { free(s); }
static int dpm_evals(edm2_sampler *s) { return s->num_steps; }

/* Noise level i of the EDM schedule (i = num_steps: 0). */
static double sigma_at(const edm2_sampler *s, int i) {
    if (i >= s->num_steps) return 0;
    if (s->num_steps == 1) return s->sigma_max;
    double a = pow(s->sigma_max, 1 / s->rho), b = pow(s->sigma_min, 1 / s->rho);
    return pow(a + (double)i / (s->num_steps - 1) * (b - a), s->rho);
}

static edm2_status dpm_sample(edm2_sampler *s, const edm2_denoiser *den, float *x) {
    const edm2_backend_vtable *vt = s->ops.vt;
    edm2_backend *b = s->ops.b;
    const size_t n = den->n;
    void *buf = NULL;
    edm2_status st = vt->alloc(b, 3 * n * sizeof(float), &buf);
    if (st != EDM2_OK) return st;
    float *d = buf, *d_old = d + n, *dd = d_old + n;
    double h_last = 0;
    st = vt->scale(b, x, (float)sigma_at(s, 0), n); /* x = noise * sigma_0 */
    for (int i = 0; st == EDM2_OK && i < s->num_steps; i++) {
        const double sig = sigma_at(s, i), next = sigma_at(s, i + 1);
        if ((st = den->denoise(den->ctx, x, sig, d)) != EDM2_OK) break;
        const float *use = d;
        if (i > 0 && next > 0) { /* second order: D' = (1 + 1/(2r)) D - 1/(2r) D_old */
            const double h = log(sig / next), r = h_last / h;
            if ((st = vt->copy(b, dd, d, n * sizeof(float))) != EDM2_OK) break;
            if ((st = vt->axpby(b, dd, (float)(-1 / (2 * r)), d_old, (float)(1 + 1 / (2 * r)), n)) != EDM2_OK) break;
            use = dd;
        }
        const double ratio = next / sig; /* sigma_{i+1} / sigma_i = exp(-h); 0 at the last step */
        if ((st = vt->axpby(b, x, (float)(1 - ratio), use, (float)ratio, n)) != EDM2_OK) break;
        if (next > 0) h_last = log(sig / next);
        if ((st = vt->copy(b, d_old, d, n * sizeof(float))) != EDM2_OK) break;
    }
    vt->free(b, buf);
    return st;
}

static const edm2_sampler_vtable k_vtable = {sizeof(edm2_sampler_vtable), dpm_create, dpm_destroy, dpm_evals, dpm_sample};

static const edm2_plugin_desc k_desc = {
    sizeof(edm2_plugin_desc), "dpmpp2m", EDM2_KIND_SAMPLER, EDM2_BACKEND_ANY, "1.0.0",
    "DPM-Solver++(2M) on the EDM schedule (third-party example; one evaluation per step)",
    k_keys, sizeof k_keys / sizeof *k_keys, NULL, &k_vtable,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
