/* job_evaluate.c: the `evaluate` job: generates images from a snapshot (seeds, labels, sampler and guidance
 * as in `generate`), without writing them unless asked, and measures them against reference images: the
 * sliced Wasserstein distance on Laplacian-pyramid patches (metric_swd.h) against reference statistics
 * computed once from [data] and saved. The result is appended to metrics.jsonl beside the snapshot. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dataset.h"
#include "fileio.h"
#include "gen_session.h"
#include "image_io.h"
#include "jobs.h"
#include "log.h"
#include "metric_swd.h"

#define STREAM_REF 0x5245465345ull /* "REFSE": which dataset images form the reference */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The reference set: loaded from `path` when it exists, else computed from `count` images of [data] (a
 * seeded shuffle) and saved there (when path is not empty). */
static int reference(const run_config *rc, const char *path, int count, const swd_params *p, int C, int R, swd_set *ref,
                     edm2_err *err) {
    if (*path && access(path, F_OK) == 0) {
        if (swd_set_load(path, p, C, R, ref, err)) return -1;
        LOG_INFO("reference statistics %s: %zu descriptors per level", path, ref->count);
        return 0;
    }
    dataset d;
    if (dataset_open(&d, rc->cfg, err)) return -1;
    int rcode = -1;
    float *img = NULL;
    int *perm = malloc((size_t)d.count * sizeof *perm);
    int64_t epoch = -1;
    if (d.channels != C || d.resolution != R) {
        err_set(err, "the data are %dx%dx%d images, the snapshot makes %dx%dx%d", d.channels, d.resolution, d.resolution,
                C, R, R);
        goto done;
    }
    if (count > d.count) count = d.count;
    if (!perm || !(img = malloc((size_t)C * R * R * sizeof *img)) || swd_set_init(ref, p, C, R, err)) {
        if (!err->msg[0]) err_set(err, "out of memory");
        goto done;
    }
    const double t0 = now();
    for (int i = 0; i < count; i++) {
        int idx = dataset_order(&d, p->seed ^ STREAM_REF, (uint64_t)i, perm, &epoch);
        if (dataset_get(&d, idx, img, NULL, 0, err) || swd_set_add(ref, p, img, 1, (uint64_t)i, err)) goto done;
    }
    swd_set_finalize(ref);
    LOG_INFO("reference: %d images of %s, %zu descriptors per level (%.1f s)", count, d.desc, ref->count, now() - t0);
    if (*path) {
        char *dir = path_dirname(path);
        int bad = !dir || make_dirs(dir, err);
        free(dir);
        if (bad || swd_set_save(path, ref, p, d.desc, err)) goto done;
        LOG_INFO("saved reference statistics %s", path);
    }
    rcode = 0;
done:
    free(perm), free(img);
    dataset_close(&d);
    return rcode;
}

/* Appends one JSON record to DIR(snapshot)/metrics.jsonl. */
static int append_metrics(const char *snapshot, const char *record, edm2_err *err) {
    char path[4200];
    const char *slash = strrchr(snapshot, '/');
    if (slash) snprintf(path, sizeof path, "%.*s/metrics.jsonl", (int)(slash - snapshot), snapshot);
    else snprintf(path, sizeof path, "metrics.jsonl");
    FILE *f = fopen(path, "a");
    if (!f) return err_set(err, "%s: cannot write", path);
    fprintf(f, "%s\n", record);
    int bad = ferror(f);
    if (fclose(f) || bad) return err_set(err, "%s: write failed", path);
    LOG_INFO("appended to %s", path);
    return 0;
}

int evaluate_snapshot(const run_config *rc, swd_set *ref_set, double *swd, edm2_err *err) {
    config_view ev, jv;
    config_view_host(&ev, rc->cfg, "evaluate");
    config_view_host(&jv, rc->cfg, "job");
    const edm2_config *e = &ev.api;
    const char *mode = e->get(e->ctx, "labels"), *metrics = e->get(e->ctx, "metrics");
    const char *ref_path = e->get(e->ctx, "reference"), *outdir = e->get(e->ctx, "images_dir");
    const int batch = (int)edm2_cfg_int(e, "batch", 64), ref_images = (int)edm2_cfg_int(e, "ref_images", 0);
    swd_params p;
    swd_default_params(&p);
    p.patches = (int)edm2_cfg_int(e, "swd_patches", 128);
    p.min_res = (int)edm2_cfg_int(e, "swd_min_res", 16);
    p.seed = (uint64_t)edm2_cfg_int(&jv.api, "seed", 0);
    gen_session s;
    memset(&s, 0, sizeof s);
    swd_set gen_set;
    memset(&gen_set, 0, sizeof gen_set);
    uint64_t *seeds = NULL;
    float *out = NULL, *labels = NULL, *keep = NULL;
    int n = 0, status = 1, fixed = -1;
    if (strcmp(metrics, "swd")) {
        err_set(err, "[evaluate] metrics = '%s': the metric this build computes is swd (FID needs the Inception "
                     "network, not yet shipped)", metrics);
        goto done;
    }
    if (seeds_parse(e->get(e->ctx, "seeds"), &seeds, &n, err)) {
        err_set(err, "[evaluate] %s", err->msg);
        goto done;
    }
    if (gen_session_open(&s, rc, e, "evaluate", err)) goto done;
    const int L = s.L, C = s.C, R = s.R;
    if (label_mode(mode, L, &fixed, err)) {
        err_set(err, "[evaluate] %s", err->msg);
        goto done;
    }
    if (swd_set_init(&gen_set, &p, C, R, err)) goto done;
    if (!ref_set->levels) { /* not given by the caller (a sweep keeps it across its evaluations) */
        if (reference(rc, ref_path, ref_images > 0 ? ref_images : n, &p, C, R, ref_set, err)) goto done;
    } else if (ref_set->C != C || ref_set->R != R) {
        err_set(err, "%s makes %dx%dx%d images, the reference has %dx%dx%d", e->get(e->ctx, "net"), C, R, R,
                ref_set->C, ref_set->R, ref_set->R);
        goto done;
    }
    if (*outdir && make_dirs(outdir, err)) goto done;
    out = malloc(s.per * batch * sizeof(float));
    labels = calloc((size_t)batch * (L ? L : 1), sizeof(float));
    if (*outdir) keep = malloc(s.per * (size_t)(n < 1024 ? n : 1024) * sizeof(float));
    if (!out || !labels || (*outdir && !keep)) {
        err_set(err, "out of memory");
        goto done;
    }
    const double guidance = edm2_cfg_float(e, "guidance", 1);
    LOG_INFO("evaluating %s: %d images with %s (%d evaluations each)%s on %s", e->get(e->ctx, "net"), n,
             rc->plugin[EDM2_KIND_SAMPLER]->desc->id, s.gen.svt->num_evals(s.gen.s), guidance != 1.0 ? ", guided" : "",
             s.rt.bvt->device_name(s.rt.b));
    const double t0 = now();
    for (int i = 0; i < n; i += batch) {
        const int m = n - i < batch ? n - i : batch;
        for (int k = 0; L && k < m; k++) {
            memset(labels + (size_t)k * L, 0, (size_t)L * sizeof(float));
            labels[(size_t)k * L + label_class(mode, fixed, i + k, seeds[i + k], 10, L)] = 1.0f;
        }
        if (generator_run(&s.gen, seeds + i, NULL, L ? labels : NULL, m, out, err)) goto done;
        if (swd_set_add(&gen_set, &p, out, m, (uint64_t)i, err)) goto done;
        for (int k = 0; keep && k < m && i + k < 1024; k++) memcpy(keep + s.per * (i + k), out + s.per * k, s.per * 4);
        const double el = now() - t0, rate = (i + m) / el;
        LOG_INFO("%d/%d images  %.2f images/s  ETA %.0f s", i + m, n, rate, (n - i - m) / rate);
        gen_session_share_cpu(&s);
    }
    const double gen_s = now() - t0;
    if (keep) {
        char path[4200];
        snprintf(path, sizeof path, "%s/grid.png", outdir);
        if (grid_write(path, keep, n < 1024 ? n : 1024, C, R, 10, err)) goto done;
        LOG_INFO("grid %s", path);
    }
    swd_set_finalize(&gen_set);
    double per[SWD_MAX_LEVELS], mean;
    if (swd_compare(&gen_set, ref_set, &p, per, &mean, err)) goto done;
    char levels[256] = "";
    for (int l = 0, k = 0; l < gen_set.levels; l++)
        k += snprintf(levels + k, sizeof levels - (size_t)k, "%s%.3f", l ? ", " : "", per[l]);
    LOG_INFO("SWD x1e3: %.3f (levels %s, finest first)", mean, levels);
    char record[2048];
    snprintf(record, sizeof record,
             "{\"snapshot\": \"%s\", \"metric\": \"swd\", \"swd\": %.6g, \"swd_levels\": [%s], \"images\": %d, "
             "\"reference\": \"%s\", \"reference_descriptors\": %zu, \"sampler\": \"%s\", \"num_evals\": %d, "
             "\"guidance\": %.6g, \"labels\": \"%s\", \"seed\": %llu, \"generate_seconds\": %.3f, \"time\": %lld}",
             e->get(e->ctx, "net"), mean, levels, n, *ref_path ? ref_path : "[data]", ref_set->count,
             rc->plugin[EDM2_KIND_SAMPLER]->desc->id, s.gen.svt->num_evals(s.gen.s), guidance, mode,
             (unsigned long long)p.seed, gen_s, (long long)time(NULL));
    if (append_metrics(e->get(e->ctx, "net"), record, err)) goto done;
    *swd = mean;
    status = 0;
done:
    gen_session_close(&s);
    swd_set_free(&gen_set);
    free(seeds), free(out), free(labels), free(keep);
    return status;
}

int job_evaluate(const run_config *rc, edm2_err *err) {
    swd_set ref;
    memset(&ref, 0, sizeof ref);
    double swd;
    int status = evaluate_snapshot(rc, &ref, &swd, err);
    swd_set_free(&ref);
    return status;
}
