/* gemm_cuda.cu: the GPU's dense bf16 matrix-product rate, the physical limit that edm2-bench relates a CUDA
 * network's achieved TFLOP/s to (edm2_bench_gemm_cuda.so, loaded by edm2-bench on the cuda backend, so that
 * the benchmark itself needs no CUDA library): C = A B for 8192 x 8192 bf16 matrices of uniform random
 * values, float32 accumulation, cuBLAS with its default (tensor-core) math, 3 products to warm up, then 10
 * timed with CUDA events on the backend's stream. Also the profiler switch of edm2-bench --profile. */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>
#include <stdio.h>

/* edm2-bench --profile: starts (on = 1) or stops (0) the CUDA profiler, the range that `ncu
 * --profile-from-start off` or `nsys --capture-range=cudaProfilerApi` records; 0, or the cudaError_t. */
extern "C" __attribute__((visibility("default"))) int edm2_bench_cuda_profiler(int on) {
    return (int)(on ? cudaProfilerStart() : cudaProfilerStop());
}

__global__ void k_fill(__nv_bfloat16 *x, size_t n, unsigned seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
        x[i] = __float2bfloat16((float)(h & 0xffffff) / 8388608.0f - 1.0f); /* uniform in [-1, 1) */
    }
}

/* TFLOP/s (2 n^3 per product), or a negative value with the reason in err. */
extern "C" __attribute__((visibility("default"))) double edm2_bench_bf16_gemm_tflops(void *stream_, char *err,
                                                                                     size_t errlen) {
    const int n = 8192, reps = 10;
    const size_t elems = (size_t)n * n;
    cudaStream_t stream = (cudaStream_t)stream_;
    __nv_bfloat16 *a = NULL, *b = NULL, *c = NULL;
    cublasHandle_t h = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double tflops = -1;
    const float one = 1.0f, zero = 0.0f;
    float ms = 0;
    const char *what = "cudaMalloc";
    if (cudaMalloc(&a, elems * 2) || cudaMalloc(&b, elems * 2) || cudaMalloc(&c, elems * 2)) goto done;
    k_fill<<<4096, 256, 0, stream>>>(a, elems, 1u);
    k_fill<<<4096, 256, 0, stream>>>(b, elems, 2u);
    what = "cuBLAS set-up";
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS || cublasSetStream(h, stream) != CUBLAS_STATUS_SUCCESS) goto done;
    what = "cudaEventCreate";
    if (cudaEventCreate(&e0) || cudaEventCreate(&e1)) goto done;
    what = "cublasGemmEx";
    for (int r = 0; r < 3 + reps; r++) {
        if (r == 3 && cudaEventRecord(e0, stream)) goto done;
        if (cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n, &zero, c,
                         CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
            goto done;
    }
    what = "timing";
    if (cudaEventRecord(e1, stream) || cudaEventSynchronize(e1) || cudaEventElapsedTime(&ms, e0, e1)) goto done;
    tflops = 2.0 * n * (double)n * n * reps / (ms * 1e-3) / 1e12;
done:
    if (tflops < 0) snprintf(err, errlen, "bf16 gemm: %s failed (%s)", what, cudaGetErrorString(cudaGetLastError()));
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (h) cublasDestroy(h);
    cudaFree(a), cudaFree(b), cudaFree(c);
    return tflops;
}
