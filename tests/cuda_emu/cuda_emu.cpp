/* cuda_emu.cpp: the fibers of cuda_emu.h (run in the order EDM2_EMU_ORDER sets), and on host memory the
 * parts of the CUDA runtime that the emulated tests and plugins call: allocation, copies, streams (their
 * work run when queued, or with EDM2_EMU_DEFER=1 at the host's next wait), and stream capture into CUDA
 * graphs (what a capture records is run by the graph's launches; calls that a capture forbids invalidate
 * it). */

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
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
    std::vector<unsigned> mask, xlane; /* each thread's shuffle: its mask and the lane mask it xors with */
    std::vector<void *> fresh;         /* the shared arrays filled with 0xff for this block */
    std::vector<unsigned> chain; /* the threads to run now, in order: each hands over to the next when it stops */
    size_t chain_at;             /* the one running */
    unsigned block;
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

/* Where a thread that stops (at a shuffle, a barrier or its end) goes: the next thread of the chain, which
 * then runs, or the scheduler after the last. Handing over from thread to thread takes one switch per thread
 * instead of two (there and back to the scheduler), in the same order. */
Fiber *next_in_chain(Block *b) {
    if (++b->chain_at == b->chain.size()) return &b->sched;
    const unsigned u = b->chain[b->chain_at];
    b->wait[u] = RUNNING;
    enter(b, u);
    return &b->ctx[u];
}

/* Runs the threads of b->chain one after another, each until it stops; returns when the last has. */
void run_chain(Block *b) {
    if (b->chain.empty()) return;
    b->chain_at = (size_t)-1;
    fiber_switch(&b->sched, next_in_chain(b), false);
}

/* A thread's fiber: the kernel, then on to the next thread for good. */
void thread_main() {
    fiber_started();
    Block *b = cur;
    const unsigned t = cur_thread;
    b->entry(b->arg);
    b->wait[t] = DONE;
    fiber_switch(&b->ctx[t], next_in_chain(b), true);
}

void make_fiber(Block *b, unsigned t) {
    if (stacks.size() <= t) stacks.resize(t + 1);
    stacks[t].resize(stack_bytes);
    fiber_make(&b->ctx[t], stacks[t].data(), stack_bytes, thread_main);
    b->wait[t] = RUNNING;
}

/* A thread stops at a shuffle or a barrier until the scheduler releases it (the next thread runs meanwhile). */
void block_at(Wait w, const char *what) {
    Block *b = cur;
    const unsigned t = cur_thread;
    if (!b->fibers && t != 0) {
        fprintf(stderr, "cuda_emu: %s in thread %u of a block whose thread 0 had none (divergent block)\n", what, t);
        abort();
    }
    b->wait[t] = w;
    fiber_switch(&b->ctx[t], next_in_chain(b), false);
    enter(b, t);
}
} // namespace

void emu_bad_launch(unsigned grid, unsigned block) {
    fprintf(stderr, "cuda_emu: launch of %u blocks of %u threads refused\n", grid, block);
    last_error = cudaErrorInvalidConfiguration;
}

namespace {
/* ---- the order in which blocks and threads run (EDM2_EMU_ORDER) ----
 * forward (the default): blocks and threads by index; reverse: the other way round; shuffle[:SEED]: a seeded
 * random order, new for each launch and block (warps in a random order, each warp's lanes in a random order).
 * Between two barriers (or shuffles) each thread runs until it stops, so a thread that reads what another
 * writes in the same span reads the new value where the writer ran first and the old one where it did not. A
 * result that changes with the order is therefore a race on the GPU: a missing __syncthreads or __syncwarp, or
 * a block that reads what another block writes in the same launch. */
enum Order { FORWARD, REVERSE, SHUFFLE };
struct OrderCfg {
    Order order;
    uint64_t seed;
};

OrderCfg order_cfg(void) { /* read at each launch (a test may change it between launches) */
    const char *e = getenv("EDM2_EMU_ORDER");
    if (!e || !*e || !strcmp(e, "forward")) return {FORWARD, 0};
    if (!strcmp(e, "reverse")) return {REVERSE, 0};
    if (!strncmp(e, "shuffle", 7) && (e[7] == 0 || e[7] == ':')) {
        char *end = nullptr;
        const uint64_t seed = e[7] ? strtoull(e + 8, &end, 10) : 1;
        if (!e[7] || (end != e + 8 && !*end)) return {SHUFFLE, seed};
    }
    fprintf(stderr, "cuda_emu: EDM2_EMU_ORDER=%s: expected forward, reverse or shuffle[:SEED]\n", e);
    abort();
}

uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void shuffle(unsigned *v, unsigned n, uint64_t *s) { /* Fisher-Yates */
    for (unsigned i = n; i > 1; i--) std::swap(v[i - 1], v[splitmix(s) % i]);
}

/* The order of n items (blocks, or a warp's lanes). */
void order_items(std::vector<unsigned> *o, unsigned base, unsigned n, Order order, uint64_t *s) {
    const size_t at = o->size();
    for (unsigned i = 0; i < n; i++) o->push_back(order == REVERSE ? base + n - 1 - i : base + i);
    if (order == SHUFFLE) shuffle(o->data() + at, n, s);
}

/* A block's threads in the order they run: warp after warp (the warps' order and each warp's lanes'). */
void order_threads(std::vector<unsigned> *o, unsigned nthreads, Order order, uint64_t *s) {
    std::vector<unsigned> warps;
    order_items(&warps, 0, (nthreads + 31) / 32, order, s);
    o->clear();
    for (unsigned w : warps) order_items(o, w * 32, std::min(32u, nthreads - w * 32), order, s);
}

/* The warp of lanes [t0, t0 + n) meets at a shuffle (every live lane waits at one): what the GPU leaves
 * undefined ends the test. Each lane must name itself in its mask, lanes named in one another's masks must
 * have the same mask, and the lane whose value a lane reads must be at the shuffle and named in its mask
 * (an exited lane's value, or one of a lane left out, is undefined: a warp whose lanes leave a loop at
 * different rounds before a full-mask shuffle reads such values). */
void check_shuffle(const Block *b, unsigned t0, unsigned n) {
    const Wait *wait = &b->wait[t0];
    const unsigned *mask = &b->mask[t0], *xlane = &b->xlane[t0];
    bool one_mask = true; /* every lane at the shuffle gives the same mask (the usual case: no lane pairs to compare) */
    for (unsigned l = 0, first = n; l < n; l++)
        if (wait[l] == AT_SHUFFLE) {
            if (first == n) first = l;
            one_mask &= mask[l] == mask[first];
        }
    for (unsigned lane = 0; lane < n; lane++) {
        if (wait[lane] != AT_SHUFFLE) continue;
        const unsigned m = mask[lane], from = lane ^ xlane[lane];
        const char *fault = nullptr;
        if (!(m >> lane & 1u)) fault = "its mask leaves itself out";
        for (unsigned l = 0; l < n && !fault && !one_mask; l++)
            if ((m >> l & 1u) && wait[l] == AT_SHUFFLE && mask[l] != m) fault = "lanes it names have other masks";
        if (!fault && (from >= n || wait[from] != AT_SHUFFLE))
            fault = "the lane it reads has exited (or is not in the block)";
        else if (!fault && !(m >> from & 1u))
            fault = "the lane it reads is not in its mask";
        if (fault) {
            fprintf(stderr, "cuda_emu: block %u, warp %u, lane %u: shuffle with mask 0x%08x reading lane %u: %s"
                            " (undefined on the GPU)\n", b->block, t0 / 32, lane, m, from, fault);
            abort();
        }
    }
}

/* Drives the warp whose lanes are lanes[0, n), in the order they run, until each lane has ended or waits at
 * __syncthreads (`start`: the lanes' first run, each started as a fiber but thread 0, which has started): when
 * the warp's live lanes all wait at a shuffle, they exchange their values and go on. */
void run_warp(Block *b, const unsigned *lanes, unsigned n, bool start) {
    b->chain.clear();
    for (unsigned j = 0; j < n; j++)
        if (start && lanes[j]) make_fiber(b, lanes[j]), b->chain.push_back(lanes[j]);
        else if (!start && b->wait[lanes[j]] == AT_SYNC) b->chain.push_back(lanes[j]);
    run_chain(b);
    const unsigned t0 = lanes[0] & ~31u;
    for (;;) {
        unsigned n_live = 0, n_shfl = 0;
        for (unsigned t = t0; t < t0 + n; t++) n_live += b->wait[t] != DONE, n_shfl += b->wait[t] == AT_SHUFFLE;
        if (!n_shfl) return;
        if (n_shfl != n_live) { /* the others wait at __syncthreads: a deadlock on the GPU */
            fprintf(stderr, "cuda_emu: lanes of warp %u wait at a shuffle while others wait at __syncthreads\n", t0 / 32);
            abort();
        }
        check_shuffle(b, t0, n);
        for (unsigned t = t0; t < t0 + n; t++) b->read[t] = b->slot[t];
        b->chain.clear();
        for (unsigned j = 0; j < n; j++)
            if (b->wait[lanes[j]] == AT_SHUFFLE) b->chain.push_back(lanes[j]);
        run_chain(b);
    }
}

/* Thread 0 runs first as a fiber. If it ends without a shuffle or barrier, the block has none (threads meet
 * at those together: block_at checks), and the other threads run in order as plain calls, which is fast. Else
 * every thread runs as a fiber, a warp at a time in order: a warp runs through its shuffles as far as it can
 * (to a __syncthreads, or its end) before the next warp starts, and when every live thread waits at
 * __syncthreads, all go on, warp after warp again. A warp that reads what another writes between two barriers
 * thus sees all or nothing of it, whichever the order. (Thread 0 is the probe whatever the order: a block's
 * last threads are the ones that may end at once.) b is the launch's (its entry, argument and per-thread
 * arrays, reused by each block). */
void run_block(Block *b, unsigned block, const std::vector<unsigned> &order) {
    const unsigned nthreads = (unsigned)order.size();
    b->block = block, b->fibers = false;
    b->wait.assign(nthreads, RUNNING);
    b->fresh.clear();
    make_fiber(b, 0);
    b->chain.assign(1, 0u);
    run_chain(b);
    if (b->wait[0] == DONE) {
        for (unsigned t : order)
            if (t) enter(b, t), b->entry(b->arg);
        cur = nullptr;
        return;
    }
    b->fibers = true;
    for (bool start = true;; start = false) {
        for (unsigned i = 0, n; i < nthreads; i += n) { /* order holds each warp's lanes together */
            n = std::min(32u, nthreads - order[i] / 32 * 32);
            run_warp(b, &order[i], n, start);
        }
        bool live = false;
        for (unsigned t = 0; t < nthreads; t++) live |= b->wait[t] != DONE;
        if (!live) break;
    }
    cur = nullptr;
}
} // namespace

unsigned emu_grid_cap(void) { /* read at each launch, as EDM2_EMU_ORDER */
    const char *e = getenv("EDM2_EMU_GRID_CAP");
    if (!e || !*e) return 65535u;
    char *end;
    const unsigned long v = strtoul(e, &end, 10);
    if (*end || v < 1 || v > 65535) {
        fprintf(stderr, "cuda_emu: EDM2_EMU_GRID_CAP=%s: expected a number of blocks from 1 to 65535\n", e);
        abort();
    }
    return (unsigned)v;
}

void emu_run_grid(void (*entry)(void *), void *arg, unsigned grid, unsigned nthreads) {
    static uint64_t launches; /* one launch runs at a time (run_lock) */
    const OrderCfg c = order_cfg();
    uint64_t s = c.seed ^ (++launches * 0x2545f4914f6cdd1dull);
    std::vector<unsigned> blocks, threads;
    order_items(&blocks, 0, grid, c.order, &s);
    if (c.order != SHUFFLE) order_threads(&threads, nthreads, c.order, &s);
    Block b; /* one for the launch's blocks, run one after another */
    b.sched = Fiber{};
    b.entry = entry, b.arg = arg;
    b.ctx.resize(nthreads), b.slot.resize(nthreads), b.read.resize(nthreads);
    b.mask.resize(nthreads), b.xlane.resize(nthreads);
    for (unsigned i : blocks) {
        if (c.order == SHUFFLE) order_threads(&threads, nthreads, c.order, &s);
        run_block(&b, i, threads);
    }
}

float emu_shfl_xor(unsigned mask, float v, int lane_mask) {
    Block *b = cur;
    const unsigned t = cur_thread;
    b->slot[t] = v, b->mask[t] = mask, b->xlane[t] = (unsigned)lane_mask & 31u;
    block_at(AT_SHUFFLE, "__shfl_xor_sync");
    const unsigned partner = (t & ~31u) | ((t & 31u) ^ (unsigned)lane_mask);
    return b->read[partner];
}

void emu_syncthreads(void) { block_at(AT_SYNC, "__syncthreads"); }

void emu_shared_fresh(void *p, size_t n) {
    Block *b = cur;
    if (!b || std::find(b->fresh.begin(), b->fresh.end(), p) != b->fresh.end()) return;
    memset(p, 0xff, n);
    b->fresh.push_back(p);
}

/* ---- streams and CUDA graphs ---- */

struct CUstream_st {
    bool capturing, invalidated;
    bool nonblocking; /* cudaStreamNonBlocking: no implicit waits on or for the legacy default stream */
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

/* ---- EDM2_EMU_DEFER=1: queued work runs at the next point where the host waits for it ----
 * By default work runs when it is queued, so a host that reads a result (or reuses a buffer a queued copy
 * reads) without waiting for the stream cannot go wrong here. Deferred, every stream's work waits in one
 * queue, in the order queued, until a call that waits for it (a synchronize, an event, a blocking copy or
 * memset, cudaFree), as on the GPU, where it may run any time before that: a missing wait then reads old
 * values. A wait for one stream runs that stream's work only; the legacy default stream (0, and the plain
 * cudaMemcpy and cudaMemset) and the streams created blocking wait for one another, never for a stream created
 * cudaStreamNonBlocking (the backend's), whose work then stays queued: a plain copy of what such a stream
 * computes, without a wait for it first, reads old values. Copies between the host's pageable memory and the
 * device act as CUDA's do (from it: its bytes taken at the call; into it: the stream's work run first and
 * the copy done before the call returns); page-locked memory (cudaMallocHost) is copied when the queue runs. */
struct Queued {
    cudaStream_t stream;
    std::function<void()> work;
};
std::vector<Queued> pending;
std::map<const char *, size_t> pinned; /* cudaMallocHost's blocks: start, bytes */

bool deferring(void) {
    const char *e = getenv("EDM2_EMU_DEFER");
    return e && *e && strcmp(e, "0") != 0;
}

/* Whether work queued on stream q is ordered with the legacy default stream (q is it, or a blocking stream). */
bool legacy_ordered(cudaStream_t q) { return !q || !q->nonblocking; }

/* Runs the queued work that a wait for stream s waits for, in the order queued (all = the whole device;
 * else s's, where s is non-blocking, or that of the legacy stream and the blocking streams); the rest stays
 * queued in order, ahead of anything queued meanwhile (the work queued so far queues nothing as it runs:
 * kernels and the emulated libraries' calls compute on the spot). */
void drain_for(cudaStream_t s, bool all) {
    std::lock_guard<std::recursive_mutex> hold(run_lock);
    std::vector<Queued> q, keep;
    q.swap(pending);
    for (auto &w : q)
        if (all || w.stream == s || (legacy_ordered(s) && legacy_ordered(w.stream))) w.work();
        else keep.push_back(std::move(w));
    keep.insert(keep.end(), std::make_move_iterator(pending.begin()), std::make_move_iterator(pending.end()));
    pending.swap(keep);
}
/* The host waits for the whole device. */
void drain(void) { drain_for(nullptr, true); }
/* The host waits for stream s (0: the legacy default stream). */
void drain_stream(cudaStream_t s) { drain_for(s, false); }

bool is_pinned(const void *p) {
    std::lock_guard<std::recursive_mutex> hold(run_lock);
    auto it = pinned.upper_bound((const char *)p);
    return it != pinned.begin() && (const char *)p < (--it)->first + it->second;
}

/* "Device" memory: aligned as cudaMalloc's (256 bytes), exactly n bytes (so that ASan sees overruns), its
 * bytes all 0xff: NaN as float32, bf16 and fp16 (and -1 as integers), so that what reads memory nothing
 * wrote (a sum into a buffer never zeroed, a product with a pad never cleared) gives NaN here, where the
 * GPU's fresh memory often holds zeros and hides it. Blocks over POISON_MAX are left as the host gives them:
 * the tests' tensors and workspaces are far smaller, and the one such block, the plan timing's cuDNN
 * workspace (512 MiB), is never touched by the emulated cuDNN, so filling it would only cost time. */
const size_t POISON_MAX = (size_t)64 << 20;
/* EDM2_EMU_DEVICE_BYTES=BYTES: the device's memory; an allocation that would take the live device allocations
 * past it fails as an exhausted GPU's does (out of memory), so that the tests can see what a batch too large
 * for the GPU gives. Unset: 4 GiB, never enforced. (Page-locked host memory does not count.) */
size_t device_bytes(void) {
    const char *e = getenv("EDM2_EMU_DEVICE_BYTES");
    char *end = nullptr;
    const unsigned long long v = e && *e ? strtoull(e, &end, 10) : 0;
    if (e && *e && (*end || v == 0)) {
        fprintf(stderr, "cuda_emu: EDM2_EMU_DEVICE_BYTES=%s: expected a number of bytes\n", e);
        abort();
    }
    return (size_t)v;
}
const size_t device_limit = device_bytes();
std::mutex live_lock;
std::map<void *, size_t> live; /* device allocations: start, bytes */
size_t live_bytes;
cudaError_t device_alloc(void **p, size_t n, bool device = true) {
    std::lock_guard<std::mutex> hold(live_lock);
    if (device && device_limit && n > device_limit - live_bytes) {
        *p = nullptr;
        return cudaErrorMemoryAllocation;
    }
    if (posix_memalign(p, 256, n ? n : 1)) *p = nullptr;
    if (*p && n <= POISON_MAX) memset(*p, 0xff, n);
    if (*p && device) live[*p] = n, live_bytes += n;
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
void device_release(void *p) {
    {
        std::lock_guard<std::mutex> hold(live_lock);
        const auto it = live.find(p);
        if (it != live.end()) live_bytes -= it->second, live.erase(it);
    }
    free(p);
}
} // namespace

void emu_enqueue(cudaStream_t stream, std::function<void()> work) {
    if (stream && stream->capturing) {
        stream->recorded.push_back(std::move(work));
    } else {
        std::lock_guard<std::recursive_mutex> hold(run_lock);
        if (deferring()) {
            pending.push_back({stream, std::move(work)});
        } else {
            drain();
            work();
        }
    }
}

/* ---- the CUDA runtime on host memory (one device; work runs when queued, or deferred to the next wait) ---- */

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
const char *cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess                 ? "no error"
           : e == cudaErrorNoDevice         ? "no CUDA-capable device is detected"
           : e == cudaErrorMemoryAllocation ? "out of memory"
                                            : "error (CUDA emulation)";
}
/* One device, unless CUDA_VISIBLE_DEVICES hides it as the CUDA runtime does: set, but not starting with a
 * device number (empty, -1, ...). */
cudaError_t cudaGetDeviceCount(int *n) {
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    *n = !v || (*v >= '0' && *v <= '9');
    return *n ? cudaSuccess : cudaErrorNoDevice;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    *s = new CUstream_st{false, false, (flags & cudaStreamNonBlocking) != 0, {}};
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    drain(); /* (its work would still run on the GPU) */
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (s && s->capturing && forbidden_in_capture("cudaStreamSynchronize")) return cudaErrorStreamCaptureUnsupported;
    drain_stream(s);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    if (forbidden_in_capture("cudaDeviceSynchronize")) return cudaErrorStreamCaptureUnsupported;
    drain();
    return cudaSuccess;
}
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
/* (Freed memory returns to the emulated device when its queued free runs: the pool keeps nothing to trim.) */
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, size_t) { return cudaSuccess; }
/* Stream-ordered allocation is allowed in a capture (CUDA records it as a node): here it is done at once,
 * and a free is queued. */
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t) { return device_alloc(p, n); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t stream) {
    emu_enqueue(stream, [=]() { device_release(p); });
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    if (forbidden_in_capture("cudaMallocHost")) return cudaErrorStreamCaptureUnsupported;
    const cudaError_t e = device_alloc(p, n, false);
    std::lock_guard<std::recursive_mutex> hold(run_lock);
    if (e == cudaSuccess) pinned[(const char *)*p] = n ? n : 1;
    return e;
}
cudaError_t cudaFreeHost(void *p) {
    {
        std::lock_guard<std::recursive_mutex> hold(run_lock);
        pinned.erase((const char *)p);
    }
    return cudaFree(p);
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    std::lock_guard<std::mutex> hold(live_lock);
    *total = device_limit ? device_limit : (size_t)1 << 32;
    *free_bytes = device_limit ? device_limit - live_bytes : *total;
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t n) {
    return forbidden_in_capture("cudaMalloc") ? cudaErrorStreamCaptureUnsupported : device_alloc(p, n);
}
cudaError_t cudaFree(void *p) {
    if (forbidden_in_capture("cudaFree")) return cudaErrorStreamCaptureUnsupported;
    drain(); /* cudaFree waits for the device */
    device_release(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    if (forbidden_in_capture("cudaMemcpy")) return cudaErrorStreamCaptureUnsupported;
    drain_stream(nullptr); /* the legacy default stream's copy */
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind kind, cudaStream_t stream) {
    const bool capturing = stream && stream->capturing;
    if (!capturing && kind == cudaMemcpyHostToDevice && !is_pinned(s)) { /* the bytes taken now */
        auto bytes = std::make_shared<std::vector<char>>((const char *)s, (const char *)s + n);
        emu_enqueue(stream, [=]() { memcpy(d, bytes->data(), n); });
    } else if (!capturing && kind == cudaMemcpyDeviceToHost && !is_pinned(d)) { /* done before the return */
        drain_stream(stream);
        memmove(d, s, n);
    } else {
        emu_enqueue(stream, [=]() { memmove(d, s, n); });
    }
    return cudaSuccess;
}
cudaError_t cudaMemset(void *d, int v, size_t n) {
    if (forbidden_in_capture("cudaMemset")) return cudaErrorStreamCaptureUnsupported;
    drain_stream(nullptr); /* the legacy default stream's memset */
    memset(d, v, n);
    return cudaSuccess;
}
/* Events: the host's clock when the stream reaches the record (what a timing measures here is the
 * emulation's speed, not a GPU's). */
struct emu_event {
    std::chrono::steady_clock::time_point t;
    cudaStream_t stream; /* where it was last recorded */
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
    ev->stream = stream;
    emu_enqueue(stream, [=]() { ev->t = std::chrono::steady_clock::now(); });
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (forbidden_in_capture("cudaEventSynchronize")) return cudaErrorStreamCaptureUnsupported;
    drain_stream(((emu_event *)e)->stream);
    return cudaSuccess;
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
