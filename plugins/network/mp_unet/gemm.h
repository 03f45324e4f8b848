/* gemm.h: the matrix products of the forward pass, C[M, N] = A[M, K] B[N, K]^T (+ C), computed so that every
 * element is the same sequence of fused multiply-adds over k = 0..K-1 whatever M, N, the tile it falls
 * in, or the thread count: an image's result does not depend on its batch. AVX-512 12x16 or AVX2/FMA
 * 6x16 register tiles over packed B panels (BLIS-style), with an exact scalar-FMA fallback. */
#ifndef EDM2_GEMM_H
#define EDM2_GEMM_H

#include <stddef.h>

/* Floats of packing scratch a product with these N, K needs. */
size_t gemm_pack_floats(int N, int K);
/* C = A B^T (accumulate = 0) or C += A B^T (the product is formed first, then added). `pack` is scratch
 * of gemm_pack_floats(N, K) floats, 64-byte aligned. */
void gemm_nt(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
             float *pack);
/* C = A B (accumulate = 0) or C += A B, with B[K, N] row-major. */
void gemm_nn(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
             float *pack);

/* 3x3 convolution without im2col: y[Nimg, H, W, O] (+)= conv(x, w) where xpad is x zero-padded to
 * [Nimg, H + 2, W + 2, C] and w is [O, 3, 3, C] (channels-last, tap-major). Bitwise the same as im2col
 * followed by gemm_nt. */
void gemm_conv3x3(int Nimg, int H, int W, int C, const float *xpad, int O, const float *w, float *y, int accumulate,
                  float *pack);

/* Weight gradients without packing (AVX-512 only; see gemm_tn_available): for each tap t,
 * C[m, t * tap_stride + n] += sum over q < Q of A[q lda + m] B[shift[t] + q ldb + n], M <= lda.
 * The q range is cut into GEMM_TN_SPLITS fixed pieces whose partial sums (`part`, GEMM_TN_SPLITS * ntaps *
 * M * N floats) are added in order, so results do not depend on the thread count. */
#define GEMM_TN_SPLITS 4
int gemm_tn_available(void);
void gemm_tn_taps(int M, int N, size_t Q, const float *A, int lda, const float *B, long ldb, int ntaps,
                  const long *shift, float *C, int ldc, int tap_stride, float *part);

#endif
