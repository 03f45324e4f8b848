/* gemm_cuda.c: the CUDA network's matrix products on cuBLAS (gemm_cuda.h): float32 on the backend's pedantic
 * handle, bf16/fp16 operands on the network's own default-math (tensor-core) handle with float32
 * accumulation. */
#include "gemm_cuda.h"

#include <limits.h>

static int too_big(gpu_ctx *g, size_t v, const char *what) {
    return v > INT_MAX ? gpu_fail(g, what, "a dimension exceeds the 2^31 - 1 that cuBLAS takes (smaller batch)") : 0;
}

int gpu_gemm(gpu_ctx *g, int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
             long long sa, const float *B, size_t ldb, long long sb, float beta, float *C, size_t ldc, long long sc,
             int batch) {
    if (too_big(g, M, "gemm") || too_big(g, N, "gemm") || too_big(g, K, "gemm") || too_big(g, lda, "gemm") ||
        too_big(g, ldb, "gemm") || too_big(g, ldc, "gemm"))
        return -1;
    if (M == 0 || N == 0) return 0;
    /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the operands swap. */
    const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1)
        GPU_BLAS(g, cublasSgemm(g->blas, ob, oa, (int)N, (int)M, (int)K, &alpha, B, (int)ldb, A, (int)lda, &beta, C,
                                (int)ldc));
    else
        GPU_BLAS(g, cublasSgemmStridedBatched(g->blas, ob, oa, (int)N, (int)M, (int)K, &alpha, B, (int)ldb, sb, A,
                                              (int)lda, sa, &beta, C, (int)ldc, sc, batch));
    return 0;
}

static cudaDataType_t cuda_type(int act) {
    return act == ACT_BF16 ? CUDA_R_16BF : act == ACT_F16 ? CUDA_R_16F : CUDA_R_32F;
}

int gpu_gemm_ex(gpu_ctx *g, int ab, int ct, int ta, int tb, size_t M, size_t N, size_t K, float alpha, const void *A,
                size_t lda, long long sa, const void *B, size_t ldb, long long sb, float beta, void *C, size_t ldc,
                long long sc, int batch) {
    if (ab == ACT_F32 && ct == ACT_F32)
        return gpu_gemm(g, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
    if (!g->blas_lp) return gpu_fail(g, "gemm", "no bf16/fp16 product handle (the network is float32)");
    if (too_big(g, M, "gemm") || too_big(g, N, "gemm") || too_big(g, K, "gemm") || too_big(g, lda, "gemm") ||
        too_big(g, ldb, "gemm") || too_big(g, ldc, "gemm"))
        return -1;
    if (M == 0 || N == 0) return 0;
    const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cudaDataType_t tab = cuda_type(ab), tc = cuda_type(ct);
    if (batch == 1)
        GPU_BLAS(g, cublasGemmEx(g->blas_lp, ob, oa, (int)N, (int)M, (int)K, &alpha, B, tab, (int)ldb, A, tab, (int)lda,
                                 &beta, C, tc, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    else
        GPU_BLAS(g, cublasGemmStridedBatchedEx(g->blas_lp, ob, oa, (int)N, (int)M, (int)K, &alpha, B, tab, (int)ldb, sb, A,
                                               tab, (int)lda, sa, &beta, C, tc, (int)ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                               CUBLAS_GEMM_DEFAULT));
    return 0;
}

