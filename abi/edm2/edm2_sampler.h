/* edm2_sampler.h: the sampler plugin kind (backend-agnostic): integrates the probability-flow ODE (or
 * its stochastic variant) from pure noise to images, calling a denoiser the host provides. Guidance,
 * labels and batching are the host's business, so a sampler only sees D(x; sigma).
 */
#ifndef EDM2_SAMPLER_H
#define EDM2_SAMPLER_H

#include "edm2_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edm2_sampler edm2_sampler; /* opaque instance */

/* The denoiser the host lends a sampler for one call of sample(). */
typedef struct edm2_denoiser {
    void *ctx; /* host-owned */
    /* Called by the sampler: out = D(x; sigma) for every image of the batch, all at noise level
     * `sigma`. x and out are backend memory of n floats (the whole batch); out != x. */
    edm2_status (*denoise)(void *ctx, const float *x, double sigma, float *out);
    /* Called by stochastic samplers: out (backend memory, n floats) = N(0, 1) noise, each image's part
     * drawn from that image's own seed, so an image does not depend on its batch. `draw` numbers the
     * calls of one sample() (0, 1, ...): the same draw gives the same noise. */
    edm2_status (*randn)(void *ctx, float *out, uint64_t draw);
    size_t n; /* floats in x and out: N * C * H * W */
} edm2_denoiser;

/* All functions are called by the host only, from one thread at a time per instance, between create and
 * destroy; pointers to backend memory stay owned by whoever allocated them (the host for arenas and
 * batches, the plugin for its own state). */
typedef struct edm2_sampler_vtable {
    uint32_t struct_size;
    edm2_status (*create)(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                          edm2_sampler **out);
    void (*destroy)(edm2_sampler *s); /* NULL is a no-op */
    /* How many denoiser calls one sample() makes (for progress output). */
    int (*num_evals)(edm2_sampler *s);
    /* Called by the host once per batch: x holds unit-variance noise [n] on entry (backend memory)
     * and the generated images on return. Stochastic samplers draw further noise with den->randn.
     * Scratch memory comes from the backend ops given at create(). */
    edm2_status (*sample)(edm2_sampler *s, const edm2_denoiser *den, float *x);
} edm2_sampler_vtable;

#ifdef __cplusplus
}
#endif
#endif /* EDM2_SAMPLER_H */
