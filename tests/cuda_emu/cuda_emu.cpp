/* cuda_emu.cpp: the fibers of cuda_emu.h, and on host memory the parts of the CUDA runtime and cuBLAS that
 * the emulated kernel tests call (cuBLAS's column-major products through OpenBLAS, with its argument
 * checks). cuDNN is not emulated: its functions, linked in with the products library, fail if called. */
#include <cblas.h>
#include <cublasLt.h>
#include <cublas_v2.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_emu.h"

thread_local EmuDim emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;

/* ---- fibers: one per thread of the block being run ---- */

namespace {
enum Wait { RUNNING, AT_SHUFFLE, AT_SYNC, DONE };
struct Block {
    ucontext_t sched;
    std::vector<ucontext_t> ctx;
    std::vector<Wait> wait;
    std::vector<float> slot, read; /* shuffle values, per thread */
    unsigned block, nthreads;
    bool fibers; /* every thread is a fiber (the block meets at a shuffle or a barrier) */
    void (*entry)(void *);
    void *arg;
};
thread_local Block *cur;
thread_local unsigned cur_thread;
thread_local std::vector<std::vector<char>> stacks;
thread_local cudaError_t last_error = cudaSuccess;
const size_t stack_bytes = 128 * 1024;

void enter(Block *b, unsigned t) {
    cur = b, cur_thread = t;
    emu_threadIdx = {t, 0, 0};
    emu_blockIdx = {b->block, 0, 0};
}

void thread_main(unsigned t) {
    cur->entry(cur->arg);
    cur->wait[t] = DONE;
}

void make_fiber(Block *b, unsigned t) {
    if (stacks.size() <= t) stacks.resize(t + 1);
    stacks[t].resize(stack_bytes);
    getcontext(&b->ctx[t]);
    b->ctx[t].uc_stack.ss_sp = stacks[t].data();
    b->ctx[t].uc_stack.ss_size = stack_bytes;
    b->ctx[t].uc_link = &b->sched;
    makecontext(&b->ctx[t], (void (*)())thread_main, 1, t);
    b->wait[t] = RUNNING;
}

void resume(Block *b, unsigned t) {
    b->wait[t] = RUNNING;
    enter(b, t);
    swapcontext(&b->sched, &b->ctx[t]);
}

/* A thread stops at a shuffle or a barrier until the scheduler releases it. */
void block_at(Wait w, const char *what) {
    Block *b = cur;
    const unsigned t = cur_thread;
    if (!b->fibers && t != 0) {
        fprintf(stderr, "cuda_emu: %s in thread %u of a block whose thread 0 had none (divergent block)\n", what, t);
        abort();
    }
    b->wait[t] = w;
    swapcontext(&b->ctx[t], &b->sched);
    enter(b, t);
}
} // namespace

void emu_bad_launch(unsigned grid, unsigned block) {
    fprintf(stderr, "cuda_emu: launch of %u blocks of %u threads refused\n", grid, block);
    last_error = cudaErrorInvalidConfiguration;
}

/* Thread 0 runs first as a fiber. If it ends without a shuffle or barrier, the block has none (threads meet
 * at those together: block_at checks), and threads 1.. run as plain calls, which is fast. Else every
 * thread runs as a fiber: each runs until it stops; a warp whose live lanes all wait at a shuffle exchange
 * their values and go on; when every live thread waits at __syncthreads, all go on. */
void emu_run_block(void (*entry)(void *), void *arg, unsigned block, unsigned nthreads) {
    Block b;
    b.block = block, b.nthreads = nthreads, b.entry = entry, b.arg = arg, b.fibers = false;
    b.ctx.resize(nthreads), b.wait.assign(nthreads, RUNNING), b.slot.resize(nthreads), b.read.resize(nthreads);
    make_fiber(&b, 0);
    resume(&b, 0);
    if (b.wait[0] == DONE) {
        for (unsigned t = 1; t < nthreads; t++) {
            enter(&b, t);
            entry(arg);
        }
        cur = nullptr;
        return;
    }
    b.fibers = true;
    for (unsigned t = 1; t < nthreads; t++) make_fiber(&b, t), resume(&b, t);
    for (;;) {
        bool progress = false, live = false, all_sync = true;
        for (unsigned w = 0; w * 32 < nthreads; w++) { /* shuffles, warp by warp */
            const unsigned t0 = w * 32, t1 = t0 + 32 < nthreads ? t0 + 32 : nthreads;
            unsigned n_live = 0, n_shfl = 0;
            for (unsigned t = t0; t < t1; t++) n_live += b.wait[t] != DONE, n_shfl += b.wait[t] == AT_SHUFFLE;
            if (n_shfl && n_shfl != n_live && n_shfl + 0 != n_live) {
                bool others_sync = false;
                for (unsigned t = t0; t < t1; t++) others_sync |= b.wait[t] == AT_SYNC;
                if (others_sync) {
                    fprintf(stderr, "cuda_emu: lanes of warp %u wait at a shuffle while others wait at __syncthreads\n", w);
                    abort();
                }
            }
            if (n_shfl && n_shfl == n_live) {
                for (unsigned t = t0; t < t1; t++) b.read[t] = b.slot[t];
                for (unsigned t = t0; t < t1; t++)
                    if (b.wait[t] == AT_SHUFFLE) resume(&b, t);
                progress = true;
            }
        }
        for (unsigned t = 0; t < nthreads; t++) live |= b.wait[t] != DONE, all_sync &= b.wait[t] == DONE || b.wait[t] == AT_SYNC;
        if (!live) break;
        if (all_sync && !progress) {
            for (unsigned t = 0; t < nthreads; t++)
                if (b.wait[t] == AT_SYNC) resume(&b, t);
            progress = true;
        }
        if (!progress) {
            fprintf(stderr, "cuda_emu: block %u cannot go on (a shuffle not reached by all of a warp's lanes, or a "
                            "__syncthreads not reached by all threads)\n", block);
            abort();
        }
    }
    cur = nullptr;
}

float emu_shfl_xor(float v, int lane_mask) {
    Block *b = cur;
    const unsigned t = cur_thread;
    b->slot[t] = v;
    block_at(AT_SHUFFLE, "__shfl_xor_sync");
    const unsigned partner = (t & ~31u) | ((t & 31u) ^ (unsigned)lane_mask);
    return b->read[partner];
}

void emu_syncthreads(void) { block_at(AT_SYNC, "__syncthreads"); }

/* ---- the CUDA runtime on host memory (one device, streams that are always idle) ---- */

extern "C" {
cudaError_t cudaGetLastError(void) {
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "error (CUDA emulation)"; }
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaStreamCreate(cudaStream_t *s) {
    *s = (cudaStream_t)malloc(1);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    free(s);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr attr, int) {
    *v = attr == cudaDevAttrMemoryPoolsSupported ? 1 : 0;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulation on the CPU");
    p->totalGlobalMem = (size_t)1 << 32;
    p->major = 9, p->warpSize = 32, p->maxThreadsPerBlock = 1024, p->multiProcessorCount = 1;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int) {
    static int the_pool;
    *pool = (cudaMemPool_t)&the_pool;
    return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void *) { return cudaSuccess; }
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t) { return cudaMalloc(p, n); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t) { return cudaFree(p); }
cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    *free_bytes = *total = (size_t)1 << 32;
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t n) { /* aligned as cudaMalloc's (256 bytes), exactly n bytes for ASan */
    if (posix_memalign(p, 256, n ? n : 1)) *p = nullptr;
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) {
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *d, int v, size_t n) {
    memset(d, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) {
    memset(d, v, n);
    return cudaSuccess;
}

/* ---- cuBLAS: column-major C = alpha op(A) op(B) + beta C ---- */

struct cublasContext {
    cudaStream_t stream;
};
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = (cublasHandle_t)calloc(1, sizeof(cublasContext));
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = (cublasLtHandle_t)malloc(1);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusString(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "success" : "cuBLAS error (emulation)"; }
}

namespace {
/* cuBLAS's checks of the shapes and leading dimensions. */
bool bad_args(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc) {
    auto at_least = [](int ld, int rows) { return ld >= (rows > 1 ? rows : 1); };
    return m < 0 || n < 0 || k < 0 || !at_least(lda, ta == CUBLAS_OP_N ? m : k) ||
           !at_least(ldb, tb == CUBLAS_OP_N ? k : n) || !at_least(ldc, m);
}
CBLAS_TRANSPOSE op(cublasOperation_t t) { return t == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

float load(cudaDataType_t t, const void *p, size_t i) {
    if (t == CUDA_R_32F) return ((const float *)p)[i];
    if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return __half2float(((const __half *)p)[i]);
}
void store(cudaDataType_t t, void *p, size_t i, float v) {
    if (t == CUDA_R_32F) ((float *)p)[i] = v;
    else if (t == CUDA_R_16BF) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((__half *)p)[i] = __float2half_rn(v);
}
/* A column-major rows x cols matrix with leading dimension ld, as float32. */
std::vector<float> widen(cudaDataType_t t, const void *p, int rows, int cols, int ld) {
    std::vector<float> f((size_t)ld * (cols > 0 ? cols : 0));
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++) f[(size_t)c * ld + r] = load(t, p, (size_t)c * ld + r);
    return f;
}
cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
                    cudaDataType_t at, int lda, const void *B, cudaDataType_t bt, int ldb, float beta, void *C,
                    cudaDataType_t ct, int ldc) {
    if (bad_args(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    const std::vector<float> a = widen(at, A, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda);
    const std::vector<float> b = widen(bt, B, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb);
    std::vector<float> c((size_t)ldc * n, 0.0f); /* beta = 0: C is not read */
    if (beta != 0) c = widen(ct, C, m, n, ldc);
    if (k == 0) /* alpha op(A) op(B) is zero */
        for (float &v : c) v *= beta;
    else
        cblas_sgemm(CblasColMajor, op(ta), op(tb), m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) store(ct, C, (size_t)j * ldc + i, c[(size_t)j * ldc + i]);
    return CUBLAS_STATUS_SUCCESS;
}
size_t type_size(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }
} // namespace

extern "C" {
cublasStatus_t cublasSgemm_v2(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
    return gemm(ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, *beta, C, CUDA_R_32F, ldc);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda, long long sa, const float *B, int ldb,
                                         long long sb, const float *beta, float *C, int ldc, long long sc, int batch) {
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    for (int i = 0; i < batch; i++) {
        const cublasStatus_t s = gemm(ta, tb, m, n, k, *alpha, A + i * sa, CUDA_R_32F, lda, B + i * sb, CUDA_R_32F, ldb,
                                      *beta, C + i * sc, CUDA_R_32F, ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType_t at, int lda, long long sa,
                                          const void *B, cudaDataType_t bt, int ldb, long long sb, const void *beta,
                                          void *C, cudaDataType_t ct, int ldc, long long sc, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t) {
    if (compute != CUBLAS_COMPUTE_32F || batch < 0 || at != bt) return CUBLAS_STATUS_NOT_SUPPORTED;
    for (int i = 0; i < batch; i++) {
        const cublasStatus_t s =
            gemm(ta, tb, m, n, k, *(const float *)alpha, (const char *)A + i * sa * type_size(at), at, lda,
                 (const char *)B + i * sb * type_size(bt), bt, ldb, *(const float *)beta,
                 (char *)C + i * sc * type_size(ct), ct, ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B, cudaDataType_t bt,
                            int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo) {
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1,
                                      compute, algo);
}
}
