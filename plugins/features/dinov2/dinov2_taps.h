/* dinov2_taps.h: the taps of PyTorch's antialiasing bicubic resampling (dinov2_input.h), one output at a
 * time, and the normalisation's constants, for the CPU build and the CUDA kernels alike (the same float operations in the same order; the CUDA
 * build compiles without contracting them into FMAs). */
#ifndef EDM2_DINOV2_TAPS_H
#define EDM2_DINOV2_TAPS_H

#include <math.h>

#ifdef __CUDACC__
#define DINO_HD __host__ __device__
#else
#define DINO_HD
#endif

/* Keys' cubic convolution kernel with a = -0.5 (PIL's and PyTorch's antialiasing bicubic). */
DINO_HD static inline float dino_cubic(float x) {
    const float a = -0.5f;
    x = fabsf(x);
    if (x < 1.0f) return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
    if (x < 2.0f) return (((x - 5.0f) * x + 8.0f) * x - 4.0f) * a;
    return 0.0f;
}

/* Output o of a resampling from `in` to `out` values: its first input, its number of taps, and what tap j's
 * unnormalised weight dino_tap(j, ...) needs. */
typedef struct dino_span {
    int first, count;
    float center, invscale;
} dino_span;

DINO_HD static inline dino_span dino_span_of(int o, int in, int out) {
    const float scale = (float)in / (float)out, support = scale >= 1.0f ? 2.0f * scale : 2.0f;
    dino_span s;
    s.invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    s.center = scale * ((float)o + 0.5f);
    long lo = (long)(s.center - support + 0.5f), hi = (long)(s.center + support + 0.5f);
    lo = lo < 0 ? 0 : lo;
    hi = hi > in ? in : hi;
    s.first = (int)lo;
    s.count = (int)(hi - lo);
    return s;
}

DINO_HD static inline float dino_tap(int j, dino_span s) {
    return dino_cubic(((float)j + (float)s.first - s.center + 0.5f) * s.invscale);
}

/* ImageNet's mean and standard deviation of colour c (red, green, blue), which the input is normalised with. */
DINO_HD static inline float dino_mean(int c) { return c == 0 ? 0.485f : c == 1 ? 0.456f : 0.406f; }
DINO_HD static inline float dino_std(int c) { return c == 0 ? 0.229f : c == 1 ? 0.224f : 0.225f; }

#endif
