/* plugin.c: the VAE plugin "sd_vae" (CPU build): the Stable Diffusion KL autoencoder (vae_graph.h) over the
 * CPU primitives (vae_cpu.c). Images one at a time, so memory does not grow with the batch. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae_config.h"
#include "vae_cpu.h"

#define ID "sd_vae"

struct edm2_vae {
    const edm2_host *host;
    edm2_backend_ops be;
    vae_graph g;
    float *arena; /* host copy, conv weights prepared */
    vae_cpu cpu;
    int threads;
};

static const edm2_config_key k_keys[] = {VAE_KEYS};

static edm2_status v_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                            edm2_vae **out) {
    vae_hparams hp;
    edm2_status s = vae_parse_hparams(host, cfg, ID, &hp);
    if (s != EDM2_OK) return s;
    edm2_vae *v = calloc(1, sizeof *v);
    if (!v || vae_graph_build(&v->g, &hp)) {
        free(v);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory");
    }
    v->host = host;
    v->be = *backend;
    v->threads = host && host->threads > 0 ? host->threads : 1;
    *out = v;
    return EDM2_OK;
}

static void v_destroy(edm2_vae *v) {
    if (!v) return;
    vae_cpu_free(&v->cpu);
    vae_graph_free(&v->g);
    free(v->arena);
    free(v);
}

static edm2_status v_get_info(edm2_vae *v, edm2_vae_info *info) {
    vae_graph_info(&v->g, info);
    return EDM2_OK;
}

/* Layout 1: the single-file (LDM) checkpoints' names; 2: diffusers' names before 0.14 (attention as
 * query/key/value/proj_attn), which older diffusers-format VAE files still use. */
static int v_alias(edm2_vae *v, int layout, size_t index, char *out, size_t len) {
    if (index >= v->g.nparams) return 0;
    if (layout == 1) {
        vae_ldm_name(&v->g, index, out, len);
        return 1;
    }
    if (layout != 2) return 0;
    vae_old_diffusers_name(&v->g, index, out, len);
    return 1;
}

static edm2_status v_prepare(edm2_vae *v, const float *params) {
    free(v->arena);
    vae_cpu_free(&v->cpu);
    v->arena = malloc(v->g.arena_floats * sizeof(float));
    if (!v->arena) return edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory");
    edm2_status s = v->be.vt->download(v->be.b, v->arena, params, v->g.arena_floats * sizeof(float));
    if (s != EDM2_OK) return s;
    if (vae_prepare(&v->g, v->arena)) return edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory");
    vae_cpu_init(&v->cpu, &v->g, v->arena);
    return EDM2_OK;
}

static edm2_status check(edm2_vae *v, int N, int H, int W, int multiple, const char *what) {
    if (!v->cpu.g) return edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "%s before prepare", what);
    if (N < 0 || H < 1 || W < 1 || H % multiple || W % multiple || H > 16384 || W > 16384)
        return edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID,
                         "%s: %dx%d: expected sizes that are positive multiples of %d", what, H, W, multiple);
    const int t = v->host ? v->host->threads : v->threads;
    omp_set_num_threads(t < 1 ? 1 : t > v->threads ? v->threads : t);
    return EDM2_OK;
}

static edm2_status v_encode(edm2_vae *v, const float *images, int N, int H, int W, float *moments) {
    const int d = 1 << (v->g.hp.levels - 1), L = v->g.hp.latent;
    edm2_status s = check(v, N, H, W, d, "encode");
    for (int i = 0; s == EDM2_OK && i < N; i++)
        if (vae_cpu_encode(&v->cpu, images + (size_t)i * 3 * H * W, H, W, moments + (size_t)i * 2 * L * (H / d) * (W / d)))
            s = edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory encoding a %dx%d image", H, W);
    return s;
}

static edm2_status v_decode(edm2_vae *v, const float *latents, int N, int h, int w, float *images) {
    const int d = 1 << (v->g.hp.levels - 1), L = v->g.hp.latent;
    edm2_status s = check(v, N, h, w, 1, "decode");
    for (int i = 0; s == EDM2_OK && i < N; i++)
        if (vae_cpu_decode(&v->cpu, latents + (size_t)i * L * h * w, h, w, images + (size_t)i * 3 * (h * d) * (w * d)))
            s = edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory decoding %dx%d latents", h, w);
    return s;
}

static const edm2_vae_vtable k_vtable = {sizeof(edm2_vae_vtable), v_create, v_destroy, v_get_info, v_alias,
                                         v_prepare, v_encode, v_decode};

static const edm2_plugin_desc k_desc = {sizeof(edm2_plugin_desc), ID, EDM2_KIND_VAE, EDM2_BACKEND_CPU, "1.0.0",
                                        "the Stable Diffusion VAE (KL autoencoder, 8x, 4 latent channels) of the "
                                        "img512 presets",
                                        k_keys, sizeof k_keys / sizeof k_keys[0], NULL, &k_vtable};
static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
