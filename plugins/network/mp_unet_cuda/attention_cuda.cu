/* attention_cuda.cu: cosine self-attention, forward and backward: q/k/v normalisation and the softmax as
 * kernels (normalisation in the CPU's order and rounding, ../mp_unet/mp_math.h), S = q k^T / sqrt(cph) and
 * out = A v (and their gradients) as batched cuBLAS products. */
#include <cuda_runtime.h>
#include <math.h>

#include "../mp_unet/mp_math.h"
#include "attention_cuda.h"
#include "gemm_cuda.h"
#include "launch_cuda.h"



/* Row r = (nh*3 + s)*HW + p of qkvn/norm; its source is qkv[n, p, (h*cph + c)*3 + s], c = 0..cph-1. */
__device__ static const float *qkv_row(const float *qkv, size_t r, int HW, int heads, int cph) {
    const size_t p = r % HW, s = (r / HW) % 3, nh = r / (3 * (size_t)HW), n = nh / heads, h = nh % heads;
    return qkv + (n * HW + p) * 3 * (size_t)heads * cph + h * (size_t)cph * 3 + s;
}

__global__ void k_qkv_normalize(float *qkvn, float *norm, const float *qkv, size_t rows, int HW, int heads, int cph) {
    STRIDE_LOOP(r, rows) {
        const float *src = qkv_row(qkv, r, HW, heads, cph);
        float *dst = qkvn + r * cph, ss = 0;
        for (int c = 0; c < cph; c++) ss += src[3 * c] * src[3 * c];
        const float nr = MP_EPS + sqrtf(ss) / sqrtf((float)cph);
        norm[r] = nr;
        for (int c = 0; c < cph; c++) dst[c] = src[3 * c] / nr;
    }
}

__global__ void k_qkv_normalize_backward(float *dqkv, const float *dqkvn, const float *qkv, const float *norm,
                                         size_t rows, int HW, int heads, int cph, int acc) {
    const float inv_sqrt_c = 1.0f / sqrtf((float)cph);
    STRIDE_LOOP(r, rows) {
        const float *src = qkv_row(qkv, r, HW, heads, cph);
        float *dst = dqkv + (src - qkv);
        const float *gp = dqkvn + r * cph;
        const float nr = norm[r], len = (nr - MP_EPS) / inv_sqrt_c;
        float dot = 0;
        for (int c = 0; c < cph; c++) dot += gp[c] * src[3 * c];
        const float a = 1.0f / nr, b = len > 0 ? dot * inv_sqrt_c / (nr * nr * len) : 0.0f;
        for (int c = 0; c < cph; c++) GRAD_ACC(acc, dst[3 * c], gp[c] * a - src[3 * c] * b);
    }
}

/* One warp per row of HW scores: max, exp, sum, scale; the warp's partial results combine in a fixed order. */
__global__ void k_softmax_rows(float *A, size_t rows, int HW) {
    const size_t warps = (size_t)gridDim.x * blockDim.x / 32;
    const int lane = threadIdx.x % 32;
    for (size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; r < rows; r += warps) {
        float *row = A + r * HW, mx = -INFINITY, sum = 0;
        for (int j = lane; j < HW; j += 32) mx = fmaxf(mx, row[j]);
        mx = warp_max(mx);
        for (int j = lane; j < HW; j += 32) {
            const float e = expf(row[j] - mx);
            row[j] = e;
            sum += e;
        }
        const float inv = 1.0f / warp_sum(sum);
        for (int j = lane; j < HW; j += 32) row[j] *= inv;
    }
}

/* dS = A (dA - rowsum(dA A)) scale, in place over dA. */
__global__ void k_softmax_backward(float *dS, const float *A, size_t rows, int HW, float scale) {
    const size_t warps = (size_t)gridDim.x * blockDim.x / 32;
    const int lane = threadIdx.x % 32;
    for (size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; r < rows; r += warps) {
        float *d = dS + r * HW, rs = 0;
        const float *a = A + r * HW;
        for (int j = lane; j < HW; j += 32) rs += d[j] * a[j];
        rs = warp_sum(rs);
        for (int j = lane; j < HW; j += 32) d[j] = a[j] * (d[j] - rs) * scale;
    }
}


extern "C" int gpu_attention_forward(gpu_ctx *g, void *y_, void *qkvn_, float *norm, void *attn_, const void *qkv_,
                                     int N, int HW, int heads, int cph, void *tmp) {
    if (g->act != ACT_F32) return gpu_attention_forward_lp(g, y_, qkvn_, norm, attn_, qkv_, N, HW, heads, cph, tmp);
    float *y = (float *)y_, *qkvn = (float *)qkvn_, *attn = (float *)attn_;
    const float *qkv = (const float *)qkv_;
    const size_t rows = (size_t)N * heads * 3 * HW, C = (size_t)heads * cph, hw = (size_t)HW;
    const long long qs = 3LL * HW * cph, as = (long long)HW * HW; /* strides between (image, head) problems */
    k_qkv_normalize<<<blocks_for(rows), THREADS, 0, g->stream>>>(qkvn, norm, qkv, rows, HW, heads, cph);
    GPU_CUDA(g, cudaGetLastError());
    const float *qn = qkvn, *kn = qkvn + hw * cph, *vn = kn + hw * cph;
    if (gpu_gemm(g, 0, 1, hw, hw, (size_t)cph, 1.0f / sqrtf((float)cph), qn, (size_t)cph, qs, kn, (size_t)cph, qs, 0.0f,
                 attn, hw, as, N * heads))
        return -1;
    k_softmax_rows<<<warp_blocks((size_t)N * heads * HW), THREADS, 0, g->stream>>>(attn, (size_t)N * heads * HW, HW);
    GPU_CUDA(g, cudaGetLastError());
    /* out[n, p, h*cph + c]: per image, the heads' outputs interleave in the rows of y (stride cph between them). */
    for (int n = 0; n < N; n++) {
        const size_t nh = (size_t)n * heads;
        if (gpu_gemm(g, 0, 0, hw, (size_t)cph, hw, 1.0f, attn + nh * as, hw, as, vn + nh * qs, (size_t)cph, qs, 0.0f,
                     y + n * hw * C, C, cph, heads))
            return -1;
    }
    return 0;
}

extern "C" int gpu_attention_backward(gpu_ctx *g, void *dqkv_, const void *dy_, const void *qkv_, const void *qkvn_,
                                      const float *norm, const void *attn_, int N, int HW, int heads, int cph, int acc,
                                      void *dS_, void *dqkvn_, void *tmp) {
    if (g->act != ACT_F32)
        return gpu_attention_backward_lp(g, dqkv_, dy_, qkv_, qkvn_, norm, attn_, N, HW, heads, cph, acc, dS_, dqkvn_, tmp);
    float *dqkv = (float *)dqkv_, *dS = (float *)dS_, *dqkvn = (float *)dqkvn_;
    const float *dy = (const float *)dy_, *qkv = (const float *)qkv_, *qkvn = (const float *)qkvn_,
                *attn = (const float *)attn_;
    const size_t C = (size_t)heads * cph, hw = (size_t)HW;
    const long long qs = 3LL * HW * cph, as = (long long)HW * HW;
    const float *qn = qkvn, *kn = qkvn + hw * cph, *vn = kn + hw * cph;
    float *dq = dqkvn, *dk = dq + hw * cph, *dv = dk + hw * cph;
    for (int n = 0; n < N; n++) { /* dA = dO v^T, dv = A^T dO (dO: the heads' columns of dy) */
        const size_t nh = (size_t)n * heads;
        const float *dO = dy + n * hw * C;
        if (gpu_gemm(g, 0, 1, hw, hw, (size_t)cph, 1.0f, dO, C, cph, vn + nh * qs, (size_t)cph, qs, 0.0f, dS + nh * as, hw,
                     as, heads) ||
            gpu_gemm(g, 1, 0, hw, (size_t)cph, hw, 1.0f, attn + nh * as, hw, as, dO, C, cph, 0.0f, dv + nh * qs,
                     (size_t)cph, qs, heads))
            return -1;
    }
    const size_t srows = (size_t)N * heads * HW;
    k_softmax_backward<<<warp_blocks(srows), THREADS, 0, g->stream>>>(dS, attn, srows, HW, 1.0f / sqrtf((float)cph));
    GPU_CUDA(g, cudaGetLastError());
    /* S = q k^T scale (scale folded into dS): dq = dS k, dk = dS^T q. */
    if (gpu_gemm(g, 0, 0, hw, (size_t)cph, hw, 1.0f, dS, hw, as, kn, (size_t)cph, qs, 0.0f, dq, (size_t)cph, qs, N * heads) ||
        gpu_gemm(g, 1, 0, hw, (size_t)cph, hw, 1.0f, dS, hw, as, qn, (size_t)cph, qs, 0.0f, dk, (size_t)cph, qs, N * heads))
        return -1;
    const size_t rows = (size_t)N * heads * 3 * HW;
    k_qkv_normalize_backward<<<blocks_for(rows), THREADS, 0, g->stream>>>(dqkv, dqkvn, qkv, norm, rows, HW, heads, cph,
                                                                            acc);
    GPU_CUDA(g, cudaGetLastError());
    return 0;
}
