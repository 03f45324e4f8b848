/* plugin.c: the features plugin "dinov2" (CUDA build): FD_DINOv2's DINOv2 ViT-L/14 features over the CPU
 * build's weight table (../dinov2/dinov2_vit.c): the linear layers and the attention's two products as
 * cuBLAS float32 products (the backend's handle: pedantic, no TF32; the heads of an image in one strided
 * batch), the input, LayerNorm, softmax, GELU and the residuals as kernels (dinov2_kernels.cu). All work is
 * queued on the backend's stream. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_native.h"
#include "dinov2_kernels.h"
#include "dinov2_vit.h"
#include "edm2/edm2.h"

#define ID "dinov2"

struct edm2_features {
    const edm2_host *host;
    edm2_backend_ops be;
    cudaStream_t stream;
    cublasHandle_t blas;
    dino_vit v;
    float *w;                                       /* the weights, device memory */
    float *input, *wide, *patches, *x, *h, *qkv, *att, *s, *mlp; /* activations of max_batch images */
    size_t wide_floats;
    int max_batch;
    char err[320]; /* the first failure of the current call */
};

static const edm2_config_key k_keys[] = {
    {"weights", EDM2_CFG_STRING, NULL,
     "DINOv2 weights (.safetensors; scripts/convert_dinov2_weights.py converts the released dinov2_vitl14_pretrain.pth)"},
    {"dim", EDM2_CFG_INT, "1024", "token width (ViT-L: 1024)"},
    {"depth", EDM2_CFG_INT, "24", "transformer blocks (ViT-L: 24)"},
    {"heads", EDM2_CFG_INT, "16", "attention heads (ViT-L: 16)"},
    {"patch", EDM2_CFG_INT, "14", "patch size in pixels (/14: 14)"},
    {"resolution", EDM2_CFG_INT, "224", "input size images are resized to (the metric's: 224)"},
    {"max_batch", EDM2_CFG_INT, "32", "images per forward pass (device memory: about 12 MB per image for ViT-L/14)"},
};

static int fail(edm2_features *f, const char *what, const char *why) {
    if (!f->err[0]) snprintf(f->err, sizeof f->err, "%.160s: %.150s", what, why);
    return -1;
}
#define KERNEL(f, call)                                                                           \
    do {                                                                                          \
        int e_ = (call);                                                                          \
        if (e_) return fail((f), #call, cudaGetErrorString((cudaError_t)e_));                     \
    } while (0)

static edm2_status f_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                            edm2_features **out) {
    edm2_backend_native nat;
    if (edm2_cuda_native(backend, &nat))
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_UNSUPPORTED, "needs the cuda backend (native handles)");
    edm2_features *f = calloc(1, sizeof *f);
    if (!f) return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory");
    char msg[160];
    if (dino_build_from(&f->v, cfg, &f->max_batch, msg, sizeof msg)) {
        free(f);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "[features] %s", msg);
    }
    f->host = host;
    f->be = *backend;
    f->stream = (cudaStream_t)nat.stream;
    f->blas = (cublasHandle_t)nat.cublas;
    *out = f;
    return EDM2_OK;
}

static void release(edm2_features *f) {
    float **bufs[] = {&f->w, &f->input, &f->wide, &f->patches, &f->x, &f->h, &f->qkv, &f->att, &f->s, &f->mlp};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        f->be.vt->free(f->be.b, *bufs[i]);
        *bufs[i] = NULL;
    }
    f->wide_floats = 0;
}

static void f_destroy(edm2_features *f) {
    if (!f) return;
    release(f);
    free(f);
}

static edm2_status f_get_info(edm2_features *f, edm2_features_info *info) {
    dino_info(&f->v, info);
    return EDM2_OK;
}

static edm2_status alloc_floats(edm2_features *f, size_t n, float **out) {
    return f->be.vt->alloc(f->be.b, n * sizeof(float), (void **)out);
}

static edm2_status f_prepare(edm2_features *f, const float *params) {
    release(f);
    const dino_vit *v = &f->v;
    const size_t B = (size_t)f->max_batch, D = (size_t)v->s.dim, T = (size_t)v->tokens, R = (size_t)v->s.res;
    const size_t sizes[] = {v->arena_floats, B * 3 * R * R, B * (T - 1) * 3 * v->s.patch * v->s.patch, B * T * D,
                            B * T * D, B * T * 3 * D, B * T * D, (size_t)v->s.heads * T * T, B * T * v->hidden};
    float **bufs[] = {&f->w, &f->input, &f->patches, &f->x, &f->h, &f->qkv, &f->att, &f->s, &f->mlp};
    edm2_status s = EDM2_OK;
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs && s == EDM2_OK; i++) s = alloc_floats(f, sizes[i], bufs[i]);
    if (s == EDM2_OK) s = f->be.vt->copy(f->be.b, f->w, params, v->arena_floats * sizeof(float));
    if (s != EDM2_OK) {
        release(f);
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, s,
                         "cannot set up the weights (%zu MB) and the activations of %d images ([features] max_batch)",
                         v->arena_floats * sizeof(float) >> 20, f->max_batch);
    }
    return EDM2_OK;
}

/* y[M, N] (row stride ldy) = A[M, K] (row stride lda) B[N, K]^T (row stride ldb), row-major, through
 * column-major cuBLAS; `batch` such products, each operand `sa`, `sb`, `sy` floats after the one before. */
static int product(edm2_features *f, int M, int N, int K, const float *A, int lda, long long sa, const float *B, int ldb,
                   long long sb, float *y, int ldy, long long sy, int batch) {
    const float one = 1, zero = 0;
    cublasStatus_t s = cublasSgemmStridedBatched(f->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, B, ldb, sb, A, lda, sa,
                                                 &zero, y, ldy, sy, batch);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : fail(f, "cublasSgemmStridedBatched", cublasGetStatusString(s));
}

/* y[rows, N] = x[rows, K] W[N, K]^T + b. */
static int linear(edm2_features *f, const float *x, int rows, int K, size_t W, size_t b, int N, float *y) {
    if (product(f, rows, N, K, x, K, 0, f->w + W, K, 0, y, N, 0, 1)) return -1;
    KERNEL(f, dino_k_bias(f->stream, y, (size_t)rows, N, f->w + b));
    return 0;
}

/* The features of n images of in[n, 3, res, res] (already the network's input) into out[n, dim] (device). */
static int forward(edm2_features *f, int n, float *out) {
    const dino_vit *v = &f->v;
    const int D = v->s.dim, T = v->tokens, H = v->hidden, heads = v->s.heads, hd = D / heads, rows = n * T;
    const int K = 3 * v->s.patch * v->s.patch;
    KERNEL(f, dino_k_patches(f->stream, f->input, n, v->grid, v->s.patch, f->patches));
    if (linear(f, f->patches, n * (T - 1), K, v->pw, v->pb, D, f->h)) return -1;
    KERNEL(f, dino_k_tokens(f->stream, f->h, f->w + v->cls, f->w + v->pos, n, T, D, f->x));
    const float scale = 1.0f / sqrtf((float)hd);
    for (int l = 0; l < v->s.depth; l++) {
        const dino_block *b = &v->blk[l];
        KERNEL(f, dino_k_layer_norm(f->stream, f->x, D, rows, D, f->w + b->n1w, f->w + b->n1b, f->h, D));
        if (linear(f, f->h, rows, D, b->qkvw, b->qkvb, 3 * D, f->qkv)) return -1;
        for (int i = 0; i < n; i++) { /* an image's heads: S_h = q_h k_h^T, softmax, O_h = S_h v_h */
            const float *q = f->qkv + (size_t)i * T * 3 * D;
            if (product(f, T, T, hd, q, 3 * D, hd, q + D, 3 * D, hd, f->s, T, (long long)T * T, heads)) return -1;
            KERNEL(f, dino_k_softmax(f->stream, f->s, (size_t)heads * T, T, scale));
            const float one = 1, zero = 0; /* O^T[hd, T] = v^T[hd, T] S^T[T, T], column-major */
            cublasStatus_t st = cublasSgemmStridedBatched(f->blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &one, q + 2 * D,
                                                          3 * D, hd, f->s, T, (long long)T * T, &zero,
                                                          f->att + (size_t)i * T * D, D, hd, heads);
            if (st != CUBLAS_STATUS_SUCCESS) return fail(f, "cublasSgemmStridedBatched", cublasGetStatusString(st));
        }
        if (linear(f, f->att, rows, D, b->projw, b->projb, D, f->h)) return -1;
        KERNEL(f, dino_k_scaled_add(f->stream, f->x, f->h, f->w + b->ls1, (size_t)rows, D));
        KERNEL(f, dino_k_layer_norm(f->stream, f->x, D, rows, D, f->w + b->n2w, f->w + b->n2b, f->h, D));
        if (linear(f, f->h, rows, D, b->fc1w, b->fc1b, H, f->mlp)) return -1;
        KERNEL(f, dino_k_gelu(f->stream, f->mlp, (size_t)rows * H));
        if (linear(f, f->mlp, rows, H, b->fc2w, b->fc2b, D, f->h)) return -1;
        KERNEL(f, dino_k_scaled_add(f->stream, f->x, f->h, f->w + b->ls2, (size_t)rows, D));
    }
    /* the class tokens alone: rows T apart */
    KERNEL(f, dino_k_layer_norm(f->stream, f->x, (size_t)T * D, n, D, f->w + v->nw, f->w + v->nb, out, D));
    return 0;
}

static edm2_status f_extract(edm2_features *f, const float *images, int N, int C, int H, int W, float *out) {
    if (!f->w) return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "extract called before prepare");
    if (N < 0 || (C != 1 && C != 3) || H < 1 || W < 1 || H > 4096 || W > 4096)
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID,
                         "images [%d, %d, %d, %d]: expected 1 or 3 channels and 1 to 4096 pixels a side", N, C, H, W);
    const size_t wide = (size_t)f->max_batch * 3 * H * f->v.s.res;
    if (wide > f->wide_floats) {
        f->be.vt->free(f->be.b, f->wide);
        f->wide = NULL;
        f->wide_floats = 0;
        if (alloc_floats(f, wide, &f->wide) != EDM2_OK)
            return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of device memory for %dx%d images", H, W);
        f->wide_floats = wide;
    }
    f->err[0] = 0;
    for (int i = 0; i < N; i += f->max_batch) {
        const int n = N - i < f->max_batch ? N - i : f->max_batch;
        int bad = dino_k_input(f->stream, images + (size_t)i * C * H * W, n, C, H, W, f->v.s.res, f->wide, f->input);
        if (bad) fail(f, "dino_k_input", cudaGetErrorString((cudaError_t)bad));
        if (bad || forward(f, n, out + (size_t)i * f->v.s.dim))
            return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INTERNAL, "%s", f->err[0] ? f->err : "forward failed");
    }
    return EDM2_OK;
}

static const edm2_features_vtable k_vtable = {sizeof(edm2_features_vtable), f_create, f_destroy, f_get_info,
                                              f_prepare, f_extract};

static const edm2_plugin_desc k_desc = {sizeof(edm2_plugin_desc), ID, EDM2_KIND_FEATURES, EDM2_BACKEND_CUDA, "1.0.0",
                                        "DINOv2 ViT-L/14 class-token features of FD_DINOv2 (1024-d, the EDM2 "
                                        "reference's detector), CUDA",
                                        k_keys, sizeof k_keys / sizeof k_keys[0], edm2_cuda_probe, &k_vtable};
static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
