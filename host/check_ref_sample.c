/* check_ref_sample.c: the check-ref sampling groups: Heun sampling from sample/noise with the network
 * sample/net (labels in/labels), without guidance (sample/out_g1) and with guidance 1.7 by the
 * unconditional guiding network sample/gnet (sample/out_g1.7; model_channels = metadata gnet_channels). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_ref.h"
#include "generate.h"
#include "metadata.h"
#include "validate.h"

/* Opens a network from the metadata, with some keys overridden, and loads `prefix` weights. */
static int open_net(check_ctx *c, net_instance *ni, const char *prefix, const char *const *overrides, edm2_err *err) {
    const plugin_rec *p = c->net.rec;
    cfg nc = {0};
    int rc = meta_section(&c->ref, p->desc, NULL, &nc, "network", err);
    for (const char *const *o = overrides; !rc && o && *o; o += 2) cfg_put(&nc, "network", o[0], o[1]);
    config_view v;
    config_view_init(&v, &nc, "network", p->desc->keys, p->desc->key_count);
    if (!rc) rc = net_open(ni, &c->rt, p, &v.api, err);
    cfg_free(&nc);
    if (rc) return -1;
    float *host = calloc(ni->info.arena_floats + 1, sizeof(float));
    if (!host) return err_set(err, "out of memory");
    rc = arena_load(&ni->info, &c->ref, prefix, host, err);
    if (!rc) rc = rt_upload(&c->rt, ni->params, host, ni->info.arena_floats, err);
    free(host);
    return rc;
}

int group_sample(check_ctx *c, edm2_err *err) {
    const st_tensor *noise_t = st_find(&c->ref, "sample/noise");
    if (!noise_t || !st_find(&c->ref, "sample/out_g1")) {
        skip(c, "sample", "no sample/* group");
        return 0;
    }
    const plugin_rec *srec = registry_find(&c->reg, EDM2_KIND_SAMPLER, "heun", c->rt.backend_rec->desc->backend);
    if (!srec) return err_set(err, "check-ref needs the 'heun' sampler plugin");
    net_instance net, gnet;
    memset(&net, 0, sizeof net), memset(&gnet, 0, sizeof gnet);
    generator gen;
    memset(&gen, 0, sizeof gen);
    cfg sc = {0};
    float *noise = NULL, *out = NULL;
    uint64_t *seeds = NULL;
    int rc = -1, n = (int)noise_t->shape[0];
    if (open_net(c, &net, "sample/net/", NULL, err)) goto done;
    size_t per = (size_t)net.info.img_channels * net.info.img_resolution * net.info.img_resolution;
    if (noise_t->numel != per * n) {
        err_set(err, "%s: sample/noise does not hold %d images of the network's shape", c->ref.path, n);
        goto done;
    }
    if (c->label_dim && n != c->N) {
        err_set(err, "%s: sample/noise has %d images, in/labels %d", c->ref.path, n, c->N);
        goto done;
    }
    noise = malloc(noise_t->numel * sizeof(float));
    out = malloc(noise_t->numel * sizeof(float));
    seeds = calloc((size_t)n, sizeof *seeds);
    if (!noise || !out || !seeds) {
        err_set(err, "out of memory");
        goto done;
    }
    st_to_f32(noise_t, noise);
    if (meta_section(&c->ref, srec->desc, NULL, &sc, "sampler", err)) goto done;
    config_view sv;
    config_view_init(&sv, &sc, "sampler", srec->desc->keys, srec->desc->key_count);
    printf("sample: Heun sampling of sample/net from sample/noise\n");
    if (generator_open(&gen, &c->rt, &net, NULL, 1.0, srec, &sv.api, err)) goto done;
    if (generator_run(&gen, seeds, noise, c->labels, n, out, err)) goto done;
    compare_fwd(c, "sample/out_g1", out, noise_t->numel, noise_t->ndim, noise_t->shape);
    generator_close(&gen);
    /* Guidance by the unconditional guiding network. */
    const char *gch = st_meta(&c->ref, "gnet_channels");
    if (!gch || atoi(gch) == 0 || !st_find(&c->ref, "sample/out_g1.7")) {
        skip(c, "sample/out_g1.7", "no guiding network in the file");
        rc = 0;
        goto done;
    }
    const char *overrides[] = {"label_dim", "0", "model_channels", gch, NULL};
    if (open_net(c, &gnet, "sample/gnet/", overrides, err)) goto done;
    if (generator_open(&gen, &c->rt, &net, &gnet, 1.7, srec, &sv.api, err)) goto done;
    if (generator_run(&gen, seeds, noise, c->labels, n, out, err)) goto done;
    compare_fwd(c, "sample/out_g1.7", out, noise_t->numel, noise_t->ndim, noise_t->shape);
    rc = 0;
done:
    if (gen.s) generator_close(&gen);
    if (gnet.net) net_close(&gnet, &c->rt);
    if (net.net) net_close(&net, &c->rt);
    cfg_free(&sc);
    free(noise), free(out), free(seeds);
    return rc;
}
