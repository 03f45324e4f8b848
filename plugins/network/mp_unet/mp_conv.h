/* mp_conv.h: MPConv (docs/formulas.md §1): the weight preparation w_hat = normalize(w) * gain / sqrt(fan_in), and
 * the convolutions that use it, channels-last, on our GEMMs (gemm.h): 3x3 convolutions with padding 1 as
 * implicit GEMMs (no im2col, no padded copies), and fully connected / 1x1 layers. Backward functions
 * overwrite (acc = 0) or accumulate into (acc = 1) the input gradient, and always accumulate the
 * prepared-weight gradient. */
#ifndef EDM2_MP_CONV_H
#define EDM2_MP_CONV_H

#include <stddef.h>

/* Scratch shared by the products of one pass (sizes from conv_scratch_need, 64-byte aligned): GEMM
 * packing, rearranged weights for the input gradient of 3x3 convolutions, weight-gradient partial sums. */
typedef struct conv_scratch {
    float *pack;
    float *wt;
    float *part;
} conv_scratch;

/* Grows *pack, *wt and *part (floats) to what a k x k convolution (k = 1 or 3) from C to O channels needs. */
void conv_scratch_need(int C, int O, int k, size_t *pack, size_t *wt, size_t *part);

/* Weight preparation. w is the reference layout [O, C, k, k] (k = 1 for 1x1 and fully connected);
 * w_hat is written channels-last [O, k, k, C] (tap-major, as the implicit GEMM reads it).
 * norm[O] is saved for backward. */
void mpconv_weight_forward(float *w_hat, float *norm, const float *w, float gain, int O, int C, int k);
/* dw += d(w_hat)/dw^T dw_hat; *dgain += d(w_hat)/dgain . dw_hat when dgain is non-NULL. */
void mpconv_weight_backward(float *dw, float *dgain, const float *dw_hat, const float *w, const float *norm,
                            float gain, int O, int C, int k);
/* Fully connected over rows: y[P, O] = x[P, C] w_hat[O, C]^T (+ y when accumulate). */
void linear_forward(float *y, const float *x, const float *w_hat, size_t P, int C, int O, int accumulate,
                    const conv_scratch *sc);
/* dx[P, C] += dy w_hat (acc) or = (not acc; skipped when dx is NULL); dw_hat[O, C] += dy^T x (always). */
void linear_backward(float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat, size_t P, int C,
                     int O, const conv_scratch *sc, int acc);

/* k x k convolution (k = 1 or 3), padding k/2, channels-last: x[N, H, W, C] -> y[N, H, W, O]. The input
 * gradient of a 3x3 convolution is a 3x3 convolution of dy with the weights flipped in space. */
void conv2d_forward(float *y, const float *x, const float *w_hat, const conv_scratch *sc, int N, int H, int W, int C,
                    int O, int k);
void conv2d_backward(float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat,
                     const conv_scratch *sc, int N, int H, int W, int C, int O, int k, int acc);

#endif
