/* feature_net.c: the job's feature network with its weights (features.h). */
#include "feature_net.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_io.h"
#include "log.h"
#include "pretrained.h"

#define CHUNK 64 /* images per call of the plugin */

int feat_open(feat_instance *fi, runtime *rt, const plugin_rec *rec, const edm2_config *cfg, edm2_err *err) {
    memset(fi, 0, sizeof *fi);
    fi->rt = rt;
    fi->rec = rec;
    fi->vt = rec->desc->vtable;
    const char *w = cfg->get(cfg->ctx, "weights");
    snprintf(fi->weights, sizeof fi->weights, "%s", w ? w : "");
    if (!fi->weights[0]) return err_set(err, "[features] weights: the weights file is not set");
    if (fi->vt->create(&rt->services, cfg, &rt->ops, &fi->f) != EDM2_OK)
        return err_plugin(err, "[features] %s", fi->rec->desc->id);
    fi->info.struct_size = sizeof fi->info;
    if (fi->vt->get_info(fi->f, &fi->info) != EDM2_OK || fi->info.dim < 1)
        return err_plugin(err, "[features] %s: get_info", fi->rec->desc->id);
    char hint[96];
    snprintf(hint, sizeof hint, " (edm2host plugins --describe %s says how they are made)", fi->rec->desc->id);
    const pretrained_table table = {fi->rec->desc->id, fi->info.params, fi->info.param_count, fi->info.arena_floats, NULL,
                                    NULL, NULL, hint};
    float *host = NULL, *arena = NULL;
    char layout[128];
    int status = -1;
    if (pretrained_load(&table, fi->weights, &host, layout, sizeof layout, err)) goto done;
    uint64_t h = 0xCBF29CE484222325ull;
    const unsigned char *bytes = (const unsigned char *)host;
    for (size_t i = 0; i < fi->info.arena_floats * sizeof(float); i++) h = (h ^ bytes[i]) * 0x100000001B3ull;
    snprintf(fi->fingerprint, sizeof fi->fingerprint, "%016" PRIx64, h);
    if (pretrained_upload(rt, &host, fi->info.arena_floats, &arena, err)) goto done;
    if (fi->vt->prepare(fi->f, arena) != EDM2_OK) {
        err_plugin(err, "[features] %s: preparing the weights of %s", fi->rec->desc->id, fi->weights);
        goto done;
    }
    LOG_INFO("features: %s (%d-d, %.1f GFLOP per image) on %s, weights %s (fingerprint %s)", fi->rec->desc->id,
             fi->info.dim, fi->info.gflops_per_image, rt->bvt->device_name(rt->b), fi->weights, fi->fingerprint);
    status = 0;
done:
    free(host);
    rt_free(rt, arena);
    return status;
}

void feat_close(feat_instance *fi) {
    if (fi->f) fi->vt->destroy(fi->f);
    if (fi->rt) rt_free(fi->rt, fi->img), rt_free(fi->rt, fi->feat);
    free(fi->host_img);
    memset(fi, 0, sizeof *fi);
}

int feat_extract(feat_instance *fi, const float *images, int n, int C, int R, float *features, edm2_err *err) {
    const size_t per = (size_t)C * R * R, dim = (size_t)fi->info.dim;
    if (per != fi->chunk_floats) { /* (re)allocate for this image size */
        rt_free(fi->rt, fi->img), rt_free(fi->rt, fi->feat);
        free(fi->host_img);
        fi->img = fi->feat = fi->host_img = NULL;
        fi->chunk_floats = 0;
        if (!(fi->img = rt_alloc(fi->rt, per * CHUNK, err)) || !(fi->feat = rt_alloc(fi->rt, dim * CHUNK, err)))
            return -1;
        if (!(fi->host_img = malloc(per * CHUNK * sizeof(float)))) return err_set(err, "out of memory");
        fi->chunk_floats = per;
    }
    for (int i = 0; i < n; i += CHUNK) {
        const int m = n - i < CHUNK ? n - i : CHUNK;
        const float *x = images + (size_t)i * per;
        for (size_t k = 0; k < (size_t)m * per; k++) fi->host_img[k] = (float)pixel_quantize(x[k]) / 255.0f;
        if (rt_upload(fi->rt, fi->img, fi->host_img, (size_t)m * per, err)) return -1;
        if (fi->vt->extract(fi->f, fi->img, m, C, R, R, fi->feat) != EDM2_OK)
            return err_plugin(err, "[features] %s: extracting the features of %d images", fi->rec->desc->id, m);
        if (rt_download(fi->rt, features + (size_t)i * dim, fi->feat, (size_t)m * dim, err)) return -1;
    }
    return 0;
}
