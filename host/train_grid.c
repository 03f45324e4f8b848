/* train_grid.c: the sample grid at the end of training (RUN_DIR/samples.png): one row per class for a
 * class-conditional network, sampled from one EMA with the [sampler] plugin. For latent data and a config
 * with a [vae] section, the first two rows are decoded to images (decoding is costly at 512x512). */
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "image_io.h"
#include "log.h"
#include "trainer.h"
#include "vae_net.h"

/* The EMA the grid samples from ([training] grid_ema, default the last), or -1 with an error. */
static long grid_ema(const trainer *t, edm2_err *err) {
    config_view tv;
    config_view_host(&tv, t->rc->cfg, "training");
    const char *want = tv.api.get(tv.api.ctx, "grid_ema");
    if (!*want) return (long)t->nema - 1;
    for (size_t i = 0; i < t->nema; i++)
        if (!strcmp(t->evt->label(t->ema, i), want)) return (long)i;
    return err_set(err, "[training] grid_ema = '%s': not one of the tracked EMAs", want);
}

/* The sampler: the [sampler] plugin, else heun with its defaults. */
static const plugin_rec *grid_sampler(const trainer *t, edm2_err *err) {
    const plugin_rec *srec = t->rc->plugin[EDM2_KIND_SAMPLER];
    if (!srec) srec = registry_find(t->rc->registry, EDM2_KIND_SAMPLER, "heun", t->rt.backend_rec->desc->backend);
    if (!srec) err_set(err, "no [sampler] section and no 'heun' sampler plugin for the sample grid");
    return srec;
}

int trainer_grid_check(const trainer *t, edm2_err *err) { return grid_ema(t, err) < 0 || !grid_sampler(t, err) ? -1 : 0; }

/* The grid of the first m latents out[m, C, R, R] decoded by the [vae] plugin. */
static int decoded_grid(trainer *t, const char *path, const float *out, int m, int cols, edm2_err *err) {
    vae_instance vi;
    config_view vv;
    config_view_plugin(&vv, t->rc, EDM2_KIND_VAE);
    const int R = t->net.info.img_resolution;
    float *img = NULL;
    int rc = -1;
    if (vae_open(&vi, &t->rt, t->rc->plugin[EDM2_KIND_VAE], &vv.api, err) ||
        vae_scaling_parse(&vi, t->data.latent_scale, t->data.latent_bias, err))
        goto done;
    if (vi.info.latent_channels != t->net.info.img_channels) {
        err_set(err, "[vae] decodes %d channels, the network makes %d", vi.info.latent_channels, t->net.info.img_channels);
        goto done;
    }
    const int OR = R * vi.info.downsample;
    if (!(img = malloc((size_t)m * 3 * OR * OR * sizeof *img))) {
        err_set(err, "out of memory");
        goto done;
    }
    if (vae_decode_latents(&vi, out, m, R, R, img, err) || grid_write(path, img, m, 3, OR, cols, err)) goto done;
    rc = 0;
done:
    vae_close(&vi);
    free(img);
    return rc;
}

int trainer_write_grid(trainer *t, edm2_err *err) {
    config_view tv;
    config_view_host(&tv, t->rc->cfg, "training");
    const int cols = (int)edm2_cfg_int(&tv.api, "grid_columns", 10);
    const long w = grid_ema(t, err);
    const plugin_rec *srec = w < 0 ? NULL : grid_sampler(t, err);
    if (!srec) return -1;
    const size_t which = (size_t)w;
    config_view sv;
    config_view_init(&sv, t->rc->cfg, "sampler", srec->desc->keys, srec->desc->key_count);
    const int L = t->net.info.label_dim, rows = L ? L : cols, n = rows * cols;
    const size_t per = (size_t)t->net.info.img_channels * t->net.info.img_resolution * t->net.info.img_resolution;
    /* Sample the EMA: copy it into the parameters for the duration (restored from the host copy after). */
    float *params_copy = malloc((t->net.info.arena_floats + 1) * sizeof(float));
    float *out = malloc(per * n * sizeof(float)), *labels = calloc((size_t)n * (L ? L : 1), sizeof(float));
    uint64_t *seeds = malloc(n * sizeof *seeds);
    generator gen;
    memset(&gen, 0, sizeof gen);
    int rc = -1;
    if (!params_copy || !out || !labels || !seeds) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        seeds[i] = (uint64_t)i;
        if (L) labels[(size_t)i * L + (i / cols) % L] = 1.0f; /* one row per class */
    }
    if (rt_download(&t->rt, params_copy, t->net.params, t->net.info.arena_floats, err)) goto done;
    if (t->rt.bvt->copy(t->rt.b, t->net.params, t->avg[which], t->net.info.arena_floats * sizeof(float)) != EDM2_OK) {
        err_plugin(err, "backend copy failed");
        goto done;
    }
    if (generator_open(&gen, &t->rt, &t->net, NULL, 1.0, srec, &sv.api, err)) goto done;
    double t0 = now_s();
    int bs = 32;
    for (int i = 0; i < n; i += bs) {
        int m = n - i < bs ? n - i : bs;
        if (generator_run(&gen, seeds + i, NULL, L ? labels + (size_t)i * L : NULL, m, out + per * i, err)) goto done;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/samples.png", t->run_dir);
    if (t->data.latents[0] && t->rc->plugin[EDM2_KIND_VAE]) {
        if (decoded_grid(t, path, out, n < 2 * cols ? n : 2 * cols, cols, err)) goto done;
    } else if (grid_write(path, out, n, t->net.info.img_channels, t->net.info.img_resolution, cols, err))
        goto done;
    LOG_INFO("sample grid %s: %d images from EMA %s with %s (%d evaluations each), %.1f s", path, n,
             t->evt->label(t->ema, which), srec->desc->id, gen.svt->num_evals(gen.s), now_s() - t0);
    rc = 0;
done:
    if (gen.s) generator_close(&gen);
    if (params_copy && rt_upload(&t->rt, t->net.params, params_copy, t->net.info.arena_floats, err)) rc = -1;
    free(params_copy), free(out), free(labels), free(seeds);
    return rc;
}
