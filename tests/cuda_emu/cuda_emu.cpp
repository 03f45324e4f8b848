/* cuda_emu.cpp: the fibers of cuda_emu.h, and on host memory the parts of the CUDA runtime that the
 * emulated tests and plugins call: allocation, copies, streams, and stream capture into CUDA graphs (what a
 * capture records is run by the graph's launches; calls that a capture forbids invalidate it). */

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "cuda_emu.h"
#include "fiber.h"

/* One launch runs at a time (emu_enqueue holds run_lock), so the ids the kernels read are plain globals:
 * thread-local ones cost a library call per read, which dominated the emulation's time. */
EmuDim emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;

/* ---- fibers: one per thread of the block being run ---- */

namespace {
enum Wait { RUNNING, AT_SHUFFLE, AT_SYNC, DONE };
struct Block {
    Fiber sched;                   /* the launch's own stack */
    std::vector<Fiber> ctx;        /* the threads' */
    std::vector<Wait> wait;
    std::vector<float> slot, read; /* shuffle values, per thread */
    unsigned block, nthreads;
    bool fibers; /* every thread is a fiber (the block meets at a shuffle or a barrier) */
    void (*entry)(void *);
    void *arg;
};
Block *cur;
unsigned cur_thread;
std::vector<std::vector<char>> stacks;
std::recursive_mutex run_lock;
thread_local cudaError_t last_error = cudaSuccess;
const size_t stack_bytes = 128 * 1024;

void enter(Block *b, unsigned t) {
    cur = b, cur_thread = t;
    emu_threadIdx = {t, 0, 0};
    emu_blockIdx = {b->block, 0, 0};
}

/* A thread's fiber: the kernel, then back to the scheduler for good. */
void thread_main() {
    fiber_started();
    Block *b = cur;
    const unsigned t = cur_thread;
    b->entry(b->arg);
    b->wait[t] = DONE;
    fiber_switch(&b->ctx[t], &b->sched, true);
}

void make_fiber(Block *b, unsigned t) {
    if (stacks.size() <= t) stacks.resize(t + 1);
    stacks[t].resize(stack_bytes);
    fiber_make(&b->ctx[t], stacks[t].data(), stack_bytes, thread_main);
    b->wait[t] = RUNNING;
}

void resume(Block *b, unsigned t) {
    b->wait[t] = RUNNING;
    enter(b, t);
    fiber_switch(&b->sched, &b->ctx[t], false);
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
    fiber_switch(&b->ctx[t], &b->sched, false);
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
    b.sched = Fiber{};
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
            if (n_shfl && n_shfl != n_live) { /* the others wait at __syncthreads: a deadlock on the GPU */
                fprintf(stderr, "cuda_emu: lanes of warp %u wait at a shuffle while others wait at __syncthreads\n", w);
                abort();
            }
            if (n_shfl) {
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

/* ---- streams and CUDA graphs ---- */

struct CUstream_st {
    bool capturing, invalidated;
    std::vector<std::function<void()>> recorded;
};
struct CUgraph_st {
    std::vector<std::function<void()>> work;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> work;
};

namespace {
thread_local std::vector<cudaStream_t> capturing_streams; /* this thread's (cudaStreamCaptureModeThreadLocal) */

/* A call that a capture forbids (it would wait for the device or allocate synchronously): the captures of
 * this thread are invalidated and the call fails, as CUDA does. */
bool forbidden_in_capture(const char *call) {
    if (capturing_streams.empty()) return false;
    fprintf(stderr, "cuda_emu: %s during a stream capture: the capture is invalidated\n", call);
    for (cudaStream_t s : capturing_streams) s->invalidated = true;
    return true;
}

/* "Device" memory: aligned as cudaMalloc's (256 bytes), exactly n bytes (so that ASan sees overruns). */
cudaError_t device_alloc(void **p, size_t n) {
    if (posix_memalign(p, 256, n ? n : 1)) *p = nullptr;
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
} // namespace

void emu_enqueue(cudaStream_t stream, std::function<void()> work) {
    if (stream && stream->capturing) {
        stream->recorded.push_back(std::move(work));
    } else {
        std::lock_guard<std::recursive_mutex> hold(run_lock);
        work();
    }
}

/* ---- the CUDA runtime on host memory (one device; work runs when queued, so streams are always idle) ---- */

extern "C" {
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
    if (!s) return cudaErrorStreamCaptureUnsupported;
    if (s->capturing) return cudaErrorIllegalState;
    s->capturing = true, s->invalidated = false;
    s->recorded.clear();
    capturing_streams.push_back(s);
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    *graph = nullptr;
    if (!s || !s->capturing) return cudaErrorIllegalState;
    s->capturing = false;
    capturing_streams.erase(std::remove(capturing_streams.begin(), capturing_streams.end(), s), capturing_streams.end());
    if (s->invalidated) return cudaErrorStreamCaptureInvalidated;
    *graph = new CUgraph_st{std::move(s->recorded)};
    s->recorded.clear();
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    if (!graph) return cudaErrorInvalidValue;
    *exec = new CUgraphExec_st{graph->work};
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    if (!exec) return cudaErrorInvalidValue;
    for (const auto &w : exec->work) emu_enqueue(s, w);
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete e;
    return cudaSuccess;
}
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
    *s = new CUstream_st{false, false, {}};
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    return s && s->capturing && forbidden_in_capture("cudaStreamSynchronize") ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    return forbidden_in_capture("cudaDeviceSynchronize") ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *st) {
    *st = s && s->capturing ? (s->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive)
                            : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
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
/* Stream-ordered allocation is allowed in a capture (CUDA records it as a node): here it is done at once,
 * and a free is queued. */
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t) { return device_alloc(p, n); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t stream) {
    emu_enqueue(stream, [=]() { free(p); });
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    *free_bytes = *total = (size_t)1 << 32;
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t n) {
    return forbidden_in_capture("cudaMalloc") ? cudaErrorStreamCaptureUnsupported : device_alloc(p, n);
}
cudaError_t cudaFree(void *p) {
    if (forbidden_in_capture("cudaFree")) return cudaErrorStreamCaptureUnsupported;
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    if (forbidden_in_capture("cudaMemcpy")) return cudaErrorStreamCaptureUnsupported;
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t stream) {
    emu_enqueue(stream, [=]() { memmove(d, s, n); });
    return cudaSuccess;
}
cudaError_t cudaMemset(void *d, int v, size_t n) {
    if (forbidden_in_capture("cudaMemset")) return cudaErrorStreamCaptureUnsupported;
    memset(d, v, n);
    return cudaSuccess;
}
/* Events: the host's clock when the stream reaches the record (what a timing measures here is the
 * emulation's speed, not a GPU's). */
struct emu_event {
    std::chrono::steady_clock::time_point t;
};
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = (cudaEvent_t) new emu_event();
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete (emu_event *)e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
    emu_event *ev = (emu_event *)e;
    emu_enqueue(stream, [=]() { ev->t = std::chrono::steady_clock::now(); });
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) {
    return forbidden_in_capture("cudaEventSynchronize") ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = std::chrono::duration<float, std::milli>(((emu_event *)b)->t - ((emu_event *)a)->t).count();
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t stream) {
    emu_enqueue(stream, [=]() { memset(d, v, n); });
    return cudaSuccess;
}
}
