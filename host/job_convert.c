/* job_convert.c: the `convert` job, the EDM / EDM2 dataset tool's convert step for the pixel-space presets
 * (img64): the images of a folder or a .zip of one (folder_list_sources: dataset.json, class subfolders, or just
 * images; PNG or JPEG of any size) centre-cropped and resized to `resolution` as the ADM / EDM2 dataset tool does
 * (center-crop-dhariwal, image_resize.h), each written as an RGB PNG in the tool's layout: source image i (its
 * index in the listing) as DEST/{i / 1000:05d}/img{i:08d}.png, and DEST/dataset.json ({"labels":
 * [["00000/img00000000.png", class], ...]}, or null without classes) written last; [data] source = folder reads
 * the result. Pixels are bitwise the tool's (tests/test_image_resize.c); PNG's compression may differ. Images run
 * on the job's threads; each PNG is written under a temporary name and renamed into place, so an interrupted run
 * (SIGINT/SIGTERM: exit status 128 + signal) leaves only whole images, and the same command continues: a PNG
 * already there is kept when it reads back at the resolution, written again when it does not. DEST/convert.json
 * holds the settings, so that a run with other settings is refused instead of mixing two conversions. An image
 * that cannot be read is reported and left out. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "data_sources.h"
#include "fileio.h"
#include "image_io.h"
#include "image_read.h"
#include "jobs.h"
#include "log.h"
#include "progress.h"
#include "stop_signal.h"

#define CONVERT_ROUND 1024 /* images between progress lines and stop checks */

/* DEST's path of source image i: DEST/{i / 1000:05d}/img{i:08d}.png. */
static void image_path(char *out, size_t len, const char *dest, int i) {
    snprintf(out, len, "%.4000s/%05d/img%08d.png", dest, i / 1000, i);
}

/* `bytes` into `path` through PATH.tmp.XXXXXX and a rename, with permissions `mode` (no fsync: a continued run
 * reads back what it keeps). Safe on several threads at once. */
static int write_renamed(const char *path, const unsigned char *bytes, size_t n, mode_t mode, edm2_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%.4000s.tmp.XXXXXX", path);
    const int fd = mkstemp(tmp);
    if (fd < 0) return err_set(err, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
    size_t done = 0;
    int e = 0;
    while (done < n && !e) {
        const ssize_t w = write(fd, bytes + done, n - done);
        if (w > 0) done += (size_t)w;
        else if (w == 0 || errno != EINTR) e = w == 0 ? EIO : errno;
    }
    if (!e && fchmod(fd, mode) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (!e) return 0;
    unlink(tmp);
    return err_set(err, "%s: write failed: %s", path, strerror(e));
}

/* 1 when DEST's image i is there and reads back as a res x res PNG (a run that was stopped wrote it whole). */
static int kept(const char *path, int res) {
    uint8_t *px = NULL;
    int w, h;
    edm2_err ignored;
    const int ok = access(path, F_OK) == 0 && png_read(path, 3, res, res, &px, &w, &h, &ignored) == 0;
    free(px);
    return ok;
}

/* The settings of this conversion, as DEST/convert.json holds them (the source's path a JSON string). */
static void settings_json(char *out, size_t len, const char *source, int res, int count) {
    char quoted[8200];
    size_t q = 0;
    for (const char *p = source; *p && q + 7 < sizeof quoted; p++) {
        if (*p == '"' || *p == '\\') quoted[q++] = '\\', quoted[q++] = *p;
        else if ((unsigned char)*p < 0x20) q += (size_t)snprintf(quoted + q, sizeof quoted - q, "\\u%04x", *p);
        else quoted[q++] = *p;
    }
    quoted[q] = 0;
    snprintf(out, len, "{\"tool\": \"edm2host convert\", \"source\": \"%s\", \"resolution\": %d, \"images\": %d}\n",
             quoted, res, count);
}

/* DEST is new, empty, or holds a conversion of the same settings (to continue); anything else is refused. */
static int check_dest(const char *dest, const char *settings, int *resumed, edm2_err *err) {
    *resumed = 0;
    struct stat st;
    if (stat(dest, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return err_set(err, "[convert] dest = '%s': not a folder", dest);
    char p[4200];
    snprintf(p, sizeof p, "%.4000s/convert.json", dest);
    unsigned char *text = NULL;
    size_t n;
    if (access(p, F_OK) == 0) {
        if (read_file(p, &text, &n, err)) return -1;
        const int same = !strcmp((const char *)text, settings);
        free(text);
        if (!same)
            return err_set(err, "[convert] dest = '%s' holds a conversion of other settings (%s): remove it or choose "
                                "another dest", dest, p);
        *resumed = 1;
        return 0;
    }
    DIR *dir = opendir(dest);
    int others = !dir;
    for (struct dirent *e; dir && !others && (e = readdir(dir));)
        others = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (dir) closedir(dir);
    return others ? err_set(err, "[convert] dest = '%s' holds other files: choose a new or empty folder", dest) : 0;
}

/* DEST/convert.json (atomically). */
static int write_settings(const char *dest, const char *settings, edm2_err *err) {
    char p[4200];
    snprintf(p, sizeof p, "%.4000s/convert.json", dest);
    atomic_file af;
    if (af_open(&af, p, err)) return -1;
    if (fputs(settings, af.f) < 0) {
        af_abort(&af);
        return err_set(err, "%s: write failed", p);
    }
    return af_commit(&af, err);
}

/* DEST/dataset.json: every image written, in index order, with its class (or {"labels": null}). *listed: how many. */
static int write_listing(const char *dest, const dataset *d, int count, int *listed, edm2_err *err) {
    char p[4200], img[4200];
    snprintf(p, sizeof p, "%.4000s/dataset.json", dest);
    atomic_file af;
    if (af_open(&af, p, err)) return -1;
    *listed = 0;
    if (!d->labels) fputs("{\"labels\": null}\n", af.f);
    else fputs("{\"labels\": [", af.f);
    for (int i = 0; i < count; i++) {
        image_path(img, sizeof img, dest, i);
        if (access(img, F_OK) != 0) continue;
        if (d->labels) fprintf(af.f, "%s[\"%05d/img%08d.png\", %d]", *listed ? ", " : "", i / 1000, i, d->labels[i]);
        ++*listed;
    }
    if (d->labels) fputs("]}\n", af.f);
    return af_commit(&af, err);
}

/* Converts images [i0, i1): *written, *kept_n and *skipped counted; a failed write ends it with the error. */
static int convert_round(const dataset *d, const char *dest, int res, int i0, int i1, int threads, mode_t mode,
                         int *written, int *kept_n, int *skipped, edm2_err *err) {
    char dir[4200];
    for (int f = i0 / 1000; f <= (i1 - 1) / 1000; f++) {
        snprintf(dir, sizeof dir, "%.4000s/%05d", dest, f);
        if (make_dirs(dir, err)) return -1;
    }
    int failed = 0, w = 0, k = 0, s = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) reduction(+ : w, k, s) if (threads > 1)
    for (int i = i0; i < i1; i++) {
        char path[4200];
        image_path(path, sizeof path, dest, i);
        if (kept(path, res)) {
            k++;
            continue;
        }
        uint8_t *crop = malloc((size_t)res * res * 3);
        unsigned char *png = NULL;
        size_t n = 0;
        edm2_err why;
        if (!crop || dataset_source_crop(d, i, res, crop, &why)) {
            LOG_WARN("skipped: %s", crop ? why.msg : "out of memory");
            unlink(path); /* (a damaged PNG of an earlier run is not listed) */
            s++;
        } else if (png_encode(crop, res, res, 3, &png, &n, &why) || write_renamed(path, png, n, mode, &why)) {
#pragma omp critical(convert_error)
            if (!failed++) *err = why;
        } else {
            w++;
        }
        free(png), free(crop);
    }
    *written += w, *kept_n += k, *skipped += s;
    return failed ? -1 : 0;
}

int job_convert(const run_config *rc, edm2_err *err) {
    config_view cv, jv;
    config_view_host(&cv, rc->cfg, "convert");
    config_view_host(&jv, rc->cfg, "job");
    const edm2_config *c = &cv.api;
    const char *source = c->get(c->ctx, "source"), *dest = c->get(c->ctx, "dest");
    const int res = (int)edm2_cfg_int(c, "resolution", 64), max_images = (int)edm2_cfg_int(c, "max_images", 0);
    dataset d;
    memset(&d, 0, sizeof d);
    int status = 1, resumed = 0;
    if (folder_list_sources(&d, source, err)) {
        err_set(err, "[convert] source: %s", err->msg);
        goto done;
    }
    const int count = max_images > 0 && max_images < d.count ? max_images : d.count;
    char settings[8400];
    settings_json(settings, sizeof settings, d.root, res, count);
    if (check_dest(dest, settings, &resumed, err)) goto done;
    if (rc->dry_run) { /* (check: the source lists and dest takes this conversion) */
        status = 0;
        goto done;
    }
    if (make_dirs(dest, err) || (!resumed && write_settings(dest, settings, err))) goto done;
    const mode_t mask = umask(0);
    umask(mask);
    int threads = (int)edm2_cfg_int(&jv.api, "threads", 0); /* (0: every core) */
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    LOG_INFO("converting %d images of %s (%s) to %dx%d PNGs in %s (the EDM dataset tool's layout) on %d threads%s%s",
             count, d.root, d.labels ? "labelled" : "unlabelled", res, res, dest, threads,
             resumed ? ", continuing the conversion there" : "",
             image_read_has_jpeg() ? "" : " (PNG only: built without libjpeg)");
    stop_signals saved;
    stop_signals_install(&saved);
    int written = 0, kept_n = 0, skipped = 0, stopped = 0;
    const double t0 = now_s();
    double last_log = 0;
    for (int i0 = 0; i0 < count && !stopped; i0 += CONVERT_ROUND) {
        const int i1 = count - i0 < CONVERT_ROUND ? count : i0 + CONVERT_ROUND;
        if (convert_round(&d, dest, res, i0, i1, threads, 0666 & ~mask, &written, &kept_n, &skipped, err)) {
            stop_signals_restore(&saved);
            goto done;
        }
        if (now_s() - last_log >= 5 || i1 == count) { /* a line every 5 s */
            last_log = now_s();
            progress_log(NULL, "images", i1, count, 0, t0, skipped ? "  (some skipped)" : NULL);
        }
        stopped = stop_signal();
    }
    stop_signals_restore(&saved);
    if (stopped) {
        LOG_INFO("stopped by signal %d after %d images (%d written): run the same command again to continue", stopped,
                 written + kept_n + skipped, written);
        status = 128 + stopped;
        goto done;
    }
    int listed;
    if (write_listing(dest, &d, count, &listed, err)) goto done;
    if (listed == 0) {
        err_set(err, "[convert] source: none of the %d images could be read", count);
        goto done;
    }
    LOG_INFO("converted %d images into %s: %d written, %d kept from an earlier run, %d unreadable (left out); train "
             "on them with [data] source = folder, path = %s, resolution = %d",
             listed, dest, written, kept_n, skipped, dest, res);
    status = 0;
done:
    dataset_close(&d);
    return status;
}
