/* unet_kernels.cu: preconditioning, output, dropout and vector helpers of the CUDA mp_unet (unet_kernels.h),
 * in the CPU network's arithmetic (--fmad=false). y += x and dropout are templates on the activations'
 * element type, 8 elements per thread: for float32 bitwise the CPU's; for bf16/fp16 each value is computed
 * in float32 and rounded once when stored. */
#include <cuda_runtime.h>
#include <math.h>

#include "edm2/edm2_philox.h"
#include "launch_cuda.h"
#include "lp_math.cuh"
#include "unet_kernels.h"

__global__ void k_precondition(float *c_skip, float *c_out, float *c_noise, float *x_in0, const float *x,
                               const float *sigma, int N, int C, size_t HW, float sd) {
    STRIDE_LOOP(i, (size_t)N * HW) {
        const size_t n = i / HW, p = i % HW;
        const float s = sigma[n], c_in = 1.0f / sqrtf(sd * sd + s * s);
        if (p == 0) {
            c_skip[n] = sd * sd / (s * s + sd * sd);
            c_out[n] = s * sd / sqrtf(s * s + sd * sd);
            c_noise[n] = logf(s) / 4.0f;
        }
        float *dst = x_in0 + i * (C + 1);
        for (int c = 0; c < C; c++) dst[c] = c_in * x[(n * C + c) * HW + p];
        dst[C] = 1.0f;
    }
}
int uk_precondition(void *stream, float *c_skip, float *c_out, float *c_noise, float *x_in0, const float *x,
                    const float *sigma, int N, int C, size_t HW, float sigma_data) {
    LAUNCH((size_t)N * HW, k_precondition, c_skip, c_out, c_noise, x_in0, x, sigma, N, C, HW, sigma_data);
}

__global__ void k_output(float *D, const float *x, const float *Fx, const float *c_skip, const float *c_out, int N, int C,
                         size_t HW) {
    STRIDE_LOOP(i, (size_t)N * C * HW) {
        const size_t p = i % HW, c = (i / HW) % C, n = i / (HW * C);
        D[i] = c_skip[n] * x[i] + c_out[n] * Fx[(n * HW + p) * C + c];
    }
}
int uk_output(void *stream, float *D, const float *x, const float *F, const float *c_skip, const float *c_out, int N, int C,
              size_t HW) {
    LAUNCH((size_t)N * C * HW, k_output, D, x, F, c_skip, c_out, N, C, HW);
}

__global__ void k_output_backward(float *dF, const float *dD, const float *c_out, int N, int C, size_t HW) {
    STRIDE_LOOP(i, (size_t)N * C * HW) {
        const size_t p = i % HW, c = (i / HW) % C, n = i / (HW * C);
        dF[(n * HW + p) * C + c] = c_out[n] * dD[i];
    }
}
int uk_output_backward(void *stream, float *dF, const float *dD, const float *c_out, int N, int C, size_t HW) {
    LAUNCH((size_t)N * C * HW, k_output_backward, dF, dD, c_out, N, C, HW);
}

__global__ void k_scale(float *y, const float *x, float a, size_t n) { STRIDE_LOOP(i, n) y[i] = x[i] * a; }
__global__ void k_add_scalar(float *y, const float *x, float a, size_t n) { STRIDE_LOOP(i, n) y[i] = x[i] + a; }
int uk_scale(void *stream, float *y, const float *x, float a, size_t n) { LAUNCH(n, k_scale, y, x, a, n); }
int uk_add_scalar(void *stream, float *y, const float *x, float a, size_t n) { LAUNCH(n, k_add_scalar, y, x, a, n); }

template <typename T> static int accumulate(void *stream, void *y, const void *x, size_t n) {
    LAUNCH_CHUNKS(n, (k_add_into<T, T>), (T *)y, (const T *)x, n);
}
int uk_accumulate(void *stream, int act, void *y, const void *x, size_t n) {
    return ACT_CALL(act, accumulate, stream, y, x, n);
}

template <typename T>
__global__ void k_dropout(T *y, size_t n, size_t per, float p, float keep, uint64_t seed, uint64_t rng_stream,
                          uint64_t base) {
    CHUNK_LOOP(i, n) {
        const int m = chunk_len(i, n);
        float v[8];
        ldv(v, y, i, m);
        size_t img = i / per, j = i % per; /* (divided once per chunk) */
        UNROLL8(k) {
            v[k] = edm2_philox_uniform(seed, rng_stream + img, base + j) < p ? 0.0f : v[k] * keep;
            if (++j == per) j = 0, img++;
        }
        stv(y, v, i, m);
    }
}
template <typename T>
static int dropout(void *stream, void *y, size_t n, size_t per, float p, uint64_t seed, uint64_t rng_stream,
                   uint64_t base) {
    LAUNCH_CHUNKS(n, k_dropout<T>, (T *)y, n, per, p, 1.0f / (1.0f - p), seed, rng_stream, base);
}
int uk_dropout(void *stream, int act, void *y, size_t n, size_t per, float p, uint64_t seed, uint64_t rng_stream,
               uint64_t base) {
    return ACT_CALL(act, dropout, stream, y, n, per, p, seed, rng_stream, base);
}
