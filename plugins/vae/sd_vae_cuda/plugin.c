/* plugin.c: the VAE plugin "sd_vae" (CUDA build): the SD KL autoencoder over the CPU build's graph
 * (../sd_vae/vae_graph.c): convolutions as im2col in bands of rows (a bounded scratch) + cuBLAS float32
 * products (the backend's handle: pedantic, no TF32), 1x1 convolutions and the attention's products straight
 * from the activations, GroupNorm, sums, upsampling and softmax as kernels (vae_kernels.cu); one image at a
 * time, all work on the backend's stream. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_native.h"
#include "vae_config.h"
#include "vae_kernels.h"

#define ID "sd_vae"
#define COL_FLOATS ((size_t)32 << 20) /* im2col scratch: 128 MiB */

struct edm2_vae {
    const edm2_host *host;
    edm2_backend_ops be;
    cudaStream_t stream;
    cublasHandle_t blas;
    vae_graph g;
    float *arena;                          /* device, conv weights prepared */
    float *slot[VAE_SLOTS], *col, *stats;
    size_t cap[VAE_SLOTS];
    char err[320];
};

static const edm2_config_key k_keys[] = {VAE_KEYS};

static int fail(edm2_vae *v, const char *what, const char *why) {
    if (!v->err[0]) snprintf(v->err, sizeof v->err, "%.160s: %.150s", what, why);
    return -1;
}
#define KERNEL(v, call)                                                                   \
    do {                                                                                  \
        int e_ = (call);                                                                  \
        if (e_) return fail((v), #call, cudaGetErrorString((cudaError_t)e_));             \
    } while (0)

static edm2_status v_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                            edm2_vae **out) {
    vae_hparams hp;
    edm2_status s = vae_parse_hparams(host, cfg, ID, &hp);
    if (s != EDM2_OK) return s;
    edm2_backend_native nat;
    if (edm2_cuda_native(backend, &nat))
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_UNSUPPORTED, "needs the cuda backend (native handles)");
    edm2_vae *v = calloc(1, sizeof *v);
    if (!v || vae_graph_build(&v->g, &hp)) {
        free(v);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of memory");
    }
    v->host = host;
    v->be = *backend;
    v->stream = (cudaStream_t)nat.stream;
    v->blas = (cublasHandle_t)nat.cublas;
    *out = v;
    return EDM2_OK;
}

static void release(edm2_vae *v) {
    for (int k = 0; k < VAE_SLOTS; k++) v->be.vt->free(v->be.b, v->slot[k]), v->slot[k] = NULL, v->cap[k] = 0;
    v->be.vt->free(v->be.b, v->col), v->be.vt->free(v->be.b, v->stats), v->be.vt->free(v->be.b, v->arena);
    v->col = v->stats = v->arena = NULL;
}

static void v_destroy(edm2_vae *v) {
    if (!v) return;
    release(v);
    vae_graph_free(&v->g);
    free(v);
}

static edm2_status v_get_info(edm2_vae *v, edm2_vae_info *info) {
    vae_graph_info(&v->g, info);
    return EDM2_OK;
}

static int v_alias(edm2_vae *v, int layout, size_t index, char *out, size_t len) {
    if (index >= v->g.nparams || (layout != 1 && layout != 2)) return 0;
    if (layout == 1) vae_ldm_name(&v->g, index, out, len);
    else vae_old_diffusers_name(&v->g, index, out, len);
    return 1;
}

static edm2_status alloc_floats(edm2_vae *v, size_t n, float **p) { return v->be.vt->alloc(v->be.b, n * sizeof(float), (void **)p); }

static edm2_status v_prepare(edm2_vae *v, const float *params) {
    release(v);
    const size_t A = v->g.arena_floats;
    float *host = malloc(A * sizeof *host + 1);
    edm2_status s = host ? EDM2_OK : EDM2_ERR_NOMEM;
    if (s == EDM2_OK) s = v->be.vt->download(v->be.b, host, params, A * sizeof(float));
    if (s == EDM2_OK && vae_prepare(&v->g, host)) s = EDM2_ERR_NOMEM;
    if (s == EDM2_OK) s = alloc_floats(v, A, &v->arena);
    if (s == EDM2_OK) s = v->be.vt->upload(v->be.b, v->arena, host, A * sizeof(float));
    if (s == EDM2_OK) s = alloc_floats(v, COL_FLOATS, &v->col);
    if (s == EDM2_OK) s = alloc_floats(v, (size_t)2 * v->g.hp.groups, &v->stats);
    free(host);
    if (s != EDM2_OK) {
        release(v);
        return edm2_logf(v->host, EDM2_LOG_ERROR, ID, s, "cannot set up the weights on the device");
    }
    return EDM2_OK;
}

static float *ptr(const edm2_vae *v, vae_view x) { return v->slot[x.slot]; }

static int cu_load(void *ctx, const float *x, vae_view out) {
    edm2_vae *v = ctx;
    KERNEL(v, vae_k_transpose(v->stream, x, out.H * out.W, out.C, 0, ptr(v, out)));
    return 0;
}

static int cu_store(void *ctx, vae_view in, float *y) {
    edm2_vae *v = ctx;
    KERNEL(v, vae_k_transpose(v->stream, ptr(v, in), in.H * in.W, in.C, 1, y));
    return 0;
}

static int cu_store_moments(void *ctx, vae_view in, float *y) {
    edm2_vae *v = ctx;
    KERNEL(v, vae_k_moments(v->stream, ptr(v, in), in.H * in.W, in.C, y));
    return 0;
}

/* y[M, N] (row stride ldy) = alpha A[M, K] (row stride lda) B[N, K]^T, row-major, by column-major cuBLAS. */
static int product_nt(edm2_vae *v, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                      float *y, int ldy) {
    const float zero = 0;
    cublasStatus_t s = cublasSgemm(v->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda, &zero, y, ldy);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : fail(v, "cublasSgemm", cublasGetStatusString(s));
}

static int cu_conv(void *ctx, const vae_conv *k, vae_view in, vae_view out) {
    edm2_vae *v = ctx;
    const float *x = ptr(v, in), *w = v->arena + k->w_off;
    float *y = ptr(v, out);
    if (k->kind == VAE_CONV_1x1) {
        if (product_nt(v, in.H * in.W, k->cout, k->cin, 1.0f, x, k->cin, w, k->cin, y, k->cout)) return -1;
    } else {
        const int down = k->kind == VAE_CONV_DOWN, K = 9 * k->cin;
        int band = (int)(COL_FLOATS / ((size_t)out.W * K));
        if (band < 1) return fail(v, "conv", "an output row needs more im2col scratch than there is");
        for (int oy = 0; oy < out.H; oy += band) {
            const int oy1 = oy + band < out.H ? oy + band : out.H;
            KERNEL(v, vae_k_im2col(v->stream, x, in.H, in.W, k->cin, down, oy, oy1, v->col));
            if (product_nt(v, (oy1 - oy) * out.W, k->cout, K, 1.0f, v->col, K, w, K, y + (size_t)oy * out.W * k->cout,
                           k->cout))
                return -1;
        }
    }
    KERNEL(v, vae_k_bias(v->stream, y, (size_t)out.H * out.W, k->cout, v->arena + k->b_off));
    return 0;
}

static int cu_group_norm(void *ctx, const vae_norm *n, int silu, vae_view in, vae_view out) {
    edm2_vae *v = ctx;
    KERNEL(v, vae_k_group_norm(v->stream, ptr(v, in), (size_t)in.H * in.W, in.C, n->groups, v->arena + n->w_off,
                               v->arena + n->b_off, silu, v->stats, ptr(v, out)));
    return 0;
}

static int cu_add(void *ctx, vae_view a, vae_view b, vae_view out) {
    edm2_vae *v = ctx;
    KERNEL(v, vae_k_add(v->stream, ptr(v, a), ptr(v, b), (size_t)a.H * a.W * a.C, ptr(v, out)));
    return 0;
}

static int cu_upsample(void *ctx, vae_view in, vae_view out) {
    edm2_vae *v = ctx;
    KERNEL(v, vae_k_upsample(v->stream, ptr(v, in), in.H, in.W, in.C, ptr(v, out)));
    return 0;
}

static int cu_attend(void *ctx, vae_view q, vae_view k, vae_view val, vae_view s, vae_view out) {
    edm2_vae *v = ctx;
    const int P = q.H * q.W, C = q.C;
    float *S = ptr(v, s);
    if (product_nt(v, P, P, C, 1.0f / sqrtf((float)C), ptr(v, q), C, ptr(v, k), C, S, P)) return -1;
    KERNEL(v, vae_k_softmax(v->stream, S, P));
    /* out[P, C] = S[P, P] V[P, C]: column-major out^T = V^T S^T */
    const float one = 1, zero = 0;
    cublasStatus_t st = cublasSgemm(v->blas, CUBLAS_OP_N, CUBLAS_OP_N, C, P, P, &one, ptr(v, val), C, S, P, &zero,
                                    ptr(v, out), C);
    return st == CUBLAS_STATUS_SUCCESS ? 0 : fail(v, "cublasSgemm", cublasGetStatusString(st));
}

/* Buffers for one pass at this size (from the planning walk). */
static edm2_status reserve(edm2_vae *v, const size_t need[VAE_SLOTS]) {
    for (int k = 0; k < VAE_SLOTS; k++) {
        if (need[k] <= v->cap[k]) continue;
        v->be.vt->free(v->be.b, v->slot[k]);
        v->slot[k] = NULL, v->cap[k] = 0;
        edm2_status s = alloc_floats(v, need[k], &v->slot[k]);
        if (s != EDM2_OK) return s;
        v->cap[k] = need[k];
    }
    return EDM2_OK;
}

static edm2_status run(edm2_vae *v, int decoder, const float *in, int N, int h, int w, float *out) {
    const int d = 1 << (v->g.hp.levels - 1), L = v->g.hp.latent;
    if (!v->arena) return edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "called before prepare");
    if (N < 0 || h < 1 || w < 1 || (!decoder && (h % d || w % d)) || h > 16384 || w > 16384)
        return edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "%dx%d: not a size the VAE takes", h, w);
    size_t need[VAE_SLOTS];
    if (decoder) vae_decode(&v->g, NULL, NULL, h, w, NULL, need);
    else vae_encode(&v->g, NULL, NULL, h, w, NULL, need);
    if (reserve(v, need) != EDM2_OK)
        return edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "out of device memory for a %dx%d %s", h, w,
                         decoder ? "decoding" : "encoding");
    vae_backend be = {v, cu_load, cu_store, cu_conv, cu_group_norm, cu_add, cu_upsample, cu_attend, cu_store_moments};
    v->err[0] = 0;
    const size_t per_in = decoder ? (size_t)L * h * w : (size_t)3 * h * w;
    const size_t per_out = decoder ? (size_t)3 * h * d * w * d : (size_t)2 * L * (h / d) * (w / d);
    for (int i = 0; i < N; i++) {
        const float *x = in + (size_t)i * per_in;
        float *y = out + (size_t)i * per_out;
        if (decoder ? vae_decode(&v->g, &be, x, h, w, y, NULL) : vae_encode(&v->g, &be, x, h, w, y, NULL))
            return edm2_logf(v->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INTERNAL, "%s", v->err[0] ? v->err : "failed");
    }
    return EDM2_OK;
}

static edm2_status v_encode(edm2_vae *v, const float *images, int N, int H, int W, float *moments) {
    return run(v, 0, images, N, H, W, moments);
}

static edm2_status v_decode(edm2_vae *v, const float *latents, int N, int h, int w, float *images) {
    return run(v, 1, latents, N, h, w, images);
}


static const edm2_vae_vtable k_vtable = {sizeof(edm2_vae_vtable), v_create, v_destroy, v_get_info, v_alias,
                                         v_prepare, v_encode, v_decode};

static const edm2_plugin_desc k_desc = {sizeof(edm2_plugin_desc), ID, EDM2_KIND_VAE, EDM2_BACKEND_CUDA, "1.0.0",
                                        "the Stable Diffusion VAE (KL autoencoder, 8x, 4 latent channels), CUDA",
                                        k_keys, sizeof k_keys / sizeof k_keys[0], edm2_cuda_probe, &k_vtable};
static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
