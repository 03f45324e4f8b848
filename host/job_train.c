/* job_train.c: the `train` job: setup (plugins, data checked against the network, memory), start or resume
 * from the newest checkpoint, and the training loop: one optimizer step per batch, status, snapshots and
 * checkpoints at their intervals, a clean stop with a checkpoint on SIGINT/SIGTERM, the sample grid at the
 * end. The parts it calls live in trainer.h's files. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "comm.h"
#include "fileio.h"
#include "jobs.h"
#include "log.h"
#include "process_group.h"
#include "stop_signal.h"
#include "trainer.h"
#include "vtable_check.h"

#define STREAM_NOISE 0x4E4F495345ull   /* "NOISE": sigma and noise of the loss */
#define STREAM_DROPOUT 0x44524F50ull   /* "DROP" + images seen: dropout masks */

static int64_t kimg_to_nimg(double kimg) { return (int64_t)llround(kimg * 1000.0); }

/* True when an interval boundary lies in (prev, cur]. */
static int crossed(int64_t prev, int64_t cur, int64_t every) { return every > 0 && cur / every > prev / every; }

static int fail_plugin(edm2_err *err, const char *kind, const char *id) {
    return err_plugin(err, "%s %s", kind, id);
}

/* "mp_unet:img_resolution=32;..." over every schema key of rc's network plugin: what a checkpoint must
 * match to resume. */
static void fingerprint(const run_config *rc, char *out, size_t len) {
    const edm2_plugin_desc *d = rc->plugin[EDM2_KIND_NETWORK]->desc;
    size_t n = (size_t)snprintf(out, len, "%s:", d->id);
    for (uint32_t k = 0; k < d->key_count && n < len; k++) {
        const cfg_entry *e = cfg_get(rc->cfg, "network", d->keys[k].name);
        const char *v = e ? e->value : d->keys[k].default_value;
        n += (size_t)snprintf(out + n, len - n, "%s%s=%s", k ? ";" : "", d->keys[k].name, v ? v : "");
    }
}

/* What rc's run is to a checkpoint: the network's fingerprint (fp), the batch and the seed. */
static ckpt_info run_identity(const run_config *rc, const char *fp) {
    config_view jv, tv;
    config_view_host(&jv, rc->cfg, "job");
    config_view_host(&tv, rc->cfg, "training");
    return (ckpt_info){0, 0, edm2_cfg_int(&tv.api, "batch", 2048), edm2_cfg_int(&jv.api, "seed", 0), fp};
}

int train_open_data(const run_config *rc, const edm2_network_info *net, dataset *d, edm2_err *err) {
    if (dataset_open(d, rc->cfg, err)) return -1;
    int rc_ = 0;
    if (d->channels != net->img_channels || d->resolution != net->img_resolution)
        rc_ = err_set(err, "the data are %dx%dx%d images ([data] resolution/channels), the network takes %dx%dx%d "
                           "([network] img_channels/img_resolution)",
                      d->channels, d->resolution, d->resolution, net->img_channels, net->img_resolution,
                      net->img_resolution);
    else if (net->label_dim && !d->label_dim)
        rc_ = err_set(err, "[network] label_dim = %d, but the data have no labels (set label_dim = 0)", net->label_dim);
    else if (net->label_dim && net->label_dim < d->label_dim)
        rc_ = err_set(err, "[network] label_dim = %d, but the data have %d classes", net->label_dim, d->label_dim);
    if (rc_) dataset_close(d);
    return rc_;
}

int train_resume_point(const run_config *rc, char *path, size_t len, int64_t *nimg, edm2_err *err) {
    char fp[4096];
    fingerprint(rc, fp, sizeof fp);
    ckpt_info info = run_identity(rc, fp);
    config_view jv;
    config_view_host(&jv, rc->cfg, "job");
    if (ckpt_find_latest(jv.api.get(jv.api.ctx, "run_dir"), path, len, err)) return -1;
    *nimg = 0;
    if (!path[0]) return 0;
    st_file f;
    int rc_ = st_open(&f, path, err) || ckpt_check_meta(&f, &info, err) ? -1 : 0;
    st_close(&f);
    *nimg = info.nimg;
    return rc_;
}

static void trainer_close(trainer *t) {
    loader_close(&t->ld);
    dataset_close(&t->data);
    for (size_t i = 0; i < t->nema; i++) rt_free(&t->rt, t->avg[i]);
    for (int j = 1; j < MAX_PASSES; j++) rt_free(&t->rt, t->part[j]); /* (NULL past those allocated) */
    rt_free(&t->rt, t->grads), rt_free(&t->rt, t->y), rt_free(&t->rt, t->labels);
    free(t->objectives);
    if (t->ema) t->evt->destroy(t->ema);
    if (t->opt) t->ovt->destroy(t->opt);
    if (t->loss) t->lvt->destroy(t->loss);
    if (t->net.net) net_close(&t->net, &t->rt);
    if (t->rt.b) runtime_close(&t->rt);
    free(t->host);
    if (t->stats) fclose(t->stats);
    /* (log.txt stays open until the caller has logged the job's error, if any: log_open_file(NULL)) */
}

/* Appends "[SECTION] KEY = FROM -> TO" to line (the first 8 changes; n counts them all). */
static void note_change(char *line, size_t len, int *n, const cfg_entry *e, const char *from, const char *to) {
    if ((*n)++ < 8)
        snprintf(line + strlen(line), len - strlen(line), "%s[%s] %s = %s -> %s", *n > 1 ? "; " : "", e->section,
                 e->key, from, to);
}

/* The values that differ from the run's config.ini of its last start (a resumed run with a longer duration,
 * another learning rate, ...) into line[len]: "[training] duration_kimg = 2 -> 3; ..." ("(default)" for a
 * value not set on one side); how many (0 when none differ, or there is no such record: cfg_foreign). */
static int config_changes(const cfg *now, const char *path, char *line, size_t len) {
    cfg was = {0};
    edm2_err e;
    line[0] = 0;
    if (access(path, F_OK) || cfg_foreign(path) || cfg_load(&was, path, &e)) {
        cfg_free(&was);
        return 0;
    }
    int n = 0;
    for (size_t i = 0; i < now->n; i++) { /* values changed or new */
        const cfg_entry *x = &now->v[i], *y = cfg_get(&was, x->section, x->key);
        if (!y || strcmp(x->value, y->value)) note_change(line, len, &n, x, y ? y->value : "(default)", x->value);
    }
    for (size_t i = 0; i < was.n; i++) /* values gone */
        if (!cfg_get(now, was.v[i].section, was.v[i].key)) note_change(line, len, &n, &was.v[i], was.v[i].value, "(default)");
    if (n > 8) snprintf(line + strlen(line), len - strlen(line), "; and %d more", n - 8);
    cfg_free(&was);
    return n;
}

int train_config_changes(const run_config *rc, char *line, size_t len) {
    config_view jv;
    config_view_host(&jv, rc->cfg, "job");
    char path[4200];
    snprintf(path, sizeof path, "%s/config.ini", jv.api.get(jv.api.ctx, "run_dir"));
    return config_changes(rc->cfg, path, line, len);
}

/* RUN_DIR/config.ini: the run's effective config (its files, what they extend, and --set), section by
 * section, so a run folder says how it was made (the comparison report reads it). */
static int write_config(const trainer *t, edm2_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.ini", t->run_dir);
    if (cfg_foreign(path)) {
        LOG_WARN("%s is not a record of edm2host's: left as it is (this run's config is not kept there)", path);
        return 0;
    }
    char changes[1024];
    if (config_changes(t->rc->cfg, path, changes, sizeof changes))
        LOG_INFO("config changed since this run's last start: %s", changes);
    return cfg_write(t->rc->cfg, path, "The effective config of this run, written by edm2host (files, extends and --set "
                                       "resolved).", err);
}

/* Passes of n images: this process's share of them, and (data-parallel) a gradient arena for each pass and
 * the room for what every process reports of a step. The arenas and the room only grow. */
static int set_pass_size(trainer *t, int64_t n, edm2_err *err) {
    t->batch_gpu = n;
    const int passes = (int)(t->batch / t->world / n);
    for (int j = 1; t->grouped && j < passes; j++)
        if (!t->part[j] && !(t->part[j] = rt_alloc(&t->rt, t->net.info.arena_floats, err))) return -1;
    if (passes > t->passes || !t->objectives) {
        free(t->objectives);
        if (!(t->objectives = calloc((size_t)t->world * (size_t)(passes + 2), sizeof *t->objectives)))
            return err_set(err, "out of memory");
    }
    t->passes = passes;
    return 0;
}

/* batch_gpu = auto, after a pass of batch_gpu images ran out of memory: the largest pass size that divides this
 * process's images per step and is at most half the last one (within MAX_PASSES passes), or 0 when none is. */
static int64_t smaller_pass(const trainer *t) {
    const int64_t local = t->batch / t->world;
    for (int64_t n = t->batch_gpu / 2; n >= 1; n--)
        if (local % n == 0) return local / n <= MAX_PASSES ? n : 0;
    return 0;
}

static int setup(trainer *t, const run_config *rc, edm2_err *err) {
    config_view jv, tv, v;
    config_view_host(&jv, rc->cfg, "job");
    config_view_host(&tv, rc->cfg, "training");
    snprintf(t->run_dir, sizeof t->run_dir, "%s", jv.api.get(jv.api.ctx, "run_dir"));
    const ckpt_info id = run_identity(rc, NULL);
    t->seed = id.seed, t->batch = id.batch;
    const char *bg = tv.api.get(tv.api.ctx, "batch_gpu");
    t->auto_pass = bg && !strcmp(bg, "auto"); /* (starts as 0 does: one pass per process) */
    t->batch_gpu = t->auto_pass ? 0 : edm2_cfg_int(&tv.api, "batch_gpu", 0);
    t->rank = comm_rank(), t->world = comm_world();
    const char *one = getenv("EDM2_GROUP_OF_ONE");
    t->grouped = t->world > 1 || (one && !strcmp(one, "1"));
    if (t->batch_gpu <= 0 && t->batch % t->world)
        return err_set(err, "[training] batch = %lld does not split over %d processes: make it a multiple of %d",
                       (long long)t->batch, t->world, t->world);
    if (t->batch_gpu <= 0) t->batch_gpu = t->batch / t->world; /* one pass per process */
    t->total = kimg_to_nimg(edm2_cfg_float(&tv.api, "duration_kimg", 0));
    if (t->batch < 1 || t->batch % t->batch_gpu)
        return err_set(err, "[training] batch = %lld must be a positive multiple of batch_gpu = %lld", (long long)t->batch,
                       (long long)t->batch_gpu);
    const int64_t passes = t->batch / t->batch_gpu;
    if (passes % t->world)
        return err_set(err, "[training] batch = %lld in passes of batch_gpu = %lld makes %lld passes, which %d processes "
                            "cannot share equally (make batch / batch_gpu a multiple of %d)",
                       (long long)t->batch, (long long)t->batch_gpu, (long long)passes, t->world, t->world);
    if (passes / t->world > MAX_PASSES)
        return err_set(err, "[training] %lld passes per process and step (at most %d): raise batch_gpu",
                       (long long)(passes / t->world), MAX_PASSES);
    comm_set_timeout(edm2_cfg_float(&jv.api, "comm_timeout_s", 600));
    if (t->total <= 0) return err_set(err, "[training] duration_kimg must be > 0");
    const char *intervals[] = {"snapshot_kimg", "checkpoint_kimg"};
    for (int i = 0; i < 2; i++) {
        double k = edm2_cfg_float(&tv.api, intervals[i], 0);
        if (k != 0 && k < 1)
            return err_set(err, "[training] %s = %g: use 0 (only at the end) or at least 1, so file names (kimg) stay unique",
                           intervals[i], k);
    }
    if (make_dirs(t->run_dir, err)) return -1;
    if (t->rank == 0) { /* the log, like every file of the run, is written by the first process alone */
        char p[4200];
        snprintf(p, sizeof p, "%s/log.txt", t->run_dir);
        if (log_open_file(p)) return err_set(err, "%s: cannot write", p);
        int stale = remove_stale_temporaries(t->run_dir);
        if (stale) LOG_INFO("removed %d unfinished temporary file%s of an interrupted run", stale, stale == 1 ? "" : "s");
    }
    /* Plugins. The processes of a node share its cores. */
    const int threads = group_threads((int)edm2_cfg_int(&jv.api, "threads", 0));
    config_view_plugin(&v, rc, EDM2_KIND_BACKEND);
    if (runtime_open(&t->rt, rc->plugin[EDM2_KIND_BACKEND], &v.api, threads, err)) return -1;
    if (t->grouped && (t->rt.bvt->struct_size < offsetof(edm2_backend_vtable, broadcast) + sizeof t->rt.bvt->broadcast ||
                         !t->rt.bvt->reduce_sum || !t->rt.bvt->broadcast))
        return err_set(err, "[backend] %s cannot train on several processes (no reduce_sum/broadcast, ABI 1.2)",
                       rc->plugin[EDM2_KIND_BACKEND]->desc->id);
    cpu_share_init(&t->share, t->rt.services.threads);
    config_view_plugin(&v, rc, EDM2_KIND_NETWORK);
    if (net_open(&t->net, &t->rt, rc->plugin[EDM2_KIND_NETWORK], &v.api, err)) return -1;
    fingerprint(rc, t->fingerprint, sizeof t->fingerprint);
    const edm2_network_info *info = &t->net.info;
    t->lvt = rc->plugin[EDM2_KIND_LOSS]->desc->vtable;
    config_view_plugin(&v, rc, EDM2_KIND_LOSS);
    if (t->lvt->create(&t->rt.services, &v.api, &t->rt.ops, &t->loss) != EDM2_OK)
        return fail_plugin(err, "loss", rc->plugin[EDM2_KIND_LOSS]->desc->id);
    t->ovt = rc->plugin[EDM2_KIND_OPTIMIZER]->desc->vtable;
    config_view_plugin(&v, rc, EDM2_KIND_OPTIMIZER);
    if (t->ovt->create(&t->rt.services, &v.api, &t->rt.ops, info, &t->opt) != EDM2_OK)
        return fail_plugin(err, "optimizer", rc->plugin[EDM2_KIND_OPTIMIZER]->desc->id);
    t->evt = rc->plugin[EDM2_KIND_EMA]->desc->vtable;
    config_view_plugin(&v, rc, EDM2_KIND_EMA);
    if (t->evt->create(&t->rt.services, &v.api, &t->rt.ops, &t->ema) != EDM2_OK)
        return fail_plugin(err, "ema", rc->plugin[EDM2_KIND_EMA]->desc->id);
    t->nema = t->evt->count(t->ema);
    if (t->nema > MAX_EMA) return err_set(err, "[ema] at most %d averages", MAX_EMA);
    if (edm2_cfg_bool(&tv.api, "sample_grid", 1) && trainer_grid_check(t, err)) return -1;
    if (train_open_data(rc, info, &t->data, err)) return -1;
    /* Memory. */
    size_t A = info->arena_floats, per = (size_t)info->img_channels * info->img_resolution * info->img_resolution;
    const size_t local = (size_t)(t->batch / t->world); /* images this process trains on per step */
    if (!(t->grads = rt_alloc(&t->rt, A, err)) || !(t->y = rt_alloc(&t->rt, per * local, err))) return -1;
    if (info->label_dim && !(t->labels = rt_alloc(&t->rt, local * info->label_dim, err))) return -1;
    t->part[0] = t->grads;
    if (set_pass_size(t, t->batch_gpu, err)) return -1;
    for (size_t i = 0; i < t->nema; i++)
        if (!(t->avg[i] = rt_alloc(&t->rt, A, err))) return -1;
    if (!(t->host = malloc((A + 1) * sizeof(float)))) return err_set(err, "out of memory");
    return 0;
}

static int start_or_resume(trainer *t, edm2_err *err) {
    char path[4200];
    if (ckpt_find_latest(t->run_dir, path, sizeof path, err)) return -1;
    if (path[0]) {
        if (trainer_read_checkpoint(t, path, err)) return -1;
        LOG_INFO("resuming from %s at kimg %.3f", path, t->nimg / 1000.0);
        return 0;
    }
    if (t->net.vt->init_params(t->net.net, t->net.params, (uint64_t)t->seed) != EDM2_OK)
        return err_plugin(err, "network init failed");
    for (size_t i = 0; i < t->nema; i++)
        if (t->rt.bvt->copy(t->rt.b, t->avg[i], t->net.params, t->net.info.arena_floats * sizeof(float)) != EDM2_OK)
            return err_plugin(err, "backend copy failed");
    t->nimg = 0;
    return 0;
}

/* The loss of pass j (0-based among this process's passes) of the current batch into `grads`. */
static int train_pass(trainer *t, int j, float *grads, double *part, edm2_err *err) {
    const edm2_network_info *info = &t->net.info;
    const size_t per = (size_t)info->img_channels * info->img_resolution * info->img_resolution;
    const int64_t local = (int64_t)j * t->batch_gpu;                          /* in this process's buffer */
    const int64_t global = ((int64_t)t->rank * t->passes + j) * t->batch_gpu; /* in the global batch */
    edm2_loss_batch lb;
    memset(&lb, 0, sizeof lb);
    lb.struct_size = sizeof lb;
    lb.y = t->y + per * (size_t)local;
    lb.labels = info->label_dim ? t->labels + (size_t)local * info->label_dim : NULL;
    lb.N = (int)t->batch_gpu;
    lb.batch_total = (int)t->batch;
    /* Noise and dropout are functions of the global image index (the pass's offset and stream are its first
     * image's; the plugins draw image i of the pass at i times the per-image step: edm2_loss.h, edm2_network.h),
     * the same for any number of processes and any pass size. */
    lb.rng = (edm2_rng){(uint64_t)t->seed, STREAM_NOISE, (uint64_t)(t->nimg + global) * (per + 1)};
    lb.dropout_rng = (edm2_rng){(uint64_t)t->seed, STREAM_DROPOUT + (uint64_t)(t->nimg + global), 0};
    const edm2_status s = t->lvt->compute(t->loss, net_ref(&t->net), t->net.params, grads, &lb, part);
    if (s == EDM2_ERR_NOMEM) return 1; /* (the plugin's reason stays held for the caller's line) */
    if (s != EDM2_OK) return err_plugin(err, "loss computation failed at kimg %.3f", t->nimg / 1000.0);
    return 0;
}

/* One process: the passes accumulated straight into grads. 0, 1 when a pass ran out of memory, or -1. */
static int local_passes(trainer *t, double *objective, edm2_err *err) {
    if (t->rt.bvt->fill(t->rt.b, t->grads, 0.0f, t->net.info.arena_floats) != EDM2_OK)
        return err_plugin(err, "backend fill failed");
    *objective = 0;
    for (int j = 0; j < t->passes; j++) {
        double part = 0;
        const int r = train_pass(t, j, t->grads, &part, err);
        if (r) return r;
        *objective += part;
    }
    return 0;
}

/* Several processes: each pass into its own arena, the arenas of all processes added in one order by the
 * backend, the objectives gathered and added in the same order, and every process's stop request (a signal)
 * shared, so that all stop after the same step. A process whose pass ran out of memory still joins the
 * reduction (its sum is not used) and says so in what is gathered, so that every process returns 1 together
 * (the step is then done again, or each ends with the error) rather than the others waiting for it. Returns
 * the objective in *objective. 0, 1 or -1. */
static int group_passes(trainer *t, double *objective, int *stop, edm2_err *err) {
    const size_t A = t->net.info.arena_floats, stride = (size_t)t->passes + 2;
    double local[MAX_PASSES + 2]; /* this process's pass objectives, stop request and out of memory */
    memset(local, 0, stride * sizeof *local); /* (a pass not run after one that failed counts 0) */
    for (int j = 0; j < t->passes && !local[t->passes + 1]; j++) {
        if (t->rt.bvt->fill(t->rt.b, t->part[j], 0.0f, A) != EDM2_OK) return err_plugin(err, "backend fill failed");
        const int r = train_pass(t, j, t->part[j], &local[j], err);
        if (r < 0) return -1;
        local[t->passes + 1] = r;
    }
    local[t->passes] = *stop;
    if (t->rt.bvt->reduce_sum(t->rt.b, (const float *const *)t->part, t->passes, t->grads, A) != EDM2_OK)
        return err_plugin(err, "gradient reduction over %d processes failed", t->world);
    if (comm_allgather(local, t->objectives, stride * sizeof(double), err)) return -1;
    *objective = 0;
    int nomem = 0;
    for (int q = 0; q < t->world; q++) {
        const double *o = t->objectives + (size_t)q * stride;
        for (int j = 0; j < t->passes; j++) *objective += o[j];
        if (o[t->passes] > *stop) *stop = (int)o[t->passes];
        nomem |= o[t->passes + 1] != 0;
    }
    return nomem;
}

/* The passes of a step: with batch_gpu = auto, done again in smaller passes while one runs out of memory (each
 * time a warning with the reason); otherwise, or when no smaller pass is left, the error naming batch_gpu. */
static int step_passes(trainer *t, double *objective, int *stop, edm2_err *err) {
    for (int shrunk = 0;; shrunk = 1) {
        const int r = t->grouped ? group_passes(t, objective, stop, err) : local_passes(t, objective, err);
        if (r == 0 && shrunk && t->rank == 0)
            LOG_INFO("batch_gpu = auto: training in passes of %lld images, %d per process and step",
                     (long long)t->batch_gpu, t->passes);
        if (r <= 0) return r;
        if (!t->auto_pass) /* (the images of a pass, not the batch, decide the memory: batch_gpu) */
            return err_plugin(err, "a pass of %lld images did not fit in memory at kimg %.3f (set [training] batch_gpu to "
                                   "a smaller divisor of %lld, the images of each process per step, or to auto: the batch "
                                   "stays, trained in more passes)",
                              (long long)t->batch_gpu, t->nimg / 1000.0, (long long)t->batch / t->world);
        const int64_t next = smaller_pass(t);
        if (!next) {
            char limit[64] = "";
            if (t->batch_gpu > 1) snprintf(limit, sizeof limit, " (at most %d passes per process and step)", MAX_PASSES);
            return err_plugin(err, "a pass of %lld image%s did not fit in memory at kimg %.3f, and [training] batch_gpu = "
                                   "auto has no smaller pass to try%s", (long long)t->batch_gpu, t->batch_gpu == 1 ? "" : "s",
                              t->nimg / 1000.0, limit);
        }
        edm2_err why;
        err_plugin(&why, "a pass of %lld images did not fit in memory", (long long)t->batch_gpu);
        if (t->rank == 0)
            LOG_WARN("batch_gpu = auto: %s; the step again in passes of %lld images", why.msg, (long long)next);
        if (set_pass_size(t, next, err)) return -1;
    }
}

static void *loader_host_alloc(void *rt, size_t bytes) { return rt_host_alloc(rt, bytes); }
static void loader_host_free(void *rt, void *p) { rt_host_free(rt, p); }

/* One optimizer step on the next batch; returns the batch's mean per-element loss in *loss. *stop: in, this
 * process's stop request (a signal number or 0); out, the group's (the largest). */
static int train_step(trainer *t, double *loss, double *lr, int *stop, edm2_err *err) {
    const edm2_network_info *info = &t->net.info;
    const size_t per = (size_t)info->img_channels * info->img_resolution * info->img_resolution;
    const size_t local = (size_t)t->passes * (size_t)t->batch_gpu;
    const float *img, *lab;
    /* The previous step's uploads read the batch buffer the loader is about to refill: complete the queue
     * (free after any optimizer that reads its non-finite count, as adam does). */
    if (t->rt.bvt->synchronize(t->rt.b) != EDM2_OK) return err_plugin(err, "backend synchronize failed");
    if (loader_next(&t->ld, &img, &lab, err)) return -1;
    /* Queued, not waited for: the loader keeps img and lab unchanged until the next loader_next. */
    if (rt_upload_async(&t->rt, t->y, img, per * local, err)) return -1;
    if (info->label_dim && rt_upload_async(&t->rt, t->labels, lab, local * info->label_dim, err)) return -1;
    if (t->net.vt->normalize_weights(t->net.net, t->net.params) != EDM2_OK) return err_plugin(err, "normalize_weights failed");
    double objective = 0;
    if (step_passes(t, &objective, stop, err)) return -1;
    if (t->ovt->step(t->opt, t->net.params, t->grads, t->nimg, t->batch, lr) != EDM2_OK)
        return err_plugin(err, "optimizer step failed at kimg %.3f", t->nimg / 1000.0);
    if (vtable_has(t->ovt, offsetof(edm2_optimizer_vtable, nonfinite) + sizeof t->ovt->nonfinite) && t->ovt->nonfinite)
        t->nonfinite += t->ovt->nonfinite(t->opt);
    t->nimg += t->batch;
    if (t->evt->update(t->ema, t->avg, t->net.params, info->arena_floats, t->nimg, t->batch) != EDM2_OK)
        return err_plugin(err, "EMA update failed");
    *loss = objective / (double)per;
    return 0;
}

/* Several processes: every one runs the same config and resumed from the same point; the parameters are
 * rank 0's. */
static int group_check(trainer *t, edm2_err *err) {
    if (!t->grouped) return 0;
    uint64_t *nimg = calloc((size_t)t->world, sizeof *nimg);
    if (!nimg) return err_set(err, "out of memory");
    int rc = group_same_config(t->rc->cfg, (uint64_t)t->nimg, nimg, err);
    for (int q = 1; !rc && q < t->world; q++)
        if (nimg[q] != nimg[0])
            rc = err_set(err, "process %d resumes at kimg %.3f, process 0 at kimg %.3f (every process must see the same "
                              "run_dir)", q, nimg[q] / 1000.0, nimg[0] / 1000.0);
    free(nimg);
    if (!rc && t->rt.bvt->broadcast(t->rt.b, t->net.params, t->net.info.arena_floats * sizeof(float), 0) != EDM2_OK)
        rc = err_plugin(err, "broadcast of the parameters failed");
    return rc;
}

int job_train(const run_config *rc, edm2_err *err) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.rc = rc;
    int status = 1;
    /* config.ini once the start is settled: a refused resume leaves the run's record as it was. */
    if (setup(&t, rc, err) || start_or_resume(&t, err) || group_check(&t, err) ||
        (t.rank == 0 && write_config(&t, err)))
        goto done;
    const int lead = t.rank == 0; /* the process that logs and writes files */
    config_view tv;
    config_view_host(&tv, rc->cfg, "training");
    const int64_t status_every = kimg_to_nimg(edm2_cfg_float(&tv.api, "status_kimg", 0));
    const int64_t snapshot_every = kimg_to_nimg(edm2_cfg_float(&tv.api, "snapshot_kimg", 0));
    const int64_t ckpt_every = kimg_to_nimg(edm2_cfg_float(&tv.api, "checkpoint_kimg", 0));
    const int keep = (int)edm2_cfg_int(&tv.api, "keep_checkpoints", 2);
    const edm2_network_info *info = &t.net.info;
    LOG_INFO("run %s: %s on %s", t.run_dir, t.data.desc, t.rt.bvt->device_name(t.rt.b));
    LOG_INFO("network %s: %dx%dx%d, label_dim %d, %.2f M parameters, %.3f GFLOP per image forward", t.net.rec->desc->id,
             info->img_channels, info->img_resolution, info->img_resolution, info->label_dim,
             info->arena_floats / 1e6, info->gflops_per_image);
    LOG_INFO("loss %s, optimizer %s, EMA %s (%zu), batch %lld (%lld per pass%s), %.3f kimg to go",
             rc->plugin[EDM2_KIND_LOSS]->desc->id, rc->plugin[EDM2_KIND_OPTIMIZER]->desc->id,
             rc->plugin[EDM2_KIND_EMA]->desc->id, t.nema, (long long)t.batch, (long long)t.batch_gpu,
             t.auto_pass ? ", batch_gpu = auto: halved while a pass does not fit in memory" : "", (t.total - t.nimg) / 1000.0);
    if (t.world > 1)
        LOG_INFO("data-parallel over %d processes: %d pass%s of %lld images each per step; status lines count the "
                 "whole group", t.world, t.passes, t.passes == 1 ? "" : "es", (long long)t.batch_gpu);
    else if (t.grouped)
        LOG_INFO("data-parallel path in a group of one process (EDM2_GROUP_OF_ONE=1): %d pass%s into their own "
                 "gradient arenas, added by the backend's reduction", t.passes, t.passes == 1 ? "" : "es");
    /* Batches (this process's slice) are prepared in page-locked memory (on CUDA) and uploaded without waiting
     * for the GPU. */
    const loader_mem pinned = {loader_host_alloc, loader_host_free, &t.rt};
    const int64_t local = (int64_t)t.passes * t.batch_gpu;
    const int loader_threads =
        loader_threads_for(t.rt.backend_rec->desc->backend != EDM2_BACKEND_CPU, t.rt.services.threads);
    if (loader_open(&t.ld, &t.data, (uint64_t)t.seed, (int)local, (uint64_t)(t.rank * local), (uint64_t)t.batch,
                    info->label_dim, (uint64_t)t.nimg, &pinned, loader_threads, err))
        goto done;
    if (lead) {
        char p[4200];
        snprintf(p, sizeof p, "%s/stats.jsonl", t.run_dir);
        t.stats = fopen(p, "a");
        if (!t.stats) {
            err_set(err, "%s: cannot write", p);
            goto done;
        }
    }
    stop_signals saved;
    stop_signals_install(&saved);
    const int tty = lead && isatty(2);
    const int64_t start_nimg = t.nimg;
    double t_start = now_s(), t_int = t_start, loss_sum = 0, lr = 0;
    int64_t steps = 0, int_start = t.nimg, last_snap = -1;
    int64_t last_ckpt = start_nimg > 0 ? start_nimg : -1; /* (a resumed run started from that checkpoint) */
    if (lead && t.nimg >= t.total)
        LOG_INFO("already trained to kimg %.3f (duration_kimg %.3f): nothing to train; raise [training] duration_kimg to "
                 "continue", t.nimg / 1000.0, t.total / 1000.0);
    trainer_share_cpu(&t); /* the load during setup decides the first steps' thread count */
    int stop = 0; /* a signal to this process or, in a group, to any of them */
    while (t.nimg < t.total && !stop) {
        int64_t prev = t.nimg;
        double loss = 0;
        stop = stop_signal(); /* shared with the group inside the step, when there is one */
        if (train_step(&t, &loss, &lr, &stop, err)) goto restore;
        if (t.world == 1) stop = stop_signal(); /* alone: a signal during the step ends the run after it */
        if (!isfinite(loss)) {
            err_set(err, "the loss became %g at kimg %.3f; lower ref_lr or check the data", loss, t.nimg / 1000.0);
            goto restore;
        }
        loss_sum += loss, steps++;
        trainer_share_cpu(&t);
        if (tty) trainer_progress(&t, t_start, start_nimg);
        if (lead && (crossed(prev, t.nimg, status_every) || t.nimg >= t.total)) {
            double now = now_s();
            trainer_status(&t, loss_sum / steps, lr, int_start, t_int, t_start, now);
            loss_sum = 0, steps = 0, t_int = now, int_start = t.nimg;
        }
        if (crossed(prev, t.nimg, snapshot_every)) {
            if (lead && trainer_write_snapshots(&t, err)) goto restore;
            last_snap = t.nimg;
        }
        if (crossed(prev, t.nimg, ckpt_every)) {
            if (lead && trainer_write_checkpoint(&t, keep, err)) goto restore;
            last_ckpt = t.nimg;
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    if (stop) {
        if (lead && last_ckpt != t.nimg && trainer_write_checkpoint(&t, keep, err)) goto restore;
        LOG_INFO("stopped by signal %d at kimg %.3f; run the same command again to resume", stop, t.nimg / 1000.0);
        status = 128 + stop;
        goto restore;
    }
    if (lead && last_snap != t.nimg && trainer_write_snapshots(&t, err)) goto restore;
    if (lead && last_ckpt != t.nimg && trainer_write_checkpoint(&t, keep, err)) goto restore;
    if (t.nimg > start_nimg) {
        char el[16];
        LOG_INFO("training done: kimg %.3f in %s (%.1f img/s this session)", t.nimg / 1000.0,
                 fmt_duration(now_s() - t_start, el), (t.nimg - start_nimg) / fmax(now_s() - t_start, 1e-9));
    }
    if (lead && edm2_cfg_bool(&tv.api, "sample_grid", 1) && trainer_write_grid(&t, err)) goto restore;
    status = 0;
restore:
    stop_signals_restore(&saved);
done:
    trainer_close(&t);
    return status;
}
