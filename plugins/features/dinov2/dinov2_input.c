/* dinov2_input.c: the FD_DINOv2 input of an image (dinov2_input.h), float arithmetic as PyTorch's CPU
 * kernel does it. */
#include "dinov2_input.h"

#include <math.h>

#include "dinov2_taps.h"

/* Output o's first input *first, its taps (at most `max`) and their weights, normalised to sum 1. */
static int taps(int o, int in, int out, int *first, float *w, int max) {
    const dino_span sp = dino_span_of(o, in, out);
    const int n = sp.count > max ? max : sp.count;
    float total = 0.0f;
    for (int j = 0; j < n; j++) total += w[j] = dino_tap(j, sp);
    for (int j = 0; j < n && total != 0.0f; j++) w[j] /= total;
    *first = sp.first;
    return n;
}

#define MAX_TAPS 4096 /* 2 x 2 x the largest shrinking (4096 -> 1 pixel), with room */

size_t dino_input_scratch(int H, int W, int res) { return 3 * (size_t)H * res + (size_t)W + MAX_TAPS; }

/* dst[rows, out] (row stride out) = src[rows, in] (element stride `step`, row stride `pitch`) resampled. */
static void resample(const float *src, int rows, int in, size_t step, size_t pitch, int out, float *dst, size_t dstep,
                     size_t dpitch, float *w) {
    for (int o = 0; o < out; o++) {
        int first;
        const int n = taps(o, in, out, &first, w, MAX_TAPS);
        for (int r = 0; r < rows; r++) {
            const float *s = src + (size_t)r * pitch + (size_t)first * step;
            float acc = 0.0f;
            for (int j = 0; j < n; j++) acc += s[(size_t)j * step] * w[j];
            dst[(size_t)r * dpitch + (size_t)o * dstep] = acc;
        }
    }
}

int dino_input(const float *img, int C, int H, int W, int res, float *out, float *scratch) {
    if ((C != 1 && C != 3) || H < 1 || W < 1) return -1;
    float *wide = scratch, *line = wide + 3 * (size_t)H * res, *w = line + W; /* wide[3, H, res]: after the width */
    for (int c = 0; c < 3; c++) {
        const float *src = img + (size_t)(C == 1 ? 0 : c) * H * W;
        float *rows = wide + (size_t)c * H * res, *plane = out + (size_t)c * res * res;
        for (int y = 0; y < H; y++) { /* the 8-bit values back from k / 255, then the width */
            for (int x = 0; x < W; x++) line[x] = rintf(src[(size_t)y * W + x] * 255.0f);
            resample(line, 1, W, 1, 0, res, rows + (size_t)y * res, 1, 0, w);
        }
        resample(rows, res, H, (size_t)res, 1, res, plane, (size_t)res, 1, w); /* the height, column by column */
        const float m = dino_mean(c), sd = dino_std(c);
        for (size_t i = 0; i < (size_t)res * res; i++) plane[i] = (plane[i] / 255.0f - m) / sd;
    }
    return 0;
}
