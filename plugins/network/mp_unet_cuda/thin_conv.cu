/* thin_conv.cu: the direct 3x3 convolutions of thin_conv.h. Pixel p = (n H + i) W + j; tap t = 3 ky + kx
 * reads the neighbour (i + ky - 1, j + kx - 1), p + (ky - 1) W + kx - 1, when it lies in the image (zero
 * padding otherwise). With the output thin (O <= THIN_MAX):
 *   forward: a warp per THIN_PX consecutive pixels, lanes along the input channels, each lane's share of
 *     the THIN_PX x O sums in registers, then summed across the warp (fixed butterfly order);
 *   backward data: a warp per THIN_PX pixels, lanes along the input channels, the O gradients of each
 *     neighbour read by all lanes;
 *   backward filter: a block per tile of pixels and 128 input channels, each thread the 9 x O sums of its
 *     channel over the tile's pixels (thin_filter).
 * With the input thin (C <= THIN_MAX):
 *   forward: a block per tile of pixels and 128 output channels, each thread its channel's 9 x C weights
 *     in registers, the 9 x C inputs of a pixel read by all threads;
 *   backward filter: as with O thin, threads along the output channels, 9 x C sums each (thin_filter).
 * The weight gradients of the tiles (part[tile, O, 3, 3, C]) are then added over the tiles in order. */
#include <cuda_runtime.h>

#include "launch_cuda.h"
#include "thin_conv.h"

#define THIN_PX 4       /* pixels per warp (forward and backward data, O thin) */
#define THIN_BLOCK 128  /* threads per block along the wide side (tiles) */
#define THIN_TILES 1024 /* at most, for the weight gradient's partial sums */
#define UNROLL _Pragma("unroll")

/* Pixel p with its row and column (divided out once, not at every tap). */
struct pix {
    size_t p;
    int i, j;
};
__device__ __forceinline__ pix pixel(size_t p, int H, int W) { return pix{p, (int)(p / W % H), (int)(p % W)}; }
/* The neighbour of pixel a at tap t, or -1 outside the image. */
__device__ __forceinline__ long long tap_at(pix a, int t, int H, int W) {
    const int dy = t / 3 - 1, dx = t % 3 - 1, i = a.i + dy, j = a.j + dx;
    return i < 0 || i >= H || j < 0 || j >= W ? -1 : (long long)a.p + (long long)dy * W + dx;
}

/* A tiled kernel's block b and thread: its channel *i = (b % CH) THIN_BLOCK + thread of the wide side
 * (CH blocks across it; false past its end) and its tile *tile = b / CH of the `tiles` over the N H W
 * pixels, [*p0, *p1). */
__device__ __forceinline__ bool thin_block(int wide, int N, int H, int W, int tiles, int *i, size_t *tile, size_t *p0,
                                           size_t *p1) {
    const int CH = (wide + THIN_BLOCK - 1) / THIN_BLOCK;
    const size_t P = (size_t)N * H * W, per = (P + tiles - 1) / tiles;
    *i = blockIdx.x % CH * THIN_BLOCK + threadIdx.x, *tile = blockIdx.x / CH;
    *p0 = *tile * per < P ? *tile * per : P;
    *p1 = *p0 + per < P ? *p0 + per : P;
    return *i < wide;
}

/* ---- output thin ---- */

template <int O>
__global__ void k_thin_forward_o(float *y, const float *x, const float *w, int N, int H, int W, int C) {
    const size_t P = (size_t)N * H * W, groups = (P + THIN_PX - 1) / THIN_PX;
    const int lane = threadIdx.x % 32;
    for (size_t g = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; g < groups;
         g += (size_t)gridDim.x * blockDim.x / 32) {
        float acc[THIN_PX][O];
        pix px[THIN_PX];
        UNROLL for (int k = 0; k < THIN_PX; k++) {
            px[k] = pixel(g * THIN_PX + k, H, W);
            UNROLL for (int o = 0; o < O; o++) acc[k][o] = 0.0f;
        }
        for (int c = lane; c < C; c += 32)
            for (int t = 0; t < 9; t++) {
                float wv[O];
                UNROLL for (int o = 0; o < O; o++) wv[o] = w[((size_t)o * 9 + t) * C + c];
                UNROLL for (int k = 0; k < THIN_PX; k++) {
                    const long long q = px[k].p < P ? tap_at(px[k], t, H, W) : -1;
                    if (q < 0) continue;
                    const float xv = x[(size_t)q * C + c];
                    UNROLL for (int o = 0; o < O; o++) acc[k][o] += xv * wv[o];
                }
            }
        float out = 0.0f; /* lane k O + o takes output o of pixel k */
        UNROLL for (int k = 0; k < THIN_PX; k++) UNROLL for (int o = 0; o < O; o++) {
            const float s = warp_sum(acc[k][o]);
            if (lane == k * O + o) out = s;
        }
        const size_t p = g * THIN_PX + lane / O;
        if (lane < THIN_PX * O && p < P) y[p * O + lane % O] = out;
    }
}

template <int O>
__global__ void k_thin_data_o(float *dx, const float *dy, const float *w, int N, int H, int W, int C, int acc) {
    const size_t P = (size_t)N * H * W, groups = (P + THIN_PX - 1) / THIN_PX;
    const int lane = threadIdx.x % 32;
    for (size_t g = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; g < groups;
         g += (size_t)gridDim.x * blockDim.x / 32) {
        pix px[THIN_PX];
        UNROLL for (int k = 0; k < THIN_PX; k++) px[k] = pixel(g * THIN_PX + k, H, W);
        for (int c = lane; c < C; c += 32) {
            float s[THIN_PX];
            UNROLL for (int k = 0; k < THIN_PX; k++) s[k] = 0.0f;
            for (int t = 0; t < 9; t++) {
                float wv[O];
                UNROLL for (int o = 0; o < O; o++) wv[o] = w[((size_t)o * 9 + t) * C + c];
                UNROLL for (int k = 0; k < THIN_PX; k++) { /* pixel q receives from p = q - offset of t */
                    const long long p = px[k].p < P ? tap_at(px[k], 8 - t, H, W) : -1;
                    if (p < 0) continue;
                    UNROLL for (int o = 0; o < O; o++) s[k] += dy[(size_t)p * O + o] * wv[o];
                }
            }
            UNROLL for (int k = 0; k < THIN_PX; k++) {
                const size_t q = px[k].p;
                if (q < P) dx[q * C + c] = acc ? dx[q * C + c] + s[k] : s[k];
            }
        }
    }
}

/* ---- input thin ---- */

/* Output channel o of a tile's pixels (thin_block). */
template <int C>
__global__ void k_thin_forward_c(float *y, const float *x, const float *w, int N, int H, int W, int O, int tiles) {
    int o;
    size_t tile, p0, p1;
    if (!thin_block(O, N, H, W, tiles, &o, &tile, &p0, &p1)) return;
    float wr[9][C];
    UNROLL for (int t = 0; t < 9; t++) UNROLL for (int c = 0; c < C; c++) wr[t][c] = w[((size_t)o * 9 + t) * C + c];
    for (size_t p = p0; p < p1; p++) {
        const pix a = pixel(p, H, W);
        float s = 0.0f;
        UNROLL for (int t = 0; t < 9; t++) {
            const long long q = tap_at(a, t, H, W);
            if (q < 0) continue;
            UNROLL for (int c = 0; c < C; c++) s += x[(size_t)q * C + c] * wr[t][c];
        }
        y[p * O + o] = s;
    }
}

/* ---- the weight gradient, either side thin ---- */

/* A tile's sums of the 9 x n products of the wide side's channel i with the thin side's n channels
 * (thin_block): with the output thin (OUT), i an input channel c and the thin channels the outputs o; with
 * the input thin, i an output channel o and the thin channels the inputs c. Each product is dy[p, o] x[q, c]
 * for pixel p and its neighbour q at tap t; part[tile, o, t, c] = the tile's sum. */
template <int n, bool OUT>
__device__ __forceinline__ void thin_filter(float *part, const float *dy, const float *x, int N, int H, int W, int C,
                                            int O, int tiles) {
    int i;
    size_t tile, p0, p1;
    if (!thin_block(OUT ? C : O, N, H, W, tiles, &i, &tile, &p0, &p1)) return;
    float s[9][n];
    UNROLL for (int t = 0; t < 9; t++) UNROLL for (int j = 0; j < n; j++) s[t][j] = 0.0f;
    for (size_t p = p0; p < p1; p++) {
        const pix a = pixel(p, H, W);
        float d[n]; /* dy[p, o] of each pair (o, c): (j, i) or (i, j) */
        UNROLL for (int j = 0; j < n; j++) d[j] = dy[p * O + (OUT ? j : i)];
        UNROLL for (int t = 0; t < 9; t++) {
            const long long q = tap_at(a, t, H, W);
            if (q < 0) continue;
            UNROLL for (int j = 0; j < n; j++) s[t][j] += d[j] * x[(size_t)q * C + (OUT ? i : j)];
        }
    }
    float *out = part + tile * ((size_t)O * 9 * C);
    UNROLL for (int t = 0; t < 9; t++) UNROLL for (int j = 0; j < n; j++) {
        const int o = OUT ? j : i, c = OUT ? i : j;
        out[((size_t)o * 9 + t) * C + c] = s[t][j];
    }
}
template <int O>
__global__ void k_thin_filter_o(float *part, const float *dy, const float *x, int N, int H, int W, int C, int tiles) {
    thin_filter<O, true>(part, dy, x, N, H, W, C, O, tiles);
}
template <int C>
__global__ void k_thin_filter_c(float *part, const float *dy, const float *x, int N, int H, int W, int O, int tiles) {
    thin_filter<C, false>(part, dy, x, N, H, W, C, O, tiles);
}

/* dw[i] += the tiles' partial sums of entry i, in tile order. */
__global__ void k_thin_sum(float *dw, const float *part, size_t K, int tiles) {
    STRIDE_LOOP(i, K) {
        float s = 0.0f;
        for (int t = 0; t < tiles; t++) s += part[(size_t)t * K + i];
        dw[i] += s;
    }
}

/* ---- host ---- */

/* kernel<n><<<grid, block, 0, stream>>>(args) for the thin side's channel count n = 1..THIN_MAX. */
#define THIN_LAUNCH(n, kernel, grid, block, ...)                                                           \
    do {                                                                                                   \
        switch (n) {                                                                                       \
        case 1: kernel<1><<<grid, block, 0, (cudaStream_t)stream>>>(__VA_ARGS__); break;                   \
        case 2: kernel<2><<<grid, block, 0, (cudaStream_t)stream>>>(__VA_ARGS__); break;                   \
        case 3: kernel<3><<<grid, block, 0, (cudaStream_t)stream>>>(__VA_ARGS__); break;                   \
        case 4: kernel<4><<<grid, block, 0, (cudaStream_t)stream>>>(__VA_ARGS__); break;                   \
        case 5: kernel<5><<<grid, block, 0, (cudaStream_t)stream>>>(__VA_ARGS__); break;                   \
        case 6: kernel<6><<<grid, block, 0, (cudaStream_t)stream>>>(__VA_ARGS__); break;                   \
        case 7: kernel<7><<<grid, block, 0, (cudaStream_t)stream>>>(__VA_ARGS__); break;                   \
        default: kernel<8><<<grid, block, 0, (cudaStream_t)stream>>>(__VA_ARGS__); break;                  \
        }                                                                                                  \
    } while (0)

int thin_conv_kinds(int C, int O) {
    if (O <= THIN_MAX) return THIN_FWD | THIN_DATA | THIN_FILTER;
    return C <= THIN_MAX ? THIN_FWD | THIN_FILTER : 0;
}
/* Tiles of at least `least` pixels, at most `most` of them. */
static int tiles_of(size_t P, size_t least, size_t most) {
    const size_t t = (P + least - 1) / least;
    return t < 1 ? 1 : t > most ? (int)most : (int)t;
}
static unsigned warp_groups_blocks(size_t P) { return warp_blocks((P + THIN_PX - 1) / THIN_PX); }

int thin_conv_forward(void *stream, float *y, const float *x, const float *w_hat, int N, int H, int W, int C, int O) {
    const size_t P = (size_t)N * H * W;
    if (P == 0) return 0;
    if (O <= THIN_MAX) {
        THIN_LAUNCH(O, k_thin_forward_o, warp_groups_blocks(P), THREADS, y, x, w_hat, N, H, W, C);
    } else {
        const int tiles = tiles_of(P, 64, 1 << 20), CH = (O + THIN_BLOCK - 1) / THIN_BLOCK; /* no partial sums */
        THIN_LAUNCH(C, k_thin_forward_c, (unsigned)(tiles * CH), THIN_BLOCK, y, x, w_hat, N, H, W, O, tiles);
    }
    return (int)cudaGetLastError();
}

int thin_conv_backward_data(void *stream, float *dx, const float *dy, const float *w_hat, int N, int H, int W, int C,
                            int O, int acc) {
    const size_t P = (size_t)N * H * W;
    if (P == 0) return 0;
    THIN_LAUNCH(O, k_thin_data_o, warp_groups_blocks(P), THREADS, dx, dy, w_hat, N, H, W, C, acc);
    return (int)cudaGetLastError();
}

size_t thin_conv_part_floats(int N, int H, int W, int C, int O) {
    return (size_t)tiles_of((size_t)N * H * W, 256, THIN_TILES) * O * 9 * C;
}

int thin_conv_backward_filter(void *stream, float *dw_hat, const float *dy, const float *x, int N, int H, int W, int C,
                              int O, float *part) {
    const size_t P = (size_t)N * H * W, K = (size_t)O * 9 * C;
    if (P == 0) return 0;
    const int tiles = tiles_of(P, 256, THIN_TILES), wide = O <= THIN_MAX ? C : O;
    const int CH = (wide + THIN_BLOCK - 1) / THIN_BLOCK;
    const unsigned grid = (unsigned)(tiles * CH);
    if (O <= THIN_MAX) THIN_LAUNCH(O, k_thin_filter_o, grid, THIN_BLOCK, part, dy, x, N, H, W, C, tiles);
    else THIN_LAUNCH(C, k_thin_filter_c, grid, THIN_BLOCK, part, dy, x, N, H, W, O, tiles);
    k_thin_sum<<<blocks_for(K), THREADS, 0, (cudaStream_t)stream>>>(dw_hat, part, K, tiles);
    return (int)cudaGetLastError();
}
