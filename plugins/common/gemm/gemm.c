/* gemm.c: the forward-type products C = A B^T of gemm.h: packing of B into panels of 16 columns ([K][16],
 * zero-padded), register tiles whose rows of A are given as pointers (one per row and tap, so a 3x3
 * convolution reads its input in place), the row-by-row path for products with at most 4 columns, and
 * the threaded drivers. Each C element is fma-accumulated over k = tap * C + c in order from 0, so tiles
 * at the edges (same per-element arithmetic) agree. */
#include "gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

gemm_isa_t gemm_isa(void) {
    gemm_isa_t best = GEMM_ISA_SCALAR;
#ifdef HAVE_X86
    if (__builtin_cpu_supports("avx512f")) best = GEMM_ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = GEMM_ISA_AVX2;
#endif
    const char *want = getenv("EDM2_GEMM_ISA");
    if (want && !strcmp(want, "scalar")) return GEMM_ISA_SCALAR;
    if (want && !strcmp(want, "avx2") && best >= GEMM_ISA_AVX2) return GEMM_ISA_AVX2;
    return best;
}

#define MR 6     /* rows of an AVX2 (and scalar) tile */
#define MR512 12 /* rows of an AVX-512 tile */
#define NR 16
#define TAPS 9   /* taps of a 3x3 convolution: the row stride of the row-pointer table */

/* Row pointers of a tile: a[r * TAPS + t] is where row r's elements for tap t start (ntaps = 1 for a plain
 * product). Element c of it multiplies packed row k = t * C + c of B. Slots past mr hold row 0's pointers. */
typedef const float *const *tile_rows;

/* Packs B^T (B given as [N, K] with row stride ldb, or as [K, N] when b_is_kn) into panels [N/16][K][16]. */
static void pack_b(float *dst, const float *B, int ldb, int N, int K, int b_is_kn) {
    int panels = (N + NR - 1) / NR;
    for (int p = 0; p < panels; p++)
        for (int k = 0; k < K; k++) {
            float *d = dst + ((size_t)p * K + k) * NR;
            for (int c = 0; c < NR; c++) {
                int j = p * NR + c;
                d[c] = j < N ? (b_is_kn ? B[(size_t)k * ldb + j] : B[(size_t)j * ldb + k]) : 0.0f;
            }
        }
}

/* Portable tile: the same fused multiply-adds, one element at a time. */
static void tile_scalar(int mr, int nr, int ntaps, int C, tile_rows a, const float *Bp, float *Cm, int ldc, int acc) {
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float s = 0.0f;
            for (int t = 0; t < ntaps; t++) {
                const float *ar = a[r * TAPS + t], *b = Bp + (size_t)t * C * NR + j;
                for (int c = 0; c < C; c++) s = fmaf(ar[c], b[(size_t)c * NR], s);
            }
            Cm[(size_t)r * ldc + j] = acc ? Cm[(size_t)r * ldc + j] + s : s;
        }
}

#ifdef HAVE_X86
__attribute__((target("avx2,fma"))) static void tile_avx2(int mr, int nr, int ntaps, int C, tile_rows a,
                                                          const float *Bp, float *Cm, int ldc, int acc) {
    __m256 c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    for (int t = 0; t < ntaps; t++) {
        const float *const *at = a + t; /* row r at at[r * TAPS] */
        const float *a0 = at[0], *a1 = at[1 * TAPS], *a2 = at[2 * TAPS];
        const float *a3 = at[3 * TAPS], *a4 = at[4 * TAPS], *a5 = at[5 * TAPS];
        const float *b = Bp + (size_t)t * C * NR;
        for (int k = 0; k < C; k++) {
            __m256 b0 = _mm256_load_ps(b + (size_t)k * NR), b1 = _mm256_load_ps(b + (size_t)k * NR + 8), x;
#define ROW(r, ar)                                                                                                    \
    x = _mm256_broadcast_ss(ar + k), c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]), c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
            ROW(0, a0) ROW(1, a1) ROW(2, a2) ROW(3, a3) ROW(4, a4) ROW(5, a5)
#undef ROW
        }
    }
    float out[MR][NR] __attribute__((aligned(32)));
    for (int r = 0; r < MR; r++) _mm256_store_ps(out[r], c[r][0]), _mm256_store_ps(out[r] + 8, c[r][1]);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) Cm[(size_t)r * ldc + j] = acc ? Cm[(size_t)r * ldc + j] + out[r][j] : out[r][j];
}

/* 12 x 16 tile: one zmm accumulator per row. */
__attribute__((target("avx512f"))) static void tile_avx512(int mr, int nr, int ntaps, int C, tile_rows a,
                                                           const float *Bp, float *Cm, int ldc, int acc) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0,
           c10 = c0, c11 = c0;
    for (int t = 0; t < ntaps; t++) {
        const float *const *at = a + t; /* row r at at[r * TAPS] */
        const float *a0 = at[0], *a1 = at[1 * TAPS], *a2 = at[2 * TAPS], *a3 = at[3 * TAPS];
        const float *a4 = at[4 * TAPS], *a5 = at[5 * TAPS], *a6 = at[6 * TAPS], *a7 = at[7 * TAPS];
        const float *a8 = at[8 * TAPS], *a9 = at[9 * TAPS], *a10 = at[10 * TAPS], *a11 = at[11 * TAPS];
        const float *b = Bp + (size_t)t * C * NR;
        for (int k = 0; k < C; k++) {
            __m512 bv = _mm512_load_ps(b + (size_t)k * NR);
            c0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[k]), bv, c0);
            c1 = _mm512_fmadd_ps(_mm512_set1_ps(a1[k]), bv, c1);
            c2 = _mm512_fmadd_ps(_mm512_set1_ps(a2[k]), bv, c2);
            c3 = _mm512_fmadd_ps(_mm512_set1_ps(a3[k]), bv, c3);
            c4 = _mm512_fmadd_ps(_mm512_set1_ps(a4[k]), bv, c4);
            c5 = _mm512_fmadd_ps(_mm512_set1_ps(a5[k]), bv, c5);
            c6 = _mm512_fmadd_ps(_mm512_set1_ps(a6[k]), bv, c6);
            c7 = _mm512_fmadd_ps(_mm512_set1_ps(a7[k]), bv, c7);
            c8 = _mm512_fmadd_ps(_mm512_set1_ps(a8[k]), bv, c8);
            c9 = _mm512_fmadd_ps(_mm512_set1_ps(a9[k]), bv, c9);
            c10 = _mm512_fmadd_ps(_mm512_set1_ps(a10[k]), bv, c10);
            c11 = _mm512_fmadd_ps(_mm512_set1_ps(a11[k]), bv, c11);
        }
    }
    float out[MR512][NR] __attribute__((aligned(64)));
    _mm512_store_ps(out[0], c0), _mm512_store_ps(out[1], c1), _mm512_store_ps(out[2], c2);
    _mm512_store_ps(out[3], c3), _mm512_store_ps(out[4], c4), _mm512_store_ps(out[5], c5);
    _mm512_store_ps(out[6], c6), _mm512_store_ps(out[7], c7), _mm512_store_ps(out[8], c8);
    _mm512_store_ps(out[9], c9), _mm512_store_ps(out[10], c10), _mm512_store_ps(out[11], c11);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) Cm[(size_t)r * ldc + j] = acc ? Cm[(size_t)r * ldc + j] + out[r][j] : out[r][j];
}

/* 12 x 32 tile over two adjacent panels: 24 accumulators, so the 12 broadcasts per k feed 24 FMAs and
 * the FMA units, not the loads, set the pace. */
__attribute__((target("avx512f"))) static void tile2_avx512(int mr, int nr, int ntaps, int C, tile_rows a,
                                                            const float *Bp0, const float *Bp1, float *Cm, int ldc,
                                                            int acc) {
    __m512 c[MR512][2];
    for (int r = 0; r < MR512; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int t = 0; t < ntaps; t++) {
        const float *const *at = a + t; /* row r at at[r * TAPS] */
        const float *a0 = at[0], *a1 = at[1 * TAPS], *a2 = at[2 * TAPS], *a3 = at[3 * TAPS];
        const float *a4 = at[4 * TAPS], *a5 = at[5 * TAPS], *a6 = at[6 * TAPS], *a7 = at[7 * TAPS];
        const float *a8 = at[8 * TAPS], *a9 = at[9 * TAPS], *a10 = at[10 * TAPS], *a11 = at[11 * TAPS];
        const float *p0 = Bp0 + (size_t)t * C * NR, *p1 = Bp1 + (size_t)t * C * NR;
        for (int k = 0; k < C; k++) {
            __m512 b0 = _mm512_load_ps(p0 + (size_t)k * NR), b1 = _mm512_load_ps(p1 + (size_t)k * NR), x;
#define ROW2(r, ar)                                                                                                   \
    x = _mm512_set1_ps(ar[k]), c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]), c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
            ROW2(0, a0) ROW2(1, a1) ROW2(2, a2) ROW2(3, a3) ROW2(4, a4) ROW2(5, a5)
            ROW2(6, a6) ROW2(7, a7) ROW2(8, a8) ROW2(9, a9) ROW2(10, a10) ROW2(11, a11)
#undef ROW2
        }
    }
    float out[MR512][2 * NR] __attribute__((aligned(64)));
    for (int r = 0; r < MR512; r++) _mm512_store_ps(out[r], c[r][0]), _mm512_store_ps(out[r] + NR, c[r][1]);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) Cm[(size_t)r * ldc + j] = acc ? Cm[(size_t)r * ldc + j] + out[r][j] : out[r][j];
}
#endif

typedef void (*tile_fn)(int mr, int nr, int ntaps, int C, tile_rows a, const float *Bp, float *Cm, int ldc, int acc);

/* Where the rows of A are: plain (row i at A + i lda), or the nine taps of output pixel i of a 3x3
 * convolution over x[n, H, W, C] (a tap outside the image reads `zeros`). */
typedef struct a_source {
    const float *A;
    size_t lda;
    int conv, H, W, C;
    const float *zeros;
} a_source;

static void fill_rows(const a_source *s, size_t i, int mr, const float **a) {
    if (!s->conv) {
        for (int r = 0; r < MR512; r++) a[r * TAPS] = s->A + (i + (size_t)(r < mr ? r : 0)) * s->lda;
        return;
    }
    const int H = s->H, W = s->W, C = s->C;
    const size_t hw = (size_t)H * W;
    long off[TAPS]; /* tap t of pixel p reads p's input + off[t] (inside the image) */
    for (int t = 0; t < TAPS; t++) off[t] = ((long)(t / 3 - 1) * W + (t % 3 - 1)) * C;
    size_t n = i / hw;
    int y = (int)(i % hw / W), x = (int)(i % W);
    for (int r = 0; r < MR512; r++) {
        const float **ar = a + r * TAPS;
        if (r >= mr) {
            for (int t = 0; t < TAPS; t++) ar[t] = a[t];
            continue;
        }
        const float *center = s->A + ((n * H + y) * W + x) * C;
        if (y > 0 && y < H - 1 && x > 0 && x < W - 1) {
            for (int t = 0; t < TAPS; t++) ar[t] = center + off[t];
        } else {
            for (int t = 0; t < TAPS; t++) {
                int yy = y + t / 3 - 1, xx = x + t % 3 - 1;
                ar[t] = yy >= 0 && yy < H && xx >= 0 && xx < W ? center + off[t] : s->zeros;
            }
        }
        if (++x == W && (x = 0, ++y == H)) y = 0, n++;
    }
}

/* Products with at most NARROW_MAX columns (an output convolution to 1-4 channels) would leave most of a
 * 16-column tile idle. They go row by row instead: per element, 16 interleaved chains of fused multiply-adds
 * over k = l, l + 16, ... in order, added in lane order at the end. That is again one fixed sequence per
 * element, whatever the instruction set (the lane loops vectorise), the rows or the threads. */
#define NARROW_MAX 4
#define LANES 16

/* B^T as rows Bt[j, k] (B given as [N, K] with row stride ldb, or as [K, N] when b_is_kn). */
static void pack_bt(float *dst, const float *B, int ldb, int N, int K, int b_is_kn) {
    for (int j = 0; j < N; j++)
        for (int k = 0; k < K; k++) dst[(size_t)j * K + k] = b_is_kn ? B[(size_t)k * ldb + j] : B[(size_t)j * ldb + k];
}

/* The lane sums of one element, in lane order. */
static float lane_sum(const float *s) {
    float v = s[0];
    for (int l = 1; l < LANES; l++) v += s[l];
    return v;
}

/* y[0..N) (+)= one row (its tap pointers a[t]) times Bt^T. */
static void narrow_row(int N, int ntaps, int C, const float *const *a, const float *Bt, float *y, int acc) {
    const size_t K = (size_t)ntaps * C;
    for (int j = 0; j < N; j++) {
        float s[LANES];
        for (int l = 0; l < LANES; l++) s[l] = 0.0f;
        for (int t = 0; t < ntaps; t++) {
            const float *ar = a[t], *b = Bt + j * K + (size_t)t * C;
            const size_t k0 = (size_t)t * C;
            if (C % LANES == 0) { /* the lanes line up with the channels */
                for (int c = 0; c < C; c += LANES)
                    for (int l = 0; l < LANES; l++) s[l] = fmaf(ar[c + l], b[c + l], s[l]);
            } else {
                for (int c = 0; c < C; c++) s[(k0 + c) % LANES] = fmaf(ar[c], b[c], s[(k0 + c) % LANES]);
            }
        }
        const float v = lane_sum(s);
        y[j] = acc ? y[j] + v : v;
    }
}

#ifdef HAVE_X86
/* The same chains for a whole tile of rows when C is a multiple of 16: 12 rows' lanes in registers. */
__attribute__((target("avx512f"))) static void narrow_tile_avx512(int mr, int N, int ntaps, int C, tile_rows a,
                                                                  const float *Bt, float *Cm, int ldc, int acc) {
    const size_t K = (size_t)ntaps * C;
    for (int j = 0; j < N; j++) {
        __m512 s[MR512];
        for (int r = 0; r < MR512; r++) s[r] = _mm512_setzero_ps();
        for (int t = 0; t < ntaps; t++) {
            const float *const *at = a + t, *b = Bt + j * K + (size_t)t * C;
            const float *a0 = at[0], *a1 = at[1 * TAPS], *a2 = at[2 * TAPS], *a3 = at[3 * TAPS];
            const float *a4 = at[4 * TAPS], *a5 = at[5 * TAPS], *a6 = at[6 * TAPS], *a7 = at[7 * TAPS];
            const float *a8 = at[8 * TAPS], *a9 = at[9 * TAPS], *a10 = at[10 * TAPS], *a11 = at[11 * TAPS];
            for (int c = 0; c < C; c += LANES) {
                const __m512 bv = _mm512_loadu_ps(b + c);
#define LANE_ROW(r, ar) s[r] = _mm512_fmadd_ps(_mm512_loadu_ps(ar + c), bv, s[r]);
                LANE_ROW(0, a0) LANE_ROW(1, a1) LANE_ROW(2, a2) LANE_ROW(3, a3) LANE_ROW(4, a4) LANE_ROW(5, a5)
                LANE_ROW(6, a6) LANE_ROW(7, a7) LANE_ROW(8, a8) LANE_ROW(9, a9) LANE_ROW(10, a10) LANE_ROW(11, a11)
#undef LANE_ROW
            }
        }
        for (int r = 0; r < mr; r++) {
            const union {
                __m512 v;
                float f[LANES];
            } lanes = {s[r]};
            float v = lane_sum(lanes.f), *y = Cm + (size_t)r * ldc + j;
            *y = acc ? *y + v : v;
        }
    }
}
#endif

static void gemm_narrow(size_t M, int N, int ntaps, int C, const a_source *src, const float *Bt, float *Cm, int ldc,
                        int acc) {
    int avx512 = 0;
#ifdef HAVE_X86
    avx512 = gemm_isa() == GEMM_ISA_AVX512 && C % LANES == 0;
#endif
    const size_t tiles = (M + MR512 - 1) / MR512;
#pragma omp parallel for schedule(static) if (M * (size_t)N * ntaps * C > 200000)
    for (size_t t = 0; t < tiles; t++) {
        size_t i = t * MR512;
        int mr = M - i < (size_t)MR512 ? (int)(M - i) : MR512;
        const float *a[TAPS * MR512];
        fill_rows(src, i, mr, a);
#ifdef HAVE_X86
        if (avx512) {
            narrow_tile_avx512(mr, N, ntaps, C, a, Bt, Cm + i * ldc, ldc, acc);
            continue;
        }
#endif
        for (int r = 0; r < mr; r++) narrow_row(N, ntaps, C, a + r * TAPS, Bt, Cm + (i + r) * ldc, acc);
    }
}

/* C[M, N] (+)= rows of A times packed B (ntaps * C columns of A per row). */
static void gemm_packed(size_t M, int N, int ntaps, int C, const a_source *src, const float *Bp, float *Cm, int ldc,
                        int acc) {
    tile_fn tile = tile_scalar;
    int mr_max = MR, pairs = 0; /* pairs: 32-column tiles where two panels are left */
#ifdef HAVE_X86
    const gemm_isa_t which = gemm_isa();
    if (which == GEMM_ISA_AVX512) tile = tile_avx512, mr_max = MR512, pairs = 1;
    else if (which == GEMM_ISA_AVX2) tile = tile_avx2;
#endif
    const int panels = (N + NR - 1) / NR;
    const size_t K = (size_t)ntaps * C, tiles = (M + mr_max - 1) / mr_max;
#pragma omp parallel for schedule(static) if (M * (size_t)N * K > 200000)
    for (size_t t = 0; t < tiles; t++) {
        size_t i = t * mr_max;
        int mr = M - i < (size_t)mr_max ? (int)(M - i) : mr_max;
        const float *a[TAPS * MR512];
        fill_rows(src, i, mr, a);
        for (int p = 0; p < panels; p++) {
#ifdef HAVE_X86
            if (pairs && p + 1 < panels) { /* two panels at once */
                int nr2 = N - p * NR < 2 * NR ? N - p * NR : 2 * NR;
                tile2_avx512(mr, nr2, ntaps, C, a, Bp + (size_t)p * K * NR, Bp + (size_t)(p + 1) * K * NR,
                             Cm + i * ldc + (size_t)p * NR, ldc, acc);
                p++;
                continue;
            }
#endif
            int nr = N - p * NR < NR ? N - p * NR : NR;
            tile(mr, nr, ntaps, C, a, Bp + (size_t)p * K * NR, Cm + i * ldc + (size_t)p * NR, ldc, acc);
        }
    }
}

/* Packed panels, then (64-byte aligned) a row of zeros for the taps outside the image. */
static size_t panels_floats(int N, int K) { return (size_t)((N + NR - 1) / NR) * NR * (size_t)K; }
size_t gemm_pack_floats(int N, int K) { return panels_floats(N, K) + (size_t)K + 32; }

static void plain_gemm(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                       int acc, float *pack, int b_is_kn) {
    a_source src = {A, (size_t)lda, 0, 0, 0, 0, NULL};
    if (N <= NARROW_MAX) {
        pack_bt(pack, B, ldb, N, K, b_is_kn);
        gemm_narrow(M, N, 1, K, &src, pack, C, ldc, acc);
        return;
    }
    pack_b(pack, B, ldb, N, K, b_is_kn);
    gemm_packed(M, N, 1, K, &src, pack, C, ldc, acc);
}

void gemm_nt(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
             float *pack) {
    plain_gemm(M, N, K, A, lda, B, ldb, C, ldc, accumulate, pack, 0);
}

void gemm_nn(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
             float *pack) {
    plain_gemm(M, N, K, A, lda, B, ldb, C, ldc, accumulate, pack, 1);
}

void gemm_conv3x3(int Nimg, int H, int W, int C, const float *x, int O, const float *w, float *y, int accumulate,
                  float *pack) {
    const int K = TAPS * C;
    float *zeros = pack + panels_floats(O, K) + 16;
    memset(zeros, 0, (size_t)C * sizeof(float));
    a_source src = {x, 0, 1, H, W, C, zeros};
    if (O <= NARROW_MAX) {
        pack_bt(pack, w, K, O, K, 0);
        gemm_narrow((size_t)Nimg * H * W, O, TAPS, C, &src, pack, y, O, accumulate);
        return;
    }
    pack_b(pack, w, K, O, K, 0);
    gemm_packed((size_t)Nimg * H * W, O, TAPS, C, &src, pack, y, O, accumulate);
}
