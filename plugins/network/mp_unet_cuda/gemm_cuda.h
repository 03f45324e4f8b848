/* gemm_cuda.h: row-major matrix products on the GPU for the CUDA network (cuBLAS): the products of the fully
 * connected and 1x1 layers (conv_cuda.c) and of attention (attention_cuda.cu, attention_lp.cu). */
#ifndef EDM2_GEMM_CUDA_H
#define EDM2_GEMM_CUDA_H

#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Row-major C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C (op = transpose when ta / tb), `batch` times
 * with element strides sa, sb, sc between the problems. */
int gpu_gemm(gpu_ctx *g, int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
             long long sa, const float *B, size_t ldb, long long sb, float beta, float *C, size_t ldc, long long sc,
             int batch);

/* gpu_gemm with A and B of type ab and C of type ct (ACT_*), float32 accumulation. */
int gpu_gemm_ex(gpu_ctx *g, int ab, int ct, int ta, int tb, size_t M, size_t N, size_t K, float alpha, const void *A,
                size_t lda, long long sa, const void *B, size_t ldb, long long sb, float beta, void *C, size_t ldc,
                long long sc, int batch);

#ifdef __cplusplus
}
#endif
#endif
