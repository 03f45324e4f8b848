/* unet_kernels.h: the CUDA mp_unet's kernels outside the MP layers (docs/formulas.md §3): preconditioning
 * (c_skip, c_out, c_in, c_noise and the network input with its constant channel), the output D = c_skip x +
 * c_out F and its gradient, dropout from the Philox stream, and small vector helpers. NCHW for the
 * network's inputs and outputs (float32), channels-last inside; y += x and dropout take activations
 * (void *) of the network's element type `act` (ACT_* of act_type.h). Each returns 0 or the launch's
 * cudaError_t. */
#ifndef EDM2_UNET_KERNELS_H
#define EDM2_UNET_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Float32 in every precision (the first and last convolutions are float32):
 * c_skip, c_out, c_noise [N]; x_in0[N, HW, C + 1] = (c_in x, 1) from x[N, C, HW]. */
int uk_precondition(void *stream, float *c_skip, float *c_out, float *c_noise, float *x_in0, const float *x,
                    const float *sigma, int N, int C, size_t HW, float sigma_data);
/* D[N, C, HW] = c_skip x + c_out F, F[N, HW, C];  its gradient dF = c_out dD. */
int uk_output(void *stream, float *D, const float *x, const float *F, const float *c_skip, const float *c_out, int N, int C,
              size_t HW);
int uk_output_backward(void *stream, float *dF, const float *dD, const float *c_out, int N, int C, size_t HW);
/* Float32: y = x * a;  y = x + a. */
int uk_scale(void *stream, float *y, const float *x, float a, size_t n);
int uk_add_scalar(void *stream, float *y, const float *x, float a, size_t n);
/* y += x (type act). */
int uk_accumulate(void *stream, int act, void *y, const void *x, size_t n);
/* Dropout with keep-scaling, in place (type act) on n elements, per of them per image: element j of image m
 * is zeroed when its uniform draw (seed, rng_stream + m, base + j) is below p (the CPU's mask); linear in y,
 * so the same call is its backward. */
int uk_dropout(void *stream, int act, void *y, size_t n, size_t per, float p, uint64_t seed, uint64_t rng_stream,
               uint64_t base);

#ifdef __cplusplus
}
#endif
#endif
