/* job_train.c: the `train` job: trains the configured network with the configured loss, optimizer and EMA
 * on the configured data; status lines, stats.jsonl, log.txt and a progress bar; EMA snapshots and
 * resumable checkpoints (atomic), resume from the newest checkpoint, clean stop on SIGINT/SIGTERM; at the
 * end a sample grid from an EMA snapshot. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "dataset.h"
#include "fileio.h"
#include "generate.h"
#include "image_io.h"
#include "jobs.h"
#include "loader.h"
#include "log.h"
#include "runtime.h"
#include "snapshot.h"
#include "validate.h"

#define STREAM_NOISE 0x4E4F495345ull   /* "NOISE": sigma and noise of the loss */
#define STREAM_DROPOUT 0x44524F50ull   /* "DROP" + images seen: dropout masks */
#define MAX_EMA 64

static volatile sig_atomic_t g_signal;
static void on_signal(int sig) { g_signal = sig; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int64_t kimg_to_nimg(double kimg) { return (int64_t)llround(kimg * 1000.0); }

/* True when an interval boundary lies in (prev, cur]. */
static int crossed(int64_t prev, int64_t cur, int64_t every) { return every > 0 && cur / every > prev / every; }

typedef struct trainer {
    const run_config *rc;
    char run_dir[2048];
    runtime rt;
    net_instance net;
    const edm2_loss_vtable *lvt;
    edm2_loss *loss;
    const edm2_optimizer_vtable *ovt;
    edm2_optimizer *opt;
    const edm2_ema_vtable *evt;
    edm2_ema *ema;
    size_t nema;
    float *avg[MAX_EMA];
    float *grads, *y, *labels; /* backend */
    float *host;               /* host arena scratch */
    dataset data;
    loader ld;
    int64_t nimg, total, batch, batch_gpu, seed;
    char fingerprint[4096];
    FILE *stats;
    double last_progress; /* when the progress bar was last drawn */
} trainer;

static int fail_plugin(edm2_err *err, const char *kind, const char *id) {
    return err_plugin(err, "%s %s", kind, id);
}

/* "mp_unet:img_resolution=32;..." over every schema key of the network plugin. */
static void make_fingerprint(trainer *t) {
    const edm2_plugin_desc *d = t->net.rec->desc;
    size_t n = (size_t)snprintf(t->fingerprint, sizeof t->fingerprint, "%s:", d->id);
    for (uint32_t k = 0; k < d->key_count && n < sizeof t->fingerprint; k++) {
        const cfg_entry *e = cfg_get(t->rc->cfg, "network", d->keys[k].name);
        const char *v = e ? e->value : d->keys[k].default_value;
        n += (size_t)snprintf(t->fingerprint + n, sizeof t->fingerprint - n, "%s%s=%s", k ? ";" : "", d->keys[k].name,
                              v ? v : "");
    }
}

/* The checkpoint's buffers, pointing into host memory (t->host for params; allocated for the rest). */
static size_t ckpt_layout(trainer *t, ckpt_buffer *bufs, float **hosts, char names[][64]) {
    size_t n = 0, A = t->net.info.arena_floats;
    bufs[n++] = (ckpt_buffer){"params", hosts[0], A};
    size_t ns = t->ovt->state_count(t->opt);
    for (size_t i = 0; i < ns; i++) {
        edm2_state_buffer sb;
        t->ovt->state_buffer(t->opt, i, &sb);
        snprintf(names[n], 64, "optimizer/%s", sb.name);
        bufs[n] = (ckpt_buffer){names[n], hosts[n], sb.numel};
        n++;
    }
    for (size_t i = 0; i < t->nema; i++) {
        snprintf(names[n], 64, "ema/%s", t->evt->label(t->ema, i));
        bufs[n] = (ckpt_buffer){names[n], hosts[n], A};
        n++;
    }
    return n;
}

/* Backend memory of checkpoint buffer i. */
static float *ckpt_device(trainer *t, size_t i) {
    size_t ns = t->ovt->state_count(t->opt);
    if (i == 0) return t->net.params;
    if (i <= ns) {
        edm2_state_buffer sb;
        t->ovt->state_buffer(t->opt, i - 1, &sb);
        return sb.data;
    }
    return t->avg[i - 1 - ns];
}

static int ckpt_io(trainer *t, const char *path, int write, edm2_err *err) {
    ckpt_buffer bufs[MAX_EMA + 16];
    float *hosts[MAX_EMA + 16] = {0};
    char names[MAX_EMA + 16][64];
    size_t nb = 1 + t->ovt->state_count(t->opt) + t->nema;
    int rc = -1;
    for (size_t i = 0; i < nb; i++)
        if (!(hosts[i] = malloc((t->net.info.arena_floats + 1) * sizeof(float)))) {
            err_set(err, "out of memory");
            goto done;
        }
    nb = ckpt_layout(t, bufs, hosts, names);
    ckpt_info info = {t->nimg, t->ovt->get_step(t->opt), t->batch, t->seed, t->fingerprint};
    if (write) {
        for (size_t i = 0; i < nb; i++)
            if (rt_download(&t->rt, bufs[i].host, ckpt_device(t, i), bufs[i].n, err)) goto done;
        if (ckpt_write(path, bufs, nb, &info, err)) goto done;
    } else {
        if (ckpt_read(path, bufs, nb, &info, err)) goto done;
        for (size_t i = 0; i < nb; i++)
            if (rt_upload(&t->rt, ckpt_device(t, i), bufs[i].host, bufs[i].n, err)) goto done;
        t->nimg = info.nimg;
        t->ovt->set_step(t->opt, info.optimizer_step);
    }
    rc = 0;
done:
    for (size_t i = 0; i < nb; i++) free(hosts[i]);
    return rc;
}

static int write_checkpoint(trainer *t, int keep, edm2_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/training-state-%07lld.safetensors", t->run_dir, (long long)(t->nimg / 1000));
    if (ckpt_io(t, path, 1, err)) return -1;
    ckpt_prune(t->run_dir, keep);
    LOG_INFO("checkpoint %s", path);
    return 0;
}

static int write_snapshots(trainer *t, edm2_err *err) {
    for (size_t i = 0; i < t->nema; i++) {
        char path[4200];
        const char *label = t->evt->label(t->ema, i);
        snprintf(path, sizeof path, "%s/network-snapshot-%07lld-%s.safetensors", t->run_dir, (long long)(t->nimg / 1000),
                 label);
        if (rt_download(&t->rt, t->host, t->avg[i], t->net.info.arena_floats, err)) return -1;
        snapshot_meta meta = {t->nimg, t->rc->plugin[EDM2_KIND_EMA]->desc->id, t->evt->profile_param(t->ema, i), label,
                              NULL, 0};
        if (snapshot_write(path, &t->net, t->host, t->rc->cfg, "network", &meta, err)) return -1;
    }
    LOG_INFO("snapshots of %zu EMA%s at kimg %.1f", t->nema, t->nema == 1 ? "" : "s", t->nimg / 1000.0);
    return 0;
}

/* Samples a grid from EMA `label` with the [sampler] plugin (heun defaults without one). */
static int write_grid(trainer *t, edm2_err *err) {
    config_view tv;
    config_view_host(&tv, t->rc->cfg, "training");
    const char *want = tv.api.get(tv.api.ctx, "grid_ema");
    int cols = (int)edm2_cfg_int(&tv.api, "grid_columns", 10);
    size_t which = t->nema - 1;
    for (size_t i = 0; i < t->nema && *want; i++)
        if (!strcmp(t->evt->label(t->ema, i), want)) which = i;
    if (*want && strcmp(t->evt->label(t->ema, which), want))
        return err_set(err, "[training] grid_ema = '%s': not one of the tracked EMAs", want);
    const plugin_rec *srec = t->rc->plugin[EDM2_KIND_SAMPLER];
    if (!srec) srec = registry_find(t->rc->registry, EDM2_KIND_SAMPLER, "heun", t->rt.backend_rec->desc->backend);
    if (!srec) return err_set(err, "no [sampler] section and no 'heun' sampler plugin for the sample grid");
    config_view sv;
    config_view_init(&sv, t->rc->cfg, "sampler", srec->desc->keys, srec->desc->key_count);
    const int L = t->net.info.label_dim, rows = L ? L : cols, n = rows * cols;
    const size_t per = (size_t)t->net.info.img_channels * t->net.info.img_resolution * t->net.info.img_resolution;
    /* Sample the EMA: copy it into the parameters for the duration (restored from the host copy after). */
    float *params_copy = malloc((t->net.info.arena_floats + 1) * sizeof(float));
    float *out = malloc(per * n * sizeof(float)), *labels = calloc((size_t)n * (L ? L : 1), sizeof(float));
    uint64_t *seeds = malloc(n * sizeof *seeds);
    generator gen;
    memset(&gen, 0, sizeof gen);
    int rc = -1;
    if (!params_copy || !out || !labels || !seeds) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        seeds[i] = (uint64_t)i;
        if (L) labels[(size_t)i * L + (i / cols) % L] = 1.0f; /* one row per class */
    }
    if (rt_download(&t->rt, params_copy, t->net.params, t->net.info.arena_floats, err)) goto done;
    if (t->rt.bvt->copy(t->rt.b, t->net.params, t->avg[which], t->net.info.arena_floats * sizeof(float)) != EDM2_OK) {
        err_plugin(err, "backend copy failed");
        goto done;
    }
    if (generator_open(&gen, &t->rt, &t->net, NULL, 1.0, srec, &sv.api, err)) goto done;
    double t0 = now_s();
    int bs = 32;
    for (int i = 0; i < n; i += bs) {
        int m = n - i < bs ? n - i : bs;
        if (generator_run(&gen, seeds + i, NULL, L ? labels + (size_t)i * L : NULL, m, out + per * i, err)) goto done;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/samples.png", t->run_dir);
    if (grid_write(path, out, n, t->net.info.img_channels, t->net.info.img_resolution, cols, err)) goto done;
    LOG_INFO("sample grid %s: %d images from EMA %s with %s (%d evaluations each), %.1f s", path, n,
             t->evt->label(t->ema, which), srec->desc->id, gen.svt->num_evals(gen.s), now_s() - t0);
    rc = 0;
done:
    if (gen.s) generator_close(&gen);
    if (params_copy && rt_upload(&t->rt, t->net.params, params_copy, t->net.info.arena_floats, err)) rc = -1;
    free(params_copy), free(out), free(labels), free(seeds);
    return rc;
}

static void progress(trainer *t, double t_start, int64_t start_nimg) {
    double now = now_s();
    if (now - t->last_progress < 0.25 && t->nimg < t->total) return;
    t->last_progress = now;
    double frac = (double)t->nimg / (double)t->total, rate = (t->nimg - start_nimg) / fmax(now - t_start, 1e-9);
    double eta = rate > 0 ? (t->total - t->nimg) / rate : 0;
    int width = 30, fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %5.1f%%  kimg %.1f/%.1f  %.0f img/s  ETA %dm%02ds\033[K", bar, 100 * frac, t->nimg / 1000.0,
            t->total / 1000.0, rate, (int)(eta / 60), (int)fmod(eta, 60));
    fflush(stderr);
}

static void trainer_close(trainer *t) {
    loader_close(&t->ld);
    dataset_close(&t->data);
    for (size_t i = 0; i < t->nema; i++) rt_free(&t->rt, t->avg[i]);
    rt_free(&t->rt, t->grads), rt_free(&t->rt, t->y), rt_free(&t->rt, t->labels);
    if (t->ema) t->evt->destroy(t->ema);
    if (t->opt) t->ovt->destroy(t->opt);
    if (t->loss) t->lvt->destroy(t->loss);
    if (t->net.net) net_close(&t->net, &t->rt);
    if (t->rt.b) runtime_close(&t->rt);
    free(t->host);
    if (t->stats) fclose(t->stats);
    log_open_file(NULL);
}

static int setup(trainer *t, const run_config *rc, edm2_err *err) {
    config_view jv, tv, v;
    config_view_host(&jv, rc->cfg, "job");
    config_view_host(&tv, rc->cfg, "training");
    snprintf(t->run_dir, sizeof t->run_dir, "%s", jv.api.get(jv.api.ctx, "run_dir"));
    t->seed = edm2_cfg_int(&jv.api, "seed", 0);
    t->batch = edm2_cfg_int(&tv.api, "batch", 2048);
    t->batch_gpu = edm2_cfg_int(&tv.api, "batch_gpu", 0);
    if (t->batch_gpu <= 0) t->batch_gpu = t->batch;
    t->total = kimg_to_nimg(edm2_cfg_float(&tv.api, "duration_kimg", 0));
    if (t->batch < 1 || t->batch % t->batch_gpu)
        return err_set(err, "[training] batch = %lld must be a positive multiple of batch_gpu = %lld", (long long)t->batch,
                       (long long)t->batch_gpu);
    if (t->total <= 0) return err_set(err, "[training] duration_kimg must be > 0");
    const char *intervals[] = {"snapshot_kimg", "checkpoint_kimg"};
    for (int i = 0; i < 2; i++) {
        double k = edm2_cfg_float(&tv.api, intervals[i], 0);
        if (k != 0 && k < 1)
            return err_set(err, "[training] %s = %g: use 0 (only at the end) or at least 1, so file names (kimg) stay unique",
                           intervals[i], k);
    }
    if (make_dirs(t->run_dir, err)) return -1;
    char p[4200];
    snprintf(p, sizeof p, "%s/log.txt", t->run_dir);
    if (log_open_file(p)) return err_set(err, "%s: cannot write", p);
    int stale = remove_stale_temporaries(t->run_dir);
    if (stale) LOG_INFO("removed %d unfinished temporary file%s of an interrupted run", stale, stale == 1 ? "" : "s");
    /* Plugins. */
    config_view_plugin(&v, rc, EDM2_KIND_BACKEND);
    if (runtime_open(&t->rt, rc->plugin[EDM2_KIND_BACKEND], &v.api, (int)edm2_cfg_int(&jv.api, "threads", 0), err))
        return -1;
    config_view_plugin(&v, rc, EDM2_KIND_NETWORK);
    if (net_open(&t->net, &t->rt, rc->plugin[EDM2_KIND_NETWORK], &v.api, err)) return -1;
    make_fingerprint(t);
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
    /* Data, checked against the network. */
    if (dataset_open(&t->data, rc->cfg, err)) return -1;
    if (t->data.channels != info->img_channels || t->data.resolution != info->img_resolution)
        return err_set(err, "the data are %dx%dx%d images ([data] resolution/channels), the network takes %dx%dx%d "
                            "([network] img_channels/img_resolution)",
                       t->data.channels, t->data.resolution, t->data.resolution, info->img_channels, info->img_resolution,
                       info->img_resolution);
    if (info->label_dim && !t->data.label_dim)
        return err_set(err, "[network] label_dim = %d, but the data have no labels (set label_dim = 0)", info->label_dim);
    if (info->label_dim && info->label_dim < t->data.label_dim)
        return err_set(err, "[network] label_dim = %d, but the data have %d classes", info->label_dim, t->data.label_dim);
    /* Memory. */
    size_t A = info->arena_floats, per = (size_t)info->img_channels * info->img_resolution * info->img_resolution;
    if (!(t->grads = rt_alloc(&t->rt, A, err)) || !(t->y = rt_alloc(&t->rt, per * t->batch, err))) return -1;
    if (info->label_dim && !(t->labels = rt_alloc(&t->rt, (size_t)t->batch * info->label_dim, err))) return -1;
    for (size_t i = 0; i < t->nema; i++)
        if (!(t->avg[i] = rt_alloc(&t->rt, A, err))) return -1;
    if (!(t->host = malloc((A + 1) * sizeof(float)))) return err_set(err, "out of memory");
    return 0;
}

static int start_or_resume(trainer *t, edm2_err *err) {
    char path[4200];
    if (ckpt_find_latest(t->run_dir, path, sizeof path, err)) return -1;
    if (path[0]) {
        if (ckpt_io(t, path, 0, err)) return -1;
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

/* One optimizer step on the next batch; returns the batch's mean per-element loss in *loss. */
static int train_step(trainer *t, double *loss, double *lr, edm2_err *err) {
    const edm2_network_info *info = &t->net.info;
    const size_t per = (size_t)info->img_channels * info->img_resolution * info->img_resolution;
    const float *img, *lab;
    if (loader_next(&t->ld, &img, &lab, err)) return -1;
    if (rt_upload(&t->rt, t->y, img, per * t->batch, err)) return -1;
    if (info->label_dim && rt_upload(&t->rt, t->labels, lab, (size_t)t->batch * info->label_dim, err)) return -1;
    if (t->net.vt->normalize_weights(t->net.net, t->net.params) != EDM2_OK) return err_plugin(err, "normalize_weights failed");
    if (t->rt.bvt->fill(t->rt.b, t->grads, 0.0f, info->arena_floats) != EDM2_OK) return err_plugin(err, "backend fill failed");
    double objective = 0;
    for (int64_t j = 0; j < t->batch; j += t->batch_gpu) {
        edm2_loss_batch lb;
        memset(&lb, 0, sizeof lb);
        lb.struct_size = sizeof lb;
        lb.y = t->y + per * j;
        lb.labels = info->label_dim ? t->labels + (size_t)j * info->label_dim : NULL;
        lb.N = (int)t->batch_gpu;
        lb.batch_total = (int)t->batch;
        lb.rng = (edm2_rng){(uint64_t)t->seed, STREAM_NOISE, (uint64_t)(t->nimg + j) * (per + 1)};
        lb.dropout_rng = (edm2_rng){(uint64_t)t->seed, STREAM_DROPOUT + (uint64_t)(t->nimg + j), 0};
        double part = 0;
        if (t->lvt->compute(t->loss, net_ref(&t->net), t->net.params, t->grads, &lb, &part) != EDM2_OK)
            return err_plugin(err, "loss computation failed at kimg %.3f", t->nimg / 1000.0);
        objective += part;
    }
    if (t->ovt->step(t->opt, t->net.params, t->grads, t->nimg, t->batch, lr) != EDM2_OK)
        return err_plugin(err, "optimizer step failed at kimg %.3f", t->nimg / 1000.0);
    t->nimg += t->batch;
    if (t->evt->update(t->ema, t->avg, t->net.params, info->arena_floats, t->nimg, t->batch) != EDM2_OK)
        return err_plugin(err, "EMA update failed");
    *loss = objective / (double)per;
    return 0;
}

int job_train(const run_config *rc, edm2_err *err) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.rc = rc;
    int status = 1;
    if (setup(&t, rc, err) || start_or_resume(&t, err)) goto done;
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
    LOG_INFO("loss %s, optimizer %s, EMA %s (%zu), batch %lld (%lld per pass), %.3f kimg to go",
             rc->plugin[EDM2_KIND_LOSS]->desc->id, rc->plugin[EDM2_KIND_OPTIMIZER]->desc->id,
             rc->plugin[EDM2_KIND_EMA]->desc->id, t.nema, (long long)t.batch, (long long)t.batch_gpu,
             (t.total - t.nimg) / 1000.0);
    if (loader_open(&t.ld, &t.data, (uint64_t)t.seed, (int)t.batch, info->label_dim, (uint64_t)t.nimg, err)) goto done;
    char p[4200];
    snprintf(p, sizeof p, "%s/stats.jsonl", t.run_dir);
    t.stats = fopen(p, "a");
    if (!t.stats) {
        err_set(err, "%s: cannot write", p);
        goto done;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    g_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    const int tty = isatty(2);
    const int64_t start_nimg = t.nimg;
    double t_start = now_s(), t_int = t_start, loss_sum = 0, lr = 0;
    int64_t steps = 0, int_start = t.nimg, last_snap = -1, last_ckpt = -1;
    while (t.nimg < t.total && !g_signal) {
        int64_t prev = t.nimg;
        double loss = 0;
        if (train_step(&t, &loss, &lr, err)) goto restore;
        if (!isfinite(loss)) {
            err_set(err, "the loss became %g at kimg %.3f; lower ref_lr or check the data", loss, t.nimg / 1000.0);
            goto restore;
        }
        loss_sum += loss, steps++;
        if (tty) progress(&t, t_start, start_nimg);
        if (crossed(prev, t.nimg, status_every) || t.nimg >= t.total) {
            double now = now_s(), dt = now - t_int, imgs = (double)(t.nimg - int_start);
            size_t cur = 0, peak = 0;
            t.rt.bvt->memory_stats(t.rt.b, &cur, &peak);
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            if (tty) fprintf(stderr, "\r\033[K");
            LOG_INFO("kimg %9.3f  loss %.4f  lr %.3e  sec/kimg %7.2f  img/s %7.1f  mem %.0f MiB (peak %.0f, RSS %.0f)",
                     t.nimg / 1000.0, loss_sum / steps, lr, dt / (imgs / 1000.0), imgs / dt, cur / 1048576.0,
                     peak / 1048576.0, ru.ru_maxrss / 1024.0);
            fprintf(t.stats,
                    "{\"kimg\": %.3f, \"nimg\": %lld, \"loss\": %.6g, \"lr\": %.6g, \"sec_per_kimg\": %.4g, "
                    "\"img_per_s\": %.4g, \"mem_mib\": %.1f, \"mem_peak_mib\": %.1f, \"maxrss_mib\": %.1f, \"time\": %lld}\n",
                    t.nimg / 1000.0, (long long)t.nimg, loss_sum / steps, lr, dt / (imgs / 1000.0), imgs / dt,
                    cur / 1048576.0, peak / 1048576.0, ru.ru_maxrss / 1024.0, (long long)time(NULL));
            fflush(t.stats);
            loss_sum = 0, steps = 0, t_int = now, int_start = t.nimg;
        }
        if (crossed(prev, t.nimg, snapshot_every)) {
            if (write_snapshots(&t, err)) goto restore;
            last_snap = t.nimg;
        }
        if (crossed(prev, t.nimg, ckpt_every)) {
            if (write_checkpoint(&t, keep, err)) goto restore;
            last_ckpt = t.nimg;
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    if (g_signal) {
        int sig = g_signal;
        if (last_ckpt != t.nimg && write_checkpoint(&t, keep, err)) goto restore;
        LOG_INFO("stopped by signal %d at kimg %.3f; run the same command again to resume", sig, t.nimg / 1000.0);
        status = 128 + sig;
        goto restore;
    }
    if (last_snap != t.nimg && write_snapshots(&t, err)) goto restore;
    if (last_ckpt != t.nimg && write_checkpoint(&t, keep, err)) goto restore;
    LOG_INFO("training done: kimg %.3f in %.1f s (%.1f img/s this session)", t.nimg / 1000.0, now_s() - t_start,
             (t.nimg - start_nimg) / fmax(now_s() - t_start, 1e-9));
    if (edm2_cfg_bool(&tv.api, "sample_grid", 1) && write_grid(&t, err)) goto restore;
    status = 0;
restore:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
done:
    trainer_close(&t);
    return status;
}
