/* attention_lp.cu: cosine self-attention with bf16/fp16 activations (attention_cuda.h's layouts): q/k/v
 * normalisation a slab of 3 cph channels per group of lanes (norms float32), the scores S = q k^T / sqrt(cph),
 * the weights A and the output A v in the activations' type as the reference keeps them, each product one
 * batched call over all (image, head) pairs on tensor cores with float32 accumulation (the output and its
 * gradient pass through a heads-major copy [N, heads, HW, cph] for that), the softmax and its gradient in
 * float32, a group of lanes per row of scores. */
#include <cuda_runtime.h>
#include <math.h>

#include "../mp_unet/mp_math.h"
#include "attention_cuda.h"
#include "gemm_cuda.h"
#include "launch_cuda.h"
#include "lp_math.cuh"


/* The q/k/v normalisation a slab at a time: slab j = (n HW + p) heads + h is qkv[n, p, h*cph*3 ..] (3 cph
 * contiguous elements, e = 3 c + s: channel c of q, k, v for s = 0, 1, 2), read and written with 16-byte
 * chunks by a group of lanes (GROUP_ROWS, lp_math.cuh) instead of three warps gathering every third
 * element. Its rows in qkvn/norm are r_s = ((n heads + h) 3 + s) HW + p. The rows' side goes through the
 * group's share of shared memory (16 gl elements: slabs of up to 16 gl, cph <= 170 with 32 lanes), so that
 * both sides are read and written in order; a larger slab gathers and scatters its rows' elements instead. */
__device__ static size_t slab_row(size_t j, int s, int HW, int heads) {
    const size_t h = j % heads, p = j / heads % HW, n = j / ((size_t)heads * HW);
    return ((n * heads + h) * 3 + s) * HW + p;
}
/* v[k] added into the sums of its part: element c + k of a slab belongs to s = (c + k) % 3. */
__device__ __forceinline__ void slab_sums(float *sum, const float *v, int c) {
    UNROLL8(k) {
        const int s = (c + k) % 3;
        sum[0] += s == 0 ? v[k] : 0.0f, sum[1] += s == 1 ? v[k] : 0.0f, sum[2] += s == 2 ? v[k] : 0.0f;
    }
}
/* v[s] for s in 0..2 without indexing a local array at run time (which would put it in local memory). */
__device__ __forceinline__ float pick3(const float *v, int s) { return s == 0 ? v[0] : s == 1 ? v[1] : v[2]; }
#define SLAB_STAGE (16 * THREADS) /* shared elements per block: 16 gl for each group of gl lanes */
/* Element e of slab j's rows' side: sl[e] when staged, else in place in the rows (qkvn or dqkvn). */
template <typename R>
__device__ __forceinline__ R &slab_at(R *rows, R *sl, bool staged, size_t j, int e, int HW, int heads, int cph) {
    return staged ? sl[e] : rows[slab_row(j, e % 3, HW, heads) * cph + e / 3];
}
/* The staged slab into its 3 rows and back (lanes along the channels: in order on both sides). */
template <typename T>
__device__ __forceinline__ void slab_to_rows(T *rows, const T *sl, size_t j, int L, int HW, int heads, int cph,
                                             int lane, int gl) {
    for (int s = 0; s < 3; s++)
        for (int c = lane; c < (L ? cph : 0); c += gl) rows[slab_row(j, s, HW, heads) * cph + c] = sl[3 * c + s];
}
template <typename T>
__device__ __forceinline__ void rows_to_slab(T *sl, const T *rows, size_t j, int L, int HW, int heads, int cph,
                                             int lane, int gl) {
    for (int s = 0; s < 3; s++)
        for (int c = lane; c < (L ? cph : 0); c += gl) sl[3 * c + s] = rows[slab_row(j, s, HW, heads) * cph + c];
}

template <typename T>
__global__ void k_qkv_normalize(T *qkvn, float *norm, const T *qkv, size_t slabs, int HW, int heads, int cph, int gl) {
    __shared__ T stage[SLAB_STAGE];
    T *sl = stage + threadIdx.x / gl * 16 * gl;
    const bool staged = 3 * cph <= 16 * gl;
    const float inv_sqrt_c = 1.0f / sqrtf((float)cph);
    GROUP_ROWS(j, slabs, gl, lane) {
        const int L = ROW_LEN(j, slabs, 3 * cph);
        const T *src = qkv + j * 3 * cph;
        float v[8], sq[8], ss[3] = {0, 0, 0}, inv[3];
        ROW_CHUNKS(c, m, L, lane, gl) {
            ldv(v, src, c, m);
            UNROLL8(k) sq[k] = v[k] * v[k];
            slab_sums(ss, sq, c);
        }
        for (int s = 0; s < 3; s++) {
            const float nr = MP_EPS + sqrtf(group_sum(ss[s], gl)) * inv_sqrt_c;
            inv[s] = 1.0f / nr;
            if (lane == 0 && L) norm[slab_row(j, s, HW, heads)] = nr;
        }
        ROW_CHUNKS(c, m, L, lane, gl) {
            ldv(v, src, c, m);
            UNROLL8(k) if (k < m) {
                slab_at(qkvn, sl, staged, j, c + k, HW, heads, cph) = st<T>(v[k] * pick3(inv, (c + k) % 3));
            }
        }
        if (!staged) continue;
        __syncwarp();
        slab_to_rows(qkvn, sl, j, L, HW, heads, cph, lane, gl);
        __syncwarp(); /* sl read before the next slab writes it */
    }
}

template <typename T>
__global__ void k_qkv_normalize_backward(T *dqkv, const T *dqkvn, const T *qkv, const float *norm, size_t slabs, int HW,
                                         int heads, int cph, int acc, int gl) {
    __shared__ T stage[SLAB_STAGE];
    T *sl = stage + threadIdx.x / gl * 16 * gl;
    const bool staged = 3 * cph <= 16 * gl;
    const float inv_sqrt_c = 1.0f / sqrtf((float)cph);
    GROUP_ROWS(j, slabs, gl, lane) {
        const int L = ROW_LEN(j, slabs, 3 * cph);
        const size_t o = j * 3 * cph;
        float g[8], v[8], gv[8], dot[3] = {0, 0, 0}, a[3], b[3];
        if (staged) {
            rows_to_slab(sl, dqkvn, j, L, HW, heads, cph, lane, gl);
            __syncwarp();
        }
        auto grad = [&](int c, int m) { /* g: dqkvn's values for the chunk's elements */
            UNROLL8(k) g[k] = k < m ? ld(slab_at(dqkvn, (const T *)sl, staged, j, c + k, HW, heads, cph)) : 0.0f;
        };
        ROW_CHUNKS(c, m, L, lane, gl) {
            grad(c, m), ldv(v, qkv + o, c, m);
            UNROLL8(k) gv[k] = g[k] * v[k];
            slab_sums(dot, gv, c);
        }
        for (int s = 0; s < 3; s++) {
            const float d = group_sum(dot[s], gl);
            const float nr = L ? norm[slab_row(j, s, HW, heads)] : 1.0f, len = (nr - MP_EPS) / inv_sqrt_c;
            a[s] = 1.0f / nr, b[s] = len > 0 ? d * inv_sqrt_c / (nr * nr * len) : 0.0f;
        }
        ROW_CHUNKS(c, m, L, lane, gl) {
            grad(c, m), ldv(v, qkv + o, c, m);
            UNROLL8(k) {
                const int s = (c + k) % 3;
                g[k] = g[k] * pick3(a, s) - v[k] * pick3(b, s);
            }
            stv(dqkv + o, g, c, m, acc);
        }
        if (staged) __syncwarp(); /* sl read before the next slab writes it */
    }
}

/* Rows of HW scores, a group of lanes each, in place: max, exp, sum, scale in float32. */
template <typename T> __global__ void k_softmax_rows(T *A, size_t rows, int HW, int gl) {
    GROUP_ROWS(r, rows, gl, lane) {
        const int n = ROW_LEN(r, rows, HW);
        T *row = A + r * HW;
        float v[8], mx = -INFINITY, sum = 0;
        ROW_CHUNKS(c, m, n, lane, gl) {
            ldv(v, row, c, m);
            UNROLL8(k) mx = k < m ? fmaxf(mx, v[k]) : mx;
        }
        mx = group_max(mx, gl);
        ROW_CHUNKS(c, m, n, lane, gl) {
            ldv(v, row, c, m);
            UNROLL8(k) sum += k < m ? expf(v[k] - mx) : 0.0f;
        }
        const float inv = 1.0f / group_sum(sum, gl);
        ROW_CHUNKS(c, m, n, lane, gl) {
            ldv(v, row, c, m);
            UNROLL8(k) v[k] = expf(v[k] - mx) * inv;
            stv(row, v, c, m);
        }
    }
}

/* dS = A (dA - rowsum(dA A)) scale, in place over dA. */
template <typename T> __global__ void k_softmax_backward(T *dS, const T *A, size_t rows, int HW, float scale, int gl) {
    GROUP_ROWS(r, rows, gl, lane) {
        const int n = ROW_LEN(r, rows, HW);
        T *d = dS + r * HW;
        const T *a = A + r * HW;
        float u[8], v[8], rs = 0;
        ROW_CHUNKS(c, m, n, lane, gl) {
            ldv(u, d, c, m), ldv(v, a, c, m);
            UNROLL8(k) rs += u[k] * v[k];
        }
        rs = group_sum(rs, gl);
        ROW_CHUNKS(c, m, n, lane, gl) {
            ldv(u, d, c, m), ldv(v, a, c, m);
            UNROLL8(k) u[k] = v[k] * (u[k] - rs) * scale;
            stv(d, u, c, m);
        }
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
    const size_t C = (size_t)heads * cph, hw = (size_t)HW;
    const long long qs = 3LL * HW * cph, as = (long long)HW * HW; /* strides between (image, head) problems */
    const size_t slabs = (size_t)N * HW * heads;
    const int gq = row_lanes(3 * (size_t)cph), gs = row_lanes(hw);
    k_qkv_normalize<T><<<group_blocks(slabs, gq), THREADS, 0, g->stream>>>(qkvn, norm, (const T *)qkv, slabs, HW, heads,
                                                                             cph, gq);
    GPU_CUDA(g, cudaGetLastError());
    const T *qn = qkvn, *kn = qkvn + hw * cph, *vn = kn + hw * cph;
    if (gpu_gemm_ex(g, act, act, 0, 1, hw, hw, (size_t)cph, 1.0f / sqrtf((float)cph), qn, (size_t)cph, qs, kn,
                    (size_t)cph, qs, 0.0f, attn, hw, as, N * heads))
        return -1;
    k_softmax_rows<T><<<group_blocks((size_t)N * heads * HW, gs), THREADS, 0, g->stream>>>(attn, (size_t)N * heads * HW,
                                                                                              HW, gs);
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
    const int gs = row_lanes(hw), gq = row_lanes(3 * (size_t)cph);
    k_softmax_backward<T><<<group_blocks(srows, gs), THREADS, 0, g->stream>>>(dS, attn, srows, HW,
                                                                               1.0f / sqrtf((float)cph), gs);
    GPU_CUDA(g, cudaGetLastError());
    /* S = q k^T scale (scale folded into dS): dq = dS k, dk = dS^T q. */
    if (gpu_gemm_ex(g, act, act, 0, 0, hw, (size_t)cph, hw, 1.0f, dS, hw, as, kn, (size_t)cph, qs, 0.0f, dq, (size_t)cph,
                    qs, N * heads) ||
        gpu_gemm_ex(g, act, act, 1, 0, hw, (size_t)cph, hw, 1.0f, dS, hw, as, qn, (size_t)cph, qs, 0.0f, dk, (size_t)cph,
                    qs, N * heads))
        return -1;
    const size_t slabs = (size_t)N * HW * heads;
    k_qkv_normalize_backward<T><<<group_blocks(slabs, gq), THREADS, 0, g->stream>>>(
        (T *)dqkv, dqkvn, (const T *)qkv, norm, slabs, HW, heads, cph, acc, gq);
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
