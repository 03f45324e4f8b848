/* dinov2_cpu.c: DINOv2's vision transformer on the CPU (dinov2_cpu.h): products by the deterministic GEMM
 * kernels (gemm.h), rows in parallel (OpenMP). */
#include "dinov2_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

#define LN_EPS 1e-6

static float *falloc(size_t n) { return aligned_alloc(64, (n + 15) / 16 * 64); }

int dino_work_alloc(dino_work *w, const dino_vit *v, int batch) {
    memset(w, 0, sizeof *w);
    w->batch = batch;
    const size_t D = (size_t)v->s.dim, T = (size_t)v->tokens * batch, pp = 3 * (size_t)v->s.patch * v->s.patch;
    const int hd = v->s.dim / v->s.heads;
    const int shapes[][2] = {{v->s.dim, (int)pp}, {3 * v->s.dim, v->s.dim}, {v->tokens, hd}, {hd, v->tokens},
                             {v->s.dim, v->s.dim}, {v->hidden, v->s.dim}, {v->s.dim, v->hidden}};
    size_t pack = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const size_t p = gemm_pack_floats(shapes[i][0], shapes[i][1]);
        if (p > pack) pack = p;
    }
    w->x = falloc(T * D), w->h = falloc(T * D), w->qkv = falloc(T * 3 * D), w->att = falloc(T * D);
    w->s = falloc((size_t)v->tokens * v->tokens), w->mlp = falloc(T * (size_t)v->hidden), w->patches = falloc(T * pp);
    w->pack = falloc(pack);
    if (w->x && w->h && w->qkv && w->att && w->s && w->mlp && w->patches && w->pack) return 0;
    dino_work_free(w);
    return -1;
}

void dino_work_free(dino_work *w) {
    free(w->x), free(w->h), free(w->qkv), free(w->att), free(w->s), free(w->mlp), free(w->patches), free(w->pack);
    memset(w, 0, sizeof *w);
}

/* y[t] = LayerNorm(x[t]) weight + bias for rows t of D (moments in double). */
static void layer_norm(const float *x, int rows, int D, const float *weight, const float *bias, float *y) {
#pragma omp parallel for schedule(static) if (rows > 8)
    for (int t = 0; t < rows; t++) {
        const float *r = x + (size_t)t * D;
        double mean = 0, var = 0;
        for (int i = 0; i < D; i++) mean += r[i];
        mean /= D;
        for (int i = 0; i < D; i++) var += (r[i] - mean) * (r[i] - mean);
        const double inv = 1.0 / sqrt(var / D + LN_EPS);
        for (int i = 0; i < D; i++) y[(size_t)t * D + i] = (float)((r[i] - mean) * inv) * weight[i] + bias[i];
    }
}

/* y[rows, N] = x[rows, K] W[N, K]^T + b. */
static void linear(const float *x, int rows, int K, const float *W, const float *b, int N, float *y, float *pack) {
    gemm_nt((size_t)rows, N, K, x, K, W, K, y, N, 0, pack);
#pragma omp parallel for schedule(static) if (rows > 8)
    for (int t = 0; t < rows; t++)
        for (int n = 0; n < N; n++) y[(size_t)t * N + n] += b[n];
}

/* The rows of s[T, T] scaled by `scale`, then each replaced by its softmax. */
static void softmax_rows(float *s, int T, float scale) {
#pragma omp parallel for schedule(static) if (T > 8)
    for (int t = 0; t < T; t++) {
        float *r = s + (size_t)t * T, m = -INFINITY;
        for (int u = 0; u < T; u++) r[u] *= scale, m = r[u] > m ? r[u] : m;
        double sum = 0;
        for (int u = 0; u < T; u++) r[u] = expf(r[u] - m), sum += r[u];
        const float inv = (float)(1.0 / sum);
        for (int u = 0; u < T; u++) r[u] *= inv;
    }
}

/* The image's g x g patches as rows of 3 p p values (channel, then row, then column: the layout of the
 * convolution's weight [D, 3, p, p]). */
static void patch_rows(const dino_vit *v, const float *img, float *P) {
    const int p = v->s.patch, g = v->grid, R = v->s.res, K = 3 * p * p;
#pragma omp parallel for schedule(static)
    for (int q = 0; q < g * g; q++)
        for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < p; ky++)
                memcpy(P + (size_t)q * K + (size_t)(c * p + ky) * p,
                       img + ((size_t)c * R + (size_t)(q / g * p + ky)) * R + (size_t)(q % g) * p, (size_t)p * sizeof(float));
}

/* x[rows, D] += gamma * y (LayerScale). */
static void scaled_add(float *x, const float *y, const float *gamma, size_t rows, int D) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < rows; t++)
        for (int i = 0; i < D; i++) x[t * D + i] += gamma[i] * y[t * D + i];
}

void dino_forward(const dino_vit *v, const float *arena, const float *img, int n, float *out, dino_work *w) {
    const int D = v->s.dim, T = v->tokens, H = v->hidden, heads = v->s.heads, hd = D / heads, R = v->s.res;
    const int K = 3 * v->s.patch * v->s.patch, rows = n * T;
    const float *A = arena, *pos = A + v->pos;
    /* tokens of image b at rows b T..: the class token, then the patches (convolution + bias), plus the
     * position embedding */
    for (int b = 0; b < n; b++) patch_rows(v, img + (size_t)b * 3 * R * R, w->patches + (size_t)b * (T - 1) * K);
    linear(w->patches, n * (T - 1), K, A + v->pw, A + v->pb, D, w->h, w->pack);
    for (int b = 0; b < n; b++) {
        float *x = w->x + (size_t)b * T * D;
        memcpy(x, A + v->cls, (size_t)D * sizeof(float));
        memcpy(x + D, w->h + (size_t)b * (T - 1) * D, (size_t)(T - 1) * D * sizeof(float));
        for (size_t i = 0; i < (size_t)T * D; i++) x[i] += pos[i];
    }
    const float scale = 1.0f / sqrtf((float)hd);
    for (int l = 0; l < v->s.depth; l++) {
        const dino_block *bk = &v->blk[l];
        layer_norm(w->x, rows, D, A + bk->n1w, A + bk->n1b, w->h);
        linear(w->h, rows, D, A + bk->qkvw, A + bk->qkvb, 3 * D, w->qkv, w->pack);
        for (int b = 0; b < n; b++)
            for (int h = 0; h < heads; h++) { /* q, k, v of head h: columns h hd.. of the three thirds of qkv */
                const float *q = w->qkv + (size_t)b * T * 3 * D + (size_t)h * hd, *k = q + D, *val = q + 2 * D;
                gemm_nt((size_t)T, T, hd, q, 3 * D, k, 3 * D, w->s, T, 0, w->pack);
                softmax_rows(w->s, T, scale);
                gemm_nn((size_t)T, hd, T, w->s, T, val, 3 * D, w->att + (size_t)b * T * D + (size_t)h * hd, D, 0, w->pack);
            }
        linear(w->att, rows, D, A + bk->projw, A + bk->projb, D, w->h, w->pack);
        scaled_add(w->x, w->h, A + bk->ls1, (size_t)rows, D);
        layer_norm(w->x, rows, D, A + bk->n2w, A + bk->n2b, w->h);
        linear(w->h, rows, D, A + bk->fc1w, A + bk->fc1b, H, w->mlp, w->pack);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)rows * H; i++) {
            const float x = w->mlp[i];
            w->mlp[i] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
        }
        linear(w->mlp, rows, H, A + bk->fc2w, A + bk->fc2b, D, w->h, w->pack);
        scaled_add(w->x, w->h, A + bk->ls2, (size_t)rows, D);
    }
    for (int b = 0; b < n; b++) /* the class tokens alone */
        layer_norm(w->x + (size_t)b * T * D, 1, D, A + v->nw, A + v->nb, out + (size_t)b * D);
}
