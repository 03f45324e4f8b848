/* dinov2_kernels.cu: the element-wise and row kernels of the CUDA DINOv2 (dinov2_kernels.h). Rows (LayerNorm,
 * softmax) are a block each, their sums in double added in a fixed order; the rest one thread per output
 * element. The input's taps are the CPU build's functions (../dinov2/dinov2_taps.h). */
#include "dinov2_kernels.h"

#include "dinov2_taps.h"
#include "launch_cuda.h"

/* The width: wide[i, c, y, o] from the 8-bit values of row y of channel c of image i. */
__global__ static void k_input_width(const float *x, int n, int C, int H, int W, int res, float *wide) {
    STRIDE_LOOP(e, (size_t)n * 3 * H * res) {
        const int o = (int)(e % res), y = (int)(e / res % H), c = (int)(e / res / H % 3), i = (int)(e / res / H / 3);
        const float *row = x + (((size_t)i * C + (C == 1 ? 0 : c)) * H + y) * W;
        const dino_span s = dino_span_of(o, W, res);
        float total = 0.0f, acc = 0.0f;
        for (int j = 0; j < s.count; j++) total += dino_tap(j, s);
        for (int j = 0; j < s.count; j++) {
            const float w = total != 0.0f ? dino_tap(j, s) / total : dino_tap(j, s);
            acc += rintf(row[s.first + j] * 255.0f) * w;
        }
        wide[e] = acc;
    }
}

/* The height, then / 255 and the colour's normalisation: out[i, c, oy, ox]. */
__global__ static void k_input_height(const float *wide, int n, int H, int res, float *out) {
    STRIDE_LOOP(e, (size_t)n * 3 * res * res) {
        const int ox = (int)(e % res), oy = (int)(e / res % res), c = (int)(e / res / res % 3), i = (int)(e / res / res / 3);
        const float *col = wide + ((size_t)i * 3 + c) * H * res + ox;
        const dino_span s = dino_span_of(oy, H, res);
        float total = 0.0f, acc = 0.0f;
        for (int j = 0; j < s.count; j++) total += dino_tap(j, s);
        for (int j = 0; j < s.count; j++) {
            const float w = total != 0.0f ? dino_tap(j, s) / total : dino_tap(j, s);
            acc += col[(size_t)(s.first + j) * res] * w;
        }
        out[e] = (acc / 255.0f - dino_mean(c)) / dino_std(c);
    }
}

int dino_k_input(void *stream, const float *x, int n, int C, int H, int W, int res, float *wide, float *out) {
    if (n == 0) return 0;
    k_input_width<<<blocks_for((size_t)n * 3 * H * res), THREADS, 0, (cudaStream_t)stream>>>(x, n, C, H, W, res, wide);
    cudaError_t e = cudaGetLastError();
    if (e) return (int)e;
    LAUNCH((size_t)n * 3 * res * res, k_input_height, wide, n, H, res, out);
}

__global__ static void k_patches(const float *in, int n, int g, int p, float *P) {
    const int K = 3 * p * p, R = g * p;
    STRIDE_LOOP(e, (size_t)n * g * g * K) {
        const int k = (int)(e % K), q = (int)(e / K % ((size_t)g * g)), i = (int)(e / K / ((size_t)g * g));
        const int c = k / (p * p), ky = k / p % p, kx = k % p;
        P[e] = in[(((size_t)i * 3 + c) * R + (size_t)(q / g * p + ky)) * R + (size_t)(q % g) * p + kx];
    }
}

int dino_k_patches(void *stream, const float *in, int n, int g, int p, float *P) {
    LAUNCH((size_t)n * g * g * 3 * p * p, k_patches, in, n, g, p, P);
}

__global__ static void k_tokens(const float *e, const float *cls, const float *pos, int n, int T, int D, float *x) {
    STRIDE_LOOP(k, (size_t)n * T * D) {
        const int d = (int)(k % D), t = (int)(k / D % T), i = (int)(k / D / T);
        const float v = t == 0 ? cls[d] : e[((size_t)i * (T - 1) + t - 1) * D + d];
        x[k] = v + pos[(size_t)t * D + d];
    }
}

int dino_k_tokens(void *stream, const float *e, const float *cls, const float *pos, int n, int T, int D, float *x) {
    LAUNCH((size_t)n * T * D, k_tokens, e, cls, pos, n, T, D, x);
}

/* The block's sum of v (double), in a fixed order; every thread gets it. */
__device__ static double block_sum(double v, double *part) {
    part[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    const double total = part[0];
    __syncthreads();
    return total;
}

__global__ static void k_layer_norm(const float *x, size_t ldx, size_t rows, int D, const float *weight,
                                    const float *bias, float *y, size_t ldy) {
    __shared__ double part[THREADS];
    for (size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *a = x + r * ldx;
        double s = 0;
        for (int i = threadIdx.x; i < D; i += THREADS) s += a[i];
        const double mean = block_sum(s, part) / D;
        s = 0;
        for (int i = threadIdx.x; i < D; i += THREADS) s += (a[i] - mean) * (a[i] - mean);
        const double inv = 1.0 / sqrt(block_sum(s, part) / D + 1e-6);
        for (int i = threadIdx.x; i < D; i += THREADS) y[r * ldy + i] = (float)((a[i] - mean) * inv) * weight[i] + bias[i];
    }
}

static unsigned row_blocks(size_t rows) { return (unsigned)(rows < EDM2_GRID_CAP ? (rows ? rows : 1) : EDM2_GRID_CAP); }

int dino_k_layer_norm(void *stream, const float *x, size_t ldx, size_t rows, int D, const float *weight,
                      const float *bias, float *y, size_t ldy) {
    if (rows == 0) return 0;
    k_layer_norm<<<row_blocks(rows), THREADS, 0, (cudaStream_t)stream>>>(x, ldx, rows, D, weight, bias, y, ldy);
    return (int)cudaGetLastError();
}

__global__ static void k_bias(float *y, size_t rows, int N, const float *b) {
    STRIDE_LOOP(k, rows * N) y[k] += b[k % N];
}

int dino_k_bias(void *stream, float *y, size_t rows, int N, const float *b) { LAUNCH(rows * N, k_bias, y, rows, N, b); }

__global__ static void k_softmax(float *s, size_t rows, int T, float scale) {
    __shared__ double part[THREADS];
    for (size_t r = blockIdx.x; r < rows; r += gridDim.x) {
        float *a = s + r * T;
        float m = -INFINITY;
        for (int u = threadIdx.x; u < T; u += THREADS) a[u] *= scale, m = a[u] > m ? a[u] : m;
        part[threadIdx.x] = m; /* the row's maximum, in the same shared array */
        __syncthreads();
        for (int k = THREADS / 2; k > 0; k >>= 1) {
            if ((int)threadIdx.x < k && part[threadIdx.x + k] > part[threadIdx.x]) part[threadIdx.x] = part[threadIdx.x + k];
            __syncthreads();
        }
        const float top = (float)part[0];
        __syncthreads();
        double sum = 0;
        for (int u = threadIdx.x; u < T; u += THREADS) a[u] = expf(a[u] - top), sum += a[u];
        const float inv = (float)(1.0 / block_sum(sum, part));
        for (int u = threadIdx.x; u < T; u += THREADS) a[u] *= inv;
    }
}

int dino_k_softmax(void *stream, float *s, size_t rows, int T, float scale) {
    if (rows == 0) return 0;
    k_softmax<<<row_blocks(rows), THREADS, 0, (cudaStream_t)stream>>>(s, rows, T, scale);
    return (int)cudaGetLastError();
}

__global__ static void k_gelu(float *y, size_t n) {
    STRIDE_LOOP(i, n) {
        const float x = y[i];
        y[i] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    }
}

int dino_k_gelu(void *stream, float *y, size_t n) { LAUNCH(n, k_gelu, y, n); }

__global__ static void k_scaled_add(float *x, const float *y, const float *gamma, size_t rows, int D) {
    STRIDE_LOOP(k, rows * D) x[k] += gamma[k % D] * y[k];
}

int dino_k_scaled_add(void *stream, float *x, const float *y, const float *gamma, size_t rows, int D) {
    LAUNCH(rows * D, k_scaled_add, x, y, gamma, rows, D);
}
