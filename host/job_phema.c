/* job_phema.c: the `phema` job: post-hoc EMA reconstruction from a run's snapshots. Reads the snapshots
 * of the [ema] plugin's family, solves for the coefficients (phema.c) at the requested snapshot time and
 * writes one snapshot per requested profile (phema-KKKKKKK-S.SSS.safetensors). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "fileio.h"
#include "jobs.h"
#include "log.h"
#include "metadata.h"
#include "phema.h"
#include "progress.h"
#include "snapshot.h"

#define MAX_OUT 256

typedef struct input {
    char *path;
    double t, p;
} input;

static int cmp_input(const void *a, const void *b) {
    const input *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t ? 1 : (x->p < y->p ? -1 : x->p > y->p);
}

/* Snapshots in `dir` made by EMA plugin `ema_id` (not post-hoc outputs), with their time and parameter. */
static int list_inputs(const char *dir, const char *ema_id, input **out, int *n, edm2_err *err) {
    DIR *d = opendir(dir);
    if (!d) return err_set(err, "[phema] snapshots = '%s': cannot open folder", dir);
    *out = NULL;
    *n = 0;
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors") || strstr(e->d_name, ".tmp.")) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        st_file f;
        edm2_err why;
        if (st_open(&f, path, &why)) {
            LOG_WARN("skipping %s", why.msg);
            st_close(&f);
            continue;
        }
        const char *id = st_meta(&f, "edm2.ema");
        if (id && !strcmp(id, ema_id) && st_meta(&f, "edm2.ema_param") && !st_meta(&f, "edm2.posthoc")) {
            int64_t nimg;
            double param;
            if (snapshot_nimg(&f, &nimg, err) || meta_number(&f, "edm2.ema_param", 0, 1e300, &param, err)) rc = -1;
            input *o = rc ? NULL : realloc(*out, (size_t)(*n + 1) * sizeof *o);
            if (!rc && !o) rc = err_set(err, "out of memory");
            if (o) {
                *out = o;
                o[*n] = (input){strdup(path), (double)nimg, param};
                (*n)++;
            }
        }
        st_close(&f);
    }
    closedir(d);
    if (!rc && *n > 1) qsort(*out, (size_t)*n, sizeof **out, cmp_input);
    return rc;
}

/* Snapshots averaged together must describe the same network (every hyperparameter of its plugin). */
static int same_network(const st_file *a, const st_file *b, const edm2_plugin_desc *d, edm2_err *err) {
    const char *na = st_meta(a, "edm2.network"), *nb = st_meta(b, "edm2.network");
    if ((na || nb) && (!na || !nb || strcmp(na, nb)))
        return err_set(err, "%s: network '%s', but %s holds '%s'", b->path, nb ? nb : "?", a->path, na ? na : "?");
    for (uint32_t k = 0; k < d->key_count; k++) {
        const char *va = st_meta(a, d->keys[k].name), *vb = st_meta(b, d->keys[k].name);
        int ua = !va || meta_is_unset(va), ub = !vb || meta_is_unset(vb);
        if (ua != ub || (!ua && strcmp(va, vb)))
            return err_set(err, "%s: metadata %s = '%.100s', but %s says '%.100s': snapshots of different networks",
                           b->path, d->keys[k].name, ub ? "(unset)" : vb, a->path, ua ? "(unset)" : va);
    }
    return 0;
}

int job_phema(const run_config *rc, edm2_err *err) {
    config_view pv, jv, ev, bv;
    config_view_host(&pv, rc->cfg, "phema");
    config_view_host(&jv, rc->cfg, "job");
    config_view_plugin(&ev, rc, EDM2_KIND_EMA);
    config_view_plugin(&bv, rc, EDM2_KIND_BACKEND);
    const char *dir = pv.api.get(pv.api.ctx, "snapshots"), *outdir = pv.api.get(pv.api.ctx, "outdir");
    if (!*outdir) outdir = dir;
    double at_kimg = edm2_cfg_float(&pv.api, "at_kimg", 0), stds[MAX_OUT];
    int nout = edm2_cfg_floats(&pv.api, "stds", stds, MAX_OUT);
    const plugin_rec *erec = rc->plugin[EDM2_KIND_EMA];
    const edm2_ema_vtable *evt = erec->desc->vtable;
    edm2_ema *ema = NULL;
    runtime rt;
    memset(&rt, 0, sizeof rt);
    input *in = NULL;
    int nin = 0, status = 1;
    net_instance net;
    memset(&net, 0, sizeof net);
    st_file first;
    memset(&first, 0, sizeof first);
    cfg netcfg = {0};
    float *acc[MAX_OUT] = {0}, *theta = NULL, *host = NULL;
    double *X = NULL, *in_t = NULL, *in_p = NULL;
    if (nout < 1 || nout > MAX_OUT) {
        err_set(err, "[phema] stds: expected 1 to %d values", MAX_OUT);
        goto done;
    }
    if (runtime_open(&rt, rc->plugin[EDM2_KIND_BACKEND], &bv.api, (int)edm2_cfg_int(&jv.api, "threads", 0), err)) goto done;
    if (evt->create(&rt.services, &ev.api, &rt.ops, &ema) != EDM2_OK) {
        err_plugin(err, "ema %s", erec->desc->id);
        goto done;
    }
    double lo, hi;
    evt->param_range(ema, &lo, &hi);
    for (int j = 0; j < nout; j++)
        if (!(stds[j] > lo && stds[j] < hi)) {
            err_set(err, "[phema] stds: %g is outside the valid range (%g, %g) of EMA profile '%s'", stds[j], lo, hi,
                    erec->desc->id);
            goto done;
        }
    if (list_inputs(dir, erec->desc->id, &in, &nin, err)) goto done;
    if (!nin) {
        err_set(err, "[phema] snapshots = '%s': no snapshots of EMA profile '%s' there", dir, erec->desc->id);
        goto done;
    }
    /* The output time: the newest snapshot, or the one at at_kimg. */
    double t_out = in[nin - 1].t;
    if (at_kimg > 0) {
        t_out = -1;
        for (int i = 0; i < nin; i++)
            if (fabs(in[i].t / 1000.0 - at_kimg) < 0.5) t_out = in[i].t;
        if (t_out < 0) {
            char list[512] = "";
            for (int i = 0; i < nin && strlen(list) < 400; i++)
                if (!i || in[i].t != in[i - 1].t)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.0f", *list ? ", " : "", floor(in[i].t / 1000));
            err_set(err, "[phema] at_kimg = %g matches no snapshot (kimg of the snapshots: %s)", at_kimg, list);
            goto done;
        }
    }
    int used = 0;
    for (int i = 0; i < nin; i++)
        if (in[i].t > 0 && in[i].t <= t_out) in[used++] = in[i];
        else free(in[i].path);
    nin = used;
    if (!nin) {
        err_set(err, "[phema] no snapshots with 0 < t <= %.0f images", t_out);
        goto done;
    }
    X = malloc((size_t)nin * nout * sizeof *X);
    in_t = malloc((size_t)nin * sizeof *in_t), in_p = malloc((size_t)nin * sizeof *in_p);
    if (!X || !in_t || !in_p) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < nin; i++) in_t[i] = in[i].t, in_p[i] = in[i].p;
    if (phema_solve(evt, ema, in_t, in_p, nin, t_out, stds, nout, X, err)) goto done;
    /* theta_out_j = sum_i X_ij theta_i, accumulated on the backend. */
    if (snapshot_open(in[0].path, rc->registry, &rt, &net, &first, NULL, err)) goto done;
    if (meta_section(&first, net.rec->desc, NULL, &netcfg, "network", err)) goto done;
    if (rc->dry_run) { /* (check: the inputs are open and agree) */
        status = 0;
        goto done;
    }
    LOG_INFO("post-hoc EMA: %d snapshots of '%s' up to kimg %.3f -> %d profile%s (%s inner products)", nin,
             erec->desc->id, t_out / 1000, nout, nout == 1 ? "" : "s", evt->inner_product ? "closed-form" : "numerical");
    size_t A = net.info.arena_floats;
    host = malloc((A + 1) * sizeof(float));
    if (!host || !(theta = rt_alloc(&rt, A, err))) {
        if (!host) err_set(err, "out of memory");
        goto done;
    }
    for (int j = 0; j < nout; j++)
        if (!(acc[j] = rt_alloc(&rt, A, err))) goto done;
    const double t0 = now_s();
    double last_log = t0;
    for (int i = 0; i < nin; i++) {
        if (now_s() - last_log >= 5) { /* (a large network's snapshots take a while to read) */
            last_log = now_s();
            progress_log("post-hoc EMA", "snapshots", i, nin, 0, t0, NULL);
        }
        st_file f;
        if (st_open(&f, in[i].path, err)) {
            st_close(&f);
            goto done;
        }
        int bad = same_network(&first, &f, net.rec->desc, err) || arena_load(&net.info, &f, "", host, err);
        st_close(&f);
        if (bad || rt_upload(&rt, theta, host, A, err)) goto done;
        for (int j = 0; j < nout; j++)
            if (rt.bvt->axpby(rt.b, acc[j], (float)X[i * nout + j], theta, 1.0f, A) != EDM2_OK) {
                err_plugin(err, "backend axpby failed");
                goto done;
            }
    }
    if (make_dirs(outdir, err)) goto done;
    for (int j = 0; j < nout; j++) {
        char path[4200], label[32], note[128];
        /* Named like the reference (0.050) when three decimals say it exactly, else by value. */
        snprintf(label, sizeof label, "%.3f", stds[j]);
        if (fabs(strtod(label, NULL) - stds[j]) > 1e-12) snprintf(label, sizeof label, "%g", stds[j]);
        snprintf(path, sizeof path, "%s/phema-%07lld-%s.safetensors", outdir, (long long)(t_out / 1000), label);
        snprintf(note, sizeof note, "post-hoc reconstruction from %d snapshots", nin);
        if (rt_download(&rt, host, acc[j], A, err)) goto done;
        snapshot_meta meta = {(int64_t)t_out, erec->desc->id, stds[j], label, note, 1, st_meta(&first, "edm2.latents"),
                              st_meta(&first, "edm2.latent_scale"), st_meta(&first, "edm2.latent_bias")};
        if (snapshot_write(path, &net, host, &netcfg, "network", &meta, err)) goto done;
        LOG_INFO("wrote %s", path);
    }
    status = 0;
done:
    for (int j = 0; j < MAX_OUT; j++) rt_free(&rt, acc[j]);
    rt_free(&rt, theta);
    if (net.net) net_close(&net, &rt);
    st_close(&first);
    cfg_free(&netcfg);
    if (ema) evt->destroy(ema);
    if (rt.b) runtime_close(&rt);
    for (int i = 0; i < nin; i++) free(in[i].path);
    free(in), free(X), free(in_t), free(in_p), free(host);
    return status;
}
