/* vae_kernels.cu: the element-wise, im2col, GroupNorm and softmax kernels of the CUDA SD VAE
 * (vae_kernels.h). GroupNorm statistics and softmax sums are reduced in double by one block per group or row. */
#include "vae_kernels.h"

#include "launch_cuda.h"
#include "vae_graph.h" /* VAE_GN_EPS, VAE_LOGVAR_MIN/MAX */

#define RED 256 /* threads of the reduction blocks */

__global__ static void k_transpose(const float *x, int P, int C, int to_nchw, float *y) {
    STRIDE_LOOP(e, (size_t)P * C) {
        if (to_nchw) { /* e = c P + p */
            const size_t c = e / P, p = e % P;
            y[e] = x[p * C + c];
        } else { /* e = p C + c */
            const size_t p = e / C, c = e % C;
            y[e] = x[c * P + p];
        }
    }
}

int vae_k_transpose(void *stream, const float *x, int P, int C, int to_nchw, float *y) {
    LAUNCH((size_t)P * C, k_transpose, x, P, C, to_nchw, y);
}

__global__ static void k_moments(const float *x, int P, int C, float *y) {
    STRIDE_LOOP(e, (size_t)P * C) {
        const size_t c = e / P, p = e % P;
        float v = x[p * C + c];
        if (c >= (size_t)C / 2) {
            v = v < VAE_LOGVAR_MIN ? VAE_LOGVAR_MIN : v > VAE_LOGVAR_MAX ? VAE_LOGVAR_MAX : v;
            v = expf(0.5f * v);
        }
        y[e] = v;
    }
}

int vae_k_moments(void *stream, const float *x, int P, int C, float *y) { LAUNCH((size_t)P * C, k_moments, x, P, C, y); }

__global__ static void k_im2col(const float *x, int H, int W, int C, int down, int oy0, int oy1, float *col) {
    const int Wo = down ? W / 2 : W, K = 9 * C;
    STRIDE_LOOP(e, (size_t)(oy1 - oy0) * Wo * K) {
        const int k = (int)(e % K), c = k % C, t = k / C;
        const size_t pix = e / K;
        const int ox = (int)(pix % Wo), oy = oy0 + (int)(pix / Wo);
        const int iy = down ? 2 * oy + t / 3 : oy + t / 3 - 1, ix = down ? 2 * ox + t % 3 : ox + t % 3 - 1;
        col[e] = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? 0.0f : x[((size_t)iy * W + ix) * C + c];
    }
}

int vae_k_im2col(void *stream, const float *x, int H, int W, int C, int down, int oy0, int oy1, float *col) {
    LAUNCH((size_t)(oy1 - oy0) * (down ? W / 2 : W) * 9 * C, k_im2col, x, H, W, C, down, oy0, oy1, col);
}

__global__ static void k_bias(float *y, size_t P, int C, const float *b) {
    STRIDE_LOOP(e, P * C) y[e] += b[e % C];
}

int vae_k_bias(void *stream, float *y, size_t P, int C, const float *b) { LAUNCH(P * C, k_bias, y, P, C, b); }

/* Block g: the mean and 1 / sqrt(var + eps) of group g (two passes in double, as the CPU build). */
__global__ static void k_gn_stats(const float *x, size_t P, int C, int G, float *stats) {
    __shared__ double part[RED];
    const int g = blockIdx.x, cpg = C / G;
    const size_t n = P * cpg;
    double s = 0;
    for (size_t i = threadIdx.x; i < n; i += RED) s += x[(i / cpg) * C + g * cpg + i % cpg];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = RED / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    const double mean = part[0] / (double)n;
    __syncthreads();
    double s2 = 0;
    for (size_t i = threadIdx.x; i < n; i += RED) {
        const double d = x[(i / cpg) * C + g * cpg + i % cpg] - mean;
        s2 += d * d;
    }
    part[threadIdx.x] = s2;
    __syncthreads();
    for (int w = RED / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        stats[2 * g] = (float)mean;
        stats[2 * g + 1] = (float)(1.0 / sqrt(part[0] / (double)n + VAE_GN_EPS));
    }
}

__global__ static void k_gn_apply(const float *x, size_t P, int C, int G, const float *stats, const float *gamma,
                                  const float *beta, int silu, float *y) {
    STRIDE_LOOP(e, P * C) {
        const int c = (int)(e % C), g = c / (C / G);
        float v = (x[e] - stats[2 * g]) * stats[2 * g + 1] * gamma[c] + beta[c];
        if (silu) v = v / (1.0f + expf(-v));
        y[e] = v;
    }
}

int vae_k_group_norm(void *stream, const float *x, size_t P, int C, int G, const float *gamma, const float *beta,
                     int silu, float *stats, float *y) {
    if (P == 0) return 0;
    k_gn_stats<<<G, RED, 0, (cudaStream_t)stream>>>(x, P, C, G, stats);
    k_gn_apply<<<blocks_for(P * C), THREADS, 0, (cudaStream_t)stream>>>(x, P, C, G, stats, gamma, beta, silu, y);
    return (int)cudaGetLastError();
}

__global__ static void k_add(const float *a, const float *b, size_t n, float *y) { STRIDE_LOOP(e, n) y[e] = a[e] + b[e]; }

int vae_k_add(void *stream, const float *a, const float *b, size_t n, float *y) { LAUNCH(n, k_add, a, b, n, y); }

__global__ static void k_upsample(const float *x, int H, int W, int C, float *y) {
    STRIDE_LOOP(e, (size_t)4 * H * W * C) {
        const size_t c = e % C, pix = e / C;
        const size_t ox = pix % (2 * W), oy = pix / (2 * W);
        y[e] = x[((oy / 2) * W + ox / 2) * C + c];
    }
}

int vae_k_upsample(void *stream, const float *x, int H, int W, int C, float *y) {
    LAUNCH((size_t)4 * H * W * C, k_upsample, x, H, W, C, y);
}

__global__ static void k_softmax(float *s, int P) {
    __shared__ float mx[RED];
    __shared__ double sum[RED];
    float *row = s + (size_t)blockIdx.x * P;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < P; j += RED) m = fmaxf(m, row[j]);
    mx[threadIdx.x] = m;
    __syncthreads();
    for (int w = RED / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) mx[threadIdx.x] = fmaxf(mx[threadIdx.x], mx[threadIdx.x + w]);
        __syncthreads();
    }
    m = mx[0];
    double t = 0;
    for (int j = threadIdx.x; j < P; j += RED) t += row[j] = expf(row[j] - m);
    sum[threadIdx.x] = t;
    __syncthreads();
    for (int w = RED / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) sum[threadIdx.x] += sum[threadIdx.x + w];
        __syncthreads();
    }
    const float inv = (float)(1.0 / sum[0]);
    for (int j = threadIdx.x; j < P; j += RED) row[j] *= inv;
}

int vae_k_softmax(void *stream, float *s, int P) {
    if (P == 0) return 0;
    k_softmax<<<P, RED, 0, (cudaStream_t)stream>>>(s, P);
    return (int)cudaGetLastError();
}
