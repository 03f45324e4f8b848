/* snapshot.c: snapshot files: writing with full network metadata, reopening a network from one. */
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "metadata.h"
#include "schema.h"
#include "validate.h"

int snapshot_write(const char *path, const net_instance *ni, const float *arena, const cfg *c, const char *section,
                   const snapshot_meta *meta, edm2_err *err) {
    const edm2_plugin_desc *d = ni->rec->desc;
    size_t cap = d->key_count + 13, n = 0;
    const char **keys = calloc(cap, sizeof *keys), **vals = calloc(cap, sizeof *vals);
    char kimg[32], nimg[32], param[64];
    st_out *outs = NULL;
    char **names = NULL;
    size_t nout = 0;
    int rc = -1;
    if (!keys || !vals) {
        err_set(err, "out of memory");
        goto done;
    }
    keys[n] = "edm2.network", vals[n++] = d->id;
    for (uint32_t k = 0; k < d->key_count; k++) {
        const cfg_entry *e = cfg_get(c, section, d->keys[k].name);
        const char *v = e ? e->value : d->keys[k].default_value;
        if (v) keys[n] = d->keys[k].name, vals[n++] = v;
    }
    snprintf(nimg, sizeof nimg, "%lld", (long long)meta->nimg);
    snprintf(kimg, sizeof kimg, "%.3f", meta->nimg / 1000.0);
    keys[n] = "edm2.nimg", vals[n++] = nimg;
    keys[n] = "edm2.kimg", vals[n++] = kimg;
    if (meta->ema_plugin) {
        snprintf(param, sizeof param, "%.17g", meta->ema_param);
        keys[n] = "edm2.ema", vals[n++] = meta->ema_plugin;
        keys[n] = "edm2.ema_param", vals[n++] = param;
        keys[n] = "edm2.ema_label", vals[n++] = meta->ema_label;
    }
    if (meta->note) keys[n] = "edm2.note", vals[n++] = meta->note;
    if (meta->posthoc) keys[n] = "edm2.posthoc", vals[n++] = "1";
    if (meta->latents && meta->latent_scale && meta->latent_bias) {
        keys[n] = "edm2.latents", vals[n++] = meta->latents;
        keys[n] = "edm2.latent_scale", vals[n++] = meta->latent_scale;
        keys[n] = "edm2.latent_bias", vals[n++] = meta->latent_bias;
    }
    if (arena_outputs(&ni->info, arena, "", 0, ST_F32, &outs, &names, &nout)) {
        err_set(err, "out of memory");
        goto done;
    }
    rc = st_write(path, outs, nout, keys, vals, n, err);
done:
    if (outs) arena_outputs_free(outs, names, nout);
    free(keys);
    free(vals);
    return rc;
}

int snapshot_nimg(const st_file *f, int64_t *nimg, edm2_err *err) {
    if (st_meta(f, "edm2.nimg")) return meta_int(f, "edm2.nimg", 0, SNAPSHOT_MAX_NIMG, nimg, err);
    /* Reference naming: ...-KKKKKKK-S.SSS.*; nimg = ((kimg * 1000 + 999) // 1024) * 1024. */
    const char *base = strrchr(f->path, '/');
    base = base ? base + 1 : f->path;
    for (const char *dash = strchr(base, '-'); dash; dash = strchr(dash + 1, '-')) {
        int digits = 0;
        while (digits < 8 && dash[1 + digits] >= '0' && dash[1 + digits] <= '9') digits++;
        if (digits == 7 && dash[8] == '-') {
            long long k = strtoll(dash + 1, NULL, 10);
            *nimg = ((k * 1000 + 999) / 1024) * 1024;
            return 0;
        }
    }
    return err_set(err, "%s: no metadata edm2.nimg and no kimg in the file name (...-KKKKKKK-S.SSS.safetensors)", f->path);
}

int snapshot_open(const char *path, const plugin_registry *reg, runtime *rt, net_instance *ni, st_file *f,
                  const char *precision, edm2_err *err) {
    memset(ni, 0, sizeof *ni);
    if (st_open(f, path, err)) return -1;
    if (st_meta(f, "edm2.checkpoint"))
        return err_set(err, "%s: a training checkpoint (parameters, optimizer state, EMAs), not a network snapshot: "
                            "give one of the run's network-snapshot-*.safetensors",
                       path);
    const char *id = st_meta(f, "edm2.network");
    if (!id) id = "mp_unet"; /* reference-format files carry only the hyperparameters */
    const plugin_rec *p = registry_find(reg, EDM2_KIND_NETWORK, id, rt->backend_rec->desc->backend);
    if (!p) return err_set(err, "%s: network plugin '%.100s' (for backend %s) not found", path, id, rt->backend_rec->desc->id);
    cfg c = {0};
    if (meta_section(f, p->desc, NULL, &c, "network", err)) {
        cfg_free(&c);
        return -1;
    }
    const int override = precision && *precision;
    if (override && !schema_find(p->desc->keys, p->desc->key_count, "precision")) {
        cfg_free(&c);
        return err_set(err, "%s: precision = %s: network plugin '%.100s' has no precision key", path, precision, id);
    }
    if (override && cfg_put(&c, "network", "precision", precision)) {
        cfg_free(&c);
        return err_set(err, "out of memory");
    }
    config_view v;
    config_view_init(&v, &c, "network", p->desc->keys, p->desc->key_count);
    int rc = net_create(ni, rt, p, &v.api, err);
    cfg_free(&c);
    if (rc && override) return err_set(err, "%s with precision = %s: %s", path, precision, err->msg);
    if (rc) return err_set(err, "%s: its metadata describe no valid %s network (%s)", path, id, err->msg);
    /* Every tensor of the file is a parameter and every parameter is there, before any arena is allocated. */
    if (arena_check(&ni->info, f, "", err) || net_alloc_params(ni, rt, err)) return -1;
    float *host = malloc((ni->info.arena_floats + 1) * sizeof(float));
    if (!host) return err_set(err, "out of memory");
    memset(host, 0, ni->info.arena_floats * sizeof(float));
    rc = arena_fill(&ni->info, f, "", host, err);
    if (!rc) rc = rt_upload(rt, ni->params, host, ni->info.arena_floats, err);
    free(host);
    return rc;
}
