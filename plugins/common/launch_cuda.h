/* launch_cuda.h: how the CUDA plugins' element-wise kernels are launched (for .cu files only): grid-stride
 * loops of 256-thread blocks on the caller's stream, and LAUNCH, which returns the launch's cudaError_t
 * from the enclosing int function (0 for an empty range). */
#ifndef EDM2_LAUNCH_CUDA_H
#define EDM2_LAUNCH_CUDA_H

#include <cuda_runtime.h>

#define THREADS 256

#define STRIDE_LOOP(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static inline unsigned blocks_for(size_t n) {
    size_t g = (n + THREADS - 1) / THREADS;
    return (unsigned)(g < 1 ? 1 : g > 65535 ? 65535 : g);
}

#define LAUNCH(n, kernel, ...)                                                                      \
    do {                                                                                            \
        if ((n) == 0) return 0;                                                                     \
        kernel<<<blocks_for(n), THREADS, 0, (cudaStream_t)stream>>>(__VA_ARGS__);                   \
        return (int)cudaGetLastError();                                                             \
    } while (0)

#endif
