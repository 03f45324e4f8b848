/* job_generate.c: the `generate` job: images from a snapshot with the [sampler] plugin, optional guidance
 * by a second snapshot, seeds as lists/ranges, labels per row, per seed or fixed; one PNG per image, a
 * grid, and optionally the raw floats. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu_share.h"
#include "fileio.h"
#include "generate.h"
#include "image_io.h"
#include "jobs.h"
#include "log.h"
#include "snapshot.h"

#define GRID_MAX 1024

/* Parses "0-63" / "1,5,10-19" into a malloc'ed list. */
static int parse_seeds(const char *s, uint64_t **out, int *n, edm2_err *err) {
    *out = NULL;
    *n = 0;
    int cap = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        char *end;
        if (!isdigit((unsigned char)*p)) return err_set(err, "[generate] seeds = '%s': expected numbers and ranges", s);
        unsigned long long a = strtoull(p, &end, 10), b = a;
        p = end;
        if (*p == '-') {
            if (!isdigit((unsigned char)p[1])) return err_set(err, "[generate] seeds = '%s': bad range", s);
            b = strtoull(p + 1, &end, 10);
            p = end;
        }
        if (b < a || b - a > 10000000) return err_set(err, "[generate] seeds = '%s': bad range %llu-%llu", s, a, b);
        for (unsigned long long v = a; v <= b; v++) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                uint64_t *nv = realloc(*out, (size_t)cap * sizeof *nv);
                if (!nv) return err_set(err, "out of memory");
                *out = nv;
            }
            (*out)[(*n)++] = v;
        }
        while (*p == ' ') p++;
        if (*p && *p != ',') return err_set(err, "[generate] seeds = '%s': unexpected '%c'", s, *p);
    }
    if (!*n) return err_set(err, "[generate] seeds = '%s': no seeds", s);
    return 0;
}

/* Class of image i: rows -> (i / cols) % L, random -> from the seed, else the fixed index. */
static int class_of(const char *mode, int fixed, int i, uint64_t seed, int cols, int L) {
    if (!strcmp(mode, "rows")) return (i / cols) % L;
    if (!strcmp(mode, "random")) return random_class(seed, L);
    return fixed;
}

int job_generate(const run_config *rc, edm2_err *err) {
    config_view gv, jv, sv, bv;
    config_view_host(&gv, rc->cfg, "generate");
    config_view_host(&jv, rc->cfg, "job");
    config_view_plugin(&sv, rc, EDM2_KIND_SAMPLER);
    config_view_plugin(&bv, rc, EDM2_KIND_BACKEND);
    const edm2_config *g = &gv.api;
    const char *net_path = g->get(g->ctx, "net"), *gnet_path = g->get(g->ctx, "gnet");
    const char *mode = g->get(g->ctx, "labels"), *outdir = g->get(g->ctx, "outdir");
    double guidance = edm2_cfg_float(g, "guidance", 1);
    int batch = (int)edm2_cfg_int(g, "batch", 32), cols = (int)edm2_cfg_int(g, "grid_columns", 10);
    int write_images = edm2_cfg_bool(g, "images", 1), write_grid = edm2_cfg_bool(g, "grid", 1);
    int write_raw = edm2_cfg_bool(g, "raw", 0);
    runtime rt;
    net_instance net, gnet;
    st_file nf, gf;
    generator gen;
    memset(&rt, 0, sizeof rt), memset(&net, 0, sizeof net), memset(&gnet, 0, sizeof gnet);
    memset(&nf, 0, sizeof nf), memset(&gf, 0, sizeof gf), memset(&gen, 0, sizeof gen);
    uint64_t *seeds = NULL;
    float *out = NULL, *all = NULL, *labels = NULL;
    int n = 0, status = 1;
    if (batch < 1 || cols < 1) {
        err_set(err, "[generate] batch and grid_columns must be >= 1");
        goto done;
    }
    if (parse_seeds(g->get(g->ctx, "seeds"), &seeds, &n, err)) goto done;
    if (runtime_open(&rt, rc->plugin[EDM2_KIND_BACKEND], &bv.api, (int)edm2_cfg_int(&jv.api, "threads", 0), err)) goto done;
    cpu_share share;
    cpu_share_init(&share, rt.services.threads);
    if (snapshot_open(net_path, rc->registry, &rt, &net, &nf, err)) goto done;
    if (guidance != 1.0) {
        if (!*gnet_path) {
            err_set(err, "[generate] guidance = %g needs 'gnet = SNAPSHOT' (a guiding network)", guidance);
            goto done;
        }
        if (snapshot_open(gnet_path, rc->registry, &rt, &gnet, &gf, err)) goto done;
    }
    const int L = net.info.label_dim, C = net.info.img_channels, R = net.info.img_resolution;
    const size_t per = (size_t)C * R * R;
    int fixed = -1;
    if (L && strcmp(mode, "rows") && strcmp(mode, "random")) {
        char *end;
        fixed = (int)strtol(mode, &end, 10);
        if (*end || end == mode || fixed < 0 || fixed >= L) {
            err_set(err, "[generate] labels = '%s': expected rows, random or a class in 0..%d", mode, L - 1);
            goto done;
        }
    }
    if (make_dirs(outdir, err)) goto done;
    if (generator_open(&gen, &rt, &net, guidance != 1.0 ? &gnet : NULL, guidance, rc->plugin[EDM2_KIND_SAMPLER], &sv.api,
                       err))
        goto done;
    int keep = write_raw ? n : (n < GRID_MAX ? n : GRID_MAX);
    out = malloc(per * batch * sizeof(float));
    all = malloc(per * (size_t)keep * sizeof(float) + 1);
    labels = calloc((size_t)batch * (L ? L : 1), sizeof(float));
    uint8_t *px = malloc(per);
    if (!out || !all || !labels || !px) {
        free(px);
        err_set(err, "out of memory");
        goto done;
    }
    LOG_INFO("generating %d images %dx%dx%d from %s with %s (%d evaluations each)%s on %s", n, C, R, R, net_path,
             rc->plugin[EDM2_KIND_SAMPLER]->desc->id, gen.svt->num_evals(gen.s), guidance != 1.0 ? ", guided" : "",
             rt.bvt->device_name(rt.b));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i += batch) {
        int m = n - i < batch ? n - i : batch;
        for (int k = 0; L && k < m; k++) {
            memset(labels + (size_t)k * L, 0, (size_t)L * sizeof(float));
            labels[(size_t)k * L + class_of(mode, fixed, i + k, seeds[i + k], cols, L)] = 1.0f;
        }
        if (generator_run(&gen, seeds + i, NULL, L ? labels : NULL, m, out, err)) {
            free(px);
            goto done;
        }
        for (int k = 0; k < m; k++) {
            if (i + k < keep) memcpy(all + per * (i + k), out + per * k, per * sizeof(float));
            if (!write_images) continue;
            char path[4200];
            if (L)
                snprintf(path, sizeof path, "%s/%06llu-class%d.png", outdir, (unsigned long long)seeds[i + k],
                         class_of(mode, fixed, i + k, seeds[i + k], cols, L));
            else snprintf(path, sizeof path, "%s/%06llu.png", outdir, (unsigned long long)seeds[i + k]);
            pixels_decode(px, out + per * k, C, C == 1 ? 1 : 3, R, R);
            if (png_write(path, px, R, R, C == 1 ? 1 : 3, err)) {
                free(px);
                goto done;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double el = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
        LOG_INFO("%d/%d images  %.2f images/s", i + m, n, (i + m) / el);
        int changed;
        rt.services.threads = cpu_share_update(&share, &changed);
        if (changed) cpu_share_log_change(&share);
    }
    free(px);
    if (write_grid) {
        char path[4200];
        snprintf(path, sizeof path, "%s/grid.png", outdir);
        if (grid_write(path, all, keep, C, R, cols, err)) goto done;
        LOG_INFO("grid %s (%d images, %d per row)", path, keep, cols);
    }
    if (write_raw) {
        char path[4200];
        snprintf(path, sizeof path, "%s/samples.safetensors", outdir);
        st_out o = {"images", ST_F32, 4, {n, C, R, R}, all};
        if (st_write(path, &o, 1, NULL, NULL, 0, err)) goto done;
    }
    status = 0;
done:
    if (gen.s) generator_close(&gen);
    if (gnet.net) net_close(&gnet, &rt);
    if (net.net) net_close(&net, &rt);
    st_close(&nf), st_close(&gf);
    if (rt.b) runtime_close(&rt);
    free(seeds), free(out), free(all), free(labels);
    return status;
}
