/* backend_cuda.cu: the CUDA backend plugin "cuda": device memory from the stream-ordered pool, vector
 * kernels that agree bitwise with the CPU backend, reductions in the CPU backend's order, the Philox
 * mapping of edm2/edm2_philox.h, and (ABI 1.1) the native handles that CUDA compute plugins order their
 * work with: one stream, cuBLAS and cuBLASLt handles on it, a cuDNN handle when built with cuDNN, and a
 * workspace. Every entry point selects the instance's device first; every CUDA call is checked and a
 * failure is one logged line naming the operation. With [backend] debug_sync = true each operation is
 * followed by a synchronisation, so an asynchronous fault is reported by the operation that caused it.
 * Without a CUDA device the probe says "no CUDA device" and create() fails with EDM2_ERR_NODEVICE.
 *
 * Agreement with the CPU backend: fill, scale, axpby, lerp, nan_to_zero and rand are bitwise identical
 * (each product and sum rounded separately, as the CPU's ISO C build does; no fused multiply-adds);
 * sum, dot and norm2 add the same double-precision terms in the same order (chunks of 4096 elements,
 * then the chunks in order), so they are bitwise identical too; randn computes the same Box-Muller in
 * double, whose CUDA log/sin/cos may differ from the C library's by an ulp of a double, which after
 * rounding to float almost never shows (the parity test allows 1e-6). */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef EDM2_HAVE_CUDNN
#include <cudnn.h>
#endif
#ifdef EDM2_HAVE_NCCL
#include <nccl.h>
#endif

#include "edm2/edm2.h"
#include "edm2/edm2_philox.h"
#include "launch_cuda.h"

#define CHUNK 4096                          /* elements per partial sum, as in the CPU backend */
#define ALIGN 256                           /* bytes: alignment of every allocation */
#define WORKSPACE_BYTES ((size_t)32 << 20)  /* cuBLASLt / cuDNN scratch */

struct alloc_rec {
    void *p;
    size_t bytes;
};

struct edm2_backend {
    const edm2_host *host;
    int device, debug_sync;
    cudaStream_t stream;
    cublasHandle_t cublas;
    cublasLtHandle_t cublaslt;
#ifdef EDM2_HAVE_CUDNN
    cudnnHandle_t cudnn;
#endif
    void *workspace;
    char name[160];
    size_t current, peak;
    alloc_rec *allocs;
    size_t nallocs, cap;
    double *partials;            /* device scratch for reductions: one double per chunk, then the total */
    size_t partials_cap;         /* in doubles */
    unsigned long long *counter; /* device scratch for nan_to_zero */
    int world;                   /* processes of a data-parallel run (ABI 1.2); 1 alone */
#ifdef EDM2_HAVE_NCCL
    ncclComm_t nccl;             /* the gradient all-reduce between the processes' GPUs (world > 1, or a group of one) */
#endif
};

static edm2_status fail(const edm2_backend *b, cudaError_t e, const char *what) {
    return edm2_logf(b ? b->host : NULL, EDM2_LOG_ERROR, "cuda",
                     e == cudaErrorMemoryAllocation ? EDM2_ERR_NOMEM : EDM2_ERR_INTERNAL, "%s: %s", what,
                     cudaGetErrorString(e));
}
#define CK(b, call, what)                                \
    do {                                                 \
        cudaError_t e_ = (call);                         \
        if (e_ != cudaSuccess) return fail(b, e_, what); \
    } while (0)
/* Every entry point: the instance's device is the current one for this thread. */
#define ENTER(b, what) CK(b, cudaSetDevice((b)->device), what)

/* After an operation: its launch error, and with debug_sync its execution error. */
static edm2_status done(edm2_backend *b, const char *what) {
    CK(b, cudaGetLastError(), what);
    if (b->debug_sync) CK(b, cudaStreamSynchronize(b->stream), what);
    return EDM2_OK;
}

static edm2_status cuda_probe(char *why, size_t len) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(why, len, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return EDM2_ERR_NODEVICE;
    }
    return EDM2_OK;
}

static void release(edm2_backend *b) {
    cudaSetDevice(b->device);
    if (b->stream) cudaStreamSynchronize(b->stream);
    for (size_t i = 0; i < b->nallocs; i++) cudaFreeAsync(b->allocs[i].p, b->stream);
    if (b->partials) cudaFreeAsync(b->partials, b->stream);
    if (b->counter) cudaFreeAsync(b->counter, b->stream);
    if (b->workspace) cudaFreeAsync(b->workspace, b->stream);
    if (b->stream) cudaStreamSynchronize(b->stream);
#ifdef EDM2_HAVE_NCCL
    if (b->nccl) ncclCommDestroy(b->nccl);
#endif
#ifdef EDM2_HAVE_CUDNN
    if (b->cudnn) cudnnDestroy(b->cudnn);
#endif
    if (b->cublaslt) cublasLtDestroy(b->cublaslt);
    if (b->cublas) cublasDestroy(b->cublas);
    if (b->stream) cudaStreamDestroy(b->stream);
    free(b->allocs);
    free(b);
}

static edm2_status cuda_create(const edm2_host *host, const edm2_config *cfg, edm2_backend **out) {
    char why[256];
    if (cuda_probe(why, sizeof why) != EDM2_OK) return edm2_logf(host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_NODEVICE, "%s", why);
    edm2_backend *b = (edm2_backend *)calloc(1, sizeof *b);
    if (!b) return EDM2_ERR_NOMEM;
    b->host = host;
    b->device = (int)edm2_cfg_int(cfg, "device", -1);
    b->debug_sync = edm2_cfg_bool(cfg, "debug_sync", 0);
    int count = 0;
    cudaGetDeviceCount(&count);
    const int grouped = host && host->struct_size >= offsetof(edm2_host, comm_barrier) + sizeof host->comm_barrier;
    b->world = grouped && host->world_size > 1 ? host->world_size : 1;
    if (b->device == -1) b->device = grouped && count > 0 ? host->local_rank % count : 0; /* one GPU per process */
    if (b->device < 0 || b->device >= count) {
        int dev = b->device;
        free(b);
        return edm2_logf(host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INVALID,
                         "[backend] device = %d: this machine has %d CUDA device%s", dev, count, count == 1 ? "" : "s");
    }
    const char *step = "cudaSetDevice";
    cudaError_t e = cudaSetDevice(b->device);
    int pools = 0;
    if (e == cudaSuccess) step = "memory pools", e = cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, b->device);
    if (e == cudaSuccess && !pools) e = cudaErrorNotSupported;
    if (e == cudaSuccess) { /* keep freed memory in the pool: no return to the driver between steps */
        cudaMemPool_t pool;
        uint64_t keep = UINT64_MAX;
        step = "cudaDeviceGetDefaultMemPool", e = cudaDeviceGetDefaultMemPool(&pool, b->device);
        if (e == cudaSuccess) e = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    }
    if (e == cudaSuccess) step = "cudaStreamCreate", e = cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) step = "scratch", e = cudaMallocAsync((void **)&b->counter, sizeof(unsigned long long), b->stream);
    if (e == cudaSuccess) step = "workspace", e = cudaMallocAsync(&b->workspace, WORKSPACE_BYTES, b->stream);
    if (e == cudaSuccess) step = "synchronize", e = cudaStreamSynchronize(b->stream);
    if (e != cudaSuccess) {
        edm2_status s = edm2_logf(host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INTERNAL, "initialising CUDA device %d (%s): %s",
                                  b->device, step, cudaGetErrorString(e));
        release(b);
        return s;
    }
    const char *lib = NULL;
    if (cublasCreate(&b->cublas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(b->cublas, b->stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetMathMode(b->cublas, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS)
        lib = "cuBLAS";
    else if (cublasLtCreate(&b->cublaslt) != CUBLAS_STATUS_SUCCESS)
        lib = "cuBLASLt";
#ifdef EDM2_HAVE_CUDNN
    else if (cudnnCreate(&b->cudnn) != CUDNN_STATUS_SUCCESS || cudnnSetStream(b->cudnn, b->stream) != CUDNN_STATUS_SUCCESS)
        lib = "cuDNN";
#endif
    if (lib) {
        release(b);
        return edm2_logf(host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INTERNAL, "cannot create a %s handle on CUDA device %d",
                         lib, b->device);
    }
    /* NCCL for several processes, or for one when the host runs its data-parallel path in a group of one
     * (EDM2_GROUP_OF_ONE=1: the all-reduce and broadcast checked on a single GPU). */
    const char *one = getenv("EDM2_GROUP_OF_ONE");
    if (b->world > 1 || (one && !strcmp(one, "1"))) {
#ifdef EDM2_HAVE_NCCL
        ncclUniqueId id;
        ncclResult_t r = ncclSuccess;
        if (host->rank == 0) r = ncclGetUniqueId(&id);
        if (b->world > 1 && host->comm_broadcast(host->ctx, &id, sizeof id, 0) != EDM2_OK) {
            release(b);
            return EDM2_ERR_INTERNAL; /* the host logged why */
        }
        if (r == ncclSuccess) r = ncclCommInitRank(&b->nccl, b->world, id, host->rank);
        if (r != ncclSuccess) {
            release(b);
            return edm2_logf(host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INTERNAL, "NCCL set-up of %d processes: %s",
                             host->world_size, ncclGetErrorString(r));
        }
        if (host->rank == 0)
            edm2_logf(host, EDM2_LOG_INFO, "cuda", EDM2_OK, "gradients and parameters shared by NCCL among %d process%s",
                      b->world, b->world == 1 ? " (a group of one)" : "es");
#else
        release(b);
        return edm2_logf(host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INVALID,
                         "the data-parallel path (%d process%s) needs NCCL, and this cuda backend was built without it "
                         "(set EDM2_NCCL_ROOT)",
                         host->world_size, host->world_size == 1 ? "" : "es");
#endif
    }
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, b->device);
    snprintf(b->name, sizeof b->name, "%.100s (CUDA device %d, %.0f GiB%s)", prop.name, b->device,
             prop.totalGlobalMem / 1073741824.0, b->debug_sync ? ", debug_sync" : "");
    *out = b;
    return EDM2_OK;
}

static void cuda_destroy(edm2_backend *b) {
    if (b) release(b);
}

static const char *cuda_device_name(edm2_backend *b) { return b->name; }

/* After an allocation the pool could not serve: waits for the frees queued on the stream and returns the
 * pool's unused memory to the device (the release threshold above keeps it otherwise), so that a retry can find
 * one block where the pool held smaller free ones (a pass that ran out of memory, tried again in smaller passes:
 * batch_gpu = auto). 1 when the retry is worth it; 0 inside a stream capture, which a wait would invalidate. */
static int trim_pool(edm2_backend *b) {
    (void)cudaGetLastError(); /* (the failed allocation's error is answered here) */
    cudaStreamCaptureStatus capture;
    cudaMemPool_t pool;
    return cudaStreamIsCapturing(b->stream, &capture) == cudaSuccess && capture == cudaStreamCaptureStatusNone &&
           cudaStreamSynchronize(b->stream) == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, b->device) == cudaSuccess &&
           cudaMemPoolTrimTo(pool, 0) == cudaSuccess;
}

static edm2_status cuda_alloc(edm2_backend *b, size_t bytes, void **out) {
    ENTER(b, "alloc");
    if (b->nallocs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        alloc_rec *a = (alloc_rec *)realloc(b->allocs, cap * sizeof *a);
        if (!a) return EDM2_ERR_NOMEM;
        b->allocs = a;
        b->cap = cap;
    }
    void *p = NULL;
    size_t padded = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    cudaError_t e = cudaMallocAsync(&p, padded ? padded : ALIGN, b->stream);
    if (e == cudaErrorMemoryAllocation && trim_pool(b)) e = cudaMallocAsync(&p, padded ? padded : ALIGN, b->stream);
    if (e != cudaSuccess)
        return edm2_logf(b->host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_NOMEM, "cannot allocate %zu bytes of device memory: %s",
                         bytes, cudaGetErrorString(e));
    if ((uintptr_t)p % ALIGN) {
        cudaFreeAsync(p, b->stream);
        return edm2_logf(b->host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INTERNAL, "the memory pool returned a pointer not "
                         "aligned to %d bytes", ALIGN);
    }
    CK(b, cudaMemsetAsync(p, 0, padded, b->stream), "alloc (zeroing)");
    b->allocs[b->nallocs++] = alloc_rec{p, bytes};
    b->current += bytes;
    if (b->current > b->peak) b->peak = b->current;
    *out = p;
    return done(b, "alloc");
}

/* Stream-ordered: the memory returns to the pool when the work queued before it is done. */
static void cuda_free(edm2_backend *b, void *p) {
    if (!p) return;
    for (size_t i = 0; i < b->nallocs; i++)
        if (b->allocs[i].p == p) {
            b->current -= b->allocs[i].bytes;
            b->allocs[i] = b->allocs[--b->nallocs];
            break;
        }
    cudaError_t e = cudaSetDevice(b->device);
    if (e == cudaSuccess) e = cudaFreeAsync(p, b->stream);
    if (e != cudaSuccess) fail(b, e, "free");
}

static edm2_status cuda_upload(edm2_backend *b, void *dst, const void *src, size_t bytes) {
    ENTER(b, "upload");
    CK(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, b->stream), "upload");
    CK(b, cudaStreamSynchronize(b->stream), "upload"); /* the host buffer may change after the call */
    return EDM2_OK;
}

static edm2_status cuda_download(edm2_backend *b, void *dst, const void *src, size_t bytes) {
    ENTER(b, "download");
    CK(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, b->stream), "download");
    CK(b, cudaStreamSynchronize(b->stream), "download");
    return EDM2_OK;
}

static edm2_status cuda_copy(edm2_backend *b, void *dst, const void *src, size_t bytes) {
    ENTER(b, "copy");
    CK(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, b->stream), "copy");
    return done(b, "copy");
}

static edm2_status cuda_synchronize(edm2_backend *b) {
    ENTER(b, "synchronize");
    CK(b, cudaStreamSynchronize(b->stream), "synchronize");
    return EDM2_OK;
}

static void cuda_memory_stats(edm2_backend *b, size_t *current, size_t *peak) {
    if (current) *current = b->current;
    if (peak) *peak = b->peak;
}

/* Explicitly rounded operations (__fmul_rn, __fadd_rn, __fsub_rn are never fused): the CPU's arithmetic. */
__global__ void k_fill(float *x, float v, size_t n) { STRIDE_LOOP(i, n) x[i] = v; }
__global__ void k_scale(float *x, float a, size_t n) { STRIDE_LOOP(i, n) x[i] = __fmul_rn(x[i], a); }
__global__ void k_axpby(float *y, float a, const float *x, float beta, size_t n) {
    STRIDE_LOOP(i, n) y[i] = __fadd_rn(__fmul_rn(a, x[i]), __fmul_rn(beta, y[i]));
}
__global__ void k_add(float *y, const float *x, size_t n) { STRIDE_LOOP(i, n) y[i] = __fadd_rn(y[i], x[i]); }
__global__ void k_lerp(float *y, const float *x, float t, size_t n) {
    STRIDE_LOOP(i, n) y[i] = __fadd_rn(y[i], __fmul_rn(t, __fsub_rn(x[i], y[i])));
}
__global__ void k_nan_to_zero(float *x, size_t n, unsigned long long *count) {
    unsigned long long local = 0;
    STRIDE_LOOP(i, n) if (!isfinite(x[i])) {
        x[i] = 0.0f;
        local++;
    }
    if (local) atomicAdd(count, local);
}
__global__ void k_randn(float *x, size_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    STRIDE_LOOP(i, n) x[i] = edm2_philox_normal(seed, stream, offset + i);
}
__global__ void k_rand(float *x, size_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    STRIDE_LOOP(i, n) x[i] = edm2_philox_uniform(seed, stream, offset + i);
}

/* Partial sum of chunk c: x[i] * (y ? y[i] : 1) for i in the chunk, in order, in double (the product of
 * two floats is exact in double, so a fused multiply-add rounds exactly as the CPU's add does). */
__global__ void k_chunk_sums(const float *x, const float *y, size_t n, size_t nchunks, double *partials) {
    STRIDE_LOOP(c, nchunks) {
        size_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)x[i] * (y ? (double)y[i] : 1.0);
        partials[c] = s;
    }
}
/* The chunks in order, into partials[nchunks]. */
__global__ void k_chunks_total(double *partials, size_t nchunks) {
    double s = 0;
    for (size_t c = 0; c < nchunks; c++) s += partials[c];
    partials[nchunks] = s;
}

#define LAUNCH_OP(b, kernel, n, ...)                                     \
    do {                                                                 \
        ENTER(b, #kernel);                                               \
        if ((n) == 0) return EDM2_OK;                                    \
        kernel<<<blocks_for(n), THREADS, 0, (b)->stream>>>(__VA_ARGS__); \
        return done(b, #kernel);                                         \
    } while (0)

static edm2_status cuda_fill(edm2_backend *b, float *x, float v, size_t n) { LAUNCH_OP(b, k_fill, n, x, v, n); }
static edm2_status cuda_scale(edm2_backend *b, float *x, float a, size_t n) { LAUNCH_OP(b, k_scale, n, x, a, n); }
static edm2_status cuda_axpby(edm2_backend *b, float *y, float a, const float *x, float beta, size_t n) {
    LAUNCH_OP(b, k_axpby, n, y, a, x, beta, n);
}
static edm2_status cuda_lerp(edm2_backend *b, float *y, const float *x, float t, size_t n) {
    LAUNCH_OP(b, k_lerp, n, y, x, t, n);
}
static edm2_status cuda_randn(edm2_backend *b, float *x, size_t n, edm2_rng r) {
    LAUNCH_OP(b, k_randn, n, x, n, r.seed, r.stream, r.offset);
}
static edm2_status cuda_rand(edm2_backend *b, float *x, size_t n, edm2_rng r) {
    LAUNCH_OP(b, k_rand, n, x, n, r.seed, r.stream, r.offset);
}

static edm2_status reduce(edm2_backend *b, const float *x, const float *y, size_t n, double *out) {
    *out = 0;
    ENTER(b, "reduce");
    if (n == 0) return EDM2_OK;
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    if (nchunks + 1 > b->partials_cap) {
        if (b->partials) CK(b, cudaFreeAsync(b->partials, b->stream), "reduce");
        b->partials = NULL;
        CK(b, cudaMallocAsync((void **)&b->partials, (nchunks + 1) * sizeof(double), b->stream), "reduce");
        b->partials_cap = nchunks + 1;
    }
    k_chunk_sums<<<blocks_for(nchunks), THREADS, 0, b->stream>>>(x, y, n, nchunks, b->partials);
    k_chunks_total<<<1, 1, 0, b->stream>>>(b->partials, nchunks);
    CK(b, cudaGetLastError(), "reduce");
    CK(b, cudaMemcpyAsync(out, b->partials + nchunks, sizeof(double), cudaMemcpyDeviceToHost, b->stream), "reduce");
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
    ENTER(b, "nan_to_zero");
    unsigned long long count = 0;
    CK(b, cudaMemsetAsync(b->counter, 0, sizeof count, b->stream), "nan_to_zero");
    if (n) {
        k_nan_to_zero<<<blocks_for(n), THREADS, 0, b->stream>>>(x, n, b->counter);
        CK(b, cudaGetLastError(), "nan_to_zero");
    }
    CK(b, cudaMemcpyAsync(&count, b->counter, sizeof count, cudaMemcpyDeviceToHost, b->stream), "nan_to_zero");
    CK(b, cudaStreamSynchronize(b->stream), "nan_to_zero");
    if (replaced) *replaced = (size_t)count;
    return EDM2_OK;
}

/* ABI 1.1: the handles CUDA compute plugins order their work with. */
static edm2_status cuda_native(edm2_backend *b, edm2_backend_native *out) {
    edm2_backend_native n;
    memset(&n, 0, sizeof n);
    n.struct_size = (uint32_t)sizeof n;
    n.device = b->device;
    n.stream = (void *)b->stream;
    n.cublas = (void *)b->cublas;
    n.cublaslt = (void *)b->cublaslt;
#ifdef EDM2_HAVE_CUDNN
    n.cudnn = (void *)b->cudnn;
#endif
    n.workspace = b->workspace;
    n.workspace_bytes = WORKSPACE_BYTES;
    uint32_t size = out->struct_size < n.struct_size ? out->struct_size : n.struct_size;
    memcpy(out, &n, size);
    out->struct_size = size;
    return EDM2_OK;
}

/* Page-locked host memory, and uploads from it queued on the stream without waiting. */
static edm2_status cuda_host_alloc(edm2_backend *b, size_t bytes, void **out) {
    ENTER(b, "host_alloc");
    CK(b, cudaMallocHost(out, bytes ? bytes : 1), "page-locked host memory");
    return EDM2_OK;
}

static void cuda_host_free(edm2_backend *b, void *p) {
    if (!p) return;
    cudaSetDevice(b->device);
    cudaFreeHost(p);
}

static edm2_status cuda_upload_async(edm2_backend *b, void *dst, const void *src, size_t bytes) {
    ENTER(b, "upload_async");
    CK(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, b->stream), "upload_async");
    return done(b, "upload_async");
}

/* ---- Data-parallel training (ABI 1.2): this process's parts added in order, then NCCL's all-reduce ---- */

static edm2_status cuda_reduce_sum(edm2_backend *b, const float *const *parts, int nparts, float *out, size_t n) {
    ENTER(b, "reduce_sum");
    if (nparts < 1) return edm2_logf(b->host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INVALID, "reduce_sum of %d parts", nparts);
    if (out != parts[0]) CK(b, cudaMemcpyAsync(out, parts[0], n * sizeof *out, cudaMemcpyDeviceToDevice, b->stream), "reduce_sum");
    for (int k = 1; k < nparts && n; k++) k_add<<<blocks_for(n), THREADS, 0, b->stream>>>(out, parts[k], n);
#ifdef EDM2_HAVE_NCCL
    if (b->nccl) {
        ncclResult_t r = ncclAllReduce(out, out, n, ncclFloat, ncclSum, b->nccl, b->stream);
        if (r != ncclSuccess)
            return edm2_logf(b->host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INTERNAL, "NCCL all-reduce: %s", ncclGetErrorString(r));
    }
#endif
    return done(b, "reduce_sum");
}

static edm2_status cuda_broadcast(edm2_backend *b, void *x, size_t bytes, int root) {
    ENTER(b, "broadcast");
#ifdef EDM2_HAVE_NCCL
    if (b->nccl) {
        ncclResult_t r = ncclBroadcast(x, x, bytes, ncclChar, root, b->nccl, b->stream);
        if (r != ncclSuccess)
            return edm2_logf(b->host, EDM2_LOG_ERROR, "cuda", EDM2_ERR_INTERNAL, "NCCL broadcast: %s", ncclGetErrorString(r));
    }
#else
    (void)x, (void)bytes, (void)root;
#endif
    return done(b, "broadcast");
}

static const edm2_backend_vtable k_vtable = {
    sizeof(edm2_backend_vtable), cuda_create, cuda_destroy,  cuda_device_name, cuda_alloc, cuda_free,
    cuda_upload,                 cuda_download, cuda_copy,   cuda_synchronize, cuda_memory_stats,
    cuda_fill,                   cuda_scale,  cuda_axpby,    cuda_lerp,        cuda_sum,   cuda_dot,
    cuda_norm2,                  cuda_nan_to_zero, cuda_randn, cuda_rand,     cuda_native,
    cuda_host_alloc,             cuda_host_free, cuda_upload_async, cuda_reduce_sum, cuda_broadcast,
};

static const edm2_config_key k_keys[] = {
    {"device", EDM2_CFG_INT, "-1", "CUDA device index; -1 = the process's local rank (one GPU per process; 0 alone)"},
    {"debug_sync", EDM2_CFG_BOOL, "false", "synchronise after every operation, so an error names the operation (slow)"},
};

static const edm2_plugin_desc k_desc = {
    sizeof(edm2_plugin_desc), "cuda", EDM2_KIND_BACKEND, EDM2_BACKEND_CUDA, "1.1.0",
    "CUDA device memory (stream-ordered pool), vector kernels bitwise equal to the CPU backend's, Philox4x32-10",
    k_keys, sizeof k_keys / sizeof *k_keys, cuda_probe, &k_vtable,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
