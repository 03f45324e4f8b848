/* generate.h: image generation for the host: a denoiser over a network (and optionally a guiding network,
 * D = g + w (net - g), w = 1 never evaluating g; a class-conditional g sees the same labels as net) handed
 * to a sampler plugin; per-image noise from each image's seed, so an image does not depend on the batch it
 * is generated in. */
#ifndef EDM2_HOST_GENERATE_H
#define EDM2_HOST_GENERATE_H

#include <stdint.h>

#include "plugin_loader.h"
#include "runtime.h"

typedef struct generator {
    runtime *rt;
    net_instance *net, *gnet;
    double guidance;
    const edm2_sampler_vtable *svt;
    edm2_sampler *s;
    int C, R, L;
    size_t per; /* floats per image */
    int cap;    /* batch capacity of the buffers */
    float *x, *g, *sigma, *labels;
    /* The batch being generated. */
    const uint64_t *seeds;
    int n;
    edm2_status last;
} generator;

/* `sampler` with config `scfg` (may be NULL for defaults); gnet may be NULL (then guidance must be 1). */
int generator_open(generator *gen, runtime *rt, net_instance *net, net_instance *gnet, double guidance,
                   const plugin_rec *sampler, const edm2_config *scfg, edm2_err *err);
/* Generates n images: noise from seeds (or `noise_host` [n, C, R, R] when non-NULL), labels_host [n, L] (NULL:
 * unconditional). Writes the images (float, data scale) to out_host [n, C, R, R]. */
int generator_run(generator *gen, const uint64_t *seeds, const float *noise_host, const float *labels_host, int n,
                  float *out_host, edm2_err *err);
void generator_close(generator *gen);

/* The class of seed `seed` under 'random' labelling (uniform over L classes, from the seed alone). */
int random_class(uint64_t seed, int L);

#endif
