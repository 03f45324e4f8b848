/* lp_math.cuh: for the .cu files of the bf16/fp16 path: loading an element of any activation type as
 * float32 and storing a float32 result rounded to nearest (ld, st<T>), the same for chunks of 8 elements
 * (CHUNK_LOOP, ld_at, st_at) and the accumulation y += x built on them (k_add_into), warp-per-row loops,
 * and LP_CALL/ACT_CALL, which call a host template for the context's element type. */
#ifndef EDM2_LP_MATH_CUH
#define EDM2_LP_MATH_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "act_type.h"
#include "launch_cuda.h"

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

/* ---- chunks of 8 elements ----
 * An element-wise kernel that loads and stores one 2-byte element per thread and iteration has too few
 * bytes in flight to keep the GPU's memory busy. Each thread of CHUNK_LOOP takes 8 consecutive elements
 * (a chunk: i = 8 j, m of them, 8 except at the end) and moves each operand's 8 values with one 16-byte
 * access where it can: where the chunk's 8 elements lie consecutively in the operand (`vec`: idx(i + k) =
 * idx(i) + k, a property of the layout the caller states) and the address is 16-byte aligned. Elsewhere
 * (odd channel counts, offset views, the last chunk) the 8 values are gathered one by one through idx. The
 * arithmetic per element is unchanged: the same values are computed either way. */
#define CHUNK_LOOP(i, n)                                                                                     \
    for (size_t i = 8 * (blockIdx.x * (size_t)blockDim.x + threadIdx.x); i < (n); i += 8 * (size_t)gridDim.x * blockDim.x)
#define UNROLL8(k) _Pragma("unroll") for (int k = 0; k < 8; k++)

__device__ __forceinline__ int chunk_len(size_t i, size_t n) { return n - i < 8 ? (int)(n - i) : 8; }

template <typename T> struct alignas(16) vec8 { T e[8]; };
template <typename T> __device__ __forceinline__ bool aligned16(const T *p) { return !((size_t)p & 15); }

/* f[k] = p[idx(i + k)] as float32 for k < m, 0 beyond. */
template <typename T, typename Idx>
__device__ __forceinline__ void ld_at(float *f, const T *p, size_t i, int m, bool vec, Idx idx) {
    const T *q = p + idx(i);
    if (vec && m == 8 && aligned16(q)) {
        const vec8<T> v = *(const vec8<T> *)q;
        UNROLL8(k) f[k] = ld(v.e[k]);
    } else {
        UNROLL8(k) f[k] = k < m ? ld(p[idx(i + k)]) : 0.0f;
    }
}
/* p[idx(i + k)] = f[k] rounded to T (or p[...] + f[k] when acc, rounded once: st_acc), k < m. */
template <typename T, typename Idx>
__device__ __forceinline__ void st_at(T *p, const float *f, size_t i, int m, bool vec, Idx idx, int acc = 0) {
    T *q = p + idx(i);
    if (vec && m == 8 && aligned16(q)) {
        vec8<T> v;
        if (acc) v = *(const vec8<T> *)q;
        UNROLL8(k) v.e[k] = st<T>(acc ? ld(v.e[k]) + f[k] : f[k]);
        *(vec8<T> *)q = v;
    } else {
        UNROLL8(k) if (k < m) st_acc(p + idx(i + k), f[k], acc);
    }
}
/* LAUNCH (launch_cuda.h) for a CHUNK_LOOP kernel over n elements: one thread per chunk. */
#define LAUNCH_CHUNKS(n, kernel, ...)                                                                        \
    do {                                                                                                     \
        if ((n) == 0) return 0;                                                                              \
        kernel<<<blocks_for(((n) + 7) / 8), THREADS, 0, (cudaStream_t)stream>>>(__VA_ARGS__);                \
        return (int)cudaGetLastError();                                                                      \
    } while (0)

/* The identity layout: element e of the loop is element e of the operand. */
struct same_index {
    __device__ size_t operator()(size_t e) const { return e; }
};
template <typename T> __device__ __forceinline__ void ldv(float *f, const T *p, size_t i, int m) { ld_at(f, p, i, m, true, same_index()); }
template <typename T> __device__ __forceinline__ void stv(T *p, const float *f, size_t i, int m, int acc = 0) {
    st_at(p, f, i, m, true, same_index(), acc);
}
/* y[i] += x[i], rounded once to Y: gradient accumulation in any pair of element types. */
template <typename Y, typename X> __global__ void k_add_into(Y *y, const X *x, size_t n) {
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float v[8];
        ldv(v, x, i, m);
        stv(y, v, i, m, 1);
    }
}

/* A grid-stride loop over rows with one warp per row (lane: the thread's lane). */
#define WARP_ROWS(r, rows, lane)                                                                            \
    const int lane = threadIdx.x % 32;                                                                      \
    for (size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; r < (rows);                       \
         r += (size_t)gridDim.x * blockDim.x / 32)

/* ---- rows taken by a group of lanes ----
 * A warp per row of 128 bf16 moves 2 bytes per lane and load: too little in flight (the H100 profile showed
 * the row kernels at a third of the memory's rate). Here a row of `cols` contiguous elements is taken in
 * 8-element chunks (ld_at, 16 bytes where aligned) by a group of gl lanes of one warp, gl = row_lanes(cols)
 * a power of two (1..32), and a warp takes 32/gl rows at once. Every lane of a warp goes round GROUP_ROWS
 * the same number of times, so group_sum's shuffles always see the whole warp; a group whose row r is past
 * the end (r >= rows) takes no chunks (ROW_LEN) and stores nothing. */
static inline int row_lanes(size_t cols) {
    int gl = 1;
    while (gl < 32 && (size_t)gl * 8 < cols) gl *= 2;
    return gl;
}
/* Blocks for `rows` rows, gl lanes each. */
static inline unsigned group_blocks(size_t rows, int gl) { return blocks_for((rows + 32 / gl - 1) / (32 / gl) * 32); }
#define GROUP_ROWS(r, rows, gl, lane)                                                                       \
    const int lane = threadIdx.x % 32 % (gl);                                                               \
    for (size_t r##_0 = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32 * (32 / (gl)),                 \
                r = r##_0 + threadIdx.x % 32 / (gl);                                                        \
         r##_0 < (rows);                                                                                    \
         r##_0 += (size_t)gridDim.x * blockDim.x / 32 * (32 / (gl)), r = r##_0 + threadIdx.x % 32 / (gl))
/* The number of elements row r has for its group: len, or 0 past the end. */
#define ROW_LEN(r, rows, len) ((r) < (rows) ? (len) : 0)
/* The lane's chunks of a row of n elements: c = 8 lane, 8 (lane + gl), ... (m elements each). */
#define ROW_CHUNKS(c, m, n, lane, gl) for (int c = 8 * (lane), m; c < (n) && (m = chunk_len(c, n), 1); c += 8 * (gl))
/* The sum and maximum over a group of gl lanes (xor within the group: the same fixed order in every group). */
__device__ __forceinline__ float group_sum(float v, int gl) {
    for (int o = gl / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float group_max(float v, int gl) {
    for (int o = gl / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* fn<bf16>(...) or fn<__half>(...) for act ACT_BF16 / ACT_F16; ACT_CALL also fn<float> for ACT_F32. */
#define LP_CALL(act, fn, ...) ((act) == ACT_BF16 ? fn<bf16>(__VA_ARGS__) : fn<__half>(__VA_ARGS__))
#define ACT_CALL(act, fn, ...) ((act) == ACT_F32 ? fn<float>(__VA_ARGS__) : LP_CALL(act, fn, __VA_ARGS__))

#endif
