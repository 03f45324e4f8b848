/* plugin.c: the features plugin "inception_v3" (CPU build): FID's Inception-v3 pool features
 * (inception_graph.h) over the CPU primitives (inception_cpu.c). The host fills the weight arena from the
 * file named by `weights` (scripts/convert_fid_weights.py makes it from pytorch-fid's weights file). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2.h"
#include "inception_cpu.h"

#define ID "inception_v3"

struct edm2_features {
    const edm2_host *host;
    edm2_backend_ops be;
    incep_graph *g;
    float *w, *ab; /* prepared weights and per-channel (alpha, beta), host memory */
    incep_cpu cpu;
    int max_batch, threads;
};

static const edm2_config_key k_keys[] = {
    {"weights", EDM2_CFG_STRING, NULL,
     "FID Inception weights (.safetensors; scripts/convert_fid_weights.py converts pytorch-fid's "
     "pt_inception-2015-12-05-6726825d.pth)"},
    {"max_batch", EDM2_CFG_INT, "8", "images per forward pass (memory: about 13 MB per image on the CPU)"},
};

static edm2_status f_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                            edm2_features **out) {
    const long long mb = edm2_cfg_int(cfg, "max_batch", 8);
    if (mb < 1 || mb > 4096)
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "[features] max_batch = %lld: expected 1..4096", mb);
    edm2_features *f = calloc(1, sizeof *f);
    if (!f || !(f->g = malloc(sizeof *f->g))) {
        free(f);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory");
    }
    f->host = host;
    f->be = *backend;
    f->max_batch = (int)mb;
    f->threads = host && host->threads > 0 ? host->threads : 1;
    incep_graph_build(f->g);
    *out = f;
    return EDM2_OK;
}

static void f_destroy(edm2_features *f) {
    if (!f) return;
    incep_cpu_free(&f->cpu);
    free(f->w), free(f->ab), free(f->g);
    free(f);
}

static edm2_status f_get_info(edm2_features *f, edm2_features_info *info) {
    incep_graph_info(f->g, info);
    return EDM2_OK;
}

static edm2_status f_prepare(edm2_features *f, const float *params) {
    const incep_graph *g = f->g;
    float *arena = malloc(g->arena_floats * sizeof(float));
    free(f->w), free(f->ab);
    incep_cpu_free(&f->cpu);
    f->w = malloc(g->prep_w_floats * sizeof(float));
    f->ab = malloc(g->prep_c_floats * sizeof(float));
    if (!arena || !f->w || !f->ab) {
        free(arena);
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory for the prepared weights");
    }
    edm2_status s = f->be.vt->download(f->be.b, arena, params, g->arena_floats * sizeof(float));
    if (s == EDM2_OK) incep_prepare(g, arena, f->w, f->ab);
    free(arena);
    if (s == EDM2_OK && incep_cpu_init(&f->cpu, g, f->w, f->ab, f->max_batch))
        s = edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM,
                      "out of memory for activations of %d images ([features] max_batch)", f->max_batch);
    return s;
}

static edm2_status f_extract(edm2_features *f, const float *images, int N, int C, int H, int W, float *out) {
    if (!f->cpu.slot[0])
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "extract called before prepare");
    if (N < 0 || (C != 1 && C != 3) || H < 1 || W < 1 || H > 65536 || W > 65536)
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID,
                         "images [%d, %d, %d, %d]: expected 1 or 3 channels and a positive size", N, C, H, W);
    const int t = f->host ? f->host->threads : f->threads;
    omp_set_num_threads(t < 1 ? 1 : t > f->threads ? f->threads : t);
    for (int i = 0; i < N; i += f->max_batch) {
        const int n = N - i < f->max_batch ? N - i : f->max_batch;
        if (incep_cpu_forward(&f->cpu, images + (size_t)i * C * H * W, n, C, H, W, out + (size_t)i * INCEPTION_DIM))
            return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INTERNAL, "the forward pass failed");
    }
    return EDM2_OK;
}

static const edm2_features_vtable k_vtable = {sizeof(edm2_features_vtable), f_create, f_destroy, f_get_info,
                                              f_prepare, f_extract};

static const edm2_plugin_desc k_desc = {sizeof(edm2_plugin_desc), ID, EDM2_KIND_FEATURES, EDM2_BACKEND_CPU, "1.0.0",
                                        "Inception-v3 pool features of the Frechet Inception Distance (pytorch-fid's "
                                        "network, 2048-d)",
                                        k_keys, sizeof k_keys / sizeof k_keys[0], NULL, &k_vtable};
static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
