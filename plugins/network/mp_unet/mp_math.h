/* mp_math.h: small math helpers shared by the CPU layers (vectorisable) and the CUDA kernels (the same
 * code, so that the two backends compute bitwise the same values: ISO C on the CPU and --fmad=false on
 * CUDA round every product and sum separately; the fmaf calls below are fused on both). */
#ifndef EDM2_MP_MATH_H
#define EDM2_MP_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define MP_FN __host__ __device__ static inline
#else
#define MP_FN static inline
#endif

/* exp(x) in float to about 2 ulp (Cody-Waite reduction and Cephes' polynomial), written so that the
 * compiler vectorises the loops that call it (libm's expf is a scalar call). */
MP_FN float fast_exp(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Gradient outputs: dst += v when acc, dst = v otherwise (the first contribution to a fresh buffer, which
 * then needs no zeroing). */
#define GRAD_ACC(acc, dst, v) ((dst) = (acc) ? (dst) + (v) : (v))

#endif
