/* plugin.c: the features plugin "inception_v3" (CUDA build): FID's Inception-v3 pool features over the graph
 * the CPU build runs (../inception_v3/inception_graph.c): convolutions as im2col (1x1: the activations in
 * place) + cuBLAS float32 products (the backend's handle: pedantic, no TF32) written into the block's
 * concatenation, then batch normalisation + ReLU, pools and the mean as kernels (inception_kernels.cu). All
 * work is queued on the backend's stream. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_native.h"
#include "edm2/edm2.h"
#include "inception_graph.h"
#include "inception_kernels.h"

#define ID "inception_v3"

struct edm2_features {
    const edm2_host *host;
    edm2_backend_ops be;
    cudaStream_t stream;
    cublasHandle_t blas;
    incep_graph *g;
    float *w, *ab;               /* prepared weights and (alpha, beta), device memory */
    float *slot[INCEP_SLOTS], *col;
    size_t col_floats;
    int max_batch, n;
    char err[320];               /* the first failure of the current call */
};

static const edm2_config_key k_keys[] = {
    {"weights", EDM2_CFG_STRING, NULL,
     "FID Inception weights (.safetensors; scripts/convert_fid_weights.py converts pytorch-fid's "
     "pt_inception-2015-12-05-6726825d.pth)"},
    {"max_batch", EDM2_CFG_INT, "32", "images per forward pass (device memory: about 13 MB per image)"},
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
    const long long mb = edm2_cfg_int(cfg, "max_batch", 32);
    if (mb < 1 || mb > 4096)
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "[features] max_batch = %lld: expected 1..4096", mb);
    edm2_backend_native nat;
    if (edm2_cuda_native(backend, &nat))
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_UNSUPPORTED, "needs the cuda backend (native handles)");
    edm2_features *f = calloc(1, sizeof *f);
    if (!f || !(f->g = malloc(sizeof *f->g))) {
        free(f);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory");
    }
    f->host = host;
    f->be = *backend;
    f->stream = (cudaStream_t)nat.stream;
    f->blas = (cublasHandle_t)nat.cublas;
    f->max_batch = (int)mb;
    incep_graph_build(f->g);
    *out = f;
    return EDM2_OK;
}

static void release(edm2_features *f) {
    void *bufs[] = {f->w, f->ab, f->col, f->slot[0], f->slot[1], f->slot[2], f->slot[3]};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) f->be.vt->free(f->be.b, bufs[i]);
    f->w = f->ab = f->col = NULL;
    memset(f->slot, 0, sizeof f->slot);
}

static void f_destroy(edm2_features *f) {
    if (!f) return;
    release(f);
    free(f->g);
    free(f);
}

static edm2_status f_get_info(edm2_features *f, edm2_features_info *info) {
    incep_graph_info(f->g, info);
    return EDM2_OK;
}

static edm2_status alloc_floats(edm2_features *f, size_t n, float **out) {
    return f->be.vt->alloc(f->be.b, n * sizeof(float), (void **)out);
}

static edm2_status f_prepare(edm2_features *f, const float *params) {
    const incep_graph *g = f->g;
    release(f);
    float *arena = malloc(g->arena_floats * sizeof(float)), *w = malloc(g->prep_w_floats * sizeof(float)),
          *ab = malloc(g->prep_c_floats * sizeof(float));
    edm2_status s = arena && w && ab ? EDM2_OK : EDM2_ERR_NOMEM;
    if (s == EDM2_OK) s = f->be.vt->download(f->be.b, arena, params, g->arena_floats * sizeof(float));
    if (s == EDM2_OK) {
        incep_prepare(g, arena, w, ab);
        f->col_floats = 0;
        for (int i = 0; i < g->nconv; i++) {
            const incep_conv *c = &g->conv[i];
            size_t col = (size_t)4 * c->Ho * c->Wo * c->kh * c->kw * c->cin; /* up to 4 images per product */
            if (c->kh * c->kw > 1 && col > f->col_floats) f->col_floats = col;
        }
        s = alloc_floats(f, g->prep_w_floats, &f->w);
        if (s == EDM2_OK) s = alloc_floats(f, g->prep_c_floats, &f->ab);
        if (s == EDM2_OK) s = alloc_floats(f, f->col_floats, &f->col);
        for (int k = 0; k < INCEP_SLOTS && s == EDM2_OK; k++)
            s = alloc_floats(f, (size_t)f->max_batch * g->slot_floats[k], &f->slot[k]);
        if (s == EDM2_OK) s = f->be.vt->upload(f->be.b, f->w, w, g->prep_w_floats * sizeof(float));
        if (s == EDM2_OK) s = f->be.vt->upload(f->be.b, f->ab, ab, g->prep_c_floats * sizeof(float));
    }
    free(arena), free(w), free(ab);
    if (s != EDM2_OK) {
        release(f);
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, s,
                         "cannot set up the weights and activations of %d images ([features] max_batch)", f->max_batch);
    }
    return EDM2_OK;
}

static float *view_ptr(const edm2_features *f, incep_view v) { return f->slot[v.slot] + v.c0; }

static int cu_resize(void *ctx, const float *images, int C, int H, int W, incep_view out) {
    edm2_features *f = ctx;
    KERNEL(f, incep_k_resize(f->stream, images, f->n, C, H, W, view_ptr(f, out), out.H, out.ld));
    return 0;
}

/* y[M, N] (row stride ldy) = A[M, K] (row stride lda) B[N, K]^T, row-major, through column-major cuBLAS. */
static int product(edm2_features *f, size_t M, int N, int K, const float *A, int lda, const float *B, float *y, int ldy) {
    const float one = 1, zero = 0;
    cublasStatus_t s = cublasSgemm(f->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, (int)M, K, &one, B, K, A, lda, &zero, y, ldy);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : fail(f, "cublasSgemm", cublasGetStatusString(s));
}

static int cu_conv(void *ctx, const incep_conv *k, incep_view in, incep_view out) {
    edm2_features *f = ctx;
    const int n = f->n, K = k->kh * k->kw * k->cin;
    const float *x = view_ptr(f, in), *w = f->w + k->prep_w_off;
    float *y = view_ptr(f, out);
    const size_t pix = (size_t)k->Ho * k->Wo;
    if (k->kh == 1 && k->kw == 1 && k->stride == 1) {
        if (product(f, (size_t)n * pix, k->cout, K, x, in.ld, w, y, out.ld)) return -1;
    } else {
        int per = (int)(f->col_floats / (pix * K));
        if (per < 1) per = 1;
        for (int i = 0; i < n; i += per) {
            const int m = n - i < per ? n - i : per;
            KERNEL(f, incep_k_im2col(f->stream, x + (size_t)i * k->H * k->W * in.ld, in.ld, m, k->H, k->W, k->cin, k->kh,
                                     k->kw, k->stride, k->ph, k->pw, k->Ho, k->Wo, f->col));
            if (product(f, (size_t)m * pix, k->cout, K, f->col, K, w, y + (size_t)i * pix * out.ld, out.ld)) return -1;
        }
    }
    const float *alpha = f->ab + k->prep_c_off;
    KERNEL(f, incep_k_bn_relu(f->stream, y, (size_t)n * pix, out.ld, k->cout, alpha, alpha + k->cout));
    return 0;
}

static int cu_pool(void *ctx, incep_pool kind, incep_view in, incep_view out) {
    edm2_features *f = ctx;
    const int k = kind == INCEP_MAXPOOL_S2 ? 0 : kind == INCEP_AVGPOOL_S1_EXCL_PAD ? 1 : 2;
    KERNEL(f, incep_k_pool(f->stream, k, view_ptr(f, in), f->n, in.H, in.W, in.C, in.ld, view_ptr(f, out), out.H, out.W,
                           out.ld));
    return 0;
}

static int cu_mean(void *ctx, incep_view in, float *features) {
    edm2_features *f = ctx;
    KERNEL(f, incep_k_mean(f->stream, view_ptr(f, in), f->n, in.H * in.W, in.C, in.ld, features));
    return 0;
}

static edm2_status f_extract(edm2_features *f, const float *images, int N, int C, int H, int W, float *out) {
    if (!f->slot[0]) return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "extract called before prepare");
    if (N < 0 || (C != 1 && C != 3) || H < 1 || W < 1 || H > 65536 || W > 65536)
        return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID,
                         "images [%d, %d, %d, %d]: expected 1 or 3 channels and a positive size", N, C, H, W);
    f->err[0] = 0;
    const incep_backend be = {f, cu_resize, cu_conv, cu_pool, cu_mean};
    for (int i = 0; i < N; i += f->max_batch) {
        f->n = N - i < f->max_batch ? N - i : f->max_batch;
        if (incep_forward(f->g, &be, images + (size_t)i * C * H * W, C, H, W, out + (size_t)i * INCEPTION_DIM))
            return edm2_logf(f->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INTERNAL, "%s", f->err[0] ? f->err : "forward failed");
    }
    return EDM2_OK;
}

static const edm2_features_vtable k_vtable = {sizeof(edm2_features_vtable), f_create, f_destroy, f_get_info,
                                              f_prepare, f_extract};

static const edm2_plugin_desc k_desc = {sizeof(edm2_plugin_desc), ID, EDM2_KIND_FEATURES, EDM2_BACKEND_CUDA, "1.0.0",
                                        "Inception-v3 pool features of the Frechet Inception Distance (pytorch-fid's "
                                        "network, 2048-d), CUDA",
                                        k_keys, sizeof k_keys / sizeof k_keys[0], edm2_cuda_probe, &k_vtable};
static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
