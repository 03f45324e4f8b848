/* launch_cuda.h: how the CUDA plugins' element-wise kernels are launched (for .cu files only): grid-stride
 * loops of 256-thread blocks on the caller's stream, and LAUNCH, which returns the launch's cudaError_t
 * from the enclosing int function (0 for an empty range); the grid of warp-per-row kernels and the warp's
 * sum and maximum (combined in one fixed butterfly order). */
#ifndef EDM2_LAUNCH_CUDA_H
#define EDM2_LAUNCH_CUDA_H

#include <cuda_runtime.h>

#define THREADS 256

/* The most blocks a grid-stride launch takes (the CPU emulation of the tests lowers it, cuda_emu.h, so that
 * every kernel's loop runs more than once there). */
#ifndef EDM2_GRID_CAP
#define EDM2_GRID_CAP 65535u
#endif

#define STRIDE_LOOP(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static inline unsigned blocks_for(size_t n) {
    size_t g = (n + THREADS - 1) / THREADS;
    return (unsigned)(g < 1 ? 1 : g > EDM2_GRID_CAP ? EDM2_GRID_CAP : g);
}

/* Blocks for one warp per row over `rows` rows. */
static inline unsigned warp_blocks(size_t rows) { return blocks_for(rows * 32); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#define LAUNCH(n, kernel, ...)                                                                      \
    do {                                                                                            \
        if ((n) == 0) return 0;                                                                     \
        kernel<<<blocks_for(n), THREADS, 0, (cudaStream_t)stream>>>(__VA_ARGS__);                   \
        return (int)cudaGetLastError();                                                             \
    } while (0)

#endif
