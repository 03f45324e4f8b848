/* generate.c: the host's denoiser (network, guidance) and per-seed noise for sampler plugins. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "log.h"

#define STREAM_LABEL 0x4C4142454Cull /* "LABEL" */

int random_class(uint64_t seed, int L) { return (int)edm2_philox_below(seed, STREAM_LABEL, 0, (uint32_t)L); }

/* D(x; sigma) of one network for the current batch (gen->sigma already holds sigma for every image). */
static edm2_status forward(generator *gen, net_instance *ni, const float *x, const float *labels, float *out) {
    edm2_forward_args fa;
    memset(&fa, 0, sizeof fa);
    fa.struct_size = sizeof fa;
    fa.params = ni->params, fa.x = x, fa.sigma = gen->sigma, fa.labels = labels, fa.N = gen->n, fa.D = out;
    return ni->vt->forward(ni->net, &fa);
}

static edm2_status denoise(void *ctx, const float *x, double sigma, float *out) {
    generator *gen = ctx;
    const edm2_backend_vtable *vt = gen->rt->bvt;
    edm2_backend *b = gen->rt->b;
    edm2_status s = vt->fill(b, gen->sigma, (float)sigma, (size_t)gen->n);
    if (s == EDM2_OK) s = forward(gen, gen->net, x, gen->L ? gen->labels : NULL, out);
    if (s == EDM2_OK && gen->guidance != 1.0) {
        /* The guiding network sees the same labels as the main network; an unconditional one has none. */
        s = forward(gen, gen->gnet, x, gen->gnet->info.label_dim ? gen->labels : NULL, gen->g);
        /* out = g + w (out - g) = w out + (1 - w) g */
        if (s == EDM2_OK) s = vt->axpby(b, out, (float)(1.0 - gen->guidance), gen->g, (float)gen->guidance, gen->per * gen->n);
    }
    gen->last = s;
    return s;
}

static edm2_status randn_per_seed(void *ctx, float *out, uint64_t draw) {
    generator *gen = ctx;
    for (int i = 0; i < gen->n; i++) {
        edm2_rng r = {gen->seeds[i], 1 + draw, 0};
        edm2_status s = gen->rt->bvt->randn(gen->rt->b, out + (size_t)i * gen->per, gen->per, r);
        if (s != EDM2_OK) return s;
    }
    return EDM2_OK;
}

int generator_open(generator *gen, runtime *rt, net_instance *net, net_instance *gnet, double guidance,
                   const plugin_rec *sampler, const edm2_config *scfg, edm2_err *err) {
    memset(gen, 0, sizeof *gen);
    gen->rt = rt, gen->net = net, gen->gnet = gnet, gen->guidance = guidance;
    gen->C = net->info.img_channels, gen->R = net->info.img_resolution, gen->L = net->info.label_dim;
    gen->per = (size_t)gen->C * gen->R * gen->R;
    if (guidance != 1.0) {
        if (!gnet) return err_set(err, "guidance %g needs a guiding network", guidance);
        if (gnet->info.img_channels != gen->C || gnet->info.img_resolution != gen->R)
            return err_set(err, "the guiding network makes %dx%dx%d images, the network %dx%dx%d",
                           gnet->info.img_channels, gnet->info.img_resolution, gnet->info.img_resolution, gen->C, gen->R,
                           gen->R);
        if (gnet->info.label_dim && gnet->info.label_dim != gen->L)
            return err_set(err, "the guiding network is conditional on %d classes, the network on %d: a guiding network "
                                "must take the same labels or none (label_dim 0)",
                           gnet->info.label_dim, gen->L);
    }
    gen->svt = sampler->desc->vtable;
    if (gen->svt->create(&rt->services, scfg, &rt->ops, &gen->s) != EDM2_OK)
        return err_plugin(err, "sampler %s", sampler->desc->id);
    return 0;
}

static int reserve(generator *gen, int n, edm2_err *err) {
    if (n <= gen->cap) return 0;
    runtime *rt = gen->rt;
    rt_free(rt, gen->x), rt_free(rt, gen->g), rt_free(rt, gen->sigma), rt_free(rt, gen->labels);
    gen->x = rt_alloc(rt, gen->per * n, err);
    gen->g = gen->x ? rt_alloc(rt, gen->per * n, err) : NULL;
    gen->sigma = gen->g ? rt_alloc(rt, (size_t)n, err) : NULL;
    gen->labels = gen->sigma ? rt_alloc(rt, (size_t)n * (gen->L ? gen->L : 1), err) : NULL;
    if (!gen->labels) return -1;
    gen->cap = n;
    return 0;
}

int generator_run(generator *gen, const uint64_t *seeds, const float *noise_host, const float *labels_host, int n,
                  float *out_host, edm2_err *err) {
    if (reserve(gen, n, err)) return -1;
    gen->seeds = seeds, gen->n = n;
    runtime *rt = gen->rt;
    if (noise_host) {
        if (rt_upload(rt, gen->x, noise_host, gen->per * n, err)) return -1;
    } else {
        for (int i = 0; i < n; i++) {
            edm2_rng r = {seeds[i], 0, 0};
            if (rt->bvt->randn(rt->b, gen->x + (size_t)i * gen->per, gen->per, r) != EDM2_OK)
                return err_plugin(err, "backend randn failed");
        }
    }
    if (gen->L) {
        if (labels_host) {
            if (rt_upload(rt, gen->labels, labels_host, (size_t)n * gen->L, err)) return -1;
        } else if (rt->bvt->fill(rt->b, gen->labels, 0.0f, (size_t)n * gen->L) != EDM2_OK) {
            return err_plugin(err, "backend fill failed");
        }
    }
    edm2_denoiser den = {gen, denoise, randn_per_seed, gen->per * n};
    if (gen->svt->sample(gen->s, &den, gen->x) != EDM2_OK) {
        if (gen->last == EDM2_ERR_NOMEM)
            return err_plugin(err, "sampling %d images at once did not fit in memory (lower the job's batch: "
                                   "[generate], [evaluate] or [sweep] batch)",
                              n);
        return err_plugin(err, "sampling failed%s", gen->last != EDM2_OK ? " in the network" : "");
    }
    return rt_download(rt, out_host, gen->x, gen->per * n, err);
}

void generator_close(generator *gen) {
    if (gen->s) gen->svt->destroy(gen->s);
    rt_free(gen->rt, gen->x), rt_free(gen->rt, gen->g), rt_free(gen->rt, gen->sigma), rt_free(gen->rt, gen->labels);
    memset(gen, 0, sizeof *gen);
}
