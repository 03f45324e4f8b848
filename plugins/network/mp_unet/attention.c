/* attention.c: cosine self-attention forward and accumulating backward; one (image, head) per task. */
#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mp_math.h"
#include "mp_ops.h"

void attention_forward(float *y, float *qkvn, float *norm, float *attn, const float *qkv, int N, int HW, int heads,
                       int cph) {
    const int C = heads * cph;
    const float scale = 1.0f / sqrtf((float)cph);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int h = 0; h < heads; h++) {
            size_t nh = (size_t)n * heads + h;
            float *qn = qkvn + nh * 3 * HW * cph, *kn = qn + (size_t)HW * cph, *vn = kn + (size_t)HW * cph;
            float *nrm = norm + nh * 3 * HW;
            /* Gather and normalise q, k, v: element (p, c, s) sits at qkv[n, p, (h*cph + c)*3 + s]. */
            for (int s = 0; s < 3; s++) {
                float *dst = qn + (size_t)s * HW * cph;
                for (int p = 0; p < HW; p++) {
                    const float *src = qkv + ((size_t)n * HW + p) * 3 * C + (size_t)h * cph * 3 + s;
                    float ss = 0;
                    for (int c = 0; c < cph; c++) ss += src[3 * c] * src[3 * c];
                    float nr = MP_EPS + sqrtf(ss) / sqrtf((float)cph);
                    nrm[(size_t)s * HW + p] = nr;
                    for (int c = 0; c < cph; c++) dst[(size_t)p * cph + c] = src[3 * c] / nr;
                }
            }
            /* Scores row by row, vectorised over keys: k transposed to kT[c][j] (scaled), so
             * S[i, j] = sum over c of q[i, c] kT[c, j] runs along j. */
            float *A = attn + nh * HW * HW;
            float *kT = malloc((size_t)cph * HW * sizeof(float));
            if (!kT) continue; /* cannot happen in practice; the output row stays unset */
            for (int j = 0; j < HW; j++)
                for (int c = 0; c < cph; c++) kT[(size_t)c * HW + j] = kn[(size_t)j * cph + c] * scale;
            for (int i = 0; i < HW; i++) {
                float *Ai = A + (size_t)i * HW;
                const float *qi = qn + (size_t)i * cph;
                for (int j = 0; j < HW; j++) Ai[j] = 0.0f;
                for (int c = 0; c < cph; c++) {
                    const float qc = qi[c], *kc = kT + (size_t)c * HW;
#pragma omp simd
                    for (int j = 0; j < HW; j++) Ai[j] += qc * kc[j];
                }
                float mx = -INFINITY;
                for (int j = 0; j < HW; j++) mx = Ai[j] > mx ? Ai[j] : mx;
                float sum = 0;
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < HW; j++) sum += (Ai[j] = fast_exp(Ai[j] - mx));
                float inv = 1.0f / sum;
                float *out = y + ((size_t)n * HW + i) * C + (size_t)h * cph;
                for (int c = 0; c < cph; c++) out[c] = 0.0f;
                for (int j = 0; j < HW; j++) {
                    float w = (Ai[j] *= inv);
                    const float *vj = vn + (size_t)j * cph;
#pragma omp simd
                    for (int c = 0; c < cph; c++) out[c] += w * vj[c];
                }
            }
            free(kT);
        }
}

void attention_backward(float *dqkv, const float *dy, const float *qkv, const float *qkvn, const float *norm,
                        const float *attn, float *scratch, int N, int HW, int heads, int cph, int acc) {
    const int C = heads * cph;
    const float scale = 1.0f / sqrtf((float)cph);
    const float inv_sqrt_c = 1.0f / sqrtf((float)cph);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int h = 0; h < heads; h++) {
            size_t nh = (size_t)n * heads + h;
            const float *qn = qkvn + nh * 3 * HW * cph, *kn = qn + (size_t)HW * cph, *vn = kn + (size_t)HW * cph;
            const float *nrm = norm + nh * 3 * HW;
            const float *A = attn + nh * HW * HW;
            float *dS = scratch + nh * ((size_t)HW * HW + 3 * (size_t)HW * cph);
            float *dq = dS + (size_t)HW * HW, *dk = dq + (size_t)HW * cph, *dv = dk + (size_t)HW * cph;
            memset(dq, 0, 3 * (size_t)HW * cph * sizeof(float));
            /* dA = dO v^T (vectorised over keys with v transposed), dv = A^T dO,
             * dS = A (dA - rowsum(dA A)). */
            float *vT = malloc((size_t)cph * HW * sizeof(float));
            if (!vT) continue; /* cannot happen in practice */
            for (int j = 0; j < HW; j++)
                for (int c = 0; c < cph; c++) vT[(size_t)c * HW + j] = vn[(size_t)j * cph + c];
            for (int i = 0; i < HW; i++) {
                const float *dOi = dy + ((size_t)n * HW + i) * C + (size_t)h * cph;
                const float *Ai = A + (size_t)i * HW;
                float *dSi = dS + (size_t)i * HW;
                for (int j = 0; j < HW; j++) dSi[j] = 0.0f;
                for (int c = 0; c < cph; c++) {
                    const float g = dOi[c], *vc = vT + (size_t)c * HW;
#pragma omp simd
                    for (int j = 0; j < HW; j++) dSi[j] += g * vc[j];
                }
                for (int j = 0; j < HW; j++) {
                    float *dvj = dv + (size_t)j * cph;
                    const float a = Ai[j];
#pragma omp simd
                    for (int c = 0; c < cph; c++) dvj[c] += a * dOi[c];
                }
                float rs = 0;
                for (int j = 0; j < HW; j++) rs += dSi[j] * Ai[j];
#pragma omp simd
                for (int j = 0; j < HW; j++) dSi[j] = Ai[j] * (dSi[j] - rs) * scale;
            }
            free(vT);
            /* S = q k^T * scale: dq = dS k, dk = dS^T q. */
            for (int i = 0; i < HW; i++) {
                const float *dSi = dS + (size_t)i * HW;
                const float *qi = qn + (size_t)i * cph;
                float *dqi = dq + (size_t)i * cph;
                for (int j = 0; j < HW; j++) {
                    const float *kj = kn + (size_t)j * cph;
                    float *dkj = dk + (size_t)j * cph;
                    float g = dSi[j];
                    for (int c = 0; c < cph; c++) {
                        dqi[c] += g * kj[c];
                        dkj[c] += g * qi[c];
                    }
                }
            }
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
}
