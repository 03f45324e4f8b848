/* gemm_tn.c: the weight-gradient products C += A^T B of gemm.h. Rows (pixels) are visited in runs of
 * consecutive rows: fixed-length runs for a plain product; for a 3x3 convolution, per tap, one run per image
 * row holding the pixels whose tapped input lies inside the image (so no padded copies, and no products with
 * padding). Tiles keep their accumulators in registers across runs and write partial sums per split. */
#include "gemm.h"

#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define FLAT_RUN 256 /* rows per run of a plain product */

/* Which rows a tap visits. conv: output pixels of Nimg images H x W; otherwise Q plain rows. */
typedef struct tn_geom {
    int conv, Nimg, H, W;
    size_t Q;
} tn_geom;

static long tn_nruns(const tn_geom *g, int tap) {
    if (!g->conv) return (long)((g->Q + FLAT_RUN - 1) / FLAT_RUN);
    return (long)g->Nimg * (g->H - abs(tap / 3 - 1));
}

/* Run r of a tap: its first row of A (*qa) and of B (*qb); returns its length. For tap (ty, tx) in
 * {-1, 0, 1}^2, output pixel (y, x) pairs with input pixel (y + ty, x + tx), which must lie in the image. */
static inline int tn_run(const tn_geom *g, int tap, long r, size_t *qa, size_t *qb) {
    if (!g->conv) {
        size_t q0 = (size_t)r * FLAT_RUN;
        *qa = *qb = q0;
        return (int)(g->Q - q0 < FLAT_RUN ? g->Q - q0 : FLAT_RUN);
    }
    const int ty = tap / 3 - 1, tx = tap % 3 - 1, Hv = g->H - abs(ty);
    const long n = r / Hv, y = (ty < 0 ? 1 : 0) + r % Hv, x0 = tx < 0 ? 1 : 0;
    const long a = (n * g->H + y) * g->W + x0;
    *qa = (size_t)a;
    *qb = (size_t)(a + (long)ty * g->W + tx);
    return g->W - abs(tx);
}

/* Portable tile: out[r, j] = sum over the runs of A[q, r] B[q, j], r < mr <= 4, j < nr <= 16 (small enough
 * for the compiler to keep the accumulators in vector registers). */
#define TG_ROWS 4
#define TG_COLS 16
static void tile_tn_generic(int mr, int nr, const tn_geom *g, int tap, long r0, long r1, const float *A, int lda,
                            const float *B, int ldb, float *out, int ldo) {
    float acc[TG_ROWS][TG_COLS] = {{0}};
    int o[TG_ROWS];
    for (int i = 0; i < TG_ROWS; i++) o[i] = i < mr ? i : 0;
    for (long r = r0; r < r1; r++) {
        size_t qa, qb;
        const int len = tn_run(g, tap, r, &qa, &qb);
        const float *a = A + qa * (size_t)lda, *b = B + qb * (size_t)ldb;
        for (int q = 0; q < len; q++, a += lda, b += ldb) {
            float bq[TG_COLS] = {0};
            for (int j = 0; j < nr; j++) bq[j] = b[j];
            for (int i = 0; i < TG_ROWS; i++) {
                const float ai = a[o[i]];
                for (int j = 0; j < TG_COLS; j++) acc[i][j] += ai * bq[j];
            }
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) out[(size_t)i * ldo + j] = acc[i][j];
}

#ifdef HAVE_X86
/* AVX2 4 x 16 tile: eight accumulators (the same shape as the portable tile). */
__attribute__((target("avx2,fma"))) static void tile_tn_avx2(int mr, int nr, const tn_geom *g, int tap, long r0,
                                                             long r1, const float *A, int lda, const float *B, int ldb,
                                                             float *out, int ldo) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    int o[TG_ROWS];
    for (int i = 0; i < TG_ROWS; i++) o[i] = i < mr ? i : 0;
    int lanes[16];
    for (int j = 0; j < 16; j++) lanes[j] = j < nr ? -1 : 0;
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)lanes);
    const __m256i m1 = _mm256_loadu_si256((const __m256i *)(lanes + 8));
    for (long r = r0; r < r1; r++) {
        size_t qa, qb;
        const int len = tn_run(g, tap, r, &qa, &qb);
        const float *a = A + qa * (size_t)lda, *b = B + qb * (size_t)ldb;
        for (int q = 0; q < len; q++, a += lda, b += ldb) {
            const __m256 b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
            __m256 x;
            x = _mm256_broadcast_ss(a + o[0]), c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a + o[1]), c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a + o[2]), c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a + o[3]), c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
        }
    }
    const __m256 c[TG_ROWS][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int i = 0; i < mr; i++) {
        _mm256_maskstore_ps(out + (size_t)i * ldo, m0, c[i][0]);
        _mm256_maskstore_ps(out + (size_t)i * ldo + 8, m1, c[i][1]);
    }
}

/* 16 x 16 tile (rows past mr repeat row 0, not stored; columns past nr masked). */
__attribute__((target("avx512f"))) static void tile_tn_avx512(int mr, int nr, const tn_geom *g, int tap, long r0,
                                                              long r1, const float *A, int lda, const float *B, int ldb,
                                                              float *out, int ldo) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512 c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
    int o[16];
    for (int r = 0; r < 16; r++) o[r] = r < mr ? r : 0;
    const __mmask16 mask = (__mmask16)((1u << nr) - 1u);
    for (long r = r0; r < r1; r++) {
        size_t qa, qb;
        const int len = tn_run(g, tap, r, &qa, &qb);
        const float *a = A + qa * (size_t)lda, *b = B + qb * (size_t)ldb;
        for (int q = 0; q < len; q++, a += lda, b += ldb) {
            __m512 bv = _mm512_maskz_loadu_ps(mask, b);
            c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[0]]), bv, c0);
            c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[1]]), bv, c1);
            c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[2]]), bv, c2);
            c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[3]]), bv, c3);
            c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[4]]), bv, c4);
            c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[5]]), bv, c5);
            c6 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[6]]), bv, c6);
            c7 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[7]]), bv, c7);
            c8 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[8]]), bv, c8);
            c9 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[9]]), bv, c9);
            c10 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[10]]), bv, c10);
            c11 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[11]]), bv, c11);
            c12 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[12]]), bv, c12);
            c13 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[13]]), bv, c13);
            c14 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[14]]), bv, c14);
            c15 = _mm512_fmadd_ps(_mm512_set1_ps(a[o[15]]), bv, c15);
        }
    }
    __m512 c[16] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15};
    for (int r = 0; r < mr; r++) _mm512_mask_storeu_ps(out + (size_t)r * ldo, mask, c[r]);
}

/* Full 8-row blocks over 32 columns: two B vectors and eight broadcasts per row feed 16 FMAs, so the
 * loads do not limit it. */
__attribute__((target("avx512f"))) static void tile_tn8x32_avx512(int nr, const tn_geom *g, int tap, long r0, long r1,
                                                                  const float *A, int lda, const float *B, int ldb,
                                                                  float *out, int ldo) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
    const __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFFu : nr > 16 ? (1u << (nr - 16)) - 1u : 0u);
    for (long r = r0; r < r1; r++) {
        size_t qa, qb;
        const int len = tn_run(g, tap, r, &qa, &qb);
        const float *a = A + qa * (size_t)lda, *bq = B + qb * (size_t)ldb;
        for (int q = 0; q < len; q++, a += lda, bq += ldb) {
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
    }
    __m512 c[8][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    for (int r = 0; r < 8; r++) {
        _mm512_mask_storeu_ps(out + (size_t)r * ldo, m0, c[r][0]);
        _mm512_mask_storeu_ps(out + (size_t)r * ldo + 16, m1, c[r][1]);
    }
}
#endif

size_t gemm_tn_part_floats(int M, int N, int ntaps) { return (size_t)GEMM_TN_SPLITS * ntaps * M * N + 16; }

/* C[m, t * tap_stride + n] += sum over tap t's runs of A[q, m] B[q', n]; A has row stride M, B row stride N. */
static void gemm_tn_runs(int M, int N, const tn_geom *g, int ntaps, const float *A, const float *B, float *C, int ldc,
                         int tap_stride, float *part) {
    const gemm_isa_t isa = gemm_isa();
    /* AVX-512: 8 x 32 blocks when M is a multiple of 8 and N >= 32, 16 x 16 otherwise, but the AVX2 4 x 16
     * tile when M < 8 (a 16-row tile would compute mostly repeated rows); portable: 4 x 16. */
    const int avx512 = isa == GEMM_ISA_AVX512 && M >= 8, avx2 = isa >= GEMM_ISA_AVX2 && !avx512;
    const int wide = avx512 && M % 8 == 0 && N >= 32;
    const int tr = wide ? 8 : avx512 ? 16 : TG_ROWS, tc = wide ? 32 : TG_COLS;
    const int ob = (M + tr - 1) / tr, cb = (N + tc - 1) / tc;
    const size_t rows = g->conv ? (size_t)g->Nimg * g->H * g->W : g->Q;
    const int S = rows >= 4096 ? GEMM_TN_SPLITS : 1; /* fixed, so the sums do not depend on the thread count */
    const int tasks = ntaps * ob * cb * S;
    const size_t slab = (size_t)ntaps * M * N; /* partials of one split: [tap][M][N] */
#pragma omp parallel for schedule(dynamic, 1) if (rows * (size_t)M * N * ntaps > 100000)
    for (int task = 0; task < tasks; task++) {
        int s = task % S, rest = task / S, c = rest % cb, o = (rest / cb) % ob, t = rest / (cb * ob);
        const long R = tn_nruns(g, t), r0 = R * s / S, r1 = R * (s + 1) / S;
        int mr = M - o * tr < tr ? M - o * tr : tr, nr = N - c * tc < tc ? N - c * tc : tc;
        const float *a = A + (size_t)o * tr, *b = B + (size_t)c * tc;
        float *out = part + (size_t)s * slab + ((size_t)t * M + (size_t)o * tr) * N + (size_t)c * tc;
#ifdef HAVE_X86
        if (wide) {
            tile_tn8x32_avx512(nr, g, t, r0, r1, a, M, b, N, out, N);
            continue;
        }
        if (avx512) {
            tile_tn_avx512(mr, nr, g, t, r0, r1, a, M, b, N, out, N);
            continue;
        }
        if (avx2) {
            tile_tn_avx2(mr, nr, g, t, r0, r1, a, M, b, N, out, N);
            continue;
        }
#endif
        tile_tn_generic(mr, nr, g, t, r0, r1, a, M, b, N, out, N);
    }
    /* C[m, t, n] += sum over splits in order. */
#pragma omp parallel for schedule(static) if (slab > 16384)
    for (size_t i = 0; i < slab; i++) {
        size_t t = i / ((size_t)M * N), m = (i / N) % M, n = i % N;
        float sum = part[i];
        for (int s = 1; s < S; s++) sum += part[(size_t)s * slab + i];
        C[m * (size_t)ldc + t * (size_t)tap_stride + n] += sum;
    }
}

void gemm_tn(int M, int N, size_t Q, const float *A, const float *B, float *C, float *part) {
    const tn_geom g = {0, 0, 0, 0, Q};
    gemm_tn_runs(M, N, &g, 1, A, B, C, N, 0, part);
}

void gemm_tn_conv3x3(int O, int C, int Nimg, int H, int W, const float *dy, const float *x, float *dw, float *part) {
    const tn_geom g = {1, Nimg, H, W, 0};
    gemm_tn_runs(O, C, &g, 9, dy, x, dw, 9 * C, C, part);
}
