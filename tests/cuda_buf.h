/* cuda_buf.h: host and device copies of test tensors for the CUDA layer tests (included after defining
 * CUDA_BUF_STREAM, the stream the kernels run on): float32 buffers (buf: make, drop, same) and bf16 ones
 * (lbuf: the host side holds the float value of each bf16 element; lmake, lzero, lsame), with bf16's
 * round-to-nearest-even done here as the GPU does it. */
#ifndef EDM2_TEST_CUDA_BUF_H
#define EDM2_TEST_CUDA_BUF_H

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "test_util.h"

/* Host and device copies of n random floats (stream `tag`). */
typedef struct buf {
    float *h, *d;
    size_t n;
} buf;

static inline buf make(size_t n, uint64_t tag, float scale) {
    buf b = {malloc((n + 1) * sizeof(float)), NULL, n};
    for (size_t i = 0; i < n; i++) b.h[i] = scale * edm2_philox_normal(11, tag, i);
    assert_int_equal(cudaMalloc((void **)&b.d, (n + 1) * sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMemcpy(b.d, b.h, n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    return b;
}

static inline void drop(buf *b) {
    free(b->h);
    cudaFree(b->d);
}

/* The device copy equals the host copy bitwise (tol 0) or within tol. */
static inline void same(const char *what, const buf *b, float tol) {
    float *g = malloc((b->n + 1) * sizeof(float));
    assert_int_equal(cudaStreamSynchronize(CUDA_BUF_STREAM), cudaSuccess);
    assert_int_equal(cudaMemcpy(g, b->d, b->n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    size_t bad = 0;
    float worst = 0;
    for (size_t i = 0; i < b->n; i++) {
        float d = fabsf(g[i] - b->h[i]);
        if (tol == 0 ? memcmp(&g[i], &b->h[i], sizeof(float)) != 0 : !(d <= tol)) bad++;
        if (d > worst) worst = d;
    }
    if (bad) fprintf(stderr, "%s: %zu of %zu differ (worst %g)\n", what, bad, b->n, worst);
    assert_int_equal(bad, 0);
    free(g);
}

/* The largest |x| (for tolerances relative to a tensor's scale). */
static inline float largest(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* act_sum_clip_forward's keep bits at keep_d (device) against the unclipped sums un[n] (float32, before any
 * rounding): bit e set exactly where -c <= un[e] <= c; returns how many are clear (the clipped elements). */
static inline size_t keep_bits(const char *what, const unsigned char *keep_d, const float *un, float c, size_t n) {
    unsigned char *k = malloc(n / 8 + 1);
    assert_int_equal(cudaStreamSynchronize(CUDA_BUF_STREAM), cudaSuccess);
    assert_int_equal(cudaMemcpy(k, keep_d, (n + 7) / 8, cudaMemcpyDeviceToHost), cudaSuccess);
    size_t bad = 0, clear = 0;
    for (size_t e = 0; e < n; e++) {
        const int bit = k[e / 8] >> (e % 8) & 1;
        bad += bit != (un[e] >= -c && un[e] <= c);
        clear += !bit;
    }
    if (bad) fprintf(stderr, "%s: %zu of %zu bits wrong\n", what, bad, n);
    assert_int_equal(bad, 0);
    free(k);
    return clear;
}

/* ---- bf16 ---- */

static inline uint16_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                          /* round to nearest even */
    return (uint16_t)(u >> 16);
}
static inline float bf16_value(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline float bf16_round(float f) { return bf16_value(bf16_bits(f)); }

/* n bf16 values: h their floats, d the device's bf16 elements. */
typedef struct lbuf {
    float *h;
    void *d;
    size_t n;
} lbuf;

static inline void lupload(lbuf *b) {
    uint16_t *bits = malloc((b->n + 1) * sizeof *bits);
    for (size_t i = 0; i < b->n; i++) bits[i] = bf16_bits(b->h[i]);
    assert_int_equal(cudaMemcpy(b->d, bits, b->n * sizeof *bits, cudaMemcpyHostToDevice), cudaSuccess);
    free(bits);
}

static inline lbuf lmake(size_t n, uint64_t tag, float scale) {
    lbuf b = {malloc((n + 1) * sizeof(float)), NULL, n};
    for (size_t i = 0; i < n; i++) b.h[i] = bf16_round(scale * edm2_philox_normal(13, tag, i));
    assert_int_equal(cudaMalloc(&b.d, (n + 1) * 2), cudaSuccess);
    lupload(&b);
    return b;
}

static inline void ldrop(lbuf *b) {
    free(b->h);
    cudaFree(b->d);
}

/* The host copy := the device's values. */
static inline void lread(lbuf *b) {
    uint16_t *bits = malloc((b->n + 1) * sizeof *bits);
    assert_int_equal(cudaStreamSynchronize(CUDA_BUF_STREAM), cudaSuccess);
    assert_int_equal(cudaMemcpy(bits, b->d, b->n * sizeof *bits, cudaMemcpyDeviceToHost), cudaSuccess);
    for (size_t i = 0; i < b->n; i++) b->h[i] = bf16_value(bits[i]);
    free(bits);
}

/* The device's bf16 values against `expect` (floats, rounded to bf16 here): equal (ulps 0), or within ulps
 * units in the last place of bf16 plus atol (for results of sums taken in another order, where
 * cancellation leaves few significant bits). */
static inline void lsame(const char *what, const lbuf *b, const float *expect, int ulps, float atol) {
    uint16_t *bits = malloc((b->n + 1) * sizeof *bits);
    assert_int_equal(cudaStreamSynchronize(CUDA_BUF_STREAM), cudaSuccess);
    assert_int_equal(cudaMemcpy(bits, b->d, b->n * sizeof *bits, cudaMemcpyDeviceToHost), cudaSuccess);
    size_t bad = 0, at = 0;
    float worst = 0;
    for (size_t i = 0; i < b->n; i++) {
        const float got = bf16_value(bits[i]), want = bf16_round(expect[i]);
        int e;
        frexpf(want, &e);
        const float ulp = ldexpf(1.0f, e - 8), d = fabsf(got - want);
        if (ulps == 0 && atol == 0 ? bits[i] != bf16_bits(want) : !(d <= ulps * ulp + atol)) bad++, at = i;
        if (d > worst) worst = d;
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu differ (worst %g; e.g. [%zu] %g, expected %g)\n", what, bad, b->n, worst, at,
                bf16_value(bits[at]), expect[at]);
    assert_int_equal(bad, 0);
    free(bits);
}

#endif
