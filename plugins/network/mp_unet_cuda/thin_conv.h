/* thin_conv.h: 3x3 convolutions (padding 1, channels-last, float32) with few channels on one side, the
 * network's first (image channels + 1 in) and last (image channels out) convolutions, as direct kernels.
 * cuDNN's algorithms for these shapes ran at about 2 TFLOP/s in the H100 profile (the last convolution's
 * weight gradient 1.2 ms at batch 64, its forward 0.75 ms with transposes to NCHW and back), where the
 * data they move takes a tenth of that. x[N, H, W, C], y[N, H, W, O], w_hat[O, 3, 3, C] (tap-major, as
 * conv_cuda.h's); each result summed in a fixed order (deterministic). The thin side has at most THIN_MAX
 * channels: the output's (forward, backward data, backward filter) or the input's (forward, backward
 * filter); thin_conv_kinds says which kinds a shape takes. */
#ifndef EDM2_THIN_CONV_H
#define EDM2_THIN_CONV_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define THIN_MAX 8

/* The kinds thin_conv runs for C in, O out channels: bit 0 forward, bit 1 backward data, bit 2 backward
 * filter (0: none, cuDNN's). */
#define THIN_FWD 1
#define THIN_DATA 2
#define THIN_FILTER 4
int thin_conv_kinds(int C, int O);

/* y = conv(x, w_hat). */
int thin_conv_forward(void *stream, float *y, const float *x, const float *w_hat, int N, int H, int W, int C, int O);
/* dx = (acc: +=) the input gradient of dy (O thin). */
int thin_conv_backward_data(void *stream, float *dx, const float *dy, const float *w_hat, int N, int H, int W, int C,
                            int O, int acc);
/* dw_hat += the weight gradient of dy at x, over tiles of pixels summed in `part` (thin_conv_part_floats)
 * first, then added over the tiles in order. */
size_t thin_conv_part_floats(int N, int H, int W, int C, int O);
int thin_conv_backward_filter(void *stream, float *dw_hat, const float *dy, const float *x, int N, int H, int W, int C,
                              int O, float *part);

#ifdef __cplusplus
}
#endif
#endif
