/* inception_cpu.c: the CPU primitives of the FID Inception-v3 graph (inception_cpu.h). Each primitive
 * computes every output element by one fixed sequence of operations, so features do not depend on the
 * batch or the thread count (OpenMP over rows; the GEMM kernels are deterministic the same way). */
#include "inception_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

static float *view_ptr(const incep_cpu *c, incep_view v) { return c->slot[v.slot] + v.c0; }

int incep_cpu_init(incep_cpu *c, const incep_graph *g, const float *w, const float *ab, int max_batch) {
    memset(c, 0, sizeof *c);
    c->g = g, c->w = w, c->ab = ab, c->max_batch = max_batch;
    size_t pack = 0;
    for (int i = 0; i < g->nconv; i++) {
        const incep_conv *k = &g->conv[i];
        const int K = k->kh * k->kw * k->cin;
        size_t p = gemm_pack_floats(k->cout, K), col = (size_t)k->Ho * k->Wo * K;
        if (p > pack) pack = p;
        if (k->kh * k->kw > 1 && col > c->col_floats) c->col_floats = col;
    }
    int bad = !(c->pack = aligned_alloc(64, (pack + 15) / 16 * 64)) ||
              !(c->col = aligned_alloc(64, (c->col_floats + 15) / 16 * 64));
    for (int s = 0; s < INCEP_SLOTS && !bad; s++)
        bad = !(c->slot[s] = aligned_alloc(64, ((size_t)max_batch * g->slot_floats[s] + 15) / 16 * 64));
    if (bad) incep_cpu_free(c);
    return bad ? -1 : 0;
}

void incep_cpu_free(incep_cpu *c) {
    for (int s = 0; s < INCEP_SLOTS; s++) free(c->slot[s]);
    free(c->col), free(c->pack);
    memset(c, 0, sizeof *c);
}

/* PyTorch's bilinear interpolation without align_corners: source coordinate (o + 0.5) in / out - 0.5,
 * clamped at 0; the upper neighbour clamped to the last pixel. */
static void bilinear_index(int o, int in, int out, int *i0, int *i1, float *l1) {
    const float scale = (float)in / (float)out;
    float src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    int i = (int)src;
    if (i > in - 1) i = in - 1;
    *i0 = i;
    *i1 = i + (i < in - 1);
    float l = src - (float)i;
    *l1 = l < 0 ? 0 : l > 1 ? 1 : l;
}

static int cpu_resize(void *ctx, const float *images, int C, int H, int W, incep_view out) {
    incep_cpu *c = ctx;
    const int R = out.H, n = c->n;
    float *y = view_ptr(c, out);
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < R; oy++) {
            int y0, y1, x0, x1;
            float ly, lx;
            bilinear_index(oy, H, R, &y0, &y1, &ly);
            for (int ox = 0; ox < R; ox++) {
                bilinear_index(ox, W, R, &x0, &x1, &lx);
                for (int ch = 0; ch < 3; ch++) {
                    const float *p = images + ((size_t)i * C + (C == 3 ? ch : 0)) * H * W;
                    const float top = (1 - lx) * p[(size_t)y0 * W + x0] + lx * p[(size_t)y0 * W + x1];
                    const float bot = (1 - lx) * p[(size_t)y1 * W + x0] + lx * p[(size_t)y1 * W + x1];
                    const float v = (1 - ly) * top + ly * bot;
                    y[(((size_t)i * R + oy) * R + ox) * out.ld + ch] = 2 * v - 1;
                }
            }
        }
    return 0;
}

/* Rows [first image, + m images) of the im2col matrix of conv k: one row per output pixel, its taps
 * (ky, kx) in order, each tap's cin channels; taps outside the image are zeros. */
static void im2col(const incep_conv *k, const float *x, int ld, int m, float *col) {
    const int K = k->kh * k->kw * k->cin;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < m; i++)
        for (int oy = 0; oy < k->Ho; oy++)
            for (int ox = 0; ox < k->Wo; ox++) {
                float *row = col + (((size_t)i * k->Ho + oy) * k->Wo + ox) * K;
                for (int ky = 0; ky < k->kh; ky++)
                    for (int kx = 0; kx < k->kw; kx++, row += k->cin) {
                        const int iy = oy * k->stride - k->ph + ky, ix = ox * k->stride - k->pw + kx;
                        if (iy < 0 || iy >= k->H || ix < 0 || ix >= k->W) memset(row, 0, (size_t)k->cin * sizeof(float));
                        else memcpy(row, x + (((size_t)i * k->H + iy) * k->W + ix) * ld, (size_t)k->cin * sizeof(float));
                    }
            }
}

static int cpu_conv(void *ctx, const incep_conv *k, incep_view in, incep_view out) {
    incep_cpu *c = ctx;
    const int n = c->n, K = k->kh * k->kw * k->cin;
    const float *x = view_ptr(c, in), *w = c->w + k->prep_w_off;
    float *y = view_ptr(c, out);
    const size_t pix = (size_t)k->Ho * k->Wo;
    if (k->kh == 3 && k->kw == 3 && k->stride == 1 && k->ph == 1 && k->pw == 1 && in.ld == in.C && out.ld == out.C)
        gemm_conv3x3(n, k->H, k->W, k->cin, x, k->cout, w, y, 0, c->pack);
    else if (k->kh == 1 && k->kw == 1 && k->stride == 1)
        gemm_nt((size_t)n * pix, k->cout, K, x, in.ld, w, K, y, out.ld, 0, c->pack);
    else {
        int per = (int)(c->col_floats / (pix * K)); /* images per im2col */
        if (per < 1) per = 1;
        for (int i = 0; i < n; i += per) {
            const int m = n - i < per ? n - i : per;
            im2col(k, x + (size_t)i * k->H * k->W * in.ld, in.ld, m, c->col);
            gemm_nt((size_t)m * pix, k->cout, K, c->col, K, w, K, y + (size_t)i * pix * out.ld, out.ld, 0, c->pack);
        }
    }
    const float *alpha = c->ab + k->prep_c_off, *beta = alpha + k->cout;
    const size_t rows = (size_t)n * pix;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        float *v = y + r * out.ld;
        for (int o = 0; o < k->cout; o++) {
            const float t = v[o] * alpha[o] + beta[o];
            v[o] = t > 0 ? t : 0;
        }
    }
    return 0;
}

static int cpu_pool(void *ctx, incep_pool kind, incep_view in, incep_view out) {
    incep_cpu *c = ctx;
    const float *x = view_ptr(c, in);
    float *y = view_ptr(c, out);
    const int s = kind == INCEP_MAXPOOL_S2 ? 2 : 1, pad = kind == INCEP_MAXPOOL_S2 ? 0 : 1, n = c->n;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < out.H; oy++)
            for (int ox = 0; ox < out.W; ox++) {
                float *dst = y + (((size_t)i * out.H + oy) * out.W + ox) * out.ld;
                int first = 1, count = 0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        const int iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                        if (iy < 0 || iy >= in.H || ix < 0 || ix >= in.W) continue;
                        const float *src = x + (((size_t)i * in.H + iy) * in.W + ix) * in.ld;
                        for (int ch = 0; ch < in.C; ch++) {
                            if (first) dst[ch] = src[ch];
                            else if (kind == INCEP_AVGPOOL_S1_EXCL_PAD) dst[ch] += src[ch];
                            else if (src[ch] > dst[ch] || src[ch] != src[ch]) dst[ch] = src[ch];
                        }
                        first = 0, count++;
                    }
                if (kind == INCEP_AVGPOOL_S1_EXCL_PAD)
                    for (int ch = 0; ch < in.C; ch++) dst[ch] /= (float)count;
            }
    return 0;
}

static int cpu_mean(void *ctx, incep_view in, float *features) {
    incep_cpu *c = ctx;
    const float *x = view_ptr(c, in);
    const int n = c->n, P = in.H * in.W;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < in.C; ch++) {
            double s = 0;
            for (int p = 0; p < P; p++) s += x[((size_t)i * P + p) * in.ld + ch];
            features[(size_t)i * in.C + ch] = (float)(s / P);
        }
    return 0;
}

int incep_cpu_forward(incep_cpu *c, const float *images, int n, int C, int H, int W, float *features) {
    c->n = n;
    const incep_backend be = {c, cpu_resize, cpu_conv, cpu_pool, cpu_mean};
    return incep_forward(c->g, &be, images, C, H, W, features);
}
