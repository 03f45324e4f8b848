/* vae_cpu.c: the CPU primitives of the SD VAE graph (vae_cpu.h). Every output element is computed by one
 * fixed sequence of operations (OpenMP over rows or groups; the GEMM kernels are deterministic the same way),
 * so results do not depend on the thread count. */
#include "vae_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

#define BAND_ROWS 8 /* output rows per im2col band of the downsampling convolution */

static float *ptr(const vae_cpu *c, vae_view v) { return c->slot[v.slot]; }

void vae_cpu_init(vae_cpu *c, const vae_graph *g, const float *arena) {
    memset(c, 0, sizeof *c);
    c->g = g, c->arena = arena;
}

void vae_cpu_free(vae_cpu *c) {
    for (int s = 0; s < VAE_SLOTS; s++) free(c->slot[s]);
    free(c->col), free(c->pack);
    memset(c, 0, sizeof *c);
}

static int grow(float **p, size_t *cap, size_t want) {
    if (want <= *cap) return 0;
    free(*p);
    *p = aligned_alloc(64, (want + 15) / 16 * 64);
    *cap = *p ? want : 0;
    return *p ? 0 : -1;
}

/* Buffers for one pass at this size (from the planning walk). */
static int reserve(vae_cpu *c, const size_t slot_floats[VAE_SLOTS], int W) {
    const vae_graph *g = c->g;
    size_t pack = 0, col = 0;
    for (int i = 0; i < g->nconv; i++) {
        const vae_conv *k = &g->conv[i];
        const int taps = k->kind == VAE_CONV_1x1 ? 1 : 9;
        size_t p = gemm_pack_floats(k->cout, taps * k->cin);
        if (p > pack) pack = p;
        if (k->kind == VAE_CONV_DOWN) {
            size_t b = (size_t)BAND_ROWS * (W / 2 + 1) * 9 * k->cin;
            if (b > col) col = b;
        }
    }
    /* attention: scores [P, P] = q k^T (N = P, K = C) and out = S v (N = C, K = P), P the positions */
    const size_t P = (size_t)sqrt((double)slot_floats[VAE_SLOT_S]) + 1;
    const int C = g->hp.ch[g->hp.levels - 1];
    size_t p1 = gemm_pack_floats((int)P, C), p2 = gemm_pack_floats(C, (int)P);
    if (p1 > pack) pack = p1;
    if (p2 > pack) pack = p2;
    for (int s = 0; s < VAE_SLOTS; s++)
        if (grow(&c->slot[s], &c->cap[s], slot_floats[s] ? slot_floats[s] : 1)) return -1;
    return grow(&c->col, &c->col_cap, col ? col : 1) || grow(&c->pack, &c->pack_cap, pack) ? -1 : 0;
}

static int cpu_load(void *ctx, const float *x, vae_view out) {
    float *y = ptr(ctx, out);
    const size_t P = (size_t)out.H * out.W;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < P; p++)
        for (int ch = 0; ch < out.C; ch++) y[p * out.C + ch] = x[(size_t)ch * P + p];
    return 0;
}

static int cpu_store(void *ctx, vae_view in, float *y) {
    const float *x = ptr(ctx, in);
    const size_t P = (size_t)in.H * in.W;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < in.C; ch++)
        for (size_t p = 0; p < P; p++) y[(size_t)ch * P + p] = x[p * in.C + ch];
    return 0;
}

static int cpu_store_moments(void *ctx, vae_view in, float *y) {
    const float *x = ptr(ctx, in);
    const size_t P = (size_t)in.H * in.W;
    const int L = in.C / 2;
    for (int ch = 0; ch < in.C; ch++)
        for (size_t p = 0; p < P; p++) {
            float v = x[p * in.C + ch];
            if (ch >= L) {
                v = v < VAE_LOGVAR_MIN ? VAE_LOGVAR_MIN : v > VAE_LOGVAR_MAX ? VAE_LOGVAR_MAX : v;
                v = expf(0.5f * v);
            }
            y[(size_t)ch * P + p] = v;
        }
    return 0;
}

/* Rows [oy0, oy1) of the stride-2 convolution's im2col (zero padding at the bottom and right only). */
static void im2col_down(const float *x, int H, int W, int C, int oy0, int oy1, float *col) {
    const int Wo = W / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < Wo; ox++) {
            float *row = col + ((size_t)(oy - oy0) * Wo + ox) * 9 * C;
            for (int t = 0; t < 9; t++, row += C) {
                const int iy = 2 * oy + t / 3, ix = 2 * ox + t % 3;
                if (iy >= H || ix >= W) memset(row, 0, (size_t)C * sizeof(float));
                else memcpy(row, x + ((size_t)iy * W + ix) * C, (size_t)C * sizeof(float));
            }
        }
}

static int cpu_conv(void *ctx, const vae_conv *k, vae_view in, vae_view out) {
    vae_cpu *c = ctx;
    const float *x = ptr(c, in), *w = c->arena + k->w_off, *b = c->arena + k->b_off;
    float *y = ptr(c, out);
    if (k->kind == VAE_CONV_3x3) gemm_conv3x3(1, in.H, in.W, k->cin, x, k->cout, w, y, 0, c->pack);
    else if (k->kind == VAE_CONV_1x1) gemm_nt((size_t)in.H * in.W, k->cout, k->cin, x, k->cin, w, k->cin, y, k->cout, 0, c->pack);
    else
        for (int oy = 0; oy < out.H; oy += BAND_ROWS) {
            const int oy1 = oy + BAND_ROWS < out.H ? oy + BAND_ROWS : out.H;
            im2col_down(x, in.H, in.W, k->cin, oy, oy1, c->col);
            gemm_nt((size_t)(oy1 - oy) * out.W, k->cout, 9 * k->cin, c->col, 9 * k->cin, w, 9 * k->cin,
                    y + (size_t)oy * out.W * k->cout, k->cout, 0, c->pack);
        }
    const size_t P = (size_t)out.H * out.W;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < P; p++)
        for (int o = 0; o < k->cout; o++) y[p * k->cout + o] += b[o];
    return 0;
}

static int cpu_group_norm(void *ctx, const vae_norm *n, int silu, vae_view in, vae_view out) {
    vae_cpu *c = ctx;
    const float *x = ptr(c, in), *gamma = c->arena + n->w_off, *beta = c->arena + n->b_off;
    float *y = ptr(c, out);
    const size_t P = (size_t)in.H * in.W;
    const int cpg = in.C / n->groups;
#pragma omp parallel for schedule(static)
    for (int g = 0; g < n->groups; g++) {
        double s = 0, s2 = 0;
        for (size_t p = 0; p < P; p++)
            for (int k = 0; k < cpg; k++) s += x[p * in.C + g * cpg + k];
        const double cnt = (double)P * cpg, mean = s / cnt;
        for (size_t p = 0; p < P; p++)
            for (int k = 0; k < cpg; k++) {
                const double d = x[p * in.C + g * cpg + k] - mean;
                s2 += d * d;
            }
        const float m = (float)mean, rstd = (float)(1.0 / sqrt(s2 / cnt + VAE_GN_EPS));
        for (size_t p = 0; p < P; p++)
            for (int k = 0; k < cpg; k++) {
                const int ch = g * cpg + k;
                float v = (x[p * in.C + ch] - m) * rstd * gamma[ch] + beta[ch];
                if (silu) v = v / (1.0f + expf(-v));
                y[p * in.C + ch] = v;
            }
    }
    return 0;
}

static int cpu_add(void *ctx, vae_view a, vae_view b, vae_view out) {
    const float *x = ptr(ctx, a), *z = ptr(ctx, b);
    float *y = ptr(ctx, out);
    const size_t n = (size_t)a.H * a.W * a.C;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = x[i] + z[i];
    return 0;
}

static int cpu_upsample(void *ctx, vae_view in, vae_view out) {
    const float *x = ptr(ctx, in);
    float *y = ptr(ctx, out);
#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < out.H; oy++)
        for (int ox = 0; ox < out.W; ox++)
            memcpy(y + ((size_t)oy * out.W + ox) * in.C, x + ((size_t)(oy / 2) * in.W + ox / 2) * in.C,
                   (size_t)in.C * sizeof(float));
    return 0;
}

static int cpu_attend(void *ctx, vae_view q, vae_view k, vae_view v, vae_view s, vae_view out) {
    vae_cpu *c = ctx;
    const size_t P = (size_t)q.H * q.W;
    const int C = q.C;
    float *S = ptr(c, s);
    gemm_nt(P, (int)P, C, ptr(c, q), C, ptr(c, k), C, S, (int)P, 0, c->pack);
    const float scale = 1.0f / sqrtf((float)C);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < P; i++) {
        float *row = S + i * P, mx = -INFINITY;
        for (size_t j = 0; j < P; j++) mx = fmaxf(mx, row[j] * scale);
        double sum = 0;
        for (size_t j = 0; j < P; j++) sum += row[j] = expf(row[j] * scale - mx);
        const float inv = (float)(1.0 / sum);
        for (size_t j = 0; j < P; j++) row[j] *= inv;
    }
    gemm_nn(P, C, (int)P, S, (int)P, ptr(c, v), C, ptr(c, out), C, 0, c->pack);
    return 0;
}

static const vae_backend k_cpu = {NULL, cpu_load, cpu_store, cpu_conv, cpu_group_norm, cpu_add, cpu_upsample,
                                  cpu_attend, cpu_store_moments};

int vae_cpu_encode(vae_cpu *c, const float *image, int H, int W, float *moments) {
    size_t sf[VAE_SLOTS];
    vae_encode(c->g, NULL, NULL, H, W, NULL, sf);
    if (reserve(c, sf, W)) return -1;
    vae_backend be = k_cpu;
    be.ctx = c;
    return vae_encode(c->g, &be, image, H, W, moments, NULL);
}

int vae_cpu_decode(vae_cpu *c, const float *latents, int h, int w, float *image) {
    size_t sf[VAE_SLOTS];
    vae_decode(c->g, NULL, NULL, h, w, NULL, sf);
    const int d = 1 << (c->g->hp.levels - 1);
    if (reserve(c, sf, w * d)) return -1;
    vae_backend be = k_cpu;
    be.ctx = c;
    return vae_decode(c->g, &be, latents, h, w, image, NULL);
}
