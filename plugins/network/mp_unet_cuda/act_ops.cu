/* act_ops.cu: the element-wise layers of act_ops.h. float32 calls go to the exact kernels (mp_ops_cuda.h,
 * unet_kernels.h); bf16/fp16 calls run the templates below: the per-element arithmetic of
 * ../mp_unet/mp_math.h in float32 between a load and a rounded store, 8 elements per thread with 16-byte
 * accesses where the layout allows (CHUNK_LOOP, lp_math.cuh), row norms by a group of lanes per row
 * (GROUP_ROWS). */
#include <cuda_runtime.h>
#include <math.h>

#include "../mp_unet/mp_math.h"
#include "act_ops.h"
#include "launch_cuda.h"
#include "lp_math.cuh"
#include "mp_ops_cuda.h"
#include "unet_kernels.h"

#define F(p) ((float *)(p))
#define CF(p) ((const float *)(p))

/* ---- between element types ---- */

template <typename T> static int add_to_f32(void *stream, float *y, const void *x, size_t n) {
    LAUNCH_CHUNKS(n, (k_add_into<float, T>), y, (const T *)x, n);
}
int act_add_to_f32(void *stream, int act, float *y, const void *x, size_t n) {
    return ACT_CALL(act, add_to_f32, stream, y, x, n);
}

template <typename Y, typename X> __global__ void k_convert(Y *y, const X *x, size_t n) {
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float v[8];
        ldv(v, x, i, m);
        stv(y, v, i, m);
    }
}
template <typename Y> static int convert_to(void *stream, void *y, int x_act, const void *x, size_t n) {
    if (x_act == ACT_F32) LAUNCH_CHUNKS(n, (k_convert<Y, float>), (Y *)y, (const float *)x, n);
    if (x_act == ACT_BF16) LAUNCH_CHUNKS(n, (k_convert<Y, bf16>), (Y *)y, (const bf16 *)x, n);
    LAUNCH_CHUNKS(n, (k_convert<Y, __half>), (Y *)y, (const __half *)x, n);
}
int act_convert(void *stream, int y_act, void *y, int x_act, const void *x, size_t n) {
    return ACT_CALL(y_act, convert_to, stream, y, x_act, x, n);
}

/* ---- the zero-padded copy of the 3x3 weight gradient's operands, in units U of Cu per pixel ---- */

template <typename U>
__global__ void k_pad_rows(U *dst, const U *x, int N, int H, int W, int Cu, int margin, size_t rows) {
    const long long Wp = W + 2, grid = (long long)N * (H + 2) * Wp;
    STRIDE_LOOP(e, rows * (size_t)Cu) {
        const long long r = (long long)(e / Cu) - margin;
        const int c = (int)(e % Cu);
        U v = {};
        if (r >= 0 && r < grid) {
            const long long n = r / ((H + 2) * Wp), i = r / Wp % (H + 2) - 1, j = r % Wp - 1;
            if (i >= 0 && i < H && j >= 0 && j < W) v = x[((n * H + i) * W + j) * Cu + c];
        }
        dst[e] = v;
    }
}
int act_pad_rows(void *stream, int act, void *dst, const void *x, int N, int H, int W, int C, int margin) {
    const size_t bytes = (size_t)C * act_size(act), rows = 2 * (size_t)margin + (size_t)N * (H + 2) * (W + 2);
    if (bytes % 16 == 0) /* whole pixels in 16-byte units */
        LAUNCH(rows * (bytes / 16), k_pad_rows<uint4>, (uint4 *)dst, (const uint4 *)x, N, H, W, (int)(bytes / 16),
               margin, rows);
    if (act != ACT_F32) LAUNCH(rows * C, k_pad_rows<unsigned short>, (unsigned short *)dst, (const unsigned short *)x, N,
                               H, W, C, margin, rows);
    LAUNCH(rows * C, k_pad_rows<unsigned int>, (unsigned int *)dst, (const unsigned int *)x, N, H, W, C, margin, rows);
}

/* ---- weights: forced normalisation and preparation a warp per output unit, the gradient a block per unit ---- */

/* w[u] /= eps + |w[u]| / sqrt(F) for each listed unit u. */
__global__ void k_forced_weight_norm_warp(float *params, const mpc_unit *units, size_t n) {
    WARP_ROWS(u, n, lane) {
        float *w = params + units[u].offset;
        const int F = units[u].F;
        float ss = 0;
        for (int j = lane; j < F; j += 32) ss += w[j] * w[j];
        const float nr = MP_EPS + sqrtf(warp_sum(ss)) * (1.0f / sqrtf((float)F));
        for (int j = lane; j < F; j += 32) w[j] /= nr;
    }
}
int act_forced_weight_norm(void *stream, int act, float *params, const mpc_unit *units, size_t n) {
    if (act == ACT_F32) return mpc_forced_weight_norm(stream, params, units, n);
    if (n == 0) return 0;
    k_forced_weight_norm_warp<<<warp_blocks(n), THREADS, 0, (cudaStream_t)stream>>>(params, units, n);
    return (int)cudaGetLastError();
}

/* w_hat[o, t, c] = w[o, c, t] / n * gain / sqrt(F) (float32 and type T), n = eps + |w[o]| / sqrt(F): one
 * listed unit per warp, its outputs where the unit says. The transposition from the arena's [c, t] to the
 * products' tap-major [t, c] goes through the warp's tile of shared memory, PREP_TILE floats: the taps of
 * up to 32 channels, read in order, written out a tap at a time with the lanes along the channels, so
 * that the arena is read and the outputs are written in order (a unit of 512 channels x 9 taps gathered
 * directly takes 36-byte strides through 18 KB, more than a GPU's cache holds for all its warps). Units of
 * more taps than a tile holds gather directly. */
#define PREP_TILE 288 /* 32 channels of 9 taps */
template <typename T>
__global__ void k_weights_forward(float *w_hat, T *w_lp, float *norm, const float *params, const act_prep_unit *units,
                                  size_t nu) {
    __shared__ float tiles[THREADS / 32 * PREP_TILE];
    float *tile = tiles + threadIdx.x / 32 * PREP_TILE;
    WARP_ROWS(u, nu, lane) {
        const act_prep_unit p = units[u];
        const int C = p.C, kk = p.kk, F = C * kk, CT = kk > PREP_TILE ? 0 : PREP_TILE / kk < 32 ? PREP_TILE / kk : 32;
        const float inv_sqrt_f = 1.0f / sqrtf((float)F), scale = (p.gain >= 0 ? params[p.gain] : 1.0f) * inv_sqrt_f;
        const float *wo = params + p.w;
        float ss = 0;
        for (int j = lane; j < F; j += 32) ss += wo[j] * wo[j];
        const float n = MP_EPS + sqrtf(warp_sum(ss)) * inv_sqrt_f;
        if (lane == 0) norm[p.norm] = n;
        float *hat = p.hat == (size_t)-1 ? NULL : w_hat + p.hat;
        T *lp = p.lp ? w_lp + p.w : NULL;
        auto put = [&](int t, int c, float w) { /* the prepared value of w = wo[c kk + t] */
            const float v = w / n * scale;
            if (hat) hat[t * C + c] = v;
            if (lp) lp[t * C + c] = st<T>(v);
        };
        if (!CT) {
            for (int i = lane; i < F; i += 32) put(i / C, i % C, wo[i % C * kk + i / C]);
            continue;
        }
        for (int c0 = 0; c0 < C; c0 += CT) {
            const int cw = C - c0 < CT ? C - c0 : CT;
            for (int q = lane; q < cw * kk; q += 32) tile[q] = wo[c0 * kk + q];
            __syncwarp();
            for (int t = 0; lane < cw && t < kk; t++) put(t, c0 + lane, tile[lane * kk + t]);
            __syncwarp(); /* the tile read before the next channels are written into it */
        }
    }
}
/* dw[o] += dw_hat . d(w_hat)/dw; terms[o] = (dw_hat . w) / n / sqrt(F), the unit's share of the gain's
 * gradient. One block per output unit (a warp per unit left a 128-unit weight with 128 warps on the whole
 * GPU: 36 us a weight in the H100 profile): its threads take j = c k k + t in the arena's layout (w and dw
 * read and written in order; dw_hat, tap-major, gathered from the unit's row, which stays in cache), the
 * dot product summed per warp and then over the warps in order. */
__global__ void k_weight_backward_rows(float *dw, float *terms, const float *dw_hat, const float *w, const float *norm,
                                       const float *gain_p, int O, int C, int kk) {
    __shared__ float part[THREADS / 32];
    const int F = C * kk;
    const float inv_sqrt_f = 1.0f / sqrtf((float)F), s = (gain_p ? *gain_p : 1.0f) * inv_sqrt_f;
    for (int o = blockIdx.x; o < O; o += gridDim.x) {
        const float *wo = w + (size_t)o * F, *go = dw_hat + (size_t)o * F;
        float dot = 0;
        for (int j = threadIdx.x; j < F; j += blockDim.x) dot += go[(j % kk) * C + j / kk] * wo[j];
        dot = warp_sum(dot);
        if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = dot;
        __syncthreads();
        dot = 0;
        for (int i = 0; i < (int)blockDim.x / 32; i++) dot += part[i];
        __syncthreads(); /* part is read by all before the next unit writes it */
        const float n = norm[o], len = (n - MP_EPS) / inv_sqrt_f;
        const float a = s / n, b = len > 0 ? s * dot * inv_sqrt_f / (n * n * len) : 0.0f;
        for (int j = threadIdx.x; j < F; j += blockDim.x)
            dw[(size_t)o * F + j] += go[(j % kk) * C + j / kk] * a - wo[j] * b;
        if (threadIdx.x == 0) terms[o] = dot / n * inv_sqrt_f;
    }
}
/* The gain's gradient: the units' terms summed by one warp. */
__global__ void k_weight_gain(float *dgain, const float *terms, int O) {
    float s = 0;
    for (int o = threadIdx.x; o < O; o += 32) s += terms[o];
    s = warp_sum(s);
    if (threadIdx.x == 0) *dgain += s;
}
template <typename T>
static int weights_forward(void *stream, float *w_hat, void *w_lp, float *norm, const float *params,
                           const act_prep_unit *units, size_t n) {
    if (n == 0) return 0;
    k_weights_forward<T><<<warp_blocks(n), THREADS, 0, (cudaStream_t)stream>>>(w_hat, (T *)w_lp, norm, params, units, n);
    return (int)cudaGetLastError();
}
int act_weights_forward(void *stream, int act, float *w_hat, void *w_lp, float *norm, const float *params,
                        const act_prep_unit *units, size_t n) {
    return LP_CALL(act, weights_forward, stream, w_hat, w_lp, norm, params, units, n);
}
int act_weight_backward(void *stream, int act, float *dw, float *dgain, const float *dw_hat, const float *w,
                        const float *norm, const float *gain, int O, int C, int k, float *scratch) {
    if (act == ACT_F32) return mpc_weight_backward(stream, dw, dgain, dw_hat, w, norm, gain, O, C, k, scratch);
    if (O == 0) return 0;
    k_weight_backward_rows<<<blocks_for((size_t)O * THREADS), THREADS, 0, (cudaStream_t)stream>>>(
        dw, scratch, dw_hat, w, norm, gain, O, C, k * k);
    if (dgain) k_weight_gain<<<1, 32, 0, (cudaStream_t)stream>>>(dgain, scratch, O);
    return (int)cudaGetLastError();
}

/* ---- pixel norm: a group of lanes per row (GROUP_ROWS, lp_math.cuh) ---- */

/* y = x / norm, norm = eps + |x| / sqrt(cols) per row; with `a`, also a = mp_silu(y) from y as stored (the
 * encoder's pixel norm and the MP-SiLU after it in one pass, bitwise the two kernels in sequence). */
template <typename T>
__global__ void k_normalize_rows_forward(T *y, T *a, float *norm, const T *x, size_t rows, int cols, int gl) {
    const float inv_sqrt_n = 1.0f / sqrtf((float)cols);
    GROUP_ROWS(r, rows, gl, lane) {
        const int n = ROW_LEN(r, rows, cols);
        const size_t o = r * cols;
        float ss = 0, v[8], s[8];
        ROW_CHUNKS(c, m, n, lane, gl) {
            ldv(v, x + o, c, m);
            UNROLL8(k) ss += v[k] * v[k];
        }
        const float nr = MP_EPS + sqrtf(group_sum(ss, gl)) * inv_sqrt_n, inv = 1.0f / nr;
        if (lane == 0 && n) norm[r] = nr;
        ROW_CHUNKS(c, m, n, lane, gl) {
            ldv(v, x + o, c, m);
            UNROLL8(k) v[k] = ld(st<T>(v[k] * inv)), s[k] = mp_silu1(v[k]);
            stv(y + o, v, c, m);
            if (a) stv(a + o, s, c, m);
        }
    }
}
/* dx (+)= the pixel norm's gradient of g, g = dy; with `da`, g = dy + mp_silu's gradient of da at y, as
 * act_silu_backward would store it into dy, g never stored (the encoder's two gradients in one pass). */
template <typename T>
__global__ void k_normalize_rows_backward(T *dx, const T *dy, const T *da, const T *y, const T *x, const float *norm,
                                          size_t rows, int cols, int acc, int gl) {
    const float inv_sqrt_n = 1.0f / sqrtf((float)cols);
    GROUP_ROWS(r, rows, gl, lane) {
        const int n = ROW_LEN(r, rows, cols);
        const size_t o = r * cols;
        float g[8], v[8];
        auto grad = [&](int c, int m) { /* g and v = x at chunk c */
            ldv(g, dy + o, c, m), ldv(v, x + o, c, m);
            if (!da) return;
            float d[8], u[8];
            ldv(d, da + o, c, m), ldv(u, y + o, c, m);
            UNROLL8(k) g[k] = ld(st<T>(g[k] + mp_silu1_grad(d[k], u[k])));
        };
        float dot = 0;
        ROW_CHUNKS(c, m, n, lane, gl) {
            grad(c, m);
            UNROLL8(k) dot += g[k] * v[k];
        }
        dot = group_sum(dot, gl);
        const float nr = n ? norm[r] : 1.0f, len = (nr - MP_EPS) / inv_sqrt_n;
        const float a = 1.0f / nr, b = len > 0 ? dot * inv_sqrt_n / (nr * nr * len) : 0.0f;
        ROW_CHUNKS(c, m, n, lane, gl) {
            grad(c, m);
            UNROLL8(k) g[k] = g[k] * a - v[k] * b;
            stv(dx + o, g, c, m, acc);
        }
    }
}
template <typename T>
static int normalize_rows_forward(void *stream, void *y, void *a, float *norm, const void *x, size_t rows, int cols) {
    if (rows == 0) return 0;
    const int gl = row_lanes(cols);
    k_normalize_rows_forward<T><<<group_blocks(rows, gl), THREADS, 0, (cudaStream_t)stream>>>(
        (T *)y, (T *)a, norm, (const T *)x, rows, cols, gl);
    return (int)cudaGetLastError();
}
template <typename T>
static int normalize_rows_backward(void *stream, void *dx, const void *dy, const void *da, const void *y, const void *x,
                                   const float *norm, size_t rows, int cols, int acc) {
    if (rows == 0) return 0;
    const int gl = row_lanes(cols);
    k_normalize_rows_backward<T><<<group_blocks(rows, gl), THREADS, 0, (cudaStream_t)stream>>>(
        (T *)dx, (const T *)dy, (const T *)da, (const T *)y, (const T *)x, norm, rows, cols, acc, gl);
    return (int)cudaGetLastError();
}
int act_normalize_silu_forward(void *stream, int act, void *y, void *a, float *norm, const void *x, size_t rows,
                               int cols) {
    if (act != ACT_F32) return LP_CALL(act, normalize_rows_forward, stream, y, a, norm, x, rows, cols);
    const int e = mpc_normalize_rows_forward(stream, F(y), norm, CF(x), rows, cols, cols, cols);
    return e ? e : mpc_silu_forward(stream, F(a), CF(y), rows * (size_t)cols);
}
int act_silu_normalize_backward(void *stream, int act, void *dx, void *dy, const void *da, const void *y, const void *x,
                                const float *norm, size_t rows, int cols) {
    if (act != ACT_F32) return LP_CALL(act, normalize_rows_backward, stream, dx, dy, da, y, x, norm, rows, cols, 0);
    const int e = mpc_silu_backward(stream, F(dy), CF(da), CF(y), rows * (size_t)cols, 1);
    return e ? e : mpc_normalize_rows_backward(stream, F(dx), CF(dy), CF(x), norm, rows, cols, cols, cols, 0);
}
int act_normalize_rows_forward(void *stream, int act, void *y, float *norm, const void *x, size_t rows, int cols) {
    if (act == ACT_F32) return mpc_normalize_rows_forward(stream, F(y), norm, CF(x), rows, cols, cols, cols);
    return LP_CALL(act, normalize_rows_forward, stream, y, NULL, norm, x, rows, cols);
}
int act_normalize_rows_backward(void *stream, int act, void *dx, const void *dy, const void *x, const float *norm,
                                size_t rows, int cols, int acc) {
    if (act == ACT_F32) return mpc_normalize_rows_backward(stream, F(dx), CF(dy), CF(x), norm, rows, cols, cols, cols, acc);
    return LP_CALL(act, normalize_rows_backward, stream, dx, dy, NULL, NULL, x, norm, rows, cols, acc);
}

/* ---- MP-SiLU, MP-Add, MP-Cat ---- */

template <typename T> __global__ void k_silu_forward(T *y, const T *x, size_t n) {
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float v[8];
        ldv(v, x, i, m);
        UNROLL8(k) v[k] = mp_silu1(v[k]);
        stv(y, v, i, m);
    }
}
template <typename T> __global__ void k_silu_backward(T *dx, const T *dy, const T *x, size_t n, int acc) {
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float g[8], v[8];
        ldv(g, dy, i, m), ldv(v, x, i, m);
        UNROLL8(k) g[k] = mp_silu1_grad(g[k], v[k]);
        stv(dx, g, i, m, acc);
    }
}
template <typename T> static int silu_forward(void *stream, void *y, const void *x, size_t n) {
    LAUNCH_CHUNKS(n, k_silu_forward<T>, (T *)y, (const T *)x, n);
}
template <typename T> static int silu_backward(void *stream, void *dx, const void *dy, const void *x, size_t n, int acc) {
    LAUNCH_CHUNKS(n, k_silu_backward<T>, (T *)dx, (const T *)dy, (const T *)x, n, acc);
}
int act_silu_forward(void *stream, int act, void *y, const void *x, size_t n) {
    if (act == ACT_F32) return mpc_silu_forward(stream, F(y), CF(x), n);
    return LP_CALL(act, silu_forward, stream, y, x, n);
}
int act_silu_backward(void *stream, int act, void *dx, const void *dy, const void *x, size_t n, int acc) {
    if (act == ACT_F32) return mpc_silu_backward(stream, F(dx), CF(dy), CF(x), n, acc);
    return LP_CALL(act, silu_backward, stream, dx, dy, x, n, acc);
}

template <typename T> __global__ void k_sum_forward(T *y, const T *a, const T *b, float t, size_t n) {
    const float inv = mp_sum_scale(t);
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float u[8], v[8];
        ldv(u, a, i, m), ldv(v, b, i, m);
        UNROLL8(k) u[k] = mp_sum1(u[k], v[k], t, inv);
        stv(y, u, i, m);
    }
}
/* mp_sum's gradient of g = dy; with `keep` (act_sum_clip_forward's bits), of the gradient of a clip after
 * it: g = dy where the element's bit is set, else 0 (dy's value or 0: bitwise a clip's gradient stored and
 * then used). */
template <typename T>
__global__ void k_sum_backward(T *da, T *db, const T *dy, const unsigned char *keep, float t, size_t n, int acc) {
    const float inv = mp_sum_scale(t), wa = (1 - t) * inv, wb = t * inv;
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float g[8], u[8];
        ldv(g, dy, i, m);
        if (keep) {
            const unsigned bits = keep[i / 8];
            UNROLL8(k) g[k] = bits >> k & 1u ? g[k] : 0.0f;
        }
        if (da) {
            UNROLL8(k) u[k] = wa * g[k];
            stv(da, u, i, m, acc);
        }
        if (db) {
            UNROLL8(k) u[k] = wb * g[k];
            stv(db, u, i, m, acc);
        }
    }
}
template <typename T> static int sum_forward(void *stream, void *y, const void *a, const void *b, float t, size_t n) {
    LAUNCH_CHUNKS(n, k_sum_forward<T>, (T *)y, (const T *)a, (const T *)b, t, n);
}
template <typename T>
static int sum_backward(void *stream, void *da, void *db, const void *dy, const unsigned char *keep, float t, size_t n,
                        int acc) {
    LAUNCH_CHUNKS(n, k_sum_backward<T>, (T *)da, (T *)db, (const T *)dy, keep, t, n, acc);
}
int act_sum_forward(void *stream, int act, void *y, const void *a, const void *b, float t, size_t n) {
    if (act == ACT_F32) return mpc_sum_forward(stream, F(y), CF(a), CF(b), t, n);
    return LP_CALL(act, sum_forward, stream, y, a, b, t, n);
}
int act_sum_backward(void *stream, int act, void *da, void *db, const void *dy, float t, size_t n, int acc) {
    if (act == ACT_F32) return mpc_sum_backward(stream, F(da), F(db), CF(dy), t, n, acc);
    return LP_CALL(act, sum_backward, stream, da, db, dy, NULL, t, n, acc);
}

/* One operand of MP-Cat: rows of Cp channels at column `off` of the concatenation's rows of C channels,
 * scaled by w: written into the concatenation (forward; with sil, also mp_silu of the stored value at the
 * same place of sil), or taken out of its gradient (backward). The chunks move 16 bytes at a time when Cp
 * is a multiple of 8 (each then lies in one row). */
template <typename T>
__global__ void k_cat_part(T *dst, T *sil, const T *src, int Cp, int C, int off, size_t P, float w, int into_cat,
                           int acc) {
    const size_t n = P * (size_t)Cp;
    const auto in_cat = [=](size_t e) { return e / Cp * C + off + e % Cp; };
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float v[8];
        if (into_cat) ldv(v, src, i, m);
        else ld_at(v, src, i, m, Cp % 8 == 0, in_cat);
        UNROLL8(k) v[k] *= w;
        if (!into_cat) {
            stv(dst, v, i, m, acc);
            continue;
        }
        st_at(dst, v, i, m, Cp % 8 == 0, in_cat, acc);
        if (sil) {
            UNROLL8(k) v[k] = mp_silu1(ld(st<T>(v[k]))); /* of the value as stored */
            st_at(sil, v, i, m, Cp % 8 == 0, in_cat);
        }
    }
}
template <typename T>
static int cat_part(void *stream, void *dst, void *sil, const void *src, int Cp, int C, int off, size_t P, float w,
                    int into_cat, int acc) {
    if (!dst) return 0;
    LAUNCH_CHUNKS(P * (size_t)Cp, k_cat_part<T>, (T *)dst, (T *)sil, (const T *)src, Cp, C, off, P, w, into_cat, acc);
}
template <typename T>
static int cat_forward(void *stream, void *y, void *y_silu, const void *a, int Ca, const void *b, int Cb, size_t P,
                       float t) {
    float wa, wb;
    mp_cat_weights(Ca, Cb, t, &wa, &wb);
    const int e = cat_part<T>(stream, y, y_silu, a, Ca, Ca + Cb, 0, P, wa, 1, 0);
    return e ? e : cat_part<T>(stream, y, y_silu, b, Cb, Ca + Cb, Ca, P, wb, 1, 0);
}
template <typename T>
static int cat_backward(void *stream, void *da, void *db, const void *dy, int Ca, int Cb, size_t P, float t, int acc) {
    float wa, wb;
    mp_cat_weights(Ca, Cb, t, &wa, &wb);
    const int e = cat_part<T>(stream, da, NULL, dy, Ca, Ca + Cb, 0, P, wa, 0, acc);
    return e ? e : cat_part<T>(stream, db, NULL, dy, Cb, Ca + Cb, Ca, P, wb, 0, acc);
}
int act_cat_forward(void *stream, int act, void *y, void *y_silu, const void *a, int Ca, const void *b, int Cb, size_t P,
                    float t) {
    if (act != ACT_F32) return LP_CALL(act, cat_forward, stream, y, y_silu, a, Ca, b, Cb, P, t);
    const int e = mpc_cat_forward(stream, F(y), CF(a), Ca, CF(b), Cb, P, t);
    return e || !y_silu ? e : mpc_silu_forward(stream, F(y_silu), CF(y), P * (size_t)(Ca + Cb));
}
int act_cat_backward(void *stream, int act, void *da, void *db, const void *dy, int Ca, int Cb, size_t P, float t,
                     int acc) {
    if (act == ACT_F32) return mpc_cat_backward(stream, F(da), F(db), CF(dy), Ca, Cb, P, t, acc);
    return LP_CALL(act, cat_backward, stream, da, db, dy, Ca, Cb, P, t, acc);
}
/* g = dy + mp_silu's gradient of dsil at x, rounded as act_silu_backward stores it, then taken apart into
 * the concatenation's operands as act_cat_backward does: a decoder block's last gradient and its input's in
 * one pass (16-byte stores when both operands' channels are multiples of 8: a chunk then lies in one). */
template <typename T>
__global__ void k_silu_cat_backward(T *da, T *db, const T *dy, const T *dsil, const T *x, int Ca, int Cb, size_t P,
                                    float wa, float wb) {
    const int C = Ca + Cb;
    const size_t n = P * (size_t)C;
    const bool vec = Ca % 8 == 0 && Cb % 8 == 0;
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float g[8], d[8], v[8];
        ldv(g, dy, i, m), ldv(d, dsil, i, m), ldv(v, x, i, m);
        UNROLL8(k) g[k] = ld(st<T>(g[k] + mp_silu1_grad(d[k], v[k])));
        if (vec) {
            const size_t p = i / C;
            const int j = (int)(i % C);
            UNROLL8(k) g[k] *= j < Ca ? wa : wb;
            if (j < Ca) stv(da + p * Ca + j, g, 0, m);
            else stv(db + p * Cb + (j - Ca), g, 0, m);
            continue;
        }
        UNROLL8(k) if (k < m) {
            const size_t e = i + k, p = e / C;
            const int j = (int)(e % C);
            if (j < Ca) da[p * Ca + j] = st<T>(g[k] * wa);
            else db[p * Cb + (j - Ca)] = st<T>(g[k] * wb);
        }
    }
}
template <typename T>
static int silu_cat_backward(void *stream, void *da, void *db, const void *dy, const void *dsil, const void *x, int Ca,
                             int Cb, size_t P, float wa, float wb) {
    LAUNCH_CHUNKS(P * (size_t)(Ca + Cb), k_silu_cat_backward<T>, (T *)da, (T *)db, (const T *)dy, (const T *)dsil,
                  (const T *)x, Ca, Cb, P, wa, wb);
}
int act_silu_cat_backward(void *stream, int act, void *da, void *db, void *dy, const void *dsil, const void *x, int Ca,
                          int Cb, size_t P, float t) {
    if (act == ACT_F32) {
        const int e = mpc_silu_backward(stream, F(dy), CF(dsil), CF(x), P * (size_t)(Ca + Cb), 1);
        return e ? e : mpc_cat_backward(stream, F(da), F(db), CF(dy), Ca, Cb, P, t, 0);
    }
    float wa, wb;
    mp_cat_weights(Ca, Cb, t, &wa, &wb);
    return LP_CALL(act, silu_cat_backward, stream, da, db, dy, dsil, x, Ca, Cb, P, wa, wb);
}

/* ---- embedding modulation + MP-SiLU (c, dc float32) ---- */

/* c[n, k] for element e of [N, HW, C] (in a chunk when C is a multiple of 8: 8 channels of one pixel). */
#define C_INDEX [=](size_t e) { return e / (HW * C) * C + e % C; }
template <typename T> __global__ void k_modulate_silu_forward(T *y, const T *x, const float *c, int N, size_t HW, int C) {
    const size_t n = (size_t)N * HW * C;
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float v[8], cn[8];
        ldv(v, x, i, m);
        ld_at(cn, c, i, m, C % 8 == 0, C_INDEX);
        UNROLL8(k) v[k] = mp_silu1(v[k] * cn[k]);
        stv(y, v, i, m);
    }
}
/* The modulation's gradients, dx and the per-tile sums of dc (part[n, s, k], summed in order by
 * k_modulate_dc_sum), in one pass. A block of 256 threads takes tile s of pixels of one image and up to 32
 * groups of 8 channels (mod_tiles: GB groups across, PL pixel lanes down); each thread walks its pixels of
 * the tile PL apart, up to 4 at a time with every load issued before the first store (the last H100
 * profile: one thread walking 32 pixels in turn took 94 us where 10 would do), keeps its 8 channels' sums,
 * and the block adds them over its pixel lanes in shared memory in a fixed order. dy and x are read once. */
struct mod_tile {
    int G, GB, GT, PL, S; /* groups of 8 channels; groups per block, group tiles; pixel lanes; pixel tiles */
    size_t TP;            /* pixels per tile */
};
static mod_tile mod_tiles(size_t HW, int C) {
    mod_tile t;
    t.G = (C + 7) / 8, t.GB = t.G < 32 ? t.G : 32, t.GT = (t.G + t.GB - 1) / t.GB, t.PL = THREADS / t.GB;
    const size_t S = (HW + 4 * (size_t)t.PL - 1) / (4 * (size_t)t.PL); /* 4 pixels per thread, at most 256 tiles */
    t.S = S > 256 ? 256 : S < 1 ? 1 : (int)S;
    t.TP = (HW + t.S - 1) / t.S;
    return t;
}
template <typename T>
__global__ void k_modulate_backward(T *__restrict__ dx, float *__restrict__ part, const T *__restrict__ dy,
                                    const T *__restrict__ x, const float *__restrict__ c, int N, size_t HW, int C,
                                    mod_tile t, int acc) {
    __shared__ float red[8 * THREADS]; /* red[k THREADS + thread]: the thread's sum of channel k of its group */
    const int gl = threadIdx.x % t.GB, pl = threadIdx.x / t.GB;
    const size_t b = blockIdx.x, gt = b % t.GT, s = b / t.GT % t.S, n = b / ((size_t)t.GT * t.S);
    const int grp = (int)gt * t.GB + gl, k0 = grp * 8, m = C - k0 < 8 ? C - k0 : 8;
    const bool live = pl < t.PL && grp < t.G;
    const size_t p0 = s * t.TP, p1 = p0 + t.TP < HW ? p0 + t.TP : HW;
    float cn[8], sum[8];
    UNROLL8(k) sum[k] = 0.0f;
    if (live) ldv(cn, c + n * C + k0, 0, m);
    for (size_t pb = p0 + pl; live && pb < p1; pb += 4 * (size_t)t.PL) {
        float g[4][8], v[4][8];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const size_t p = pb + (size_t)i * t.PL, o = (n * HW + p) * C + k0;
            if (p < p1) ldv(g[i], dy, o, m), ldv(v[i], x, o, m);
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const size_t p = pb + (size_t)i * t.PL;
            if (p >= p1) continue;
            UNROLL8(k) {
                const float gr = mp_silu1_grad(g[i][k], v[i][k] * cn[k]);
                sum[k] += gr * v[i][k];
                g[i][k] = gr * cn[k];
            }
            stv(dx, g[i], (n * HW + p) * C + k0, m, acc);
        }
    }
    UNROLL8(k) red[k * THREADS + threadIdx.x] = sum[k];
    __syncthreads();
    if (threadIdx.x < 8 * t.GB) { /* column (group g, channel k): its pixel lanes' sums in order */
        const int k = threadIdx.x / t.GB, g = threadIdx.x % t.GB, ch = ((int)gt * t.GB + g) * 8 + k;
        float total = 0;
        for (int l = 0; l < t.PL; l++) total += red[k * THREADS + l * t.GB + g];
        if ((int)gt * t.GB + g < t.G && ch < C) part[(n * t.S + s) * C + ch] = total;
    }
}
__global__ void k_modulate_dc_sum(float *dc, const float *part, int N, int C, int S, int acc) {
    STRIDE_LOOP(j, (size_t)N * C) {
        const size_t n = j / C, k = j % C;
        float sum = 0;
        for (int s = 0; s < S; s++) sum += part[(n * S + s) * C + k];
        dc[j] = acc ? dc[j] + sum : sum;
    }
}
template <typename T>
static int modulate_silu_forward(void *stream, void *y, const void *x, const float *c, int N, size_t HW, int C) {
    LAUNCH_CHUNKS((size_t)N * HW * C, k_modulate_silu_forward<T>, (T *)y, (const T *)x, c, N, HW, C);
}
template <typename T>
static int modulate_silu_backward(void *stream, void *dx, float *dc, const void *dy, const void *x, const float *c, int N,
                                  size_t HW, int C, int acc, float *part) {
    if ((size_t)N * HW * C == 0) return 0;
    const mod_tile t = mod_tiles(HW, C);
    k_modulate_backward<T><<<(unsigned)((size_t)N * t.S * t.GT), THREADS, 0, (cudaStream_t)stream>>>(
        (T *)dx, part, (const T *)dy, (const T *)x, c, N, HW, C, t, acc);
    k_modulate_dc_sum<<<blocks_for((size_t)N * C), THREADS, 0, (cudaStream_t)stream>>>(dc, part, N, C, t.S, acc);
    return (int)cudaGetLastError();
}
int act_modulate_silu_forward(void *stream, int act, void *y, const void *x, const float *c, int N, size_t HW, int C) {
    if (act == ACT_F32) return mpc_modulate_silu_forward(stream, F(y), CF(x), c, N, HW, C);
    return LP_CALL(act, modulate_silu_forward, stream, y, x, c, N, HW, C);
}
int act_dc_chunks(size_t HW, int C) { return mod_tiles(HW, C).S; }
int act_modulate_silu_backward(void *stream, int act, void *dx, float *dc, const void *dy, const void *x, const float *c,
                               int N, size_t HW, int C, int acc, float *part) {
    if (act == ACT_F32) return mpc_modulate_silu_backward(stream, F(dx), dc, CF(dy), CF(x), c, N, HW, C, acc);
    return LP_CALL(act, modulate_silu_backward, stream, dx, dc, dy, x, c, N, HW, C, acc, part);
}

/* ---- resampling with the [1, 1] filter ---- */

/* Element e of the half-resolution [N, H/2, W/2, C]: the top-left of its 2x2 pixels in [N, H, W, C]
 * (chunks of 8 channels of one pixel when C is a multiple of 8). */
#define DOWN_SRC                                                                                           \
    [=](size_t e) {                                                                                        \
        const size_t c = e % C, pix = e / C, j = pix % (W / 2), r = pix / (W / 2) % (H / 2), n = pix / ((size_t)(W / 2) * (H / 2)); \
        return ((n * H + 2 * r) * W + 2 * j) * C + c;                                                      \
    }
template <typename T> __global__ void k_resample_down_forward(T *y, const T *x, int N, int H, int W, int C) {
    const size_t n = (size_t)N * (H / 2) * (W / 2) * C, row = (size_t)W * C;
    const bool vec = C % 8 == 0;
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float t0[8], t1[8], t2[8], t3[8]; /* the 2x2 pixels: top left, top right, bottom left, bottom right */
        ld_at(t0, x, i, m, vec, DOWN_SRC), ld_at(t1, x + C, i, m, vec, DOWN_SRC);
        ld_at(t2, x + row, i, m, vec, DOWN_SRC), ld_at(t3, x + row + C, i, m, vec, DOWN_SRC);
        UNROLL8(k) t0[k] = mp_avg4(t0[k], t1[k], t2[k], t3[k]);
        stv(y, t0, i, m);
    }
}
template <typename T> __global__ void k_resample_down_backward(T *dx, const T *dy, int N, int H, int W, int C, int acc) {
    const size_t n = (size_t)N * (H / 2) * (W / 2) * C, row = (size_t)W * C;
    const bool vec = C % 8 == 0;
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float v[8];
        ldv(v, dy, i, m);
        UNROLL8(k) v[k] *= 0.25f;
        st_at(dx, v, i, m, vec, DOWN_SRC, acc), st_at(dx + C, v, i, m, vec, DOWN_SRC, acc);
        st_at(dx + row, v, i, m, vec, DOWN_SRC, acc), st_at(dx + row + C, v, i, m, vec, DOWN_SRC, acc);
    }
}
/* Element e of the double-resolution [N, 2H, 2W, C]: its source pixel in [N, H, W, C]. */
#define UP_SRC                                                                                             \
    [=](size_t e) {                                                                                        \
        const size_t c = e % C, pix = e / C, j = pix % (2 * W), r = pix / (2 * W) % (2 * H), n = pix / ((size_t)4 * W * H); \
        return ((n * H + r / 2) * W + j / 2) * C + c;                                                      \
    }
template <typename T> __global__ void k_resample_up_forward(T *y, const T *x, int N, int H, int W, int C) {
    const size_t n = (size_t)N * 4 * H * W * C;
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float v[8];
        ld_at(v, x, i, m, C % 8 == 0, UP_SRC);
        stv(y, v, i, m);
    }
}
/* dx[e] (e in [N, H, W, C]): the sum of the gradients of its 2x2 copies, the top-left one at UP_DST(e). */
#define UP_DST                                                                                             \
    [=](size_t e) {                                                                                        \
        const size_t c = e % C, pix = e / C, j = pix % W, r = pix / W % H, n = pix / ((size_t)W * H);       \
        return ((n * 2 * H + 2 * r) * 2 * W + 2 * j) * C + c;                                              \
    }
template <typename T> __global__ void k_resample_up_backward(T *dx, const T *dy, int N, int H, int W, int C, int acc) {
    const size_t n = (size_t)N * H * W * C, row = (size_t)2 * W * C;
    const bool vec = C % 8 == 0;
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float t0[8], t1[8], t2[8], t3[8];
        ld_at(t0, dy, i, m, vec, UP_DST), ld_at(t1, dy + C, i, m, vec, UP_DST);
        ld_at(t2, dy + row, i, m, vec, UP_DST), ld_at(t3, dy + row + C, i, m, vec, UP_DST);
        UNROLL8(k) t0[k] = t0[k] + t1[k] + t2[k] + t3[k];
        stv(dx, t0, i, m, acc);
    }
}
template <typename T> static int resample_down_forward(void *stream, void *y, const void *x, int N, int H, int W, int C) {
    LAUNCH_CHUNKS((size_t)N * (H / 2) * (W / 2) * C, k_resample_down_forward<T>, (T *)y, (const T *)x, N, H, W, C);
}
template <typename T>
static int resample_down_backward(void *stream, void *dx, const void *dy, int N, int H, int W, int C, int acc) {
    LAUNCH_CHUNKS((size_t)N * (H / 2) * (W / 2) * C, k_resample_down_backward<T>, (T *)dx, (const T *)dy, N, H, W, C, acc);
}
template <typename T> static int resample_up_forward(void *stream, void *y, const void *x, int N, int H, int W, int C) {
    LAUNCH_CHUNKS((size_t)N * H * 2 * W * 2 * C, k_resample_up_forward<T>, (T *)y, (const T *)x, N, H, W, C);
}
template <typename T>
static int resample_up_backward(void *stream, void *dx, const void *dy, int N, int H, int W, int C, int acc) {
    LAUNCH_CHUNKS((size_t)N * H * W * C, k_resample_up_backward<T>, (T *)dx, (const T *)dy, N, H, W, C, acc);
}
int act_resample_down_forward(void *stream, int act, void *y, const void *x, int N, int H, int W, int C) {
    if (act == ACT_F32) return mpc_resample_down_forward(stream, F(y), CF(x), N, H, W, C);
    return LP_CALL(act, resample_down_forward, stream, y, x, N, H, W, C);
}
int act_resample_down_backward(void *stream, int act, void *dx, const void *dy, int N, int H, int W, int C, int acc) {
    if (act == ACT_F32) return mpc_resample_down_backward(stream, F(dx), CF(dy), N, H, W, C, acc);
    return LP_CALL(act, resample_down_backward, stream, dx, dy, N, H, W, C, acc);
}
int act_resample_up_forward(void *stream, int act, void *y, const void *x, int N, int H, int W, int C) {
    if (act == ACT_F32) return mpc_resample_up_forward(stream, F(y), CF(x), N, H, W, C);
    return LP_CALL(act, resample_up_forward, stream, y, x, N, H, W, C);
}
int act_resample_up_backward(void *stream, int act, void *dx, const void *dy, int N, int H, int W, int C, int acc) {
    if (act == ACT_F32) return mpc_resample_up_backward(stream, F(dx), CF(dy), N, H, W, C, acc);
    return LP_CALL(act, resample_up_backward, stream, dx, dy, N, H, W, C, acc);
}

/* ---- residual sum with clipping ---- */

/* A chunk's 8 keep bits are one byte: bit k for element i + k. */
template <typename T>
__global__ void k_sum_clip_forward(T *y, unsigned char *keep, const T *a, const T *b, float t, float c, size_t n) {
    const float inv = mp_sum_scale(t);
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float u[8], v[8];
        unsigned bits = 0;
        ldv(u, a, i, m), ldv(v, b, i, m);
        UNROLL8(k) {
            u[k] = mp_sum1(u[k], v[k], t, inv);
            v[k] = u[k] > c ? c : u[k] < -c ? -c : u[k];
            bits |= (unsigned)(u[k] >= -c && u[k] <= c) << k;
        }
        stv(y, v, i, m);
        if (keep) keep[i / 8] = (unsigned char)bits;
    }
}
template <typename T>
static int sum_clip_forward(void *stream, void *y, unsigned char *keep, const void *a, const void *b, float t, float c,
                            size_t n) {
    LAUNCH_CHUNKS(n, k_sum_clip_forward<T>, (T *)y, keep, (const T *)a, (const T *)b, t, c, n);
}
int act_sum_clip_forward(void *stream, int act, void *y, unsigned char *keep, const void *a, const void *b, float t,
                         float c, size_t n) {
    return ACT_CALL(act, sum_clip_forward, stream, y, keep, a, b, t, c, n);
}
int act_sum_clip_backward(void *stream, int act, void *da, void *db, const void *dy, const unsigned char *keep, float t,
                          size_t n, int acc) {
    return ACT_CALL(act, sum_backward, stream, da, db, dy, keep, t, n, acc);
}
