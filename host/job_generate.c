/* job_generate.c: the `generate` job: images from a snapshot with the [sampler] plugin, optional guidance
 * by a second snapshot, seeds as lists/ranges, labels per row, per seed or fixed; one PNG per image, a
 * grid, and optionally the raw floats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "gen_session.h"
#include "image_io.h"
#include "jobs.h"
#include "log.h"

#define GRID_MAX 1024

int job_generate(const run_config *rc, edm2_err *err) {
    config_view gv;
    config_view_host(&gv, rc->cfg, "generate");
    const edm2_config *g = &gv.api;
    const char *mode = g->get(g->ctx, "labels"), *outdir = g->get(g->ctx, "outdir");
    int batch = (int)edm2_cfg_int(g, "batch", 32), cols = (int)edm2_cfg_int(g, "grid_columns", 10);
    int write_images = edm2_cfg_bool(g, "images", 1), write_grid = edm2_cfg_bool(g, "grid", 1);
    int write_raw = edm2_cfg_bool(g, "raw", 0);
    gen_session s;
    memset(&s, 0, sizeof s);
    uint64_t *seeds = NULL;
    float *out = NULL, *all = NULL, *labels = NULL;
    uint8_t *px = NULL;
    int n = 0, status = 1, fixed = -1;
    if (batch < 1 || cols < 1) {
        err_set(err, "[generate] batch and grid_columns must be >= 1");
        goto done;
    }
    if (seeds_parse(g->get(g->ctx, "seeds"), &seeds, &n, err)) {
        err_set(err, "[generate] %s", err->msg);
        goto done;
    }
    if (gen_session_open(&s, rc, g, "generate", err)) goto done;
    const int L = s.L, C = s.C, R = s.R;
    const size_t per = s.per;
    if (label_mode(mode, L, &fixed, err)) {
        err_set(err, "[generate] %s", err->msg);
        goto done;
    }
    if (make_dirs(outdir, err)) goto done;
    int keep = write_raw ? n : (n < GRID_MAX ? n : GRID_MAX);
    out = malloc(per * batch * sizeof(float));
    all = malloc(per * (size_t)keep * sizeof(float) + 1);
    labels = calloc((size_t)batch * (L ? L : 1), sizeof(float));
    px = malloc(per);
    if (!out || !all || !labels || !px) {
        err_set(err, "out of memory");
        goto done;
    }
    const double guidance = edm2_cfg_float(g, "guidance", 1);
    LOG_INFO("generating %d images %dx%dx%d from %s with %s (%d evaluations each)%s on %s", n, C, R, R,
             g->get(g->ctx, "net"), rc->plugin[EDM2_KIND_SAMPLER]->desc->id, s.gen.svt->num_evals(s.gen.s),
             guidance != 1.0 ? ", guided" : "", s.rt.bvt->device_name(s.rt.b));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i += batch) {
        int m = n - i < batch ? n - i : batch;
        for (int k = 0; L && k < m; k++) {
            memset(labels + (size_t)k * L, 0, (size_t)L * sizeof(float));
            labels[(size_t)k * L + label_class(mode, fixed, i + k, seeds[i + k], cols, L)] = 1.0f;
        }
        if (generator_run(&s.gen, seeds + i, NULL, L ? labels : NULL, m, out, err)) goto done;
        for (int k = 0; k < m; k++) {
            if (i + k < keep) memcpy(all + per * (i + k), out + per * k, per * sizeof(float));
            if (!write_images) continue;
            char path[4200];
            if (L)
                snprintf(path, sizeof path, "%s/%06llu-class%d.png", outdir, (unsigned long long)seeds[i + k],
                         label_class(mode, fixed, i + k, seeds[i + k], cols, L));
            else snprintf(path, sizeof path, "%s/%06llu.png", outdir, (unsigned long long)seeds[i + k]);
            pixels_decode(px, out + per * k, C, C == 1 ? 1 : 3, R, R);
            if (png_write(path, px, R, R, C == 1 ? 1 : 3, err)) goto done;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double el = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
        LOG_INFO("%d/%d images  %.2f images/s", i + m, n, (i + m) / el);
        gen_session_share_cpu(&s);
    }
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
    gen_session_close(&s);
    free(seeds), free(out), free(all), free(labels), free(px);
    return status;
}
