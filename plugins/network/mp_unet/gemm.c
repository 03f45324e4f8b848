/* gemm.c: deterministic GEMM for the forward pass (see gemm.h). B is packed into panels of 16 columns,
 * [K][16], zero-padded; a 6x16 tile keeps 12 AVX2 accumulators; each C element is fma-accumulated over
 * k in order from 0, so tiles at the edges (computed with the same per-element arithmetic) agree. */
#include "gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* The instruction set of the kernels: the best this CPU has, or a lower one named by EDM2_GEMM_ISA
 * (scalar, avx2) to exercise the other paths; every path computes the same per-element FMA sequence. */
typedef enum { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 } gemm_isa;

static gemm_isa isa(void) {
    gemm_isa best = ISA_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f")) best = ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = ISA_AVX2;
#endif
    const char *want = getenv("EDM2_GEMM_ISA");
    if (want && !strcmp(want, "scalar")) return ISA_SCALAR;
    if (want && !strcmp(want, "avx2") && best >= ISA_AVX2) return ISA_AVX2;
    return best;
}

#define MR 6    /* rows of an AVX2 (and scalar) tile */
#define MR512 12 /* rows of an AVX-512 tile */
#define NR 16

/* Packs B^T (B given as [N, K] with row stride ldb, or as [K, N] when trans) into panels [N/16][K][16]. */
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

/* Portable tile: the same fused multiply-adds, one element at a time. Row r of A is a[r], element k of
 * it a[r][koff[k]] (koff maps k to an offset: k itself, or tap and channel of a 3x3 convolution). */
static void tile_scalar(int mr, int nr, int K, const float *const *a, const int *koff, const float *Bp, float *C,
                        int ldc, int acc) {
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s = fmaf(a[r][koff[k]], Bp[(size_t)k * NR + c], s);
            C[(size_t)r * ldc + c] = acc ? C[(size_t)r * ldc + c] + s : s;
        }
}

#ifdef HAVE_X86
__attribute__((target("avx2,fma"))) static void tile_avx2(int mr, int nr, int K, const float *const *a_in,
                                                          const int *koff, const float *Bp, float *C, int ldc, int acc) {
    __m256 c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    const float *a[MR];
    for (int r = 0; r < MR; r++) a[r] = a_in[r < mr ? r : 0];
    for (int kk = 0; kk < K; kk++) {
        const int k = koff[kk];
        __m256 b0 = _mm256_load_ps(Bp + (size_t)kk * NR), b1 = _mm256_load_ps(Bp + (size_t)kk * NR + 8);
        __m256 x;
        x = _mm256_broadcast_ss(a[0] + k), c[0][0] = _mm256_fmadd_ps(x, b0, c[0][0]), c[0][1] = _mm256_fmadd_ps(x, b1, c[0][1]);
        x = _mm256_broadcast_ss(a[1] + k), c[1][0] = _mm256_fmadd_ps(x, b0, c[1][0]), c[1][1] = _mm256_fmadd_ps(x, b1, c[1][1]);
        x = _mm256_broadcast_ss(a[2] + k), c[2][0] = _mm256_fmadd_ps(x, b0, c[2][0]), c[2][1] = _mm256_fmadd_ps(x, b1, c[2][1]);
        x = _mm256_broadcast_ss(a[3] + k), c[3][0] = _mm256_fmadd_ps(x, b0, c[3][0]), c[3][1] = _mm256_fmadd_ps(x, b1, c[3][1]);
        x = _mm256_broadcast_ss(a[4] + k), c[4][0] = _mm256_fmadd_ps(x, b0, c[4][0]), c[4][1] = _mm256_fmadd_ps(x, b1, c[4][1]);
        x = _mm256_broadcast_ss(a[5] + k), c[5][0] = _mm256_fmadd_ps(x, b0, c[5][0]), c[5][1] = _mm256_fmadd_ps(x, b1, c[5][1]);
    }
    float out[MR][NR] __attribute__((aligned(32)));
    for (int r = 0; r < MR; r++) _mm256_store_ps(out[r], c[r][0]), _mm256_store_ps(out[r] + 8, c[r][1]);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) C[(size_t)r * ldc + j] = acc ? C[(size_t)r * ldc + j] + out[r][j] : out[r][j];
}
#endif

#ifdef HAVE_X86
/* 12 x 16 tile: one zmm accumulator per row; same per-element arithmetic as the other tiles. */
__attribute__((target("avx512f"))) static void tile_avx512(int mr, int nr, int K, const float *const *a_in,
                                                           const int *koff, const float *Bp, float *C, int ldc, int acc) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0,
           c10 = c0, c11 = c0;
    const float *a[MR512];
    for (int r = 0; r < MR512; r++) a[r] = a_in[r < mr ? r : 0];
    for (int kk = 0; kk < K; kk++) {
        const int k = koff[kk];
        __m512 b = _mm512_load_ps(Bp + (size_t)kk * NR);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0][k]), b, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1][k]), b, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2][k]), b, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3][k]), b, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4][k]), b, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5][k]), b, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(a[6][k]), b, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(a[7][k]), b, c7);
        c8 = _mm512_fmadd_ps(_mm512_set1_ps(a[8][k]), b, c8);
        c9 = _mm512_fmadd_ps(_mm512_set1_ps(a[9][k]), b, c9);
        c10 = _mm512_fmadd_ps(_mm512_set1_ps(a[10][k]), b, c10);
        c11 = _mm512_fmadd_ps(_mm512_set1_ps(a[11][k]), b, c11);
    }
    float out[MR512][NR] __attribute__((aligned(64)));
    _mm512_store_ps(out[0], c0), _mm512_store_ps(out[1], c1), _mm512_store_ps(out[2], c2);
    _mm512_store_ps(out[3], c3), _mm512_store_ps(out[4], c4), _mm512_store_ps(out[5], c5);
    _mm512_store_ps(out[6], c6), _mm512_store_ps(out[7], c7), _mm512_store_ps(out[8], c8);
    _mm512_store_ps(out[9], c9), _mm512_store_ps(out[10], c10), _mm512_store_ps(out[11], c11);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) C[(size_t)r * ldc + j] = acc ? C[(size_t)r * ldc + j] + out[r][j] : out[r][j];
}
#endif

typedef void (*tile_fn)(int mr, int nr, int K, const float *const *a, const int *koff, const float *Bp, float *C,
                        int ldc, int acc);

#ifdef HAVE_X86
/* 12 x 32 tile over two adjacent panels: 24 accumulators, so the 12 broadcasts per k feed 24 FMAs and
 * the FMA units, not the loads, set the pace. Same per-element arithmetic as the 16-column tiles. */
__attribute__((target("avx512f"))) static void tile2_avx512(int mr, int nr, int K, const float *const *a_in,
                                                            const int *koff, const float *Bp0, const float *Bp1,
                                                            float *C, int ldc, int acc) {
    __m512 c[MR512][2];
    for (int r = 0; r < MR512; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    const float *a0 = a_in[0], *a1 = a_in[1 < mr ? 1 : 0], *a2 = a_in[2 < mr ? 2 : 0], *a3 = a_in[3 < mr ? 3 : 0];
    const float *a4 = a_in[4 < mr ? 4 : 0], *a5 = a_in[5 < mr ? 5 : 0], *a6 = a_in[6 < mr ? 6 : 0];
    const float *a7 = a_in[7 < mr ? 7 : 0], *a8 = a_in[8 < mr ? 8 : 0], *a9 = a_in[9 < mr ? 9 : 0];
    const float *a10 = a_in[10 < mr ? 10 : 0], *a11 = a_in[11 < mr ? 11 : 0];
    for (int kk = 0; kk < K; kk++) {
        const int k = koff[kk];
        __m512 b0 = _mm512_load_ps(Bp0 + (size_t)kk * NR), b1 = _mm512_load_ps(Bp1 + (size_t)kk * NR), x;
#define ROW2(r, ar)                                                                                                   \
    x = _mm512_set1_ps(ar[k]), c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]), c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
        ROW2(0, a0) ROW2(1, a1) ROW2(2, a2) ROW2(3, a3) ROW2(4, a4) ROW2(5, a5)
        ROW2(6, a6) ROW2(7, a7) ROW2(8, a8) ROW2(9, a9) ROW2(10, a10) ROW2(11, a11)
#undef ROW2
    }
    float out[MR512][2 * NR] __attribute__((aligned(64)));
    for (int r = 0; r < MR512; r++) _mm512_store_ps(out[r], c[r][0]), _mm512_store_ps(out[r] + NR, c[r][1]);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) C[(size_t)r * ldc + j] = acc ? C[(size_t)r * ldc + j] + out[r][j] : out[r][j];
}
#endif

#ifdef HAVE_X86
/* Weight-gradient tile: out[r, j] = sum over q of A[q lda + r] B[q ldb + j], r < mr <= 16, j < nr <= 16,
 * q in order from 0 (rows of A and B read straight from the activations, no packing). Rows past mr
 * repeat row 0 (no branch in the loop) and are not stored. */
#define MRTN 16
__attribute__((target("avx512f"))) static void tile_tn_avx512(int mr, int nr, size_t Q, const float *A, int lda,
                                                              const float *B, long ldb, float *out, int ldo) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512 c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
    int o[MRTN];
    for (int r = 0; r < MRTN; r++) o[r] = r < mr ? r : 0;
    const __mmask16 mask = (__mmask16)((1u << nr) - 1u);
    for (size_t q = 0; q < Q; q++) {
        const float *a = A + q * (size_t)lda;
        __m512 b = _mm512_maskz_loadu_ps(mask, B + (long)q * ldb);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[0]]), b, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[1]]), b, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[2]]), b, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[3]]), b, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[4]]), b, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[5]]), b, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[6]]), b, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[7]]), b, c7);
        c8 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[8]]), b, c8);
        c9 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[9]]), b, c9);
        c10 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[10]]), b, c10);
        c11 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[11]]), b, c11);
        c12 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[12]]), b, c12);
        c13 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[13]]), b, c13);
        c14 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[14]]), b, c14);
        c15 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[15]]), b, c15);
    }
    __m512 c[MRTN] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15};
    for (int r = 0; r < mr; r++) _mm512_mask_storeu_ps(out + (size_t)r * ldo, mask, c[r]);
}

/* Full 8-row blocks over 32 columns: two B vectors and eight broadcasts per q feed 16 FMAs, so the
 * loads no longer limit it. Same per-element arithmetic as the tile above. */
__attribute__((target("avx512f"))) static void tile_tn8x32_avx512(int nr, size_t Q, const float *A, int lda,
                                                                  const float *B, long ldb, float *out, int ldo) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
    const __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
    for (size_t q = 0; q < Q; q++) {
        const float *a = A + q * (size_t)lda, *bq = B + (long)q * ldb;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bq), b1 = _mm512_maskz_loadu_ps(m1, bq + 16), x;
        x = _mm512_set1_ps(a[0]), c00 = _mm512_fmadd_ps(x, b0, c00), c01 = _mm512_fmadd_ps(x, b1, c01);
        x = _mm512_set1_ps(a[1]), c10 = _mm512_fmadd_ps(x, b0, c10), c11 = _mm512_fmadd_ps(x, b1, c11);
        x = _mm512_set1_ps(a[2]), c20 = _mm512_fmadd_ps(x, b0, c20), c21 = _mm512_fmadd_ps(x, b1, c21);
        x = _mm512_set1_ps(a[3]), c30 = _mm512_fmadd_ps(x, b0, c30), c31 = _mm512_fmadd_ps(x, b1, c31);
        x = _mm512_set1_ps(a[4]), c40 = _mm512_fmadd_ps(x, b0, c40), c41 = _mm512_fmadd_ps(x, b1, c41);
        x = _mm512_set1_ps(a[5]), c50 = _mm512_fmadd_ps(x, b0, c50), c51 = _mm512_fmadd_ps(x, b1, c51);
        x = _mm512_set1_ps(a[6]), c60 = _mm512_fmadd_ps(x, b0, c60), c61 = _mm512_fmadd_ps(x, b1, c61);
        x = _mm512_set1_ps(a[7]), c70 = _mm512_fmadd_ps(x, b0, c70), c71 = _mm512_fmadd_ps(x, b1, c71);
    }
    __m512 c[8][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    for (int r = 0; r < 8; r++) {
        _mm512_mask_storeu_ps(out + (size_t)r * ldo, m0, c[r][0]);
        _mm512_mask_storeu_ps(out + (size_t)r * ldo + 16, m1, c[r][1]);
    }
}

#endif

int gemm_tn_available(void) { return isa() == ISA_AVX512; }

void gemm_tn_taps(int M, int N, size_t Q, const float *A, int lda, const float *B, long ldb, int ntaps,
                  const long *shift, float *C, int ldc, int tap_stride, float *part) {
#ifdef HAVE_X86
    /* 8 x 32 blocks when M is a multiple of 8 and N >= 32; 16 x 16 otherwise. */
    const int wide = M % 8 == 0 && N >= 32, tr = wide ? 8 : MRTN, tc = wide ? 32 : NR;
    const int ob = (M + tr - 1) / tr, cb = (N + tc - 1) / tc;
    const int S = Q >= 4096 ? GEMM_TN_SPLITS : 1; /* fixed, so the sums do not depend on the thread count */
    const int tasks = ntaps * ob * cb * S;
    const size_t slab = (size_t)ntaps * M * N; /* partials of one split: [tap][M][N] */
#pragma omp parallel for schedule(dynamic, 1) if (Q * (size_t)M * N * ntaps > 100000)
    for (int task = 0; task < tasks; task++) {
        int s = task % S, rest = task / S, c = rest % cb, o = (rest / cb) % ob, t = rest / (cb * ob);
        size_t q0 = Q * (size_t)s / S, q1 = Q * (size_t)(s + 1) / S;
        int mr = M - o * tr < tr ? M - o * tr : tr, nr = N - c * tc < tc ? N - c * tc : tc;
        const float *a = A + q0 * (size_t)lda + (size_t)o * tr, *b = B + shift[t] + (long)q0 * ldb + (long)c * tc;
        float *out = part + (size_t)s * slab + ((size_t)t * M + (size_t)o * tr) * N + (size_t)c * tc;
        if (wide) tile_tn8x32_avx512(nr, q1 - q0, a, lda, b, ldb, out, N);
        else tile_tn_avx512(mr, nr, q1 - q0, a, lda, b, ldb, out, N);
    }
    /* C[m, t, n] += sum over splits in order. */
#pragma omp parallel for schedule(static) if (slab > 16384)
    for (size_t i = 0; i < slab; i++) {
        size_t t = i / ((size_t)M * N), m = (i / N) % M, n = i % N;
        float sum = part[i];
        for (int s = 1; s < S; s++) sum += part[(size_t)s * slab + i];
        C[m * (size_t)ldc + t * (size_t)tap_stride + n] += sum;
    }
#else
    (void)M, (void)N, (void)Q, (void)A, (void)lda, (void)B, (void)ldb, (void)ntaps, (void)shift, (void)C, (void)ldc,
        (void)tap_stride, (void)part;
#endif
}

/* Where row i of A starts: plain (A + i lda) or the top-left tap of output pixel i of a 3x3 convolution
 * over an input padded to (H + 2) x (W + 2). */
typedef struct a_rows {
    const float *A;
    size_t lda;
    int conv, H, W, C;
} a_rows;

static const float *row_ptr(const a_rows *ar, size_t i) {
    if (!ar->conv) return ar->A + i * ar->lda;
    size_t hw = (size_t)ar->H * ar->W, n = i / hw, rem = i % hw, y = rem / ar->W, x = rem % ar->W;
    return ar->A + ((n * (ar->H + 2) + y) * (ar->W + 2) + x) * ar->C;
}

static void gemm_packed(size_t M, int N, int K, const a_rows *ar, const int *koff, const float *Bp, float *C, int ldc,
                        int acc) {
    tile_fn tile = tile_scalar;
    int mr_max = MR, pairs = 0; /* pairs: 32-column tiles where two panels are left */
#ifdef HAVE_X86
    const gemm_isa which = isa();
    if (which == ISA_AVX512) tile = tile_avx512, mr_max = MR512, pairs = 1;
    else if (which == ISA_AVX2) tile = tile_avx2;
#endif
    const int panels = (N + NR - 1) / NR;
    const size_t tiles = (M + mr_max - 1) / mr_max;
#pragma omp parallel for schedule(static) if (M * (size_t)N * K > 200000)
    for (size_t t = 0; t < tiles; t++) {
        size_t i = t * mr_max;
        int mr = M - i < (size_t)mr_max ? (int)(M - i) : mr_max;
        const float *a[MR512];
        for (int r = 0; r < mr; r++) a[r] = row_ptr(ar, i + (size_t)r);
        for (int p = 0; p < panels; p++) {
#ifdef HAVE_X86
            if (pairs && p + 1 < panels) { /* two panels at once */
                int nr2 = N - p * NR < 2 * NR ? N - p * NR : 2 * NR;
                tile2_avx512(mr, nr2, K, a, koff, Bp + (size_t)p * K * NR, Bp + (size_t)(p + 1) * K * NR,
                             C + i * ldc + (size_t)p * NR, ldc, acc);
                p++;
                continue;
            }
#endif
            int nr = N - p * NR < NR ? N - p * NR : NR;
            tile(mr, nr, K, a, koff, Bp + (size_t)p * K * NR, C + i * ldc + (size_t)p * NR, ldc, acc);
        }
    }
}

size_t gemm_pack_floats(int N, int K) { return (size_t)((N + NR - 1) / NR) * NR * (size_t)K + (size_t)K + 32; }

/* The k -> offset table lives after the packed panels. */
static int *koff_table(float *pack, int N, int K) {
    return (int *)(pack + (size_t)((N + NR - 1) / NR) * NR * (size_t)K + 16);
}

static void plain_gemm(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                       int acc, float *pack, int b_is_kn) {
    pack_b(pack, B, ldb, N, K, b_is_kn);
    int *koff = koff_table(pack, N, K);
    for (int k = 0; k < K; k++) koff[k] = k;
    a_rows ar = {A, (size_t)lda, 0, 0, 0, 0};
    gemm_packed(M, N, K, &ar, koff, pack, C, ldc, acc);
}

void gemm_nt(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
             float *pack) {
    plain_gemm(M, N, K, A, lda, B, ldb, C, ldc, accumulate, pack, 0);
}

void gemm_nn(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
             float *pack) {
    plain_gemm(M, N, K, A, lda, B, ldb, C, ldc, accumulate, pack, 1);
}

void gemm_conv3x3(int Nimg, int H, int W, int C, const float *xpad, int O, const float *w, float *y, int accumulate,
                  float *pack) {
    const int K = 9 * C;
    pack_b(pack, w, K, O, K, 0);
    int *koff = koff_table(pack, O, K);
    for (int t = 0; t < 9; t++)
        for (int c = 0; c < C; c++) koff[t * C + c] = ((t / 3) * (W + 2) + t % 3) * C + c;
    a_rows ar = {xpad, 0, 1, H, W, C};
    gemm_packed((size_t)Nimg * H * W, O, K, &ar, koff, pack, y, O, accumulate);
}
