/* backend_cuda.cu: the CUDA backend plugin "cuda": device memory, vector-operation kernels, reductions
 * in double, and the same Philox4x32-10 mapping as the CPU backend (edm2/edm2_philox.h). Without a
 * CUDA device its probe says "no CUDA device" and create() fails with EDM2_ERR_NODEVICE. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "edm2/edm2.h"

#define THREADS 256
#define MAX_BLOCKS 1024

struct alloc_rec {
    void *p;
    size_t bytes;
};

struct edm2_backend {
    const edm2_host *host;
    int device;
    cudaStream_t stream;
    char name[160];
    size_t current, peak;
    alloc_rec *allocs;
    size_t nallocs, cap;
    double *partials;              /* [MAX_BLOCKS + 1] device scratch for reductions */
    unsigned long long *counter;   /* device scratch for nan_to_zero */
};

static edm2_status fail(edm2_backend *b, cudaError_t e, const char *what) {
    return edm2_logf(b ? b->host : NULL, EDM2_LOG_ERROR, "cuda", e == cudaErrorMemoryAllocation ? EDM2_ERR_NOMEM
                     : EDM2_ERR_INTERNAL, "%s: %s", what, cudaGetErrorString(e));
}
#define CK(b, call, what)                            \
    do {                                             \
        cudaError_t e_ = (call);                     \
        if (e_ != cudaSuccess) return fail(b, e_, what); \
    } while (0)

static edm2_status cuda_probe(char *why, size_t len) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(why, len, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return EDM2_ERR_NODEVICE;
    }
    return EDM2_OK;
}

static unsigned grid_for(size_t n) {
    size_t g = (n + THREADS - 1) / THREADS;
    return (unsigned)(g < 1 ? 1 : (g > 65535 ? 65535 : g));
}

static edm2_status cuda_create(const edm2_host *host, const edm2_config *cfg, edm2_backend **out) {
    char why[256];
    if (cuda_probe(why, sizeof why) != EDM2_OK) return edm2_logf(host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_NODEVICE, "%s", why);
    edm2_backend *b = (edm2_backend *)calloc(1, sizeof *b);
    if (!b) return EDM2_ERR_NOMEM;
    b->host = host;
    b->device = (int)edm2_cfg_int(cfg, "device", 0);
    int count = 0;
    cudaGetDeviceCount(&count);
    if (b->device < 0 || b->device >= count) {
        int dev = b->device;
        free(b);
        return edm2_logf(host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INVALID, "[backend] device = %d: this machine has %d CUDA device%s",
                         dev, count, count == 1 ? "" : "s");
    }
    cudaError_t e = cudaSetDevice(b->device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaMalloc((void **)&b->partials, (MAX_BLOCKS + 1) * sizeof(double));
    if (e == cudaSuccess) e = cudaMalloc((void **)&b->counter, sizeof(unsigned long long));
    if (e != cudaSuccess) {
        edm2_status s = fail(b, e, "initialising the CUDA device");
        if (b->partials) cudaFree(b->partials);
        free(b);
        return s;
    }
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, b->device);
    snprintf(b->name, sizeof b->name, "%s (CUDA device %d, %.0f GiB)", prop.name, b->device,
             prop.totalGlobalMem / 1073741824.0);
    *out = b;
    return EDM2_OK;
}

static void cuda_destroy(edm2_backend *b) {
    if (!b) return;
    cudaStreamSynchronize(b->stream);
    for (size_t i = 0; i < b->nallocs; i++) cudaFree(b->allocs[i].p);
    cudaFree(b->partials);
    cudaFree(b->counter);
    cudaStreamDestroy(b->stream);
    free(b->allocs);
    free(b);
}

static const char *cuda_device_name(edm2_backend *b) { return b->name; }

static edm2_status cuda_alloc(edm2_backend *b, size_t bytes, void **out) {
    if (b->nallocs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        alloc_rec *a = (alloc_rec *)realloc(b->allocs, cap * sizeof *a);
        if (!a) return EDM2_ERR_NOMEM;
        b->allocs = a;
        b->cap = cap;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess)
        return edm2_logf(b->host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_NOMEM, "cannot allocate %zu bytes of device memory: %s",
                         bytes, cudaGetErrorString(e));
    CK(b, cudaMemsetAsync(p, 0, bytes, b->stream), "cudaMemsetAsync");
    b->allocs[b->nallocs++] = alloc_rec{p, bytes};
    b->current += bytes;
    if (b->current > b->peak) b->peak = b->current;
    *out = p;
    return EDM2_OK;
}

static void cuda_free(edm2_backend *b, void *p) {
    if (!p) return;
    for (size_t i = 0; i < b->nallocs; i++)
        if (b->allocs[i].p == p) {
            b->current -= b->allocs[i].bytes;
            b->allocs[i] = b->allocs[--b->nallocs];
            break;
        }
    cudaStreamSynchronize(b->stream);
    cudaFree(p);
}

static edm2_status cuda_upload(edm2_backend *b, void *dst, const void *src, size_t bytes) {
    CK(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, b->stream), "upload");
    CK(b, cudaStreamSynchronize(b->stream), "upload");
    return EDM2_OK;
}

static edm2_status cuda_download(edm2_backend *b, void *dst, const void *src, size_t bytes) {
    CK(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, b->stream), "download");
    CK(b, cudaStreamSynchronize(b->stream), "download");
    return EDM2_OK;
}

static edm2_status cuda_copy(edm2_backend *b, void *dst, const void *src, size_t bytes) {
    CK(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, b->stream), "copy");
    return EDM2_OK;
}

static edm2_status cuda_synchronize(edm2_backend *b) {
    CK(b, cudaStreamSynchronize(b->stream), "synchronize");
    return EDM2_OK;
}

static void cuda_memory_stats(edm2_backend *b, size_t *current, size_t *peak) {
    if (current) *current = b->current;
    if (peak) *peak = b->peak;
}

#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void k_fill(float *x, float v, size_t n) { GRID_STRIDE(i, n) x[i] = v; }
__global__ void k_scale(float *x, float a, size_t n) { GRID_STRIDE(i, n) x[i] *= a; }
__global__ void k_axpby(float *y, float a, const float *x, float beta, size_t n) {
    GRID_STRIDE(i, n) y[i] = a * x[i] + beta * y[i];
}
__global__ void k_lerp(float *y, const float *x, float t, size_t n) { GRID_STRIDE(i, n) y[i] += t * (x[i] - y[i]); }
__global__ void k_nan_to_zero(float *x, size_t n, unsigned long long *count) {
    unsigned long long local = 0;
    GRID_STRIDE(i, n) if (!isfinite(x[i])) {
        x[i] = 0.0f;
        local++;
    }
    if (local) atomicAdd(count, local);
}
__global__ void k_randn(float *x, size_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    GRID_STRIDE(i, n) x[i] = edm2_philox_normal(seed, stream, offset + i);
}
__global__ void k_rand(float *x, size_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    GRID_STRIDE(i, n) x[i] = edm2_philox_uniform(seed, stream, offset + i);
}

/* Block-level partial sums of x[i] * (y ? y[i] : 1) in double, then one block adds the partials. */
__global__ void k_reduce(const float *x, const float *y, size_t n, double *partials) {
    __shared__ double s[THREADS];
    double acc = 0;
    GRID_STRIDE(i, n) acc += (double)x[i] * (y ? (double)y[i] : 1.0);
    s[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned w = THREADS / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[blockIdx.x] = s[0];
}
__global__ void k_reduce_final(double *partials, unsigned count) {
    __shared__ double s[THREADS];
    double acc = 0;
    for (unsigned i = threadIdx.x; i < count; i += THREADS) acc += partials[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned w = THREADS / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[MAX_BLOCKS] = s[0];
}

#define LAUNCH(b, kernel, n, ...)                                                   \
    do {                                                                            \
        if ((n) == 0) return EDM2_OK;                                               \
        kernel<<<grid_for(n), THREADS, 0, (b)->stream>>>(__VA_ARGS__);              \
        CK(b, cudaGetLastError(), #kernel);                                         \
        return EDM2_OK;                                                             \
    } while (0)

static edm2_status cuda_fill(edm2_backend *b, float *x, float v, size_t n) { LAUNCH(b, k_fill, n, x, v, n); }
static edm2_status cuda_scale(edm2_backend *b, float *x, float a, size_t n) { LAUNCH(b, k_scale, n, x, a, n); }
static edm2_status cuda_axpby(edm2_backend *b, float *y, float a, const float *x, float beta, size_t n) {
    LAUNCH(b, k_axpby, n, y, a, x, beta, n);
}
static edm2_status cuda_lerp(edm2_backend *b, float *y, const float *x, float t, size_t n) {
    LAUNCH(b, k_lerp, n, y, x, t, n);
}
static edm2_status cuda_randn(edm2_backend *b, float *x, size_t n, edm2_rng r) {
    LAUNCH(b, k_randn, n, x, n, r.seed, r.stream, r.offset);
}
static edm2_status cuda_rand(edm2_backend *b, float *x, size_t n, edm2_rng r) {
    LAUNCH(b, k_rand, n, x, n, r.seed, r.stream, r.offset);
}

static edm2_status reduce(edm2_backend *b, const float *x, const float *y, size_t n, double *out) {
    *out = 0;
    if (n == 0) return EDM2_OK;
    unsigned blocks = grid_for(n);
    if (blocks > MAX_BLOCKS) blocks = MAX_BLOCKS;
    k_reduce<<<blocks, THREADS, 0, b->stream>>>(x, y, n, b->partials);
    k_reduce_final<<<1, THREADS, 0, b->stream>>>(b->partials, blocks);
    CK(b, cudaGetLastError(), "reduce");
    CK(b, cudaMemcpyAsync(out, b->partials + MAX_BLOCKS, sizeof(double), cudaMemcpyDeviceToHost, b->stream), "reduce");
    CK(b, cudaStreamSynchronize(b->stream), "reduce");
    return EDM2_OK;
}

static edm2_status cuda_sum(edm2_backend *b, const float *x, size_t n, double *out) { return reduce(b, x, NULL, n, out); }
static edm2_status cuda_dot(edm2_backend *b, const float *x, const float *y, size_t n, double *out) {
    return reduce(b, x, y, n, out);
}
static edm2_status cuda_norm2(edm2_backend *b, const float *x, size_t n, double *out) {
    edm2_status s = reduce(b, x, x, n, out);
    *out = sqrt(*out);
    return s;
}

static edm2_status cuda_nan_to_zero(edm2_backend *b, float *x, size_t n, size_t *replaced) {
    unsigned long long count = 0;
    CK(b, cudaMemsetAsync(b->counter, 0, sizeof count, b->stream), "nan_to_zero");
    if (n) {
        k_nan_to_zero<<<grid_for(n), THREADS, 0, b->stream>>>(x, n, b->counter);
        CK(b, cudaGetLastError(), "nan_to_zero");
    }
    CK(b, cudaMemcpyAsync(&count, b->counter, sizeof count, cudaMemcpyDeviceToHost, b->stream), "nan_to_zero");
    CK(b, cudaStreamSynchronize(b->stream), "nan_to_zero");
    if (replaced) *replaced = (size_t)count;
    return EDM2_OK;
}

static const edm2_backend_vtable k_vtable = {
    sizeof(edm2_backend_vtable), cuda_create, cuda_destroy,  cuda_device_name, cuda_alloc, cuda_free,
    cuda_upload,                 cuda_download, cuda_copy,   cuda_synchronize, cuda_memory_stats,
    cuda_fill,                   cuda_scale,  cuda_axpby,    cuda_lerp,        cuda_sum,   cuda_dot,
    cuda_norm2,                  cuda_nan_to_zero, cuda_randn, cuda_rand,
};

static const edm2_config_key k_keys[] = {
    {"device", EDM2_CFG_INT, "0", "CUDA device index"},
};

static const edm2_plugin_desc k_desc = {
    sizeof(edm2_plugin_desc), "cuda", EDM2_KIND_BACKEND, EDM2_BACKEND_CUDA, "1.0.0",
    "CUDA device memory, vector-op kernels, Philox4x32-10 random numbers",
    k_keys, 1, cuda_probe, &k_vtable,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
