/* cublas_emu.cpp: the cuBLAS calls of the project on host memory, for the emulated tests (README.md here):
 * column-major C = alpha op(A) op(B) + beta C through OpenBLAS, after cuBLAS's own argument checks;
 * bf16/fp16 operands widened to float32, the result rounded to C's type. Queued on the handle's stream
 * (recorded while it captures a graph, alpha and beta read at the call, as cuBLAS reads host scalars). */
#include <cblas.h>
#include <cublasLt.h>
#include <cublas_v2.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_emu.h"

struct cublasContext {
    cudaStream_t stream;
};

namespace {
bool bad_args(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc) {
    auto at_least = [](int ld, int rows) { return ld >= (rows > 1 ? rows : 1); };
    return m < 0 || n < 0 || k < 0 || !at_least(lda, ta == CUBLAS_OP_N ? m : k) ||
           !at_least(ldb, tb == CUBLAS_OP_N ? k : n) || !at_least(ldc, m);
}
CBLAS_TRANSPOSE op(cublasOperation_t t) { return t == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }
size_t type_size(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }
bool supported(cudaDataType_t t) { return t == CUDA_R_32F || t == CUDA_R_16BF || t == CUDA_R_16F; }

EmuType emu(cudaDataType_t t) { return t == CUDA_R_32F ? EMU_F32 : t == CUDA_R_16BF ? EMU_BF16 : EMU_F16; }
float load(cudaDataType_t t, const void *p, size_t i) { return emu_load(emu(t), p, i); }
void store(cudaDataType_t t, void *p, size_t i, float v) { emu_store(emu(t), p, i, v); }
/* f = a column-major rows x cols matrix with leading dimension ld, as float32 (only its elements are read;
 * float32 columns by memcpy, which AddressSanitizer checks as it would the loads). f's block is reused from
 * call to call: a fresh one cost page faults at every product. */
void widen(std::vector<float> &f, cudaDataType_t t, const void *p, int rows, int cols, int ld) {
    f.resize((size_t)ld * (cols > 0 ? cols : 0));
    for (int c = 0; c < cols; c++)
        if (t == CUDA_R_32F) memcpy(&f[(size_t)c * ld], (const float *)p + (size_t)c * ld, (size_t)rows * sizeof(float));
        else for (int r = 0; r < rows; r++) f[(size_t)c * ld + r] = load(t, p, (size_t)c * ld + r);
}
/* The operands of the product being computed, as float32 (one runs at a time: emu_enqueue). */
struct GemmScratch {
    std::vector<float> a, b, c;
};
GemmScratch gemm_scratch;

void gemm_now(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
              cudaDataType_t at, int lda, const void *B, cudaDataType_t bt, int ldb, float beta, void *C,
              cudaDataType_t ct, int ldc) {
    if (m == 0 || n == 0) return;
    GemmScratch &z = gemm_scratch;
    widen(z.a, at, A, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda);
    widen(z.b, bt, B, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb);
    if (beta != 0) widen(z.c, ct, C, m, n, ldc);
    else z.c.assign((size_t)ldc * n, 0.0f); /* beta = 0: C is not read */
    if (k == 0)
        for (float &v : z.c) v *= beta;
    else
        cblas_sgemm(CblasColMajor, op(ta), op(tb), m, n, k, alpha, z.a.data(), lda, z.b.data(), ldb, beta, z.c.data(), ldc);
    for (int j = 0; j < n; j++)
        if (ct == CUDA_R_32F) memcpy((float *)C + (size_t)j * ldc, &z.c[(size_t)j * ldc], (size_t)m * sizeof(float));
        else for (int i = 0; i < m; i++) store(ct, C, (size_t)j * ldc + i, z.c[(size_t)j * ldc + i]);
}
cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                            const void *A, cudaDataType_t at, int lda, long long sa, const void *B, cudaDataType_t bt,
                            int ldb, long long sb, float beta, void *C, cudaDataType_t ct, int ldc, long long sc,
                            int batch) {
    if (!h || batch < 0 || bad_args(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    if (!supported(at) || !supported(ct) || at != bt) return CUBLAS_STATUS_NOT_SUPPORTED;
    emu_enqueue(h->stream, [=]() {
        for (int i = 0; i < batch; i++)
            gemm_now(ta, tb, m, n, k, alpha, (const char *)A + i * sa * type_size(at), at, lda,
                     (const char *)B + i * sb * type_size(bt), bt, ldb, beta, (char *)C + i * sc * type_size(ct), ct, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}
} // namespace

extern "C" {
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = (cublasHandle_t)calloc(1, sizeof(cublasContext));
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "success" : "cuBLAS error (emulation)";
}
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = (cublasLtHandle_t)malloc(1);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
    return gemm_batched(h, ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F, ldb, 0, *beta, C, CUDA_R_32F,
                        ldc, 0, 1);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda, long long sa, const float *B, int ldb,
                                         long long sb, const float *beta, float *C, int ldc, long long sc, int batch) {
    return gemm_batched(h, ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, sa, B, CUDA_R_32F, ldb, sb, *beta, C, CUDA_R_32F,
                        ldc, sc, batch);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType_t at, int lda, long long sa,
                                          const void *B, cudaDataType_t bt, int ldb, long long sb, const void *beta,
                                          void *C, cudaDataType_t ct, int ldc, long long sc, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t) {
    if (compute != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm_batched(h, ta, tb, m, n, k, *(const float *)alpha, A, at, lda, sa, B, bt, ldb, sb, *(const float *)beta, C,
                        ct, ldc, sc, batch);
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B, cudaDataType_t bt,
                            int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo) {
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1,
                                      compute, algo);
}
}
