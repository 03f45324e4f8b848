/* job_evaluate.c: the `evaluate` job: generates images from a snapshot (seeds, labels, sampler and guidance
 * as in `generate`), without writing them unless asked, or reads them from a folder of PNGs (`images`, e.g.
 * what a generate job made on several processes), and measures them against reference images from
 * [data]: the sliced Wasserstein distance on Laplacian-pyramid patches (metric_swd.h; no weights needed) and
 * a Fréchet distance in the feature space of the [features] network (frechet.h): the FID with inception_v3,
 * FD_DINOv2 with dinov2 (fd_metric), each against reference statistics computed once from [data] and saved.
 * A snapshot of VAE latents is decoded by the [vae] plugin first, and measured against the images of [data]
 * (the pixel dataset, e.g. the 512x512 folder its latents were made from). The result is appended to
 * metrics.jsonl beside the snapshot (in the folder of images). The processes of an MPI launch share the
 * batches out and the first adds what each measured, in batch order (eval_sets.h): the same values, bitwise,
 * as one process. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "config.h"
#include "data_sources.h"
#include "dataset.h"
#include "eval_sets.h"
#include "feature_net.h"
#include "fileio.h"
#include "frechet.h"
#include "gen_session.h"
#include "image_io.h"
#include "jobs.h"
#include "log.h"
#include "process_group.h"
#include "progress.h"
#include "vae_net.h"

#define STREAM_REF 0x5245465345ull /* "REFSE": which dataset images form the reference */
#define REF_BATCH 64

void eval_refs_free(eval_refs *r) {
    swd_set_free(&r->swd);
    fid_stats_free(&r->fid);
}

const char *fd_metric(const plugin_rec *features, char *name, size_t len) {
    if (!strcmp(features->desc->id, "inception_v3")) snprintf(name, len, "fid");
    else snprintf(name, len, "fd_%s", features->desc->id);
    return name;
}

const char *fd_display(const char *metric, char *name, size_t len) {
    if (!strcmp(metric, "fid")) snprintf(name, len, "FID");
    else if (!strncmp(metric, "fd_", 3)) snprintf(name, len, "FD_%s", metric + 3);
    else snprintf(name, len, "%s", metric); /* (empty: no Fréchet distance asked for) */
    return name;
}

/* metrics = swd and/or one Fréchet distance (fid or fd_ID), comma-separated, into *swd and fd[FD_NAME_MAX]
 * (empty: none; [section] metrics names the key in messages). */
static int parse_metrics(const char *s, const char *section, int *swd, char *fd, edm2_err *err) {
    *swd = 0, *fd = 0;
    const char *all = s;
    while (*s) {
        size_t n = strcspn(s, ",");
        while (n && s[n - 1] == ' ') n--;
        if (n == 3 && !strncmp(s, "swd", 3)) *swd = 1;
        else if (((n == 3 && !strncmp(s, "fid", 3)) || (n > 3 && n < FD_NAME_MAX && !strncmp(s, "fd_", 3))) && *fd)
            return err_set(err, "[%s] metrics = %s: one Fréchet distance per run (one [features] network)", section, all);
        else if ((n == 3 && !strncmp(s, "fid", 3)) || (n > 3 && n < FD_NAME_MAX && !strncmp(s, "fd_", 3)))
            snprintf(fd, FD_NAME_MAX, "%.*s", (int)n, s);
        else return err_set(err, "[%s] metrics: '%.*s' is not a metric (swd, fid, fd_dinov2, or swd with one of them)",
                            section, (int)n, s);
        s += strcspn(s, ",");
        while (*s == ',' || *s == ' ') s++;
    }
    return *swd || *fd ? 0 : err_set(err, "[%s] metrics is empty: expected swd, fid, fd_dinov2, or swd,fid", section);
}

int evaluate_metrics(const run_config *rc, const char *section, int *swd, char *fd, edm2_err *err) {
    config_view v;
    config_view_host(&v, rc->cfg, section);
    if (parse_metrics(v.api.get(v.api.ctx, "metrics"), section, swd, fd, err)) return -1;
    const plugin_rec *features = rc->plugin[EDM2_KIND_FEATURES];
    char measures[FD_NAME_MAX];
    if (!*fd || (features && !strcmp(fd_metric(features, measures, sizeof measures), fd))) return 0;
    const cfg_entry *m = cfg_get(rc->cfg, section, "metrics"); /* (set: the default, swd, has none) */
    char display[FD_NAME_MAX + 8];
    fd_display(fd, display, sizeof display);
    if (features)
        return err_set(err, "%s: [%s] metrics = %s: the [features] network %s measures %s, not %s",
                       m ? cfg_where(m).s : rc->cfg->path, section, m ? m->value : fd, features->desc->id, measures, fd);
    if (!strcmp(fd, "fid"))
        return err_set(err,
                       "%s: [%s] metrics = %s: FID needs a [features] section: plugin = inception_v3 and weights = FILE "
                       "(scripts/convert_fid_weights.py converts pytorch-fid's Inception weights)",
                       m ? cfg_where(m).s : rc->cfg->path, section, m ? m->value : "fid");
    return err_set(err, "%s: [%s] metrics = %s: %s needs a [features] section: plugin = %s and weights = FILE (edm2host "
                        "plugins --describe %s says how they are made)",
                   m ? cfg_where(m).s : rc->cfg->path, section, m ? m->value : fd, display, fd + 3, fd + 3);
}

/* Saves to `path` (creating its folder) unless the path is empty. */
static int save_dir(const char *path, edm2_err *err) {
    char *dir = path_dirname(path);
    int bad = !dir || make_dirs(dir, err);
    free(dir);
    return bad ? (err->msg[0] ? -1 : err_set(err, "out of memory")) : 0;
}

/* The reference statistics the caller does not hold yet: each loaded from its file when that exists, else
 * computed from `count` images of [data] (a seeded shuffle, one pass for both metrics) and saved there. With
 * several processes the first decides, loads and saves; the images are shared out as in the evaluation. */
static int references(const run_config *rc, eval_refs *refs, int need_swd, const char *fd, const char *swd_path,
                      const char *fid_path, int count, const swd_params *p, int C, int R, feat_instance *fi,
                      edm2_err *err) {
    const int rank = comm_rank(), world = comm_world();
    int need_fid = *fd != 0;
    char FD[FD_NAME_MAX + 8];
    fd_display(fd, FD, sizeof FD);
    int load[2] = {need_swd && *swd_path && access(swd_path, F_OK) == 0,
                   need_fid && *fid_path && access(fid_path, F_OK) == 0};
    if (world > 1 && comm_broadcast(load, sizeof load, 0, err)) return -1; /* (the first process's files) */
    if (load[0]) {
        if (rank == 0 && swd_set_load(swd_path, p, C, R, &refs->swd, err)) return -1;
        LOG_INFO("SWD reference statistics %s: %zu descriptors per level", swd_path, refs->swd.count);
        need_swd = 0;
    }
    if (load[1]) {
        if (rank == 0 && fid_stats_load(fid_path, fd, fi->info.dim, fi->fingerprint, &refs->fid, err)) return -1;
        LOG_INFO("%s reference statistics %s: %zu images", FD, fid_path, refs->fid.count);
        need_fid = 0;
    }
    if (!need_swd && !need_fid) return 0;
    dataset d;
    if (dataset_open(&d, rc->cfg, err)) return -1;
    int rcode = -1;
    float *img = NULL;
    int *perm = malloc((size_t)d.count * sizeof *perm);
    int64_t epoch = -1;
    fid_accum acc;
    memset(&acc, 0, sizeof acc);
    eval_sets es;
    memset(&es, 0, sizeof es);
    if (d.channels != C || d.resolution != R) {
        err_set(err, "the data are %dx%dx%d images, the snapshot makes %dx%dx%d", d.channels, d.resolution, d.resolution,
                C, R, R);
        goto done;
    }
    if (count > d.count) count = d.count;
    const size_t per = (size_t)C * R * R;
    if (!perm || !(img = malloc(per * REF_BATCH * sizeof *img))) {
        err_set(err, "out of memory");
        goto done;
    }
    if ((rank == 0 && need_swd && swd_set_init(&refs->swd, p, C, R, err)) ||
        (rank == 0 && need_fid && fid_accum_init(&acc, fi->info.dim, err)) ||
        eval_sets_init(&es, need_swd ? &refs->swd : NULL, need_fid ? &acc : NULL, fi, p, REF_BATCH, C, R, err))
        goto done;
    const double t0 = now_s();
    for (int r = 0, rounds = group_rounds(count, REF_BATCH); r < rounds; r++) {
        int i;
        const int m = group_batch(r, count, REF_BATCH, &i);
        for (int k = 0; k < m; k++) {
            int idx = dataset_order(&d, p->seed ^ STREAM_REF, (uint64_t)(i + k), perm, &epoch);
            if (dataset_get(&d, idx, img + per * k, NULL, 0, err)) goto done;
        }
        if (eval_sets_add(&es, img, m, (uint64_t)i, err)) goto done;
        const int before = group_done(r, count, REF_BATCH), measured = group_done(r + 1, count, REF_BATCH);
        if (need_fid && measured / (8 * REF_BATCH) > before / (8 * REF_BATCH)) /* (every 8 batches) */
            progress_log("reference", "images", measured, count, 0, t0, NULL);
    }
    char el[16];
    LOG_INFO("reference: %d images of %s (%s)", count, d.desc, fmt_duration(now_s() - t0, el));
    if (rank > 0) { /* (the first process keeps and saves them) */
        rcode = 0;
        goto done;
    }
    if (need_swd) {
        swd_set_finalize(&refs->swd);
        if (*swd_path && (save_dir(swd_path, err) || swd_set_save(swd_path, &refs->swd, p, d.desc, err))) goto done;
        if (*swd_path) LOG_INFO("saved SWD reference statistics %s", swd_path);
    }
    if (need_fid) {
        if (fid_stats_alloc(&refs->fid, fd, fi->info.dim, err) || fid_accum_finish(&acc, refs->fid.mu, refs->fid.sigma, err))
            goto done;
        refs->fid.count = acc.count;
        snprintf(refs->fid.fingerprint, sizeof refs->fid.fingerprint, "%s", fi->fingerprint);
        if (*fid_path && (save_dir(fid_path, err) || fid_stats_save(fid_path, &refs->fid, d.desc, err))) goto done;
        if (*fid_path) LOG_INFO("saved %s reference statistics %s", FD, fid_path);
    }
    rcode = 0;
done:
    free(perm), free(img);
    eval_sets_free(&es);
    fid_accum_free(&acc);
    dataset_close(&d);
    return rcode;
}

/* Appends one JSON record to DIR(snapshot)/metrics.jsonl, or FOLDER/metrics.jsonl for a folder of images. */
static int append_metrics(const char *snapshot, const char *folder, const char *record, edm2_err *err) {
    char path[4200];
    const char *slash = strrchr(snapshot, '/');
    if (*folder) snprintf(path, sizeof path, "%s/metrics.jsonl", folder);
    else if (slash) snprintf(path, sizeof path, "%.*s/metrics.jsonl", (int)(slash - snapshot), snapshot);
    else snprintf(path, sizeof path, "metrics.jsonl");
    FILE *f = fopen(path, "a");
    if (!f) return err_set(err, "%s: cannot write", path);
    fprintf(f, "%s\n", record);
    int bad = ferror(f);
    if (fclose(f) || bad) return err_set(err, "%s: write failed", path);
    LOG_INFO("appended to %s", path);
    return 0;
}

/* [evaluate] images = FOLDER: every PNG below it, in sorted order (a generate job's grid.png left out), read at
 * the channels and resolution of the [data] images into *d; the backend into *s. */
static int open_images(const run_config *rc, const char *folder, dataset *d, gen_session *s, edm2_err *err) {
    dataset ref;
    if (dataset_open(&ref, rc->cfg, err)) return -1;
    memset(d, 0, sizeof *d);
    d->channels = ref.channels, d->resolution = ref.resolution;
    dataset_close(&ref);
    if (folder_open(d, NULL, "[evaluate] images", folder, "grid.png", 0, err)) return -1; /* (its first image read) */
    return gen_session_open_backend(s, rc, err);
}

int evaluate_snapshot(const run_config *rc, eval_refs *refs, eval_result *res, edm2_err *err) {
    config_view ev, jv, fv;
    config_view_host(&ev, rc->cfg, "evaluate");
    config_view_host(&jv, rc->cfg, "job");
    const edm2_config *e = &ev.api;
    const char *mode = e->get(e->ctx, "labels");
    const char *ref_path = e->get(e->ctx, "reference"), *fid_path = e->get(e->ctx, "fid_reference");
    const char *outdir = e->get(e->ctx, "images_dir"), *net = e->get(e->ctx, "net"), *folder = e->get(e->ctx, "images");
    const int batch = (int)edm2_cfg_int(e, "batch", 64), ref_images = (int)edm2_cfg_int(e, "ref_images", 0);
    const int rank = comm_rank(), world = comm_world();
    res->swd = res->fid = NAN;
    swd_params p;
    swd_default_params(&p);
    p.patches = (int)edm2_cfg_int(e, "swd_patches", 128);
    p.min_res = (int)edm2_cfg_int(e, "swd_min_res", 16);
    p.seed = (uint64_t)edm2_cfg_int(&jv.api, "seed", 0);
    gen_session s;
    memset(&s, 0, sizeof s);
    swd_set gen_set;
    memset(&gen_set, 0, sizeof gen_set);
    feat_instance fi;
    memset(&fi, 0, sizeof fi);
    fid_accum acc;
    memset(&acc, 0, sizeof acc);
    eval_sets es;
    memset(&es, 0, sizeof es);
    uint64_t *seeds = NULL;
    float *out = NULL, *labels = NULL, *keep = NULL, *dec = NULL;
    vae_instance vi;
    memset(&vi, 0, sizeof vi);
    dataset imgs; /* with images = FOLDER */
    memset(&imgs, 0, sizeof imgs);
    int n = 0, status = 1, fixed = -1, want_swd;
    char fd[FD_NAME_MAX], FD[FD_NAME_MAX + 8]; /* the Fréchet distance asked for (fid, fd_dinov2), or empty */
    if (evaluate_metrics(rc, "evaluate", &want_swd, fd, err)) goto done;
    const int want_fid = *fd != 0;
    fd_display(fd, FD, sizeof FD);
    if (!*net == !*folder) {
        err_set(err, "[evaluate] needs net = SNAPSHOT (to generate the images measured) or images = FOLDER, %s",
                *net ? "not both" : "neither is set");
        goto done;
    }
    if (*net && !rc->plugin[EDM2_KIND_SAMPLER]) {
        err_set(err, "%s: [evaluate] net: generating its images needs a [sampler] section with 'plugin = ID'", rc->cfg->path);
        goto done;
    }
    if (*folder) {
        if (open_images(rc, folder, &imgs, &s, err)) goto done;
        n = imgs.count;
    } else if (seeds_parse(e->get(e->ctx, "seeds"), &seeds, &n, err)) {
        err_set(err, "[evaluate] %s", err->msg);
        goto done;
    }
    if (want_fid && n < 2) {
        err_set(err, "[evaluate] %s: %s needs at least 2 images (thousands for a meaningful value)", *folder ? "images" : "seeds",
                FD);
        goto done;
    }
    if (!*folder && gen_session_open(&s, rc, e, "evaluate", err)) goto done;
    const int L = s.L;
    /* the images measured (for a snapshot of latents: once decoded, below) */
    int C = *folder ? imgs.channels : s.C, R = *folder ? imgs.resolution : s.R;
    size_t per = (size_t)C * R * R;
    if (label_mode(mode, L, &fixed, err)) {
        err_set(err, "[evaluate] %s", err->msg);
        goto done;
    }
    const char *latents = *folder ? NULL : st_meta(&s.nf, "edm2.latents");
    if (latents && !rc->plugin[EDM2_KIND_VAE]) {
        err_set(err, "%s: a network of %s latents: [evaluate] needs a [vae] section (plugin = %s, weights = FILE) to "
                     "measure its images",
                net, latents, latents);
        goto done;
    }
    if (latents) {
        config_view vv;
        config_view_plugin(&vv, rc, EDM2_KIND_VAE);
        if (vae_open(&vi, &s.rt, rc->plugin[EDM2_KIND_VAE], &vv.api, err) ||
            vae_scaling_parse(&vi, st_meta(&s.nf, "edm2.latent_scale"), st_meta(&s.nf, "edm2.latent_bias"), err))
            goto done;
        if (vi.info.latent_channels != C) {
            err_set(err, "%s makes %d channels, the VAE decodes %d", net, C, vi.info.latent_channels);
            goto done;
        }
        C = 3, R *= vi.info.downsample, per = (size_t)C * R * R;
        if (!(dec = malloc(per * batch * sizeof *dec))) {
            err_set(err, "out of memory");
            goto done;
        }
    }
    if (want_fid) {
        config_view_plugin(&fv, rc, EDM2_KIND_FEATURES);
        if (feat_open(&fi, &s.rt, rc->plugin[EDM2_KIND_FEATURES], &fv.api, err) ||
            (rank == 0 && fid_accum_init(&acc, fi.info.dim, err))) /* (the first process adds every process's) */
            goto done;
    }
    if (want_swd && (p.min_res > R || p.min_res <= p.patch)) {
        err_set(err, "[evaluate] swd_min_res = %d: expected more than the patch size %d and at most the images' %d pixels "
                     "a side",
                p.min_res, p.patch, R);
        goto done;
    }
    if (want_swd && swd_set_init(&gen_set, &p, C, R, err)) goto done;
    if (rc->dry_run) { /* (check: the inputs are open and agree) */
        status = 0;
        goto done;
    }
    comm_set_timeout(edm2_cfg_float(&jv.api, "comm_timeout_s", 600));
    char what[4200];
    snprintf(what, sizeof what, "images in %s", *folder ? folder : "[evaluate] seeds");
    if (world > 1 && group_same_start(rc->cfg, (uint64_t)n, what, "every process must see the same folder", err)) goto done;
    /* References the caller does not hold yet (a sweep keeps them across its evaluations; with several processes
     * the first holds them and decides). */
    int need[2] = {want_swd && !refs->swd.levels, want_fid && !refs->fid.mu};
    if (world > 1 && comm_broadcast(need, sizeof need, 0, err)) goto done;
    if (references(rc, refs, need[0], need[1] ? fd : "", ref_path, fid_path, ref_images > 0 ? ref_images : n, &p, C, R,
                   &fi, err))
        goto done;
    if (rank == 0 && want_swd && (refs->swd.C != C || refs->swd.R != R)) {
        err_set(err, "%s %s %dx%dx%d images, the reference has %dx%dx%d", *folder ? folder : net, *folder ? "holds" : "makes",
                C, R, R, refs->swd.C, refs->swd.R, refs->swd.R);
        goto done;
    }
    if (rank == 0 && want_fid && strcmp(refs->fid.fingerprint, fi.fingerprint)) {
        err_set(err, "the %s reference was computed with other feature weights (%s, these are %s)", FD,
                refs->fid.fingerprint, fi.fingerprint);
        goto done;
    }
    if (rank == 0 && *outdir && make_dirs(outdir, err)) goto done;
    out = malloc((*folder ? per : s.per) * batch * sizeof(float));
    float *img = dec ? dec : out; /* what is measured */
    labels = calloc((size_t)batch * (L ? L : 1), sizeof(float));
    const int grid_max = dec ? 64 : 1024, keep_n = n < grid_max ? n : grid_max; /* decoded images are large */
    if (*outdir) keep = malloc(per * (size_t)keep_n * sizeof(float));
    if (!out || !labels || (*outdir && !keep)) {
        err_set(err, "out of memory");
        goto done;
    }
    if (eval_sets_init(&es, want_swd ? &gen_set : NULL, want_fid ? &acc : NULL, &fi, &p, batch, C, R, err)) goto done;
    const double guidance = edm2_cfg_float(e, "guidance", 1);
    char how[256];
    if (*folder) snprintf(how, sizeof how, "%d images %dx%dx%d", n, C, R, R);
    else
        snprintf(how, sizeof how, "%d images with %s (%d evaluations each)%s", n, rc->plugin[EDM2_KIND_SAMPLER]->desc->id,
                 s.gen.svt->num_evals(s.gen.s), guidance != 1.0 ? ", guided" : "");
    char procs[64] = "";
    if (world > 1) snprintf(procs, sizeof procs, " by %d processes", world);
    LOG_INFO("evaluating %s: %s on %s%s: %s%s%s", *folder ? folder : net, how, s.rt.bvt->device_name(s.rt.b), procs,
             want_swd ? "SWD" : "", want_swd && want_fid ? " and " : "", want_fid ? FD : "");
    const double t0 = now_s();
    for (int r = 0, rounds = group_rounds(n, batch); r < rounds; r++) {
        int i;
        const int m = group_batch(r, n, batch, &i);
        for (int k = 0; L && k < m; k++) {
            memset(labels + (size_t)k * L, 0, (size_t)L * sizeof(float));
            labels[(size_t)k * L + label_class(mode, fixed, i + k, seeds[i + k], 10, L)] = 1.0f;
        }
        for (int k = 0; *folder && k < m; k++)
            if (dataset_get(&imgs, i + k, out + per * k, NULL, 0, err)) goto done;
        if (m && !*folder && generator_run(&s.gen, seeds + i, NULL, L ? labels : NULL, m, out, err)) goto done;
        if (m && dec && vae_decode_latents(&vi, out, m, s.R, s.R, dec, err)) goto done;
        if (eval_sets_add(&es, img, m, (uint64_t)i, err)) goto done;
        for (int k = 0; keep && k < m && i + k < keep_n; k++) memcpy(keep + per * (i + k), img + per * k, per * 4);
        for (int q = 0; keep && world > 1 && q < world; q++) /* the grid's images of the round, from their process */
            for (int j = (r * world + q) * batch, k = 0; k < batch && j + k < keep_n; k++)
                if (comm_broadcast(keep + per * (j + k), per * sizeof(float), q, err)) goto done;
        progress_log(NULL, "images", group_done(r + 1, n, batch), n, 0, t0, NULL);
        gen_session_share_cpu(&s);
    }
    if (rank > 0) { /* (the first process measures the whole and writes) */
        status = 0;
        goto done;
    }
    const double gen_s = now_s() - t0; /* (reading the images, for a folder) */
    if (keep) {
        char path[4200];
        snprintf(path, sizeof path, "%s/grid.png", outdir);
        if (grid_write(path, keep, keep_n, C, R, 10, err)) goto done;
        LOG_INFO("grid %s", path);
    }
    char swd_json[512] = "", fid_json[512] = "", levels[256] = "";
    if (want_swd) {
        swd_set_finalize(&gen_set);
        double per[SWD_MAX_LEVELS];
        if (swd_compare(&gen_set, &refs->swd, &p, per, &res->swd, err)) goto done;
        for (int l = 0, k = 0; l < gen_set.levels; l++)
            k += snprintf(levels + k, sizeof levels - (size_t)k, "%s%.3f", l ? ", " : "", per[l]);
        LOG_INFO("SWD x1e3: %.3f (levels %s, finest first)", res->swd, levels);
        snprintf(swd_json, sizeof swd_json,
                 "\"swd\": %.6g, \"swd_levels\": [%s], \"reference\": \"%s\", \"reference_descriptors\": %zu, ", res->swd,
                 levels, *ref_path ? ref_path : "[data]", refs->swd.count);
    }
    if (want_fid) {
        if (fid_accum_distance(&acc, refs->fid.mu, refs->fid.sigma, &res->fid, err)) goto done;
        LOG_INFO("%s: %.4f (%d images against %zu reference images, %s)", FD, res->fid, n, refs->fid.count,
                 fi.rec->desc->id);
        snprintf(fid_json, sizeof fid_json,
                 "\"%s\": %.6g, \"%s_reference\": \"%s\", \"%s_reference_images\": %zu, \"features\": \"%s\", "
                 "\"features_weights\": \"%s\", ",
                 fd, res->fid, fd, *fid_path ? fid_path : "[data]", fd, refs->fid.count, fi.rec->desc->id, fi.fingerprint);
    }
    char record[3072], source[1024];
    if (*folder) snprintf(source, sizeof source, "\"folder\": \"%.900s\"", folder);
    else
        snprintf(source, sizeof source,
                 "\"snapshot\": \"%.800s\", \"sampler\": \"%s\", \"num_evals\": %d, \"guidance\": %.6g, \"labels\": \"%s\"",
                 net, rc->plugin[EDM2_KIND_SAMPLER]->desc->id, s.gen.svt->num_evals(s.gen.s), guidance, mode);
    snprintf(record, sizeof record,
             "{%s, \"metric\": \"%s%s%s\", %s%s\"images\": %d, \"seed\": %llu, \"%s_seconds\": %.3f, \"time\": %lld}",
             source, want_swd ? "swd" : "", want_swd && want_fid ? "," : "", fd, swd_json, fid_json, n,
             (unsigned long long)p.seed, *folder ? "read" : "generate", gen_s, (long long)time(NULL));
    if (append_metrics(net, folder, record, err)) goto done;
    status = 0;
done:
    vae_close(&vi);
    feat_close(&fi);
    eval_sets_free(&es);
    fid_accum_free(&acc);
    gen_session_close(&s);
    swd_set_free(&gen_set);
    dataset_close(&imgs);
    free(seeds), free(out), free(labels), free(keep), free(dec);
    return status;
}

int job_evaluate(const run_config *rc, edm2_err *err) {
    eval_refs refs;
    memset(&refs, 0, sizeof refs);
    eval_result res;
    int status = evaluate_snapshot(rc, &refs, &res, err);
    eval_refs_free(&refs);
    return status;
}
