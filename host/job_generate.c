/* job_generate.c: the `generate` job: images from a snapshot with the [sampler] plugin, optional guidance
 * by a second snapshot, seeds as lists/ranges, labels per row, per seed or fixed; one PNG per image (in
 * subfolders of 1000 seeds on request), a grid, and optionally the raw floats. A snapshot trained on VAE
 * latents (its metadata say which VAE and the scaling) is decoded to images by the [vae] plugin when the
 * config has one. A seed's image does not depend on the batch or the other seeds, so an interrupted run
 * resumes (resume = true) by generating only the images not yet written, and the processes of an MPI launch
 * share the work: each makes every world-th batch, and the first writes config.ini, the grid and
 * the raw floats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "fileio.h"
#include "gen_session.h"
#include "image_io.h"
#include "jobs.h"
#include "log.h"
#include "process_group.h"
#include "progress.h"
#include "stop_signal.h"
#include "vae_net.h"

#define GRID_MAX 1024
#define GRID_MAX_DECODED 32 /* decoded images are large (512x512x3 floats each) */

/* OUTDIR[/SSSSSS]/SEED[-classC].png: SSSSSS the seed rounded down to a thousand, with subdirs (the
 * reference's generate_images.py --subdirs); cls < 0 for an unconditional network. */
static void image_path(char *path, size_t len, const char *outdir, int subdirs, uint64_t seed, int cls) {
    char sub[32] = "", tail[32] = "";
    if (subdirs) snprintf(sub, sizeof sub, "/%06llu", (unsigned long long)(seed / 1000 * 1000));
    if (cls >= 0) snprintf(tail, sizeof tail, "-class%d", cls);
    snprintf(path, len, "%s%s/%06llu%s.png", outdir, sub, (unsigned long long)seed, tail);
}

/* Appends "[SECTION] KEY = A there, B here" to diff[len] when the values differ (n counts the differences). */
static void compare(char *diff, size_t len, int *n, const char *section, const char *key, const char *a, const char *b) {
    if (cfg_same_value(a, b)) return;
    if ((*n)++ < 6)
        snprintf(diff + strlen(diff), len - strlen(diff), "%s[%s] %s = '%.200s' there, '%.200s' here", *n > 1 ? "; " : "",
                 section, key, a, b);
}

/* The values of plugin section `kind` in the config `was` and in rc, default values included, into diff. */
static void compare_plugin(char *diff, size_t len, int *n, const cfg *was, const run_config *rc, edm2_kind kind) {
    const plugin_rec *p = rc->plugin[kind];
    const char *section = kind_name(kind);
    const char *id = cfg_value(was, section, "plugin", kind == EDM2_KIND_BACKEND ? "cpu" : "(none)"); /* (defaults) */
    if (!p || strcmp(id, p->desc->id)) return compare(diff, len, n, section, "plugin", id, p ? p->desc->id : "(none)");
    config_view a, b;
    config_view_init(&a, was, section, p->desc->keys, p->desc->key_count);
    config_view_plugin(&b, rc, kind);
    for (uint32_t k = 0; k < p->desc->key_count; k++) {
        const char *key = p->desc->keys[k].name;
        compare(diff, len, n, section, key, a.api.get(a.api.ctx, key), b.api.get(b.api.ctx, key));
    }
}

/* With resume: the images already in the folder were made (OUTDIR/config.ini says how) from the same network,
 * guidance, labels, sampler, VAE and backend; else a resumed folder would mix two generations. */
static int same_generation(const run_config *rc, const char *path, edm2_err *err) {
    if (access(path, F_OK) || cfg_foreign(path)) {
        LOG_WARN("resume: %s is not there (or not edm2host's): the images of its folder are taken as made with these "
                 "values",
                 path);
        return 0;
    }
    cfg was = {0};
    if (cfg_load(&was, path, err)) {
        cfg_free(&was);
        return -1;
    }
    char diff[1600] = "";
    int n = 0;
    config_view a, b;
    config_view_host(&a, &was, "generate");
    config_view_host(&b, rc->cfg, "generate");
    const char *keys[] = {"net", "gnet", "guidance", "labels", "precision"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        compare(diff, sizeof diff, &n, "generate", keys[k], a.api.get(a.api.ctx, keys[k]), b.api.get(b.api.ctx, keys[k]));
    if (!strcmp(b.api.get(b.api.ctx, "labels"), "rows")) /* (a row of the grid per class: the columns decide) */
        compare(diff, sizeof diff, &n, "generate", "grid_columns", a.api.get(a.api.ctx, "grid_columns"),
                b.api.get(b.api.ctx, "grid_columns"));
    compare_plugin(diff, sizeof diff, &n, &was, rc, EDM2_KIND_SAMPLER);
    compare_plugin(diff, sizeof diff, &n, &was, rc, EDM2_KIND_VAE);
    compare_plugin(diff, sizeof diff, &n, &was, rc, EDM2_KIND_BACKEND);
    cfg_free(&was);
    if (n)
        return err_set(err, "[generate] resume = true: the images there were made otherwise (%s%s): set another outdir, "
                            "or resume = false to make them all again",
                       diff, n > 6 ? "; and more" : "");
    return 0;
}

/* A written image back into the grid's floats (the PNG holds them quantized, as the grid would). */
static int read_back(const char *path, int OC, int OR, float *out, edm2_err *err) {
    uint8_t *px;
    int w, h;
    if (png_read(path, OC, OR, OR, &px, &w, &h, err)) return -1;
    pixels_encode(out, px, OC, OR, OR);
    free(px);
    return 0;
}

/* After the last round, with several processes: the grid's images (image todo[j] made by the process of batch
 * j / batch) and the raw floats (batch after batch: raw excludes resume, so todo[j] = j) from the processes that
 * made them to all. */
static int group_share(const int *todo, int ntodo, int batch, float *grid, int keep, size_t oper, float *all,
                       size_t per, edm2_err *err) {
    const int world = comm_world();
    for (int j = 0; j < ntodo; j++)
        if (todo[j] < keep && comm_broadcast(grid + oper * todo[j], oper * sizeof(float), j / batch % world, err))
            return -1;
    for (int j = 0; all && j < ntodo; j += batch) {
        const int m = ntodo - j < batch ? ntodo - j : batch;
        if (comm_broadcast(all + per * j, per * (size_t)m * sizeof(float), j / batch % world, err)) return -1;
    }
    return 0;
}

int job_generate(const run_config *rc, edm2_err *err) {
    config_view gv, jv;
    config_view_host(&gv, rc->cfg, "generate");
    config_view_host(&jv, rc->cfg, "job");
    const edm2_config *g = &gv.api;
    const char *mode = g->get(g->ctx, "labels"), *outdir = g->get(g->ctx, "outdir");
    int batch = (int)edm2_cfg_int(g, "batch", 32), cols = (int)edm2_cfg_int(g, "grid_columns", 10);
    int write_images = edm2_cfg_bool(g, "images", 1), write_grid = edm2_cfg_bool(g, "grid", 1);
    int write_raw = edm2_cfg_bool(g, "raw", 0), subdirs = edm2_cfg_bool(g, "subdirs", 0), resume = edm2_cfg_bool(g, "resume", 0);
    gen_session s;
    memset(&s, 0, sizeof s);
    uint64_t *seeds = NULL, *bseeds = NULL;
    int *todo = NULL;
    float *out = NULL, *all = NULL, *labels = NULL, *img = NULL, *grid = NULL;
    vae_instance vi;
    memset(&vi, 0, sizeof vi);
    int decode = 0;
    uint8_t *px = NULL;
    int n = 0, status = 1, fixed = -1, installed = 0;
    stop_signals saved;
    if (batch < 1 || cols < 1) {
        err_set(err, "[generate] batch and grid_columns must be >= 1");
        goto done;
    }
    if (seeds_parse(g->get(g->ctx, "seeds"), &seeds, &n, err)) {
        err_set(err, "[generate] %s", err->msg);
        goto done;
    }
    if (resume && (!write_images || write_raw)) {
        err_set(err, "[generate] resume = true: %s", !write_images ? "it finds the images written before: set images = true"
                                                                    : "raw = true keeps every image's floats, which a "
                                                                      "resumed run does not have: set raw = false");
        goto done;
    }
    if (gen_session_open(&s, rc, g, "generate", err)) goto done;
    const int L = s.L, C = s.C, R = s.R;
    const size_t per = s.per;
    if (label_mode(mode, L, &fixed, err)) {
        err_set(err, "[generate] %s", err->msg);
        goto done;
    }
    const char *latents = st_meta(&s.nf, "edm2.latents");
    if (latents && !rc->plugin[EDM2_KIND_VAE])
        LOG_WARN("%s holds a network of %s latents: without a [vae] section (plugin = %s, weights = FILE) the outputs "
                 "are the latents, not images",
                 g->get(g->ctx, "net"), latents, latents);
    else if (!latents && rc->plugin[EDM2_KIND_VAE])
        LOG_WARN("%s is a network of images, not of VAE latents (no edm2.latents in its metadata): [vae] is not used",
                 g->get(g->ctx, "net"));
    else if (latents) {
        config_view vv;
        config_view_plugin(&vv, rc, EDM2_KIND_VAE);
        if (strcmp(rc->plugin[EDM2_KIND_VAE]->desc->id, latents)) {
            err_set(err, "%s was trained on %s latents, [vae] plugin = %s", g->get(g->ctx, "net"), latents,
                    rc->plugin[EDM2_KIND_VAE]->desc->id);
            goto done;
        }
        if (vae_open(&vi, &s.rt, rc->plugin[EDM2_KIND_VAE], &vv.api, err) ||
            vae_scaling_parse(&vi, st_meta(&s.nf, "edm2.latent_scale"), st_meta(&s.nf, "edm2.latent_bias"), err))
            goto done;
        if (vi.info.latent_channels != C) {
            err_set(err, "%s makes %d channels, the VAE decodes %d", g->get(g->ctx, "net"), C, vi.info.latent_channels);
            goto done;
        }
        decode = 1;
    }
    /* What is written: decoded images (3 x R d x R d) or the network's own outputs. */
    const int OC = decode ? 3 : C, OR = decode ? R * vi.info.downsample : R;
    const size_t oper = (size_t)OC * OR * OR;
    if (resume && write_grid && OC != 1 && OC != 3) {
        err_set(err, "[generate] resume = true: the grid of %d-channel outputs cannot be read back from their PNGs: set "
                     "grid = false (or decode them with a [vae] section)",
                OC);
        goto done;
    }
    char path[4200], path_cfg[4200];
    snprintf(path_cfg, sizeof path_cfg, "%s/config.ini", outdir); /* how the images of the folder were made */
    if (resume && same_generation(rc, path_cfg, err)) goto done;
    if (rc->dry_run) { /* (check: the inputs are open and agree) */
        status = 0;
        goto done;
    }
    const int grid_max = decode ? GRID_MAX_DECODED : GRID_MAX, keep = n < grid_max ? n : grid_max;
    const int rank = comm_rank(), world = comm_world();
    out = malloc(per * batch * sizeof(float));
    img = decode ? malloc(oper * batch * sizeof(float)) : out;
    grid = malloc(oper * (size_t)keep * sizeof(float) + 1);
    all = write_raw ? malloc(per * (size_t)n * sizeof(float) + 1) : NULL;
    labels = calloc((size_t)batch * (L ? L : 1), sizeof(float));
    px = malloc(oper);
    todo = malloc((size_t)n * sizeof *todo);
    bseeds = malloc((size_t)batch * sizeof *bseeds);
    if (!out || !img || !grid || (write_raw && !all) || !labels || !px || !todo || !bseeds) {
        err_set(err, "out of memory");
        goto done;
    }
    /* The images to make (by index into seeds): all, or with resume those not written yet. */
    int ntodo = 0;
    for (int i = 0; i < n; i++) {
        if (resume)
            image_path(path, sizeof path, outdir, subdirs, seeds[i], L ? label_class(mode, fixed, i, seeds[i], cols, L) : -1);
        if (!resume || access(path, F_OK) != 0) todo[ntodo++] = i;
        else if (i < keep && read_back(path, OC, OR, grid + oper * i, err)) goto done;
    }
    comm_set_timeout(edm2_cfg_float(&jv.api, "comm_timeout_s", 600));
    char what[4200];
    snprintf(what, sizeof what, "images to make in %s", outdir);
    if (world > 1 && group_same_start(rc->cfg, (uint64_t)ntodo, what, "every process must see the same outdir", err))
        goto done; /* (after every process looked at outdir: with resume, every one found the same images written) */
    if (make_dirs(outdir, err)) goto done;
    if (rank == 0 && cfg_foreign(path_cfg))
        LOG_WARN("%s is not a record of edm2host's: left as it is (how these images were made is not kept)", path_cfg);
    else if (rank == 0 &&
             cfg_write(rc->cfg, path_cfg, "The config that generated the images of this folder, written by edm2host.", err))
        goto done;
    const double guidance = edm2_cfg_float(g, "guidance", 1);
    char procs[64] = "";
    if (world > 1) snprintf(procs, sizeof procs, " by %d processes", world);
    LOG_INFO("generating %d images %dx%dx%d from %s with %s (%d evaluations each)%s on %s%s%s", n, OC, OR, OR,
             g->get(g->ctx, "net"), rc->plugin[EDM2_KIND_SAMPLER]->desc->id, s.gen.svt->num_evals(s.gen.s),
             guidance != 1.0 ? ", guided" : "", s.rt.bvt->device_name(s.rt.b), decode ? ", decoded by the VAE" : "", procs);
    if (resume) LOG_INFO("resume: %d of the %d images are in %s already; generating the other %d", n - ntodo, n, outdir, ntodo);
    const double t0 = now_s();
    stop_signals_install(&saved); /* Ctrl-C: the images of the batch at hand written, then a clean stop */
    installed = 1;
    /* Round r makes batches r world + rank (batch b: todo[b batch ...]); its start is where the processes agree
     * to stop, and the round after the last one's is where they all have finished. */
    const int rounds = group_rounds(ntodo, batch);
    for (int r = 0;; r++) {
        int sig;
        if (group_stop_signal(&sig, err)) goto done;
        const int made = group_done(r, ntodo, batch);
        if (r > 0) progress_log(NULL, "images", n - ntodo + made, n, n - ntodo, t0, NULL);
        if (sig) {
            if (write_images)
                LOG_INFO("stopped by signal %d with %d of the %d images in %s; run again with resume = true (--set "
                         "generate.resume=true) to make the rest",
                         sig, n - ntodo + made, n, outdir);
            status = 128 + sig;
            goto done;
        }
        if (r == rounds) break;
        int j;
        const int m = group_batch(r, ntodo, batch, &j);
        if (!m) continue; /* (the last round has fewer batches than processes) */
        for (int k = 0; k < m; k++) {
            const int i = todo[j + k];
            bseeds[k] = seeds[i];
            if (!L) continue;
            memset(labels + (size_t)k * L, 0, (size_t)L * sizeof(float));
            labels[(size_t)k * L + label_class(mode, fixed, i, seeds[i], cols, L)] = 1.0f;
        }
        if (generator_run(&s.gen, bseeds, NULL, L ? labels : NULL, m, out, err)) goto done;
        if (decode && vae_decode_latents(&vi, out, m, R, R, img, err)) goto done;
        for (int k = 0; k < m; k++) {
            const int i = todo[j + k];
            if (all) memcpy(all + per * i, out + per * k, per * sizeof(float));
            if (i < keep) memcpy(grid + oper * i, img + oper * k, oper * sizeof(float));
            if (!write_images) continue;
            image_path(path, sizeof path, outdir, subdirs, seeds[i], L ? label_class(mode, fixed, i, seeds[i], cols, L) : -1);
            char *dir = subdirs ? path_dirname(path) : NULL;
            const int bad = subdirs && (!dir || make_dirs(dir, err));
            free(dir);
            if (bad) goto done;
            pixels_decode(px, img + oper * k, OC, OC == 1 ? 1 : 3, OR, OR);
            if (png_write(path, px, OR, OR, OC == 1 ? 1 : 3, err)) goto done;
        }
        gen_session_share_cpu(&s);
    }
    if (world > 1 && group_share(todo, ntodo, batch, grid, keep, oper, all, per, err)) goto done;
    if (rank > 0) { /* (the first process writes the files of the whole) */
        status = 0;
        goto done;
    }
    if (write_grid) {
        snprintf(path, sizeof path, "%s/grid.png", outdir);
        if (grid_write(path, grid, keep, OC, OR, cols, err)) goto done;
        LOG_INFO("grid %s (%d images, %d per row)", path, keep, cols);
    }
    if (write_raw) {
        snprintf(path, sizeof path, "%s/samples.safetensors", outdir);
        st_out o = {"images", ST_F32, 4, {n, C, R, R}, all}; /* the network's outputs (latents when decoding) */
        if (st_write(path, &o, 1, NULL, NULL, 0, err)) goto done;
    }
    status = 0;
done:
    if (installed) stop_signals_restore(&saved);
    vae_close(&vi);
    gen_session_close(&s);
    if (img != out) free(img);
    free(seeds), free(bseeds), free(todo), free(out), free(all), free(grid), free(labels), free(px);
    return status;
}
