/* test_emu_schedule.cu: the emulation's own test (README.md here): the order in which it runs blocks and
 * threads under EDM2_EMU_ORDER, its warps run to their next __syncthreads one at a time, races (a missing
 * __syncthreads before a read, or before shared memory is written again) giving a wrong result in each order
 * while the same kernels with their barriers are right in all, EDM2_EMU_GRID_CAP lowering the grid of
 * grid-stride launches, EDM2_EMU_DEFER's copies and non-blocking streams, fresh device and shared memory
 * holding NaN, and shuffles that the GPU leaves undefined ending the run. Built only for the emulation. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern "C" { /* cmocka.h declares C functions without saying so to C++ */
#include <cmocka.h>
}

#include "launch_cuda.h"

enum { BLOCKS = 3, N = 64 }; /* blocks of two warps */

/* seq[b N + t]: when thread t of block b recorded itself (a count over the launch); after a barrier if sync. */
__global__ void k_record(unsigned *seq, unsigned *counter, int sync) {
    if (sync) __syncthreads();
    seq[blockIdx.x * N + threadIdx.x] = atomicAdd(counter, 1u);
}

/* out[b N + t] = the value thread (t + 33) % N of the block wrote to shared memory: across the two warps. */
__global__ void k_neighbour(int *out, int base, int sync) {
    __shared__ int s[N];
    s[threadIdx.x] = base + (int)(blockIdx.x * N + threadIdx.x);
    if (sync) __syncthreads();
    out[blockIdx.x * N + threadIdx.x] = s[(threadIdx.x + 33) % N];
}

/* out[t] = the sum of both warps' sums of base + lane (each summed by shuffles, then shared by lane 0). */
__global__ void k_warp_sums(float *out, float base, int sync) {
    __shared__ float part[2];
    const float v = warp_sum(base + (float)(threadIdx.x % 32));
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    if (sync) __syncthreads();
    out[threadIdx.x] = part[0] + part[1];
}

/* The same over two rounds, the second round's sums written to `part` while the first's may still be read
 * there unless a second barrier (`sync`) keeps them apart: a warp that runs ahead through its shuffles
 * overwrites what the other has not read. */
__global__ void k_warp_sums_twice(float *out, float base, int sync) {
    __shared__ float part[2];
    for (int round = 0; round < 2; round++) {
        const float v = warp_sum(base + (float)(round * 100) + (float)(threadIdx.x % 32));
        if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
        __syncthreads();
        const float total = part[0] + part[1];
        if (sync) __syncthreads();
        out[round * N + threadIdx.x] = total;
    }
}

/* out[t] = the sum of lane + 1 over the first `live` lanes of one warp, the other lanes having returned
 * first; by shuffles over `span` lanes (a power of two) with `mask`. Defined on the GPU only where the lanes
 * that shuffle are exactly those in the mask and read only one another: live = span and mask = 2^span - 1. */
__global__ void k_tail_sum(float *out, unsigned live, unsigned span, unsigned mask) {
    if (threadIdx.x >= live) return;
    float v = (float)threadIdx.x + 1;
    for (unsigned o = span / 2; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o);
    out[threadIdx.x] = v;
}

static void tail_sum(unsigned live, unsigned span, unsigned mask) {
    float out[32];
    k_tail_sum<<<1, 32>>>(out, live, span, mask);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    for (unsigned t = 0; t < live; t++) assert_true(out[t] == (float)(span * (span + 1) / 2));
}

/* The launch tail_sum(live, span, mask) ends the process with SIGABRT and a message holding `want`. */
static void expect_abort(unsigned live, unsigned span, unsigned mask, const char *want) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        tail_sum(live, span, mask);
        _exit(0);
    }
    close(fd[1]);
    char msg[512] = {0};
    size_t got = 0;
    for (ssize_t r; got < sizeof msg - 1 && (r = read(fd[0], msg + got, sizeof msg - 1 - got)) > 0;) got += (size_t)r;
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    printf("live %u, span %u, mask 0x%08x: %s", live, span, mask, msg);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(msg, want));
}

/* Shuffles that the GPU leaves undefined end an emulated test: a read of a lane that has exited (a warp
 * whose lanes leave a loop at different rounds before a full-mask reduction), a lane outside its own mask,
 * a read of a lane outside the mask. The defined ones run. */
static void test_undefined_shuffles(void **state) {
    (void)state;
    tail_sum(32, 32, 0xffffffffu);
    tail_sum(16, 16, 0xffffu); /* the other lanes have exited: fine, they are neither named nor read */
    tail_sum(16, 16, 0xffffffffu); /* named but exited, and not read: fine */
    expect_abort(20, 32, 0xffffffffu, "the lane it reads has exited");
    expect_abort(32, 16, 0xffffu, "its mask leaves itself out");
    expect_abort(16, 16, 0xffu, "the lane it reads is not in its mask");
}

static const char *orders[] = {"forward", "reverse", "shuffle:3", "shuffle:11"};

static void record(const char *order, int sync, unsigned *seq) {
    unsigned counter = 0;
    setenv("EDM2_EMU_ORDER", order, 1);
    k_record<<<BLOCKS, N>>>(seq, &counter, sync);
    unsetenv("EDM2_EMU_ORDER");
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_int_equal(counter, BLOCKS * N);
}

static void test_orders(void **state) {
    (void)state;
    unsigned seq[BLOCKS * N];
    for (int sync = 0; sync < 2; sync++) {
        record("forward", sync, seq);
        for (unsigned i = 0; i < BLOCKS * N; i++) assert_int_equal(seq[i], i);
        /* reverse: the last block first; thread 0 starts each block (the probe for barriers), and after a
         * barrier the threads go on from the last */
        record("reverse", sync, seq);
        for (unsigned b = 0; b < BLOCKS; b++)
            for (unsigned t = 0; t < N; t++) {
                const unsigned rank = sync ? N - 1 - t : t == 0 ? 0 : N - t;
                assert_int_equal(seq[b * N + t], (BLOCKS - 1 - b) * N + rank);
            }
        /* shuffle: each thread once, whole blocks at a time, not in index order */
        record("shuffle:3", sync, seq);
        int moved = 0;
        for (unsigned b = 0; b < BLOCKS; b++) {
            unsigned seen[N] = {0};
            const unsigned first = seq[b * N] / N * N;
            for (unsigned t = 0; t < N; t++) {
                assert_int_equal(seq[b * N + t] / N * N, first);
                seen[seq[b * N + t] % N]++;
                moved |= seq[b * N + t] != b * N + t;
            }
            for (unsigned r = 0; r < N; r++) assert_int_equal(seen[r], 1);
        }
        assert_true(moved);
    }
}

static void test_missing_barrier(void **state) {
    (void)state;
    int out[BLOCKS * N];
    float sums[2 * N];
    int base = 0;
    for (const char *order : orders) {
        setenv("EDM2_EMU_ORDER", order, 1);
        for (int sync = 0; sync < 2; sync++) {
            base += 1000; /* shared memory keeps the last launch's values: new ones each time */
            k_neighbour<<<BLOCKS, N>>>(out, base, sync);
            int wrong = 0;
            for (int i = 0; i < BLOCKS * N; i++) wrong += out[i] != base + i / N * N + (i % N + 33) % N;
            if (sync) assert_int_equal(wrong, 0);
            else assert_true(wrong > 0);

            k_warp_sums<<<1, N>>>(sums, (float)base, sync);
            const float want = 2 * (32 * (float)base + 496);
            wrong = 0;
            for (int t = 0; t < N; t++) wrong += sums[t] != want;
            if (sync) assert_int_equal(wrong, 0);
            else assert_true(wrong >= 32); /* the warp that ran first read the other's old sum */

            k_warp_sums_twice<<<1, N>>>(sums, (float)base, sync);
            wrong = 0;
            for (int t = 0; t < 2 * N; t++) wrong += sums[t] != want + (t < N ? 0 : 2 * 3200);
            if (sync) assert_int_equal(wrong, 0);
            else assert_true(wrong >= 32); /* a warp read the other's sum of the second round in the first */
        }
    }
    unsetenv("EDM2_EMU_ORDER");
}

/* EDM2_EMU_DEFER=1: queued work waits for the host's next wait on the device. A copy from page-locked
 * memory reads it when it runs (a host that changes it before waiting loses its first value, as on the
 * GPU); one from pageable memory takes its bytes at the call; a copy into page-locked memory arrives at
 * the wait, one into pageable memory before the call returns. */
static void test_deferred(void **state) {
    (void)state;
    int *pinned = NULL, *dev = NULL, pageable = 1;
    assert_int_equal(cudaMallocHost((void **)&pinned, 2 * sizeof(int)), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&dev, 2 * sizeof(int)), cudaSuccess);
    for (int defer = 0; defer < 2; defer++) {
        setenv("EDM2_EMU_DEFER", defer ? "1" : "0", 1);
        pinned[0] = 1, pageable = 1;
        assert_int_equal(cudaMemcpyAsync(dev, pinned, sizeof(int), cudaMemcpyHostToDevice, 0), cudaSuccess);
        assert_int_equal(cudaMemcpyAsync(dev + 1, &pageable, sizeof(int), cudaMemcpyHostToDevice, 0), cudaSuccess);
        pinned[0] = 2, pageable = 2; /* without waiting first: a race on the GPU */
        assert_int_equal(cudaStreamSynchronize(0), cudaSuccess);
        assert_int_equal(dev[0], defer ? 2 : 1);
        assert_int_equal(dev[1], 1);

        pinned[1] = 0, pageable = 0;
        assert_int_equal(cudaMemcpyAsync(pinned + 1, dev + 1, sizeof(int), cudaMemcpyDeviceToHost, 0), cudaSuccess);
        assert_int_equal(pinned[1], defer ? 0 : 1); /* not there before the wait */
        assert_int_equal(cudaMemcpyAsync(&pageable, dev + 1, sizeof(int), cudaMemcpyDeviceToHost, 0), cudaSuccess);
        assert_int_equal(pageable, 1);
        assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
        assert_int_equal(pinned[1], 1);
    }
    unsetenv("EDM2_EMU_DEFER");
    cudaFree(dev);
    cudaFreeHost(pinned);
}

/* With EDM2_EMU_DEFER=1, the legacy default stream (a plain cudaMemcpy) waits for the work of a stream
 * created blocking, not for that of one created cudaStreamNonBlocking: a plain copy of what the latter
 * computes reads the old value until that stream is waited for; an event waits for its own stream. */
static void test_nonblocking(void **state) {
    (void)state;
    int *dev = NULL, host = 0;
    cudaStream_t blocking = NULL, nonblocking = NULL;
    cudaEvent_t e = NULL;
    assert_int_equal(cudaMalloc((void **)&dev, sizeof(int)), cudaSuccess);
    assert_int_equal(cudaStreamCreate(&blocking), cudaSuccess);
    assert_int_equal(cudaStreamCreateWithFlags(&nonblocking, cudaStreamNonBlocking), cudaSuccess);
    assert_int_equal(cudaEventCreate(&e), cudaSuccess);
    assert_int_equal(cudaMemset(dev, 0, sizeof(int)), cudaSuccess);
    setenv("EDM2_EMU_DEFER", "1", 1);
    assert_int_equal(cudaMemsetAsync(dev, 1, sizeof(int), blocking), cudaSuccess);
    assert_int_equal(cudaMemcpy(&host, dev, sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(host, 0x01010101); /* the blocking stream's memset came first */

    assert_int_equal(cudaMemsetAsync(dev, 2, sizeof(int), nonblocking), cudaSuccess);
    assert_int_equal(cudaMemcpy(&host, dev, sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(host, 0x01010101); /* not waited for: a race on the GPU */
    assert_int_equal(cudaStreamSynchronize(blocking), cudaSuccess);
    assert_int_equal(cudaMemcpy(&host, dev, sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(host, 0x01010101); /* another stream's wait */
    assert_int_equal(cudaEventRecord(e, nonblocking), cudaSuccess);
    assert_int_equal(cudaEventSynchronize(e), cudaSuccess);
    assert_int_equal(cudaMemcpy(&host, dev, sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(host, 0x02020202);

    assert_int_equal(cudaMemsetAsync(dev, 3, sizeof(int), nonblocking), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(&host, dev, sizeof(int), cudaMemcpyDeviceToHost, nonblocking), cudaSuccess);
    assert_int_equal(host, 0x03030303); /* into pageable memory on that stream: its work first */
    unsetenv("EDM2_EMU_DEFER");
    cudaEventDestroy(e);
    cudaStreamDestroy(blocking);
    cudaStreamDestroy(nonblocking);
    cudaFree(dev);
}

/* Fresh device memory holds NaN in every float type (all bytes 0xff), so that reading what nothing wrote
 * shows. */
static void test_poisoned_alloc(void **state) {
    (void)state;
    float *d = NULL;
    assert_int_equal(cudaMalloc((void **)&d, 1000 * sizeof(float)), cudaSuccess);
    for (int i = 0; i < 1000; i++) assert_true(d[i] != d[i]);
    const unsigned char *bytes = (const unsigned char *)d;
    for (size_t i = 0; i < 1000 * sizeof(float); i++) assert_int_equal(bytes[i], 0xff);
    cudaFree(d);
}

/* out[b N + t] = what thread t of block b reads from shared memory that only block 0 writes. */
__global__ void k_shared_once(float *out) {
    __shared__ float s[N];
    if (blockIdx.x == 0) s[threadIdx.x] = (float)threadIdx.x;
    out[blockIdx.x * N + threadIdx.x] = s[threadIdx.x];
}

/* ... and each block starts with NaN in its shared arrays, not what the block before it left. */
static void test_fresh_shared(void **state) {
    (void)state;
    float out[BLOCKS * N];
    k_shared_once<<<BLOCKS, N>>>(out);
    for (int i = 0; i < BLOCKS * N; i++)
        if (i < N) assert_true(out[i] == (float)i);
        else assert_true(out[i] != out[i]);
}

static void test_grid_cap(void **state) {
    (void)state;
    assert_int_equal(blocks_for((size_t)1 << 30), 65535);
    setenv("EDM2_EMU_GRID_CAP", "3", 1);
    assert_int_equal(blocks_for((size_t)1 << 30), 3);
    assert_int_equal(blocks_for(300), 2);
    unsetenv("EDM2_EMU_GRID_CAP");
}

int main(void) {
    unsetenv("EDM2_EMU_ORDER"); /* each test sets the order, the cap and the deferral it checks */
    unsetenv("EDM2_EMU_GRID_CAP");
    unsetenv("EDM2_EMU_DEFER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orders),
        cmocka_unit_test(test_missing_barrier),
        cmocka_unit_test(test_deferred),
        cmocka_unit_test(test_nonblocking),
        cmocka_unit_test(test_poisoned_alloc),
        cmocka_unit_test(test_fresh_shared),
        cmocka_unit_test(test_grid_cap),
        cmocka_unit_test(test_undefined_shuffles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
