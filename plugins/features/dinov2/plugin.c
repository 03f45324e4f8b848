/* plugin.c: the features plugin "dinov2" (CPU build): DINOv2's ViT-L/14 class-token features of the
 * FD_DINOv2 metric (dinov2_vit.h), each image first brought to the network's input as the EDM2 reference's
 * detector does (dinov2_input.h). The host fills the weight arena from the file named by `weights`
 * (scripts/convert_dinov2_weights.py makes it from the released dinov2_vitl14_pretrain.pth). The shape keys
 * default to ViT-L/14 at 224; other values serve smaller networks (the tests' reference). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "dinov2_cpu.h"
#include "dinov2_input.h"
#include "edm2/edm2.h"

#define ID "dinov2"

struct edm2_features {
    const edm2_host *host;
    edm2_backend_ops be;
    dino_vit v;
    float *arena; /* the weights, host memory */
    dino_work work;
    float *input, *scratch;
    size_t scratch_floats;
    int threads, max_batch;
};

static const edm2_config_key k_keys[] = {
    {"weights", EDM2_CFG_STRING, NULL,
     "DINOv2 weights (.safetensors; scripts/convert_dinov2_weights.py converts the released dinov2_vitl14_pretrain.pth)"},
    {"dim", EDM2_CFG_INT, "1024", "token width (ViT-L: 1024)"},
    {"depth", EDM2_CFG_INT, "24", "transformer blocks (ViT-L: 24)"},
    {"heads", EDM2_CFG_INT, "16", "attention heads (ViT-L: 16)"},
    {"patch", EDM2_CFG_INT, "14", "patch size in pixels (/14: 14)"},
    {"resolution", EDM2_CFG_INT, "224", "input size images are resized to (the metric's: 224)"},
    {"max_batch", EDM2_CFG_INT, "8", "images per forward pass (memory: about 12 MB per image for ViT-L/14)"},
};

static edm2_status f_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                            edm2_features **out) {
    edm2_features *f = calloc(1, sizeof *f);
    if (!f) return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory");
    char msg[160];
    if (dino_build_from(&f->v, cfg, &f->max_batch, msg, sizeof msg)) {
        free(f);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "[features] %s", msg);
    }
    f->host = host;
    f->be = *backend;
    f->threads = host && host->threads > 0 ? host->threads : 1;
    *out = f;
    return EDM2_OK;
}

static void f_destroy(edm2_features *f) {
    if (!f) return;
    dino_work_free(&f->work);
    free(f->arena), free(f->input), free(f->scratch);
    free(f);
}

static edm2_status f_get_info(edm2_features *f, edm2_features_info *info) {
    dino_info(&f->v, info);
    return EDM2_OK;
}

static edm2_status f_prepare(edm2_features *f, const float *params) {
    const size_t n = f->v.arena_floats, R = (size_t)f->v.s.res;
    free(f->arena), free(f->input);
    dino_work_free(&f->work);
    f->arena = malloc(n * sizeof(float));
    f->input = malloc(3 * R * R * (size_t)f->max_batch * sizeof(float));
    if (!f->arena || !f->input || dino_work_alloc(&f->work, &f->v, f->max_batch))
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM,
                         "out of memory for the weights (%zu MB) and %d images ([features] max_batch)",
                         n * sizeof(float) >> 20, f->max_batch);
    return f->be.vt->download(f->be.b, f->arena, params, n * sizeof(float));
}

static edm2_status f_extract(edm2_features *f, const float *images, int N, int C, int H, int W, float *out) {
    if (!f->arena) return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "extract called before prepare");
    if (N < 0 || (C != 1 && C != 3) || H < 1 || W < 1 || H > 4096 || W > 4096)
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID,
                         "images [%d, %d, %d, %d]: expected 1 or 3 channels and 1 to 4096 pixels a side", N, C, H, W);
    const size_t need = dino_input_scratch(H, W, f->v.s.res);
    if (need > f->scratch_floats) {
        free(f->scratch);
        if (!(f->scratch = malloc(need * sizeof(float)))) {
            f->scratch_floats = 0;
            return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory for a %dx%d image", H, W);
        }
        f->scratch_floats = need;
    }
    const int t = f->host ? f->host->threads : f->threads;
    omp_set_num_threads(t < 1 ? 1 : t > f->threads ? f->threads : t);
    const size_t in = 3 * (size_t)f->v.s.res * f->v.s.res;
    for (int i = 0; i < N; i += f->max_batch) {
        const int n = N - i < f->max_batch ? N - i : f->max_batch;
        for (int k = 0; k < n; k++)
            dino_input(images + (size_t)(i + k) * C * H * W, C, H, W, f->v.s.res, f->input + in * k, f->scratch);
        dino_forward(&f->v, f->arena, f->input, n, out + (size_t)i * f->v.s.dim, &f->work);
    }
    return EDM2_OK;
}

static const edm2_features_vtable k_vtable = {sizeof(edm2_features_vtable), f_create, f_destroy, f_get_info,
                                              f_prepare, f_extract};

static const edm2_plugin_desc k_desc = {sizeof(edm2_plugin_desc), ID, EDM2_KIND_FEATURES, EDM2_BACKEND_CPU, "1.0.0",
                                        "DINOv2 ViT-L/14 class-token features of FD_DINOv2 (1024-d, the EDM2 "
                                        "reference's detector)",
                                        k_keys, sizeof k_keys / sizeof k_keys[0], NULL, &k_vtable};
static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
