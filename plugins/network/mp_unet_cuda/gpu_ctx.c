/* gpu_ctx.c: the CUDA network's handles, taken from the backend, and its one-line failures. */
#include "gpu_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_cuda.h"
#include "conv_fused.h"
#include "plan_file.h"

int gpu_plans_fail(gpu_ctx *g, const char *why) {
    if (!g->err[0]) snprintf(g->err, sizeof g->err, "EDM2_CUDNN_PLANS: %.300s", why);
    return -1;
}

int gpu_fail(gpu_ctx *g, const char *what, const char *why) {
    if (!g->err[0]) snprintf(g->err, sizeof g->err, "%.160s: %.150s", what, why);
    return -1;
}

int gpu_oom(gpu_ctx *g, const char *what) {
    if (!g->err[0]) g->oom = 1;
    return gpu_fail(g, what, "out of device memory");
}

void gpu_clear(gpu_ctx *g) {
    g->err[0] = 0;
    g->oom = 0;
}

int gpu_ctx_init(gpu_ctx *g, const edm2_backend_ops *backend, int act) {
    memset(g, 0, sizeof *g);
    if (!backend || backend->vt->struct_size < offsetof(edm2_backend_vtable, native) + sizeof backend->vt->native ||
        !backend->vt->native)
        return gpu_fail(g, "backend", "it hands out no native handles (needs the cuda backend of ABI 1.1)");
    edm2_backend_native n;
    memset(&n, 0, sizeof n);
    n.struct_size = sizeof n;
    if (backend->vt->native(backend->b, &n) != EDM2_OK || n.device < 0 || !n.stream || !n.cublas)
        return gpu_fail(g, "backend", "not a CUDA backend");
    if (!n.cudnn) return gpu_fail(g, "backend", "built without cuDNN, which the CUDA mp_unet needs for its convolutions");
    g->device = n.device;
    g->stream = (cudaStream_t)n.stream;
    g->blas = (cublasHandle_t)n.cublas;
    g->dnn = (cudnnHandle_t)n.cudnn;
    g->scratch = n.workspace;
    g->scratch_bytes = n.workspace_bytes;
    g->ops = *backend;
    g->act = act;
    const char *algo = getenv("EDM2_CUDNN_ALGO");
    g->time_algos = act != ACT_F32 && !(algo && !strcmp(algo, "heuristic"));
    const char *wgrad = getenv("EDM2_CUDNN_WGRAD");
    if (wgrad && *wgrad && strcmp(wgrad, "gemm") && strcmp(wgrad, "cudnn"))
        return gpu_fail(g, "EDM2_CUDNN_WGRAD", "expected gemm or cudnn (or unset: the faster per shape)");
    const char *det = getenv("EDM2_CUDNN_DETERMINISTIC");
    if (det && *det && strcmp(det, "0") && strcmp(det, "1"))
        return gpu_fail(g, "EDM2_CUDNN_DETERMINISTIC", "expected 1 (deterministic algorithms only, the default) or 0");
    g->deterministic = act == ACT_F32 || !det || strcmp(det, "0");
    const char *api = getenv("EDM2_CUDNN_API");
    if (api && *api && strcmp(api, "legacy") && strcmp(api, "graph") && strcmp(api, "any"))
        return gpu_fail(g, "EDM2_CUDNN_API", "expected legacy (the default), graph or any");
    g->conv_api = !g->time_algos || !api || !*api || !strcmp(api, "legacy") ? CONV_API_LEGACY
                  : !strcmp(api, "graph")                                 ? CONV_API_GRAPH
                                                                          : CONV_API_ANY;
    const char *fuse = getenv("EDM2_CUDNN_FUSE");
    if (fuse && *fuse && strcmp(fuse, "off") && strcmp(fuse, "timed") && strcmp(fuse, "on"))
        return gpu_fail(g, "EDM2_CUDNN_FUSE", "expected off (the default), timed or on");
    g->fuse = act == ACT_F32 || !fuse || !*fuse || !strcmp(fuse, "off") ? FUSE_OFF
              : !strcmp(fuse, "timed")                                  ? FUSE_TIMED
                                                                        : FUSE_ON;
    g->wgrad = wgrad && !strcmp(wgrad, "gemm")    ? WGRAD_GEMM
               : (wgrad && *wgrad) || !g->time_algos ? WGRAD_CUDNN
                                                     : WGRAD_TIMED;
    const char *plans = getenv("EDM2_CUDNN_PLANS"); /* read where plans are timed: bf16/fp16, not heuristic */
    if (g->time_algos && plans && *plans) {
        char why[600];
        if (strlen(plans) >= sizeof g->plan_file) return gpu_plans_fail(g, "path too long");
        if (plan_file_check(plans, why, sizeof why)) return gpu_plans_fail(g, why);
        struct cudaDeviceProp prop;
        GPU_CUDA(g, cudaGetDeviceProperties(&prop, n.device));
        for (char *c = prop.name; *c; c++)
            if (*c == ';') *c = ','; /* the key's separator */
        snprintf(g->gpu_key, sizeof g->gpu_key, "%.60s sm_%d%d", prop.name, prop.major, prop.minor);
        strcpy(g->plan_file, plans);
    }
    if (act != ACT_F32) {
        GPU_CUDA(g, cudaSetDevice(g->device));
        if (cublasCreate(&g->blas_lp) != CUBLAS_STATUS_SUCCESS) {
            g->blas_lp = NULL;
            return gpu_fail(g, "cublasCreate", "cannot make the bf16/fp16 product handle");
        }
        GPU_BLAS(g, cublasSetStream(g->blas_lp, g->stream));
        GPU_BLAS(g, cublasSetMathMode(g->blas_lp, CUBLAS_DEFAULT_MATH));
    }
    return 0;
}

void gpu_release_own(gpu_ctx *g) {
    if (!g->own) return;
    g->ops.vt->free(g->ops.b, g->own);
    g->own = NULL, g->own_bytes = 0, g->own_epoch++;
}

void gpu_ctx_free(gpu_ctx *g) {
    conv_fused_free(g);
    conv_plans_free(g);
    gpu_release_own(g);
    if (g->blas_lp) cublasDestroy(g->blas_lp);
    memset(g, 0, sizeof *g);
}
