/* job_encode.c: the `encode` job, the dataset tool of the latent presets: the images of a folder (class
 * subfolders, dataset.json, or just images; PNG or JPEG of any size) are centre-cropped and resized as the
 * ADM / EDM2 dataset tool does (image_resize.h), encoded by the [vae] plugin (pixels / 255 in, as the EDM2
 * reference feeds its VAE), and written as one tensors file for [data] source = tensors: `images`, scaled per
 * channel as the network sees them (vae_net.h): with latents = moments [N, 2L, r/d, r/d], the posterior's
 * mean and std, from which training draws a fresh sample at every use of an image, as the reference does;
 * with mean or sample [N, L, r/d, r/d], the mean or one draw made here from the job's seed; and `labels`
 * [N]; the scaling is in the metadata so that training and `generate` know the data are latents. Images that cannot be read are reported with their
 * path and skipped. Progress goes to DEST.partial (raw latents), DEST.partial.labels and DEST.partial.json
 * (the settings and how far it got), every checkpoint_images images and at SIGINT/SIGTERM (then exit status
 * 128 + signal): running the job again continues there; the tensors file appears only complete (written to a
 * temporary name, renamed). Started by mpirun/srun, each process encodes every world-th batch (on its own GPU)
 * and the first writes them in order: the files are bitwise one process's, and a partial encoding continues
 * with any number of processes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "config.h"
#include "data_sources.h"
#include "edm2/edm2_philox.h"
#include "fileio.h"
#include "image_read.h"
#include "image_resize.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "process_group.h"
#include "progress.h"
#include "safetensors.h"
#include "stop_signal.h"
#include "vae_net.h"

#define STREAM_ENCODE 0x454E434F4445ull /* "ENCODE": the posterior samples */

typedef struct encode_state {
    char data[4200], labels[4200], json[4200];
    FILE *fd, *fl;
    long long processed, written, skipped;
} encode_state;

/* The settings a partial encoding must share to be continued. */
static void settings_json(char *out, size_t len, const char *source, int res, const char *mode, long long seed,
                          const vae_instance *vi, int count) {
    char scale[512], bias[512];
    vae_scaling_text(vi, scale, bias, sizeof scale);
    snprintf(out, len,
             "\"source\": \"%s\", \"resolution\": %d, \"latents\": \"%s\", \"seed\": %lld, \"vae\": \"%s\", "
             "\"weights\": \"%s\", \"scale\": \"%s\", \"bias\": \"%s\", \"images\": %d",
             source, res, mode, seed, vi->rec->desc->id, vi->weights, scale, bias, count);
}

static int save_state(const encode_state *s, const char *settings, edm2_err *err) {
    if (fflush(s->fd) || fflush(s->fl) || fsync(fileno(s->fd)) || fsync(fileno(s->fl)))
        return err_set(err, "%s: write failed (%s)", s->data, strerror(errno));
    atomic_file af;
    if (af_open(&af, s->json, err)) return -1;
    fprintf(af.f, "{%s, \"processed\": %lld, \"written\": %lld, \"skipped\": %lld}\n", settings, s->processed, s->written,
            s->skipped);
    return af_commit(&af, err);
}

/* Opens the partial files: continues a partial encoding with the same settings, or starts one. */
static int open_state(encode_state *s, const char *dest, const char *settings, size_t per, edm2_err *err) {
    snprintf(s->data, sizeof s->data, "%s.partial", dest);
    snprintf(s->labels, sizeof s->labels, "%s.partial.labels", dest);
    snprintf(s->json, sizeof s->json, "%s.partial.json", dest);
    unsigned char *text = NULL;
    size_t len;
    if (access(s->json, F_OK) == 0) {
        if (read_file(s->json, &text, &len, err)) return -1;
        const char *at = strstr((const char *)text, settings);
        char why[128];
        json_t *root = json_parse_strict((const char *)text, len, why, sizeof why);
        long long p = root ? json_integer_value(json_object_get(root, "processed")) : -1;
        long long w = root ? json_integer_value(json_object_get(root, "written")) : -1;
        long long k = root ? json_integer_value(json_object_get(root, "skipped")) : -1;
        if (root) json_decref(root);
        free(text);
        if (!at || p < 0 || w < 0 || k < 0 || w + k != p)
            return err_set(err, "%s: a partial encoding with other settings (or unreadable); delete %s.partial* to start "
                                "again",
                           s->json, dest);
        s->processed = p, s->written = w, s->skipped = k;
        if (truncate(s->data, (off_t)(w * (long long)per * (long long)sizeof(float))) ||
            truncate(s->labels, (off_t)(w * (long long)sizeof(int32_t))))
            return err_set(err, "%s: cannot continue the partial encoding (%s)", s->data, strerror(errno));
        LOG_INFO("continuing the partial encoding %s: %lld images done (%lld skipped)", s->data, p, k);
    }
    if (!(s->fd = fopen(s->data, s->processed ? "ab" : "wb")) || !(s->fl = fopen(s->labels, s->processed ? "ab" : "wb")))
        return err_set(err, "%s: cannot write (%s)", s->fd ? s->labels : s->data, strerror(errno));
    return 0;
}

/* DEST = images [written, L, h, w] from the partial file (mapped) and labels; metadata as the header says. */
static int finish(encode_state *s, const char *dest, const vae_instance *vi, const char *mode, const char *source,
                  int res, long long seed, int labelled, int L, int h, edm2_err *err) {
    const int moments = !strcmp(mode, "moments"), C = moments ? 2 * L : L; /* channels stored */
    fclose(s->fd), fclose(s->fl);
    s->fd = s->fl = NULL;
    unsigned char *data = NULL, *lab = NULL;
    size_t dsize = 0, lsize = 0;
    float *labels = NULL;
    int rc = -1;
    if (map_file(s->data, &data, &dsize, err) || read_file(s->labels, &lab, &lsize, err)) goto done;
    if (dsize != (size_t)s->written * C * h * h * sizeof(float) || lsize != (size_t)s->written * sizeof(int32_t)) {
        err_set(err, "%s: %zu bytes for %lld latents (changed while encoding?)", s->data, dsize, s->written);
        goto done;
    }
    if (!(labels = malloc((size_t)(s->written + 1) * sizeof *labels))) {
        err_set(err, "out of memory");
        goto done;
    }
    for (long long i = 0; i < s->written; i++) {
        int32_t v;
        memcpy(&v, lab + i * sizeof v, sizeof v);
        labels[i] = (float)v;
    }
    char scale[512], bias[512], r[32], sd[32];
    vae_scaling_text(vi, scale, bias, sizeof scale);
    snprintf(r, sizeof r, "%d", res);
    snprintf(sd, sizeof sd, "%lld", seed);
    st_out t[2] = {{"images", ST_F32, 4, {s->written, C, h, h}, data}, {"labels", ST_F32, 1, {s->written}, labels}};
    const char *keys[] = {"edm2.latents", "edm2.latent_scale", "edm2.latent_bias", "edm2.encode",         "edm2.source",
                          "edm2.resolution", "edm2.seed",     "edm2.vae_weights", "edm2.latent_moments"};
    const char *vals[] = {vi->rec->desc->id, scale, bias, mode, source, r, sd, vi->weights, moments ? "1" : "0"};
    if (st_write(dest, t, labelled ? 2 : 1, keys, vals, 9, err)) goto done;
    remove(s->data), remove(s->labels), remove(s->json);
    rc = 0;
done:
    if (data) unmap_file(data, dsize);
    free(lab), free(labels);
    return rc;
}

/* One source image -> pixels / 255 [3, res, res] (NCHW). 0, or -1 with the reason in err (the image is skipped). */
static int load_image(const dataset *d, int i, int res, uint8_t *crop, float *out, edm2_err *err) {
    if (dataset_source_crop(d, i, res, crop, err)) return -1;
    for (int c = 0; c < 3; c++)
        for (size_t p = 0; p < (size_t)res * res; p++) out[(size_t)c * res * res + p] = crop[p * 3 + c] / 255.0f;
    return 0;
}

/* What one process encoded of a round, as the first process receives it (one allgather buffer per process):
 * head = {latents written, images skipped}, labels[batch], lat[batch, per] (as written: scaled). */
typedef struct encode_msg {
    int32_t *head, *labels;
    float *lat;
} encode_msg;

static size_t msg_bytes(int batch, size_t per) {
    return (2 + (size_t)batch) * sizeof(int32_t) + (size_t)batch * per * sizeof(float);
}

static encode_msg msg_at(unsigned char *buf, int batch) {
    encode_msg m = {(int32_t *)buf, (int32_t *)buf + 2, (float *)((int32_t *)buf + 2 + batch)};
    return m;
}

/* The scratch of one batch: the cropped pixels, the VAE's input and its moments. */
typedef struct encode_scratch {
    uint8_t *crop;
    float *img, *mom;
    int *idx;
} encode_scratch;

/* Images first .. first + count - 1 of the source: read (an unreadable one reported and counted in
 * head[1]), encoded, their latents (mean, a draw of the posterior, or mean and std; scaled) into `out`. */
static int encode_batch(const dataset *d, int first, int count, int res, const char *mode, long long seed,
                        vae_instance *vi, encode_scratch *w, encode_msg out, edm2_err *err) {
    const int sample = !strcmp(mode, "sample"), moments = !strcmp(mode, "moments");
    const int L = vi->info.latent_channels, h = res / vi->info.downsample;
    const size_t lp = (size_t)L * h * h, per = (moments ? 2 : 1) * lp, in_per = (size_t)3 * res * res;
    int m = 0, skipped = 0;
    for (int i = first; i < first + count; i++) {
        edm2_err why;
        if (load_image(d, i, res, w->crop, w->img + in_per * m, &why)) {
            LOG_WARN("skipped: %s", why.msg);
            skipped++;
            continue;
        }
        out.labels[m] = d->labels ? d->labels[i] : 0;
        w->idx[m++] = i;
    }
    if (m && vae_encode_images(vi, w->img, m, res, res, w->mom, err)) return -1;
    for (int k = 0; k < m; k++) {
        const float *mk = w->mom + (size_t)k * 2 * lp; /* image k's mean and std */
        for (int c = 0; c < L; c++)
            for (int p = 0; p < h * h; p++) {
                const size_t e = (size_t)c * h * h + p;
                float x = mk[e];
                if (sample)
                    x += mk[lp + e] * edm2_philox_normal((uint64_t)seed, STREAM_ENCODE, (uint64_t)w->idx[k] * lp + e);
                out.lat[(size_t)k * per + e] = x * vi->scale[c] + vi->bias[c];
                if (moments) out.lat[(size_t)k * per + lp + e] = mk[lp + e] * vi->scale[c]; /* std, scaled */
            }
    }
    out.head[0] = m, out.head[1] = skipped;
    return 0;
}

/* The first process: every process's batch of the round appended, in batch order (process 0, 1, ...). */
static int append_round(encode_state *s, unsigned char *all, size_t bytes, int batch, size_t per, edm2_err *err) {
    for (int q = 0; q < comm_world(); q++) {
        const encode_msg m = msg_at(all + bytes * q, batch);
        const size_t n = (size_t)m.head[0];
        if (fwrite(m.lat, sizeof *m.lat, per * n, s->fd) != per * n || fwrite(m.labels, sizeof *m.labels, n, s->fl) != n)
            return err_set(err, "%s: write failed (%s)", s->data, strerror(errno));
        s->written += m.head[0], s->skipped += m.head[1];
    }
    return 0;
}

int job_encode(const run_config *rc, edm2_err *err) {
    config_view ev, jv, vv;
    config_view_host(&ev, rc->cfg, "encode");
    config_view_host(&jv, rc->cfg, "job");
    config_view_plugin(&vv, rc, EDM2_KIND_VAE);
    const edm2_config *e = &ev.api;
    const char *source = e->get(e->ctx, "source"), *dest = e->get(e->ctx, "dest"), *mode = e->get(e->ctx, "latents");
    const int res = (int)edm2_cfg_int(e, "resolution", 512), batch = (int)edm2_cfg_int(e, "batch", 8);
    const int max_images = (int)edm2_cfg_int(e, "max_images", 0);
    const long long every = edm2_cfg_int(e, "checkpoint_images", 1000), seed = edm2_cfg_int(&jv.api, "seed", 0);
    const long long stop_after = edm2_cfg_int(e, "stop_after", 0);
    const int moments = !strcmp(mode, "moments");
    if (!moments && strcmp(mode, "sample") && strcmp(mode, "mean"))
        return JOB_FAIL(err, "[encode] latents = '%s': expected moments (mean and std; training draws), mean, or sample "
                            "(one draw made here)",
                       mode);
    const int rank = comm_rank(), world = comm_world();
    dataset d;
    memset(&d, 0, sizeof d);
    runtime rt;
    memset(&rt, 0, sizeof rt);
    vae_instance vi;
    memset(&vi, 0, sizeof vi);
    encode_state s;
    memset(&s, 0, sizeof s);
    encode_scratch w = {0};
    unsigned char *mine = NULL, *all = NULL;
    int status = 1, installed = 0;
    stop_signals saved;
    config_view bv;
    config_view_plugin(&bv, rc, EDM2_KIND_BACKEND);
    if (folder_list_sources(&d, source, err)) {
        err_set(err, "[encode] source: %s", err->msg);
        goto done;
    }
    const int count = max_images > 0 && max_images < d.count ? max_images : d.count;
    const int threads = group_threads((int)edm2_cfg_int(&jv.api, "threads", 0)); /* (a node's processes share it) */
    if (runtime_open(&rt, rc->plugin[EDM2_KIND_BACKEND], &bv.api, threads, err) ||
        vae_open(&vi, &rt, rc->plugin[EDM2_KIND_VAE], &vv.api, err))
        goto done;
    const int ds = vi.info.downsample, L = vi.info.latent_channels, h = res / ds;
    if (res % ds) {
        err_set(err, "[encode] resolution = %d: not a multiple of the VAE's downsampling %d", res, ds);
        goto done;
    }
    const size_t lp = (size_t)L * h * h;                    /* one latent image */
    const size_t per = (moments ? 2 : 1) * lp, in_per = (size_t)3 * res * res; /* floats written per image */
    char settings[3072];
    settings_json(settings, sizeof settings, d.root, res, mode, seed, &vi, count);
    if (rc->dry_run) { /* (check: the inputs are open and agree) */
        status = 0;
        goto done;
    }
    comm_set_timeout(edm2_cfg_float(&jv.api, "comm_timeout_s", 600));
    char what[4200];
    snprintf(what, sizeof what, "images to encode in %.4000s", d.root);
    if (world > 1 && group_same_start(rc->cfg, (uint64_t)count, what, "every process must see the same source", err))
        goto done;
    /* The first process alone keeps the partial files; where it continues is every process's start. */
    if (rank == 0) {
        char *dir = path_dirname(dest);
        int bad = !dir || make_dirs(dir, err);
        free(dir);
        if (bad || open_state(&s, dest, settings, per, err)) goto done;
    }
    long long start = s.processed;
    if (comm_broadcast(&start, sizeof start, 0, err)) goto done;
    const size_t bytes = msg_bytes(batch, per);
    w.img = malloc(in_per * batch * sizeof *w.img);
    w.mom = malloc(2 * lp * batch * sizeof *w.mom);
    w.idx = malloc((size_t)batch * sizeof *w.idx);
    w.crop = malloc((size_t)res * res * 3);
    mine = malloc(bytes);
    all = malloc(bytes * world);
    if (!w.img || !w.mom || !w.idx || !w.crop || !mine || !all) {
        err_set(err, "out of memory");
        goto done;
    }
    char procs[64] = "";
    if (world > 1) snprintf(procs, sizeof procs, " by %d processes", world);
    LOG_INFO("encoding %d images of %s (%s) at %dx%d into %s: latents [%d, %d, %d] as %s%s%s", count, d.root,
             d.labels ? "labelled" : "unlabelled", res, res, dest, L, h, h, mode, procs,
             image_read_has_jpeg() ? "" : " (PNG only: built without libjpeg)");
    /* This run's images: start .. end - 1 (end before count with stop_after), in rounds of batches: round r gives
     * batch r world + rank to each process, and the first appends the round's batches in order. */
    const int end = stop_after > 0 && start + stop_after < count ? (int)(start + stop_after) : count;
    const int todo = end - (int)start, rounds = group_rounds(todo, batch);
    const double t0 = now_s();
    long long saved_at = start; /* images processed when the progress was last saved */
    double last_log = 0;
    stop_signals_install(&saved); /* Ctrl-C: the state saved after the round at hand, then a clean stop */
    installed = 1;
    for (int r = 0; r < rounds; r++) {
        int sig;
        if (group_stop_signal(&sig, err)) goto done;
        if (sig) {
            if (rank == 0 && save_state(&s, settings, err)) goto done;
            LOG_INFO("stopped by signal %d after %lld images; run the same command again to continue", sig, s.processed);
            status = 128 + sig;
            goto done;
        }
        int first;
        const int m = group_batch(r, todo, batch, &first);
        const encode_msg out = msg_at(mine, batch);
        out.head[0] = out.head[1] = 0;
        if (m && encode_batch(&d, (int)start + first, m, res, mode, seed, &vi, &w, out, err)) goto done;
        if (comm_allgather(mine, all, bytes, err)) goto done;
        if (rank > 0) continue;
        if (append_round(&s, all, bytes, batch, per, err)) goto done;
        s.processed = start + group_done(r + 1, todo, batch);
        if (now_s() - last_log >= 5 || s.processed == count) { /* a line every 5 s */
            last_log = now_s();
            progress_log(NULL, "images", s.processed, count, start, t0, s.skipped ? "  (some skipped)" : NULL);
        }
        if (s.processed - saved_at >= every) {
            if (save_state(&s, settings, err)) goto done;
            saved_at = s.processed;
        }
    }
    if (rank > 0) { /* (the first process writes the files) */
        status = 0;
        goto done;
    }
    if (end < count) {
        if (save_state(&s, settings, err)) goto done;
        LOG_INFO("stopped after %d images ([encode] stop_after); run the job again to continue", todo);
        status = 0;
        goto done;
    }
    if (!s.written) {
        err_set(err, "[encode] source: none of the %d images could be read", count);
        goto done;
    }
    if (save_state(&s, settings, err) ||
        finish(&s, dest, &vi, mode, d.root, res, seed, d.labels != NULL, L, h, err))
        goto done;
    char el[16];
    LOG_INFO("wrote %s: %lld latents [%d, %d, %d]%s%s, %d classes (%lld image%s skipped) in %s", dest, s.written, L, h,
             h, moments ? " as posterior mean and std" : "", d.labels ? " with labels" : "", d.label_dim, s.skipped,
             s.skipped == 1 ? "" : "s", fmt_duration(now_s() - t0, el));
    status = 0;
done:
    if (installed) stop_signals_restore(&saved);
    if (s.fd) fclose(s.fd);
    if (s.fl) fclose(s.fl);
    vae_close(&vi);
    if (rt.b) runtime_close(&rt);
    dataset_close(&d);
    free(w.img), free(w.mom), free(w.idx), free(w.crop), free(mine), free(all);
    return status;
}
