/* attention.c: cosine self-attention forward and backward; one (image, head) per task, its products as
 * small register-blocked matrix products over per-thread scratch. */
#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mp_math.h"
#include "mp_ops.h"

/* One 4 x nc block (nc <= 16) of C = A B: C[r, c] = sum over k of A[r ars + k aks] B[k ldb + c]. Rows past
 * mr repeat row 0 and are not stored. Inlined with nc = 16 the accumulators stay in vector registers. */
static inline void mm_block(int mr, int nc, int K, const float *A, int ars, int aks, const float *B, int ldb, float *C,
                            int ldc) {
    float s[4][16] = {{0}};
    const float *a0 = A, *a1 = A + (mr > 1 ? ars : 0);
    const float *a2 = A + (mr > 2 ? 2 * ars : 0), *a3 = A + (mr > 3 ? 3 * ars : 0);
    for (int k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb;
        const size_t ka = (size_t)k * aks;
        const float x0 = a0[ka], x1 = a1[ka], x2 = a2[ka], x3 = a3[ka];
        for (int c = 0; c < nc; c++) {
            s[0][c] += x0 * b[c];
            s[1][c] += x1 * b[c];
            s[2][c] += x2 * b[c];
            s[3][c] += x3 * b[c];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nc; c++) C[(size_t)r * ldc + c] = s[r][c];
}

/* C[M, N] = A B with A[m, k] at A[m ars + k aks] (ars = lda, aks = 1 for A; ars = 1, aks = lda for A^T). */
static void mm(int M, int N, int K, const float *A, int ars, int aks, const float *B, int ldb, float *C, int ldc) {
    for (int i = 0; i < M; i += 4) {
        const int mr = M - i < 4 ? M - i : 4;
        const float *Ai = A + (size_t)i * ars;
        for (int j = 0; j < N; j += 16) {
            if (N - j >= 16) mm_block(mr, 16, K, Ai, ars, aks, B + j, ldb, C + (size_t)i * ldc + j, ldc);
            else mm_block(mr, N - j, K, Ai, ars, aks, B + j, ldb, C + (size_t)i * ldc + j, ldc);
        }
    }
}

/* kT[c, j] = k[j, c] * scale. */
static void transpose(float *kT, const float *k, int HW, int cph, float scale) {
    for (int j = 0; j < HW; j++)
        for (int c = 0; c < cph; c++) kT[(size_t)c * HW + j] = k[(size_t)j * cph + c] * scale;
}

int attention_forward(float *y, float *qkvn, float *norm, float *attn, const float *qkv, int N, int HW, int heads,
                      int cph) {
    const int C = heads * cph;
    const float scale = 1.0f / sqrtf((float)cph);
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *kT = malloc((size_t)cph * HW * sizeof(float));
        failed = !kT;
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int h = 0; h < heads; h++) {
                if (!kT) continue;
                size_t nh = (size_t)n * heads + h;
                float *qn = qkvn + nh * 3 * HW * cph, *kn = qn + (size_t)HW * cph, *vn = kn + (size_t)HW * cph;
                float *nrm = norm + nh * 3 * HW;
                /* Gather and normalise q, k, v: element (p, c, s) sits at qkv[n, p, (h*cph + c)*3 + s]. */
                for (int p = 0; p < HW; p++) {
                    const float *src = qkv + ((size_t)n * HW + p) * 3 * C + (size_t)h * cph * 3;
                    for (int s = 0; s < 3; s++) {
                        float *dst = qn + ((size_t)s * HW + p) * cph;
                        for (int c = 0; c < cph; c++) dst[c] = src[3 * c + s];
                    }
                }
                for (int r = 0; r < 3 * HW; r++) {
                    float *row = qn + (size_t)r * cph, ss = 0;
                    for (int c = 0; c < cph; c++) ss += row[c] * row[c];
                    const float nr = MP_EPS + sqrtf(ss) / sqrtf((float)cph);
                    nrm[r] = nr;
                    for (int c = 0; c < cph; c++) row[c] = row[c] / nr;
                }
                /* S = q k^T / sqrt(cph), softmax over keys, out = A v. */
                float *A = attn + nh * HW * HW;
                transpose(kT, kn, HW, cph, scale);
                mm(HW, HW, cph, qn, cph, 1, kT, HW, A, HW);
                for (int i = 0; i < HW; i++) {
                    float *Ai = A + (size_t)i * HW, mx = -INFINITY, sum = 0;
                    for (int j = 0; j < HW; j++) mx = Ai[j] > mx ? Ai[j] : mx;
#pragma omp simd reduction(+ : sum)
                    for (int j = 0; j < HW; j++) sum += (Ai[j] = fast_exp(Ai[j] - mx));
                    const float inv = 1.0f / sum;
                    for (int j = 0; j < HW; j++) Ai[j] *= inv;
                }
                mm(HW, cph, HW, A, HW, 1, vn, cph, y + (size_t)n * HW * C + (size_t)h * cph, C);
            }
        free(kT);
    }
    return failed ? -1 : 0;
}

int attention_backward(float *dqkv, const float *dy, const float *qkv, const float *qkvn, const float *norm,
                       const float *attn, int N, int HW, int heads, int cph, int acc) {
    const int C = heads * cph;
    const float scale = 1.0f / sqrtf((float)cph), inv_sqrt_c = 1.0f / sqrtf((float)cph);
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        /* Per thread: dS[HW, HW], dq, dk, dv [HW, cph] each, v^T [cph, HW]. */
        float *buf = malloc(((size_t)HW * HW + 4 * (size_t)HW * cph) * sizeof(float));
        failed = !buf;
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int h = 0; h < heads; h++) {
                if (!buf) continue;
                size_t nh = (size_t)n * heads + h;
                const float *qn = qkvn + nh * 3 * HW * cph, *kn = qn + (size_t)HW * cph, *vn = kn + (size_t)HW * cph;
                const float *nrm = norm + nh * 3 * HW, *A = attn + nh * HW * HW;
                const float *dO = dy + (size_t)n * HW * C + (size_t)h * cph; /* rows of stride C */
                float *dS = buf, *dq = dS + (size_t)HW * HW, *dk = dq + (size_t)HW * cph, *dv = dk + (size_t)HW * cph;
                float *vT = dv + (size_t)HW * cph;
                /* dA = dO v^T, dv = A^T dO, dS = A (dA - rowsum(dA A)) / sqrt(cph). */
                transpose(vT, vn, HW, cph, 1.0f);
                mm(HW, HW, cph, dO, C, 1, vT, HW, dS, HW);
                mm(HW, cph, HW, A, 1, HW, dO, C, dv, cph);
                for (int i = 0; i < HW; i++) {
                    const float *Ai = A + (size_t)i * HW;
                    float *dSi = dS + (size_t)i * HW, rs = 0;
                    for (int j = 0; j < HW; j++) rs += dSi[j] * Ai[j];
#pragma omp simd
                    for (int j = 0; j < HW; j++) dSi[j] = Ai[j] * (dSi[j] - rs) * scale;
                }
                /* S = q k^T scale: dq = dS k, dk = dS^T q (scale folded into dS). */
                mm(HW, cph, HW, dS, HW, 1, kn, cph, dq, cph);
                mm(HW, cph, HW, dS, 1, HW, qn, cph, dk, cph);
                /* Back through the normalisation into the interleaved qkv layout. */
                for (int s = 0; s < 3; s++) {
                    const float *g = dq + (size_t)s * HW * cph;
                    for (int p = 0; p < HW; p++) {
                        const float *src = qkv + ((size_t)n * HW + p) * 3 * C + (size_t)h * cph * 3 + s;
                        float *dst = dqkv + ((size_t)n * HW + p) * 3 * C + (size_t)h * cph * 3 + s;
                        const float *gp = g + (size_t)p * cph;
                        float nr = nrm[(size_t)s * HW + p], len = (nr - MP_EPS) / inv_sqrt_c;
                        float dot = 0;
                        for (int c = 0; c < cph; c++) dot += gp[c] * src[3 * c];
                        float a = 1.0f / nr, b = len > 0 ? dot * inv_sqrt_c / (nr * nr * len) : 0.0f;
                        for (int c = 0; c < cph; c++) GRAD_ACC(acc, dst[3 * c], gp[c] * a - src[3 * c] * b);
                    }
                }
            }
        free(buf);
    }
    return failed ? -1 : 0;
}
