/* lp_math.cuh: for the .cu files of the bf16/fp16 path: loading an element of any activation type as
 * float32 and storing a float32 result rounded to nearest (ld, st<T>), warp-per-row loops, and
 * LP_CALL/ACT_CALL, which call a host template for the context's element type. */
#ifndef EDM2_LP_MATH_CUH
#define EDM2_LP_MATH_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "act_type.h"

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float ld(float v) { return v; }
__device__ __forceinline__ float ld(__half v) { return __half2float(v); }
__device__ __forceinline__ float ld(bf16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T st(float v);
template <> __device__ __forceinline__ float st<float>(float v) { return v; }
template <> __device__ __forceinline__ __half st<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ bf16 st<bf16>(float v) { return __float2bfloat16_rn(v); }

/* dst = v, or dst += v when acc (GRAD_ACC of mp_math.h, rounding once). */
template <typename T> __device__ __forceinline__ void st_acc(T *dst, float v, int acc) { *dst = st<T>(acc ? ld(*dst) + v : v); }

/* A grid-stride loop over rows with one warp per row (lane: the thread's lane). */
#define WARP_ROWS(r, rows, lane)                                                                            \
    const int lane = threadIdx.x % 32;                                                                      \
    for (size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; r < (rows);                       \
         r += (size_t)gridDim.x * blockDim.x / 32)

/* fn<bf16>(...) or fn<__half>(...) for act ACT_BF16 / ACT_F16; ACT_CALL also fn<float> for ACT_F32. */
#define LP_CALL(act, fn, ...) ((act) == ACT_BF16 ? fn<bf16>(__VA_ARGS__) : fn<__half>(__VA_ARGS__))
#define ACT_CALL(act, fn, ...) ((act) == ACT_F32 ? fn<float>(__VA_ARGS__) : LP_CALL(act, fn, __VA_ARGS__))

#endif
