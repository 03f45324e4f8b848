/* cuda_emu.h: the project's CUDA kernels compiled by a C++ compiler and run on the CPU, for the CUDA tests
 * of a machine without a GPU (README.md here). Force-included (-include) into each .cu file, whose launches
 * rewrite_launches.py has turned into emu_launch calls. A launch runs its blocks one after another; a
 * block's threads run as fibers (fiber.h) that meet at each __shfl_xor_sync and __syncwarp (a warp's
 * lanes) and __syncthreads (the block's threads), and __shared__ variables are static, one copy for the
 * block being run. What this checks: indexing, layouts, bounds (under AddressSanitizer), the arithmetic of
 * each element, the order of a block's steps, and (EDM2_EMU_ORDER=reverse or shuffle) results that depend
 * on the order in which threads or blocks run. What it cannot: the GPU's memory model, its math library's
 * last bits, timing. */
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <functional>

struct EmuDim {
    unsigned x, y, z;
};
extern EmuDim emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define blockDim emu_blockDim
#define gridDim emu_gridDim

/* <<<grid, block[, shared bytes[, stream]]>>> (1-D grids and blocks: all this project launches). */
struct EmuCfg {
    unsigned grid, block;
    cudaStream_t stream;
    EmuCfg(unsigned g, unsigned b, size_t shared = 0, cudaStream_t s = 0) : grid(g), block(b), stream(s) { (void)shared; }
};

/* An element of float32, bf16 or fp16 read as float32, and a float32 stored rounded to nearest (the
 * emulated libraries' data types, mapped to these by each). */
enum EmuType { EMU_F32, EMU_BF16, EMU_F16 };
static inline float emu_load(EmuType t, const void *p, size_t i) {
    if (t == EMU_F32) return ((const float *)p)[i];
    if (t == EMU_BF16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return __half2float(((const __half *)p)[i]);
}
static inline void emu_store(EmuType t, void *p, size_t i, float v) {
    if (t == EMU_F32) ((float *)p)[i] = v;
    else if (t == EMU_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((__half *)p)[i] = __float2half_rn(v);
}

/* Work queued on a stream: done at once (or, with EDM2_EMU_DEFER=1, when the host next waits for that
 * stream or the device: cuda_emu.cpp), or recorded while the stream captures a CUDA graph (a graph's launch
 * queues what was recorded, with the arguments of the capture). */
void emu_enqueue(cudaStream_t stream, std::function<void()> work);

/* A shuffle of the lanes named in `mask`: each reads the value of lane (its lane ^ lane_mask). The lanes of a
 * warp meet there; a lane that leaves itself out of the mask, lanes named with different masks, or a read of a
 * lane that has exited or is not at the shuffle (its value undefined on the GPU) end the test (cuda_emu.cpp). */
float emu_shfl_xor(unsigned mask, float v, int lane_mask);
void emu_syncthreads(void);
static inline unsigned emu_warp_mask(unsigned mask = 0xffffffffu) { return mask; }
#define __shfl_xor_sync(mask, v, lane_mask) emu_shfl_xor((mask), (v), (lane_mask))
#define __syncthreads() emu_syncthreads()
/* A warp's lanes meet (a shuffle of each lane with itself): __syncwarp's ordering of shared memory. */
#define __syncwarp(...) ((void)emu_shfl_xor(emu_warp_mask(__VA_ARGS__), 0.0f, 0))
#undef __shared__
#define __shared__ static
/* Fills shared array p of n bytes with 0xff the first time the block being run reaches it (rewrite_launches.py
 * puts the call after each __shared__ declaration): each block starts with garbage there, as on the GPU. */
void emu_shared_fresh(void *p, size_t n);

/* The intrinsics that round one operation to nearest (the host's float arithmetic, -ffp-contract=off). */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
template <typename T> T atomicAdd(T *p, T v) {
    const T old = *p;
    *p += v;
    return old;
}

/* The most blocks of a grid-stride launch (plugins/common/launch_cuda.h): EDM2_EMU_GRID_CAP, else the GPU
 * build's 65535. A small cap makes each grid-stride loop run several times on the tests' small shapes, as
 * it does on the GPU at batch 256. */
unsigned emu_grid_cap(void);
#define EDM2_GRID_CAP emu_grid_cap()

/* Runs entry() as the nthreads threads of each of the grid's blocks, one block after another, in the order
 * that EDM2_EMU_ORDER sets (cuda_emu.cpp). */
void emu_run_grid(void (*entry)(void *), void *arg, unsigned grid, unsigned nthreads);
/* A launch that the emulation refuses (a zero-sized or over-large grid or block): reported by the next
 * cudaGetLastError, as the GPU would. */
void emu_bad_launch(unsigned grid, unsigned block);

template <typename F> static void emu_call(void *f) { (*(F *)f)(); }

template <typename... P, typename... A> void emu_launch(EmuCfg c, void (*kernel)(P...), A... args) {
    if (c.grid == 0 || c.block == 0 || c.block > 1024 || c.grid > 2147483647u) {
        emu_bad_launch(c.grid, c.block);
        return;
    }
    emu_enqueue(c.stream, [=]() {
        auto call = [&]() { kernel(args...); };
        emu_blockDim = {c.block, 1, 1};
        emu_gridDim = {c.grid, 1, 1};
        emu_run_grid(emu_call<decltype(call)>, &call, c.grid, c.block);
    });
}
