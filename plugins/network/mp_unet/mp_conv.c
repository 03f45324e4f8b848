/* mp_conv.c: MPConv weight preparation and channels-last convolutions as our GEMMs (gemm.h). */
#include "mp_conv.h"

#include <math.h>

#include "gemm.h"
#include "mp_ops.h"

void mpconv_weight_forward(float *w_hat, float *norm, const float *w, float gain, int O, int C, int k) {
    const int kk = k * k, F = C * kk;
    const float inv_sqrt_f = 1.0f / sqrtf((float)F);
    for (int o = 0; o < O; o++)
        norm[o] = mp_weight_unit_forward(w_hat + (size_t)o * F, w + (size_t)o * F, gain, C, kk, inv_sqrt_f);
}

void mpconv_weight_backward(float *dw, float *dgain, const float *dw_hat, const float *w, const float *norm,
                            float gain, int O, int C, int k) {
    const int kk = k * k, F = C * kk;
    const float inv_sqrt_f = 1.0f / sqrtf((float)F);
    double dg = 0;
    for (int o = 0; o < O; o++)
        dg += mp_weight_unit_backward(dw + (size_t)o * F, dw_hat + (size_t)o * F, w + (size_t)o * F, norm[o], gain, C,
                                      kk, inv_sqrt_f);
    if (dgain) *dgain += (float)dg;
}

void linear_forward(float *y, const float *x, const float *w_hat, size_t P, int C, int O, int accumulate,
                    const conv_scratch *sc) {
    gemm_nt(P, O, C, x, C, w_hat, C, y, O, accumulate, sc->pack);
}

void linear_backward(float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat, size_t P, int C,
                     int O, const conv_scratch *sc, int acc) {
    if (dx) gemm_nn(P, C, O, dy, O, w_hat, C, dx, C, acc, sc->pack);
    gemm_tn(O, C, P, dy, x, dw_hat, sc->part);
}

void conv_scratch_need(int C, int O, int k, size_t *pack, size_t *wt, size_t *part) {
    size_t p = gemm_pack_floats(O, k * k * C), q = gemm_pack_floats(C, k * k * O), r = gemm_tn_part_floats(O, C, k * k);
    if (p > *pack) *pack = p;
    if (q > *pack) *pack = q;
    if (r > *part) *part = r;
    if (k == 3 && (size_t)9 * C * O > *wt) *wt = (size_t)9 * C * O;
}

void conv2d_forward(float *y, const float *x, const float *w_hat, const conv_scratch *sc, int N, int H, int W, int C,
                    int O, int k) {
    if (k == 1) linear_forward(y, x, w_hat, (size_t)N * H * W, C, O, 0, sc);
    else gemm_conv3x3(N, H, W, C, x, O, w_hat, y, 0, sc->pack);
}

void conv2d_backward(float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat,
                     const conv_scratch *sc, int N, int H, int W, int C, int O, int k, int acc) {
    if (k == 1) {
        linear_backward(dx, dw_hat, dy, x, w_hat, (size_t)N * H * W, C, O, sc, acc);
        return;
    }
    gemm_tn_conv3x3(O, C, N, H, W, dy, x, dw_hat, sc->part);
    if (dx) {
        /* dx = 3x3 convolution of dy with w flipped in space and transposed: wt[c, t, o] = w[o, 8 - t, c]. */
        for (int c = 0; c < C; c++)
            for (int t = 0; t < 9; t++)
                for (int o = 0; o < O; o++)
                    sc->wt[((size_t)c * 9 + t) * O + o] = w_hat[((size_t)o * 9 + (8 - t)) * C + c];
        gemm_conv3x3(N, H, W, O, dy, C, sc->wt, dx, acc, sc->pack);
    }
}
