/* inception_kernels.cu: the element-wise, im2col, pooling and mean kernels of the CUDA Inception-v3
 * (inception_kernels.h). One thread per output element; every element is computed by the same sequence of
 * operations as the CPU primitives (inception_cpu.c). */
#include "inception_kernels.h"

#include "launch_cuda.h"

/* PyTorch's bilinear source index without align_corners (as bilinear_index in inception_cpu.c). */
__device__ static void bilinear_index(int o, int in, int out, int *i0, int *i1, float *l1) {
    const float scale = __fdiv_rn((float)in, (float)out);
    float src = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)o, 0.5f)), 0.5f);
    if (src < 0) src = 0;
    int i = (int)src;
    if (i > in - 1) i = in - 1;
    *i0 = i;
    *i1 = i + (i < in - 1);
    float l = __fsub_rn(src, (float)i);
    *l1 = l < 0 ? 0 : l > 1 ? 1 : l;
}

__global__ static void k_resize(const float *x, int n, int C, int H, int W, float *y, int R, int ld) {
    STRIDE_LOOP(e, (size_t)n * R * R * 3) {
        const int ch = (int)(e % 3), ox = (int)(e / 3 % R), oy = (int)(e / 3 / R % R), i = (int)(e / 3 / R / R);
        int y0, y1, x0, x1;
        float ly, lx;
        bilinear_index(oy, H, R, &y0, &y1, &ly);
        bilinear_index(ox, W, R, &x0, &x1, &lx);
        const float *p = x + ((size_t)i * C + (C == 3 ? ch : 0)) * H * W;
        const float top = __fadd_rn(__fmul_rn(1 - lx, p[(size_t)y0 * W + x0]), __fmul_rn(lx, p[(size_t)y0 * W + x1]));
        const float bot = __fadd_rn(__fmul_rn(1 - lx, p[(size_t)y1 * W + x0]), __fmul_rn(lx, p[(size_t)y1 * W + x1]));
        const float v = __fadd_rn(__fmul_rn(1 - ly, top), __fmul_rn(ly, bot));
        y[(((size_t)i * R + oy) * R + ox) * ld + ch] = __fsub_rn(__fmul_rn(2.0f, v), 1.0f);
    }
}

int incep_k_resize(void *stream, const float *x, int n, int C, int H, int W, float *y, int R, int ld) {
    LAUNCH((size_t)n * R * R * 3, k_resize, x, n, C, H, W, y, R, ld);
}

__global__ static void k_im2col(const float *x, int ld, int m, int H, int W, int cin, int kh, int kw, int stride,
                                int ph, int pw, int Ho, int Wo, float *col) {
    const int K = kh * kw * cin;
    STRIDE_LOOP(e, (size_t)m * Ho * Wo * K) {
        const int k = (int)(e % K);
        const size_t pix = e / K;
        const int ox = (int)(pix % Wo), oy = (int)(pix / Wo % Ho), i = (int)(pix / Wo / Ho);
        const int c = k % cin, tap = k / cin, ky = tap / kw, kx = tap % kw;
        const int iy = oy * stride - ph + ky, ix = ox * stride - pw + kx;
        col[e] = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? 0.0f : x[(((size_t)i * H + iy) * W + ix) * ld + c];
    }
}

int incep_k_im2col(void *stream, const float *x, int ld, int m, int H, int W, int cin, int kh, int kw, int stride,
                   int ph, int pw, int Ho, int Wo, float *col) {
    LAUNCH((size_t)m * Ho * Wo * kh * kw * cin, k_im2col, x, ld, m, H, W, cin, kh, kw, stride, ph, pw, Ho, Wo, col);
}

__global__ static void k_bn_relu(float *y, size_t rows, int ld, int cout, const float *alpha, const float *beta) {
    STRIDE_LOOP(e, rows * cout) {
        const int o = (int)(e % cout);
        float *v = y + e / cout * ld + o;
        const float t = __fadd_rn(__fmul_rn(*v, alpha[o]), beta[o]);
        *v = t > 0 ? t : 0;
    }
}

int incep_k_bn_relu(void *stream, float *y, size_t rows, int ld, int cout, const float *alpha, const float *beta) {
    LAUNCH(rows * cout, k_bn_relu, y, rows, ld, cout, alpha, beta);
}

__global__ static void k_pool(int kind, const float *x, int n, int H, int W, int C, int ldx, float *y, int Ho, int Wo,
                              int ldy) {
    const int s = kind == 0 ? 2 : 1, pad = kind == 0 ? 0 : 1;
    STRIDE_LOOP(e, (size_t)n * Ho * Wo * C) {
        const int ch = (int)(e % C), ox = (int)(e / C % Wo), oy = (int)(e / C / Wo % Ho), i = (int)(e / C / Wo / Ho);
        float acc = 0;
        int first = 1, count = 0;
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                const int iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const float v = x[(((size_t)i * H + iy) * W + ix) * ldx + ch];
                if (first) acc = v;
                else if (kind == 1) acc = __fadd_rn(acc, v);
                else if (v > acc || v != v) acc = v;
                first = 0, count++;
            }
        if (kind == 1) acc = __fdiv_rn(acc, (float)count);
        y[(((size_t)i * Ho + oy) * Wo + ox) * ldy + ch] = acc;
    }
}

int incep_k_pool(void *stream, int kind, const float *x, int n, int H, int W, int C, int ldx, float *y, int Ho, int Wo,
                 int ldy) {
    LAUNCH((size_t)n * Ho * Wo * C, k_pool, kind, x, n, H, W, C, ldx, y, Ho, Wo, ldy);
}

__global__ static void k_mean(const float *x, int n, int P, int C, int ld, float *out) {
    STRIDE_LOOP(e, (size_t)n * C) {
        const int ch = (int)(e % C), i = (int)(e / C);
        double s = 0;
        for (int p = 0; p < P; p++) s += (double)x[((size_t)i * P + p) * ld + ch];
        out[e] = (float)(s / P);
    }
}

int incep_k_mean(void *stream, const float *x, int n, int P, int C, int ld, float *out) {
    LAUNCH((size_t)n * C, k_mean, x, n, P, C, ld, out);
}
