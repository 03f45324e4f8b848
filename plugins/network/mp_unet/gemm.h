/* gemm.h: the matrix products of the forward pass, C[M, N] = A[M, K] B[N, K]^T (+ C), computed so that every
 * element is the same sequence of fused multiply-adds over k = 0..K-1 whatever M, N, the tile it falls
 * in, or the thread count: an image's result does not depend on its batch. AVX2/FMA 6x16 register
 * tiles over packed B panels (BLIS-style), with an exact scalar-FMA fallback. */
#ifndef EDM2_GEMM_H
#define EDM2_GEMM_H

#include <stddef.h>

/* C = A B^T (accumulate = 0) or C += A B^T (the product is formed first, then added). */
void gemm_nt(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate);
/* C = A B (accumulate = 0) or C += A B, with B[K, N] row-major. */
void gemm_nn(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate);

#endif
