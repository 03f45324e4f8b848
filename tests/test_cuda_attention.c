/* test_cuda_attention.c: the CUDA network's cosine self-attention (attention_cuda.h) against the CPU's
 * (attention.h), forward and backward, on odd shapes (12, 64, 9 and 4 pixels; 1, 2 and 3 heads of 8, 16, 6
 * and 200 channels): float32 within
 * 2e-5 of the largest value (another summation order), bf16 (scores, weights and output stored in bf16,
 * products on tensor cores, one batched call over all image-head pairs through a heads-major copy) within
 * 3e-2 relative L2 error of the CPU's on the same bf16 inputs: a layout or stride fault gives errors of
 * order 1. Exits 77 (skipped, with the reason) without a CUDA device. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attention_cuda.h"
#include "mp_math.h"
#include "test_util.h"

static cudaStream_t g_stream;
#define CUDA_BUF_STREAM g_stream
#include "cuda_buf.h"

static gpu_ctx g_ctx[2]; /* float32, bf16 */

static void *dev(size_t bytes) {
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, bytes + 4), cudaSuccess);
    return p;
}

/* ||a - b|| / ||a||, b read back from device bf16. */
static double rel_l2_bf16(const float *a, const void *d, size_t n) {
    uint16_t *bits = malloc((n + 1) * sizeof *bits);
    assert_int_equal(cudaStreamSynchronize(g_stream), cudaSuccess);
    assert_int_equal(cudaMemcpy(bits, d, n * sizeof *bits, cudaMemcpyDeviceToHost), cudaSuccess);
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        const double x = a[i], y = bf16_value(bits[i]);
        e += (x - y) * (x - y), s += x * x;
    }
    free(bits);
    return sqrt(e / (s > 0 ? s : 1));
}

/* The bf16 q/k/v normalisation on its own, tightly: the forward's qkvn (bf16) and norms against the CPU's,
 * and dqkv against the normalisation's gradient (attention.c's loop) of the GPU's own dqkvn (read back from
 * the bf16 backward): within one bf16 unit in the last place (the norms summed in another order). */
static void check_qkv_norm_lp(int N, int HW, int heads, int cph, const float *qkv, const float *qkvn, const float *norm,
                              void *qkvn_d, const float *norm_d, void *dqkvn_d, void *dqkv_d) {
    const size_t C = (size_t)heads * cph, nqkv = (size_t)N * HW * 3 * C, nnorm = (size_t)N * heads * 3 * HW;
    lbuf qn = {NULL, qkvn_d, nqkv}, dq = {NULL, dqkv_d, nqkv}, g = {malloc(nqkv * sizeof(float)), dqkvn_d, nqkv};
    buf nr = {malloc(nnorm * sizeof(float)), (float *)norm_d, nnorm};
    lsame("bf16 q/k/v normalised", &qn, qkvn, 1, 0);
    memcpy(nr.h, norm, nnorm * sizeof(float));
    same("bf16 q/k/v norms", &nr, 1e-5f * largest(norm, nnorm));
    lread(&g);
    float *want = malloc(nqkv * sizeof(float));
    const float inv_sqrt_c = 1.0f / sqrtf((float)cph);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < heads; h++)
            for (int s = 0; s < 3; s++)
                for (int p = 0; p < HW; p++) {
                    const size_t row = (((size_t)n * heads + h) * 3 + s) * HW + p;
                    const size_t at = ((size_t)n * HW + p) * 3 * C + (size_t)h * cph * 3 + s;
                    const float *gp = g.h + row * cph, *src = qkv + at, nrr = norm[row];
                    const float len = (nrr - MP_EPS) / inv_sqrt_c;
                    float dot = 0;
                    for (int c = 0; c < cph; c++) dot += gp[c] * src[3 * c];
                    const float a = 1.0f / nrr, b = len > 0 ? dot * inv_sqrt_c / (nrr * nrr * len) : 0.0f;
                    for (int c = 0; c < cph; c++) want[at + 3 * c] = gp[c] * a - src[3 * c] * b;
                }
    lsame("bf16 q/k/v normalisation's gradient", &dq, want, 1, 1e-5f * largest(want, nqkv));
    free(want), free(g.h), free(nr.h);
}

static void check(int N, int HW, int heads, int cph) {
    const size_t C = (size_t)heads * cph, P = (size_t)N * HW, nqkv = P * 3 * C, ny = P * C;
    const size_t nattn = (size_t)N * heads * HW * HW, nnorm = (size_t)N * heads * 3 * HW;
    lbuf qkv = lmake(nqkv, 1, 1), dy = lmake(ny, 2, 1);
    /* The CPU on the bf16 values. */
    float *y = malloc(ny * sizeof(float)), *qkvn = malloc(nqkv * sizeof(float)), *norm = malloc(nnorm * sizeof(float));
    float *attn = malloc(nattn * sizeof(float)), *dqkv = malloc(nqkv * sizeof(float));
    assert_int_equal(attention_forward(y, qkvn, norm, attn, qkv.h, N, HW, heads, cph), 0);
    assert_int_equal(attention_backward(dqkv, dy.h, qkv.h, qkvn, norm, attn, N, HW, heads, cph, 0), 0);
    /* float32 on the GPU */
    buf qkv32 = make(nqkv, 3, 0), dy32 = make(ny, 4, 0), y32 = make(ny, 5, 0), dq32 = make(nqkv, 6, 0);
    memcpy(qkv32.h, qkv.h, nqkv * sizeof(float)), memcpy(dy32.h, dy.h, ny * sizeof(float));
    cudaMemcpy(qkv32.d, qkv32.h, nqkv * sizeof(float), cudaMemcpyHostToDevice);
    cudaMemcpy(dy32.d, dy32.h, ny * sizeof(float), cudaMemcpyHostToDevice);
    float *qkvn_d = dev(nqkv * 4), *norm_d = dev(nnorm * 4), *attn_d = dev(nattn * 4), *dS = dev(nattn * 4);
    float *dqkvn = dev(nqkv * 4);
    assert_int_equal(gpu_attention_forward(&g_ctx[0], y32.d, qkvn_d, norm_d, attn_d, qkv32.d, N, HW, heads, cph, NULL), 0);
    assert_int_equal(gpu_attention_backward(&g_ctx[0], dq32.d, dy32.d, qkv32.d, qkvn_d, norm_d, attn_d, N, HW, heads, cph,
                                            0, dS, dqkvn, NULL),
                     0);
    memcpy(y32.h, y, ny * sizeof(float)), memcpy(dq32.h, dqkv, nqkv * sizeof(float));
    same("attention forward, float32", &y32, 2e-5f * largest(y, ny));
    same("attention backward, float32", &dq32, 2e-5f * largest(dqkv, nqkv));
    /* bf16 on the GPU (buffers of the float32 run reused: half their size is needed) */
    void *yb = dev(ny * 2), *dqb = dev(nqkv * 2), *tmp = dev(ny * 2);
    assert_int_equal(gpu_attention_forward(&g_ctx[1], yb, qkvn_d, norm_d, attn_d, qkv.d, N, HW, heads, cph, tmp), 0);
    assert_int_equal(gpu_attention_backward(&g_ctx[1], dqb, dy.d, qkv.d, qkvn_d, norm_d, attn_d, N, HW, heads, cph, 0, dS,
                                            dqkvn, tmp),
                     0);
    check_qkv_norm_lp(N, HW, heads, cph, qkv.h, qkvn, norm, qkvn_d, norm_d, dqkvn, dqb);
    const double ey = rel_l2_bf16(y, yb, ny), eq = rel_l2_bf16(dqkv, dqb, nqkv);
    printf("bf16 attention %dx%d pixels, %d heads of %d: forward %.2e, backward %.2e (bound 3e-2)\n", N, HW, heads, cph,
           ey, eq);
    assert_true(ey <= 3e-2 && eq <= 3e-2);
    void *bufs[] = {qkvn_d, norm_d, attn_d, dS, dqkvn, yb, dqb, tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
    drop(&qkv32), drop(&dy32), drop(&y32), drop(&dq32), ldrop(&qkv), ldrop(&dy);
    free(y), free(qkvn), free(norm), free(attn), free(dqkv);
}

static void test_attention(void **state) {
    (void)state;
    check(2, 12, 2, 8);
    check(3, 64, 3, 16);
    check(2, 9, 2, 6); /* channels per head not a multiple of 8: the heads-major copy element by element */
    check(1, 4, 1, 200); /* a slab of 600 channels: too large to stage, its rows gathered and scattered */
}

int main(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        printf("SKIP: CUDA attention: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 77;
    }
    if (cudaStreamCreate(&g_stream) != cudaSuccess) return 1;
    /* The contexts the network would take from the backend: one stream, a pedantic float32 handle, and for
     * bf16 the network's own default-math handle. */
    for (int k = 0; k < 2; k++) {
        gpu_ctx *g = &g_ctx[k];
        memset(g, 0, sizeof *g);
        g->stream = g_stream;
        g->act = k ? ACT_BF16 : ACT_F32;
        if (cublasCreate(&g->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(g->blas, g_stream) ||
            cublasSetMathMode(g->blas, CUBLAS_PEDANTIC_MATH))
            return 1;
        if (k && (cublasCreate(&g->blas_lp) != CUBLAS_STATUS_SUCCESS || cublasSetStream(g->blas_lp, g_stream)))
            return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_attention)};
    test_filter_from_env();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int k = 0; k < 2; k++) {
        cublasDestroy(g_ctx[k].blas);
        if (g_ctx[k].blas_lp) cublasDestroy(g_ctx[k].blas_lp);
    }
    cudaStreamDestroy(g_stream);
    return rc;
}
