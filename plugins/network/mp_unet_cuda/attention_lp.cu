/* attention_lp.cu: cosine self-attention with bf16/fp16 activations (attention_cuda.h's layouts): q/k/v
 * normalisation one warp per row (norms float32), the scores S = q k^T / sqrt(cph), the weights A and the
 * output A v in the activations' type as the reference keeps them, each product one batched call over
 * all (image, head) pairs on tensor cores with float32 accumulation (the output and its gradient pass
 * through a heads-major copy [N, heads, HW, cph] for that), the softmax and its gradient in float32. */
#include <cuda_runtime.h>
#include <math.h>

#include "../mp_unet/mp_math.h"
#include "attention_cuda.h"
#include "gemm_cuda.h"
#include "launch_cuda.h"
#include "lp_math.cuh"


/* Row r = (nh*3 + s)*HW + p of qkvn/norm: its source is qkv[n, p, (h*cph + c)*3 + s], c = 0..cph-1. */
__device__ static size_t qkv_offset(size_t r, int HW, int heads, int cph) {
    const size_t p = r % HW, s = (r / HW) % 3, nh = r / (3 * (size_t)HW), n = nh / heads, h = nh % heads;
    return (n * HW + p) * 3 * (size_t)heads * cph + h * (size_t)cph * 3 + s;
}

template <typename T>
__global__ void k_qkv_normalize(T *qkvn, float *norm, const T *qkv, size_t rows, int HW, int heads, int cph) {
    const float inv_sqrt_c = 1.0f / sqrtf((float)cph);
    WARP_ROWS(r, rows, lane) {
        const T *src = qkv + qkv_offset(r, HW, heads, cph);
        float ss = 0;
        for (int c = lane; c < cph; c += 32) ss += ld(src[3 * c]) * ld(src[3 * c]);
        const float nr = MP_EPS + sqrtf(warp_sum(ss)) * inv_sqrt_c, inv = 1.0f / nr;
        if (lane == 0) norm[r] = nr;
        for (int c = lane; c < cph; c += 32) qkvn[r * cph + c] = st<T>(ld(src[3 * c]) * inv);
    }
}

template <typename T>
__global__ void k_qkv_normalize_backward(T *dqkv, const T *dqkvn, const T *qkv, const float *norm, size_t rows, int HW,
                                         int heads, int cph, int acc) {
    const float inv_sqrt_c = 1.0f / sqrtf((float)cph);
    WARP_ROWS(r, rows, lane) {
        const size_t o = qkv_offset(r, HW, heads, cph);
        const T *src = qkv + o, *gp = dqkvn + r * cph;
        float dot = 0;
        for (int c = lane; c < cph; c += 32) dot += ld(gp[c]) * ld(src[3 * c]);
        dot = warp_sum(dot);
        const float nr = norm[r], len = (nr - MP_EPS) / inv_sqrt_c;
        const float a = 1.0f / nr, b = len > 0 ? dot * inv_sqrt_c / (nr * nr * len) : 0.0f;
        for (int c = lane; c < cph; c += 32) st_acc(dqkv + o + 3 * c, ld(gp[c]) * a - ld(src[3 * c]) * b, acc);
    }
}

/* One warp per row of HW scores, in place: max, exp, sum, scale in float32. */
template <typename T> __global__ void k_softmax_rows(T *A, size_t rows, int HW) {
    WARP_ROWS(r, rows, lane) {
        T *row = A + r * HW;
        float mx = -INFINITY, sum = 0;
        for (int j = lane; j < HW; j += 32) mx = fmaxf(mx, ld(row[j]));
        mx = warp_max(mx);
        for (int j = lane; j < HW; j += 32) sum += expf(ld(row[j]) - mx);
        const float inv = 1.0f / warp_sum(sum);
        for (int j = lane; j < HW; j += 32) row[j] = st<T>(expf(ld(row[j]) - mx) * inv);
    }
}

/* dS = A (dA - rowsum(dA A)) scale, in place over dA. */
template <typename T> __global__ void k_softmax_backward(T *dS, const T *A, size_t rows, int HW, float scale) {
    WARP_ROWS(r, rows, lane) {
        T *d = dS + r * HW;
        const T *a = A + r * HW;
        float rs = 0;
        for (int j = lane; j < HW; j += 32) rs += ld(d[j]) * ld(a[j]);
        rs = warp_sum(rs);
        for (int j = lane; j < HW; j += 32) d[j] = st<T>(ld(a[j]) * (ld(d[j]) - rs) * scale);
    }
}

/* [N, heads, HW, cph] <-> [N, HW, heads * cph] (to_rows: heads-major into rows), 8 elements per thread
 * (16-byte accesses on both sides when cph is a multiple of 8). */
template <typename T> __global__ void k_permute_heads(T *dst, const T *src, int N, int HW, int heads, int cph, int to_rows) {
    const size_t C = (size_t)heads * cph, n_all = (size_t)N * HW * C;
    auto heads_major = [=](size_t i) { /* i indexes the row layout [n, p, h*cph + c] */
        const size_t c = i % cph, h = i / cph % heads, p = i / C % HW, n = i / (C * HW);
        return ((n * heads + h) * HW + p) * cph + c;
    };
    const bool vec = cph % 8 == 0;
    CHUNK_LOOP(i, n_all) {
        const int m = chunk_len(i, n_all);
        float v[8];
        if (to_rows) {
            ld_at(v, src, i, m, vec, heads_major);
            stv(dst, v, i, m);
        } else {
            ldv(v, src, i, m);
            st_at(dst, v, i, m, vec, heads_major);
        }
    }
}

template <typename T>
static int forward(gpu_ctx *g, void *y_, void *qkvn_, float *norm, void *attn_, const void *qkv, int N, int HW, int heads,
                   int cph, void *tmp_) {
    T *y = (T *)y_, *qkvn = (T *)qkvn_, *attn = (T *)attn_, *tmp = (T *)tmp_;
    const int act = g->act;
    const size_t rows = (size_t)N * heads * 3 * HW, C = (size_t)heads * cph, hw = (size_t)HW;
    const long long qs = 3LL * HW * cph, as = (long long)HW * HW; /* strides between (image, head) problems */
    k_qkv_normalize<T><<<warp_blocks(rows), THREADS, 0, g->stream>>>(qkvn, norm, (const T *)qkv, rows, HW, heads, cph);
    GPU_CUDA(g, cudaGetLastError());
    const T *qn = qkvn, *kn = qkvn + hw * cph, *vn = kn + hw * cph;
    if (gpu_gemm_ex(g, act, act, 0, 1, hw, hw, (size_t)cph, 1.0f / sqrtf((float)cph), qn, (size_t)cph, qs, kn,
                    (size_t)cph, qs, 0.0f, attn, hw, as, N * heads))
        return -1;
    k_softmax_rows<T><<<warp_blocks((size_t)N * heads * HW), THREADS, 0, g->stream>>>(attn, (size_t)N * heads * HW, HW);
    GPU_CUDA(g, cudaGetLastError());
    /* out = A v, heads-major in tmp, then into the rows of y: y[n, p, h*cph + c]. */
    if (gpu_gemm_ex(g, act, act, 0, 0, hw, (size_t)cph, hw, 1.0f, attn, hw, as, vn, (size_t)cph, qs, 0.0f, tmp,
                    (size_t)cph, (long long)(hw * cph), N * heads))
        return -1;
    k_permute_heads<T><<<blocks_for(((size_t)N * hw * C + 7) / 8), THREADS, 0, g->stream>>>(y, tmp, N, HW, heads, cph, 1);
    GPU_CUDA(g, cudaGetLastError());
    return 0;
}

template <typename T>
static int backward(gpu_ctx *g, void *dqkv, const void *dy_, const void *qkv, const void *qkvn_, const float *norm,
                    const void *attn_, int N, int HW, int heads, int cph, int acc, void *dS_, void *dqkvn_, void *tmp_) {
    const T *dy = (const T *)dy_, *qkvn = (const T *)qkvn_, *attn = (const T *)attn_;
    T *dS = (T *)dS_, *dqkvn = (T *)dqkvn_, *dO = (T *)tmp_;
    const int act = g->act;
    const size_t C = (size_t)heads * cph, hw = (size_t)HW;
    const long long qs = 3LL * HW * cph, as = (long long)HW * HW;
    const T *qn = qkvn, *kn = qkvn + hw * cph, *vn = kn + hw * cph;
    T *dq = dqkvn, *dk = dq + hw * cph, *dv = dk + hw * cph;
    /* dO: dy's heads, heads-major; dA = dO v^T, dv = A^T dO over all (image, head) pairs. */
    const long long os = (long long)(hw * cph);
    k_permute_heads<T><<<blocks_for(((size_t)N * hw * C + 7) / 8), THREADS, 0, g->stream>>>(dO, dy, N, HW, heads, cph, 0);
    GPU_CUDA(g, cudaGetLastError());
    if (gpu_gemm_ex(g, act, act, 0, 1, hw, hw, (size_t)cph, 1.0f, dO, (size_t)cph, os, vn, (size_t)cph, qs, 0.0f, dS, hw,
                    as, N * heads) ||
        gpu_gemm_ex(g, act, act, 1, 0, hw, (size_t)cph, hw, 1.0f, attn, hw, as, dO, (size_t)cph, os, 0.0f, dv, (size_t)cph,
                    qs, N * heads))
        return -1;
    const size_t srows = (size_t)N * heads * HW;
    k_softmax_backward<T><<<warp_blocks(srows), THREADS, 0, g->stream>>>(dS, attn, srows, HW, 1.0f / sqrtf((float)cph));
    GPU_CUDA(g, cudaGetLastError());
    /* S = q k^T scale (scale folded into dS): dq = dS k, dk = dS^T q. */
    if (gpu_gemm_ex(g, act, act, 0, 0, hw, (size_t)cph, hw, 1.0f, dS, hw, as, kn, (size_t)cph, qs, 0.0f, dq, (size_t)cph,
                    qs, N * heads) ||
        gpu_gemm_ex(g, act, act, 1, 0, hw, (size_t)cph, hw, 1.0f, dS, hw, as, qn, (size_t)cph, qs, 0.0f, dk, (size_t)cph,
                    qs, N * heads))
        return -1;
    const size_t rows = (size_t)N * heads * 3 * HW;
    k_qkv_normalize_backward<T><<<warp_blocks(rows), THREADS, 0, g->stream>>>((T *)dqkv, dqkvn, (const T *)qkv, norm, rows,
                                                                               HW, heads, cph, acc);
    GPU_CUDA(g, cudaGetLastError());
    return 0;
}

extern "C" int gpu_attention_forward_lp(gpu_ctx *g, void *y, void *qkvn, float *norm, void *attn, const void *qkv, int N,
                                        int HW, int heads, int cph, void *tmp) {
    return LP_CALL(g->act, forward, g, y, qkvn, norm, attn, qkv, N, HW, heads, cph, tmp);
}

extern "C" int gpu_attention_backward_lp(gpu_ctx *g, void *dqkv, const void *dy, const void *qkv, const void *qkvn,
                                         const float *norm, const void *attn, int N, int HW, int heads, int cph, int acc,
                                         void *dS, void *dqkvn, void *tmp) {
    return LP_CALL(g->act, backward, g, dqkv, dy, qkv, qkvn, norm, attn, N, HW, heads, cph, acc, dS, dqkvn, tmp);
}
