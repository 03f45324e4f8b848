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

#define MR 6
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

/* Portable tile: the same fused multiply-adds, one element at a time. */
static void tile_scalar(int mr, int nr, int K, const float *A, int lda, const float *Bp, float *C, int ldc, int acc) {
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s = fmaf(A[(size_t)r * lda + k], Bp[(size_t)k * NR + c], s);
            C[(size_t)r * ldc + c] = acc ? C[(size_t)r * ldc + c] + s : s;
        }
}

#ifdef HAVE_X86
__attribute__((target("avx2,fma"))) static void tile_avx2(int mr, int nr, int K, const float *A, int lda,
                                                          const float *Bp, float *C, int ldc, int acc) {
    __m256 c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    const float *a[MR];
    for (int r = 0; r < MR; r++) a[r] = A + (size_t)(r < mr ? r : 0) * lda;
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_load_ps(Bp + (size_t)k * NR), b1 = _mm256_load_ps(Bp + (size_t)k * NR + 8);
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

static void gemm_packed(size_t M, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc, int acc) {
#ifdef HAVE_X86
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    const int avx2 = 0;
#endif
    const int panels = (N + NR - 1) / NR;
    const size_t tiles = (M + MR - 1) / MR;
#pragma omp parallel for schedule(static) if (M * (size_t)N * K > 200000)
    for (size_t t = 0; t < tiles; t++) {
        size_t i = t * MR;
        int mr = M - i < MR ? (int)(M - i) : MR;
        for (int p = 0; p < panels; p++) {
            int nr = N - p * NR < NR ? N - p * NR : NR;
            const float *Bp_p = Bp + (size_t)p * K * NR;
            float *Ct = C + i * ldc + (size_t)p * NR;
#ifdef HAVE_X86
            if (avx2) {
                tile_avx2(mr, nr, K, A + i * lda, lda, Bp_p, Ct, ldc, acc);
                continue;
            }
#endif
            (void)avx2;
            tile_scalar(mr, nr, K, A + i * lda, lda, Bp_p, Ct, ldc, acc);
        }
    }
}

static void gemm_common(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                        int acc, int b_is_kn) {
    size_t panels = (size_t)(N + NR - 1) / NR;
    float *Bp = aligned_alloc(64, (panels * K * NR * sizeof(float) + 63) / 64 * 64 + 64);
    if (!Bp) { /* fall back to the plain loop: the same arithmetic, no packing */
        for (size_t i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float s = 0.0f;
                for (int k = 0; k < K; k++)
                    s = fmaf(A[i * lda + k], b_is_kn ? B[(size_t)k * ldb + j] : B[(size_t)j * ldb + k], s);
                C[i * ldc + j] = acc ? C[i * ldc + j] + s : s;
            }
        return;
    }
    pack_b(Bp, B, ldb, N, K, b_is_kn);
    gemm_packed(M, N, K, A, lda, Bp, C, ldc, acc);
    free(Bp);
}

void gemm_nt(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate) {
    gemm_common(M, N, K, A, lda, B, ldb, C, ldc, accumulate, 0);
}

void gemm_nn(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate) {
    gemm_common(M, N, K, A, lda, B, ldb, C, ldc, accumulate, 1);
}
