/* vae_net.c: the job's VAE with its weights and the latent scaling (vae_net.h). */
#include "vae_net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pretrained.h"

static int vae_alias(void *ctx, int layout, size_t i, char *out, size_t len) {
    const vae_instance *vi = ctx;
    return vi->vt->alias && vi->vt->alias(vi->v, layout, i, out, len);
}

static int read_floats(const edm2_config *cfg, const char *section, const char *key, double *out, int want,
                       edm2_err *err) {
    const int n = edm2_cfg_floats(cfg, key, out, VAE_MAX_LATENT);
    if (n != want) return err_set(err, "[%s] %s: %d values for %d latent channels", section, key, n, want);
    return 0;
}

int latent_scaling_read(const edm2_config *cfg, const char *section, int L, float *scale, float *bias, edm2_err *err) {
    double mean[VAE_MAX_LATENT], std[VAE_MAX_LATENT];
    if (L < 1 || L > VAE_MAX_LATENT) return err_set(err, "[%s]: %d latent channels (1 to %d)", section, L, VAE_MAX_LATENT);
    if (read_floats(cfg, section, "latent_mean", mean, L, err) || read_floats(cfg, section, "latent_std", std, L, err))
        return -1;
    const float fm = (float)edm2_cfg_float(cfg, "final_mean", 0), fs = (float)edm2_cfg_float(cfg, "final_std", 0.5);
    for (int c = 0; c < L; c++) {
        if (!(std[c] > 0) || !(fs > 0)) return err_set(err, "[%s] latent_std and final_std must be positive", section);
        scale[c] = fs / (float)std[c];
        bias[c] = fm - (float)mean[c] * scale[c];
    }
    return 0;
}

void latent_scaling_format(const float *scale, const float *bias, int L, char *s, char *b, size_t len) {
    size_t at_s = 0, at_b = 0;
    s[0] = b[0] = 0;
    for (int c = 0; c < L && at_s < len && at_b < len; c++) {
        at_s += (size_t)snprintf(s + at_s, len - at_s, "%s%.9g", c ? "," : "", scale[c]);
        at_b += (size_t)snprintf(b + at_b, len - at_b, "%s%.9g", c ? "," : "", bias[c]);
    }
}

int vae_open(vae_instance *vi, runtime *rt, const plugin_rec *rec, const edm2_config *cfg, edm2_err *err) {
    memset(vi, 0, sizeof *vi);
    vi->rt = rt;
    vi->rec = rec;
    vi->vt = rec->desc->vtable;
    const char *w = cfg->get(cfg->ctx, "weights");
    snprintf(vi->weights, sizeof vi->weights, "%s", w ? w : "");
    if (!vi->weights[0]) return err_set(err, "[vae] weights: the VAE weights file is not set");
    if (vi->vt->create(&rt->services, cfg, &rt->ops, &vi->v) != EDM2_OK) return err_plugin(err, "[vae] %s", rec->desc->id);
    vi->info.struct_size = sizeof vi->info;
    if (vi->vt->get_info(vi->v, &vi->info) != EDM2_OK || vi->info.latent_channels < 1 ||
        vi->info.latent_channels > VAE_MAX_LATENT || vi->info.downsample < 1)
        return err_plugin(err, "[vae] %s: get_info", rec->desc->id);
    const int L = vi->info.latent_channels;
    if (latent_scaling_read(cfg, "vae", L, vi->scale, vi->bias, err)) return -1;
    const pretrained_table table = {rec->desc->id, vi->info.params, vi->info.param_count, vi->info.arena_floats,
                                    vi->info.layout, vae_alias, vi,
                                    " (a VAE in diffusers' or the single-file checkpoints' names; check the [vae] "
                                    "architecture keys)"};
    float *host = NULL, *arena = NULL;
    int status = -1;
    /* The file is closed after reading and the host copy freed by the upload, before prepare makes the plugin's
     * own copy: at most two copies of the weights at a time. */
    if (pretrained_load(&table, vi->weights, &host, vi->layout, sizeof vi->layout, err) ||
        pretrained_upload(rt, &host, vi->info.arena_floats, &arena, err))
        goto done;
    if (vi->vt->prepare(vi->v, arena) != EDM2_OK) {
        err_plugin(err, "[vae] %s: preparing the weights of %s", rec->desc->id, vi->weights);
        goto done;
    }
    LOG_INFO("vae: %s (%d latent channels, %dx downsampling) on %s, weights %s (%s)", rec->desc->id, L,
             vi->info.downsample, rt->bvt->device_name(rt->b), vi->weights, vi->layout);
    status = 0;
done:
    free(host);
    rt_free(rt, arena);
    return status;
}

void vae_close(vae_instance *vi) {
    if (vi->v) vi->vt->destroy(vi->v);
    if (vi->rt) rt_free(vi->rt, vi->in), rt_free(vi->rt, vi->out);
    memset(vi, 0, sizeof *vi);
}

void vae_scaling_text(const vae_instance *vi, char *scale, char *bias, size_t len) {
    latent_scaling_format(vi->scale, vi->bias, vi->info.latent_channels, scale, bias, len);
}

int vae_scaling_parse(vae_instance *vi, const char *scale, const char *bias, edm2_err *err) {
    const char *s = scale, *b = bias;
    for (int c = 0; c < vi->info.latent_channels; c++) {
        char *e1, *e2;
        vi->scale[c] = strtof(s, &e1);
        vi->bias[c] = strtof(b, &e2);
        if (e1 == s || e2 == b || !(vi->scale[c] != 0) || !isfinite(vi->scale[c]) || !isfinite(vi->bias[c]))
            return err_set(err, "latent scaling '%.60s' / '%.60s': expected %d finite values each", scale, bias,
                           vi->info.latent_channels);
        s = *e1 == ',' ? e1 + 1 : e1;
        b = *e2 == ',' ? e2 + 1 : e2;
    }
    return 0;
}

static int ensure(vae_instance *vi, float **p, size_t *cap, size_t floats, edm2_err *err) {
    if (floats <= *cap) return 0;
    rt_free(vi->rt, *p);
    *cap = 0;
    if (!(*p = rt_alloc(vi->rt, floats, err))) return -1;
    *cap = floats;
    return 0;
}

int vae_encode_images(vae_instance *vi, const float *images, int n, int H, int W, float *moments, edm2_err *err) {
    const int d = vi->info.downsample, L = vi->info.latent_channels;
    const size_t per_in = (size_t)3 * H * W, per_out = (size_t)2 * L * (H / d) * (W / d);
    if (ensure(vi, &vi->in, &vi->in_cap, per_in * n, err) || ensure(vi, &vi->out, &vi->out_cap, per_out * n, err) ||
        rt_upload(vi->rt, vi->in, images, per_in * n, err))
        return -1;
    if (vi->vt->encode(vi->v, vi->in, n, H, W, vi->out) != EDM2_OK)
        return err_plugin(err, "[vae] %s: encoding %d images of %dx%d", vi->rec->desc->id, n, H, W);
    return rt_download(vi->rt, moments, vi->out, per_out * n, err);
}

int vae_decode_latents(vae_instance *vi, const float *latents, int n, int h, int w, float *images, edm2_err *err) {
    const int d = vi->info.downsample, L = vi->info.latent_channels;
    const size_t per_in = (size_t)L * h * w, per_out = (size_t)3 * (h * d) * (w * d);
    float *raw = malloc(per_in * n * sizeof *raw);
    if (!raw) return err_set(err, "out of memory");
    for (int i = 0; i < n; i++)
        for (int c = 0; c < L; c++)
            for (size_t p = 0; p < (size_t)h * w; p++) {
                const size_t k = ((size_t)i * L + c) * h * w + p;
                raw[k] = (latents[k] - vi->bias[c]) / vi->scale[c];
            }
    int rc = ensure(vi, &vi->in, &vi->in_cap, per_in * n, err) || ensure(vi, &vi->out, &vi->out_cap, per_out * n, err) ||
             rt_upload(vi->rt, vi->in, raw, per_in * n, err);
    free(raw);
    if (rc) return -1;
    if (vi->vt->decode(vi->v, vi->in, n, h, w, vi->out) != EDM2_OK)
        return err_plugin(err, "[vae] %s: decoding %d latents of %dx%d", vi->rec->desc->id, n, h, w);
    if (rt_download(vi->rt, images, vi->out, per_out * n, err)) return -1;
    for (size_t k = 0; k < per_out * n; k++) images[k] = 2.0f * images[k] - 1.0f;
    return 0;
}
