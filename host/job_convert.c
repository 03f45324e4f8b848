/* job_convert.c: the `convert` job, the EDM / EDM2 dataset tool's convert step for the pixel-space presets
 * (img64): the images of a folder or a .zip of one (folder_list_sources: dataset.json, class subfolders, or just
 * images; PNG or JPEG of any size) centre-cropped and resized to `resolution` as the ADM / EDM2 dataset tool does
 * (center-crop-dhariwal, image_resize.h), each written as an RGB PNG in the tool's layout: source image i (its
 * index in the listing) as {i / 1000:05d}/img{i:08d}.png, and dataset.json ({"labels": [["00000/img00000000.png",
 * class], ...]}, or null without classes) written last, into the folder `dest` or, when dest ends in .zip, into
 * that archive (entries stored, as the tool writes them; zip_writer.h); [data] source = folder reads either.
 * Pixels are bitwise the tool's (tests/test_image_resize.c); PNG's compression may differ. Images run on the job's
 * threads. An interrupted run (SIGINT/SIGTERM: exit status 128 + signal, after the round at hand) leaves only whole
 * images, and the same command continues:
 *   - a folder: each PNG is written under a temporary name and renamed into place; a PNG already there is kept
 *     when it reads back at the resolution, written again when it does not; DEST/convert.json holds the settings;
 *   - an archive: it grows as DEST.partial, the images in index order, synced after each round; a continued run
 *     keeps its whole entries (CRC-32 checked) and goes on after the last; DEST.partial.json holds the settings,
 *     and the finished archive's comment (a finished archive of the same settings is left as it is).
 * A run with other settings is refused instead of mixing two conversions. An image that cannot be read is
 * reported and left out. */
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
#include "zip_archive.h"
#include "zip_writer.h"

#define CONVERT_ROUND 1024           /* images between progress lines and stop checks, at most */
#define ROUND_BYTES ((size_t)256 << 20) /* an archive's round of PNGs waits in memory: about this much at most */

/* Where the images go: a folder, or an archive (zip != NULL). */
typedef struct convert_dest {
    const char *path;
    mode_t mode;      /* a folder's files */
    zip_writer *zip;  /* an archive: the writer of DEST.partial */
    char *in_archive; /* [count] (an archive): 1 where image i has been added */
} convert_dest;

/* The name of source image i in the tool's layout: {i / 1000:05d}/img{i:08d}.png. */
static void image_name(char *out, size_t len, int i) { snprintf(out, len, "%05d/img%08d.png", i / 1000, i); }

/* A folder's path of source image i. */
static void image_path(char *out, size_t len, const char *dest, int i) {
    char name[64];
    image_name(name, sizeof name, i);
    snprintf(out, len, "%.4000s/%s", dest, name);
}

/* 1 when image i is in the dest (written, or kept from an earlier run). */
static int has_image(const convert_dest *o, int i) {
    if (o->zip) return o->in_archive[i];
    char p[4200];
    image_path(p, sizeof p, o->path, i);
    return access(p, F_OK) == 0;
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

/* The settings of this conversion, as DEST/convert.json holds them (an archive: DEST.partial.json, then its
 * comment); the source's path a JSON string. */
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

/* 1 when `path` holds exactly `settings`; 0 when it holds others; -1 with the error when it cannot be read. */
static int same_settings(const char *path, const char *settings, edm2_err *err) {
    unsigned char *text = NULL;
    size_t n;
    if (read_file(path, &text, &n, err)) return -1;
    const int same = !strcmp((const char *)text, settings);
    free(text);
    return same;
}

/* A folder DEST is new, empty, or holds a conversion of the same settings (to continue); else refused. */
static int check_folder(const char *dest, const char *settings, int *resumed, edm2_err *err) {
    struct stat st;
    if (stat(dest, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return err_set(err, "[convert] dest = '%s': not a folder", dest);
    char p[4200];
    snprintf(p, sizeof p, "%.4000s/convert.json", dest);
    if (access(p, F_OK) == 0) {
        const int same = same_settings(p, settings, err);
        if (same < 0) return -1;
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

/* An archive DEST is not there (DEST.partial, if there, holds an unfinished conversion of the same settings: to
 * continue), or is there holding a conversion of the same settings (*finished: nothing to do); else refused. */
static int check_archive(const char *dest, const char *settings, int *resumed, int *finished, edm2_err *err) {
    char partial[4200], json[4300];
    snprintf(partial, sizeof partial, "%.4000s.partial", dest);
    snprintf(json, sizeof json, "%s.json", partial);
    struct stat st;
    if (stat(dest, &st) == 0) {
        zip_archive z;
        edm2_err why;
        if (S_ISDIR(st.st_mode) || zip_open(&z, dest, &why))
            return err_set(err, "[convert] dest = '%s' is there and is not an archive (%s): remove it or choose "
                                "another dest", dest, S_ISDIR(st.st_mode) ? "a folder" : why.msg);
        const int same = z.comment_len == strlen(settings) && !memcmp(z.comment, settings, z.comment_len);
        zip_close(&z);
        if (!same)
            return err_set(err, "[convert] dest = '%s' is there and holds a conversion of other settings (or another "
                                "archive): remove it or choose another dest", dest);
        *finished = 1;
        return 0;
    }
    if (access(json, F_OK) == 0) {
        const int same = same_settings(json, settings, err);
        if (same < 0) return -1;
        if (!same)
            return err_set(err, "[convert] dest = '%s': %s holds an unfinished conversion of other settings (%s): "
                                "remove both, or run it again with those settings", dest, partial, json);
        *resumed = access(partial, F_OK) == 0;
        return 0;
    }
    if (access(partial, F_OK) == 0)
        return err_set(err, "[convert] dest = '%s': %s is there without %s (not this job's): remove it", dest, partial,
                       json);
    return 0;
}

/* `text` into `path`, atomically. */
static int write_text_file(const char *path, const char *text, edm2_err *err) {
    atomic_file af;
    if (af_open(&af, path, err)) return -1;
    if (fputs(text, af.f) < 0) {
        af_abort(&af);
        return err_set(err, "%s: write failed", path);
    }
    return af_commit(&af, err);
}

/* dataset.json's text (malloc'ed, *n bytes): every image in the dest, in index order, with its class (or
 * {"labels": null}). *listed: how many. */
static int listing_json(const convert_dest *o, const dataset *d, int count, char **text, size_t *n, int *listed,
                        edm2_err *err) {
    FILE *f = open_memstream(text, n);
    if (!f) return err_set(err, "dataset.json: out of memory");
    *listed = 0;
    fputs(d->labels ? "{\"labels\": [" : "{\"labels\": null}\n", f);
    for (int i = 0; i < count; i++) {
        if (!has_image(o, i)) continue;
        char name[64];
        image_name(name, sizeof name, i);
        if (d->labels) fprintf(f, "%s[\"%s\", %d]", *listed ? ", " : "", name, d->labels[i]);
        ++*listed;
    }
    if (d->labels) fputs("]}\n", f);
    if (fclose(f) != 0) return err_set(err, "dataset.json: out of memory");
    return 0;
}

/* A continued archive: its entries are images in increasing index order below `count` (a run stopped while
 * finishing may have added dataset.json: dropped); the first that is not ends them (the rest truncated). Returns
 * the index to go on from, or -1 with the error. */
static int take_back(convert_dest *o, int count, edm2_err *err) {
    zip_writer *z = o->zip;
    int next = 0;
    size_t keep = 0;
    for (char expected[64]; keep < z->count; keep++) {
        int i = -1;
        if (sscanf(z->entries[keep].name, "%*[0-9]/img%d", &i) != 1 || i < next || i >= count) break;
        image_name(expected, sizeof expected, i);
        if (strcmp(expected, z->entries[keep].name)) break;
        o->in_archive[i] = 1;
        next = i + 1;
    }
    return zip_writer_truncate(z, keep, err) ? -1 : next;
}

/* Converts images [i0, i1): *written, *kept_n and *skipped counted; a failed write ends it with the error. A
 * folder's images are written by the threads; an archive's are encoded by them and added in index order. */
static int convert_round(const dataset *d, convert_dest *o, int res, int i0, int i1, int threads, int *written,
                         int *kept_n, int *skipped, edm2_err *err) {
    char dir[4200];
    for (int f = i0 / 1000; f <= (i1 - 1) / 1000 && !o->zip; f++) {
        snprintf(dir, sizeof dir, "%.4000s/%05d", o->path, f);
        if (make_dirs(dir, err)) return -1;
    }
    unsigned char **pngs = o->zip ? calloc((size_t)(i1 - i0), sizeof *pngs) : NULL;
    size_t *sizes = o->zip ? calloc((size_t)(i1 - i0), sizeof *sizes) : NULL;
    if (o->zip && (!pngs || !sizes)) {
        free(pngs), free(sizes);
        return err_set(err, "%s: out of memory", o->path);
    }
    int failed = 0, w = 0, k = 0, s = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) reduction(+ : w, k, s) if (threads > 1)
    for (int i = i0; i < i1; i++) {
        char path[4200] = ""; /* (a folder's) */
        if (!o->zip) image_path(path, sizeof path, o->path, i);
        if (!o->zip && kept(path, res)) {
            k++;
            continue;
        }
        uint8_t *crop = malloc((size_t)res * res * 3);
        unsigned char *png = NULL;
        size_t n = 0;
        edm2_err why;
        if (!crop || dataset_source_crop(d, i, res, crop, &why)) {
            LOG_WARN("skipped: %s", crop ? why.msg : "out of memory");
            if (!o->zip) unlink(path); /* (a damaged PNG of an earlier run is not listed) */
            s++;
        } else if (png_encode(crop, res, res, 3, &png, &n, &why) ||
                   (!o->zip && write_renamed(path, png, n, o->mode, &why))) {
#pragma omp critical(convert_error)
            if (!failed++) *err = why;
        } else {
            w++;
            if (o->zip) pngs[i - i0] = png, sizes[i - i0] = n, png = NULL;
        }
        free(png), free(crop);
    }
    for (int i = i0; o->zip && i < i1; i++) { /* the archive's entries in index order */
        char name[64];
        image_name(name, sizeof name, i);
        if (pngs[i - i0] && !failed && zip_writer_add(o->zip, name, pngs[i - i0], sizes[i - i0], err)) failed = 1;
        if (pngs[i - i0] && !failed) o->in_archive[i] = 1;
        free(pngs[i - i0]);
    }
    free(pngs), free(sizes);
    if (!failed && o->zip && zip_writer_sync(o->zip, err)) failed = 1;
    *written += w, *kept_n += k, *skipped += s;
    return failed ? -1 : 0;
}

/* The end: dataset.json written last (into the folder, or as the archive's last entry, the archive then finished
 * with the settings as its comment); *listed: the images it lists. */
static int finish_dest(convert_dest *o, const dataset *d, int count, const char *settings, int *listed,
                       edm2_err *err) {
    char *text = NULL, p[4200];
    size_t n = 0;
    if (listing_json(o, d, count, &text, &n, listed, err)) return -1;
    int rc = 0;
    if (*listed == 0) {
        rc = err_set(err, "[convert] source: none of the %d images could be read", count);
    } else if (!o->zip) {
        snprintf(p, sizeof p, "%.4000s/dataset.json", o->path);
        rc = write_text_file(p, text, err);
    } else if (zip_writer_add(o->zip, "dataset.json", text, n, err) || zip_writer_finish(o->zip, settings, err)) {
        rc = -1;
    } else {
        snprintf(p, sizeof p, "%.4000s.partial.json", o->path);
        unlink(p);
    }
    free(text);
    return rc;
}

/* Images per round: CONVERT_ROUND, fewer at large resolutions (an archive's round waits in memory). */
static int round_images(int res) {
    const size_t by_bytes = ROUND_BYTES / ((size_t)res * res * 3 + 1024);
    return by_bytes < 16 ? 16 : by_bytes < CONVERT_ROUND ? (int)by_bytes : CONVERT_ROUND;
}

/* Opens the dest for writing: the folder and its convert.json, or the archive's DEST.partial (and its settings),
 * taking back what an earlier run wrote; *start: the first image to convert. */
static int open_dest(convert_dest *o, zip_writer *z, int count, const char *settings, int resumed, int *start,
                     edm2_err *err) {
    char p[4200];
    *start = 0;
    if (!o->zip) {
        snprintf(p, sizeof p, "%.4000s/convert.json", o->path);
        return make_dirs(o->path, err) || (!resumed && write_text_file(p, settings, err)) ? -1 : 0;
    }
    char *dir = path_dirname(o->path);
    const int bad = make_dirs(dir, err);
    free(dir);
    snprintf(p, sizeof p, "%.4000s.partial.json", o->path);
    if (bad || (!resumed && write_text_file(p, settings, err)) || zip_writer_open(z, o->path, resumed, err)) return -1;
    if (!(o->in_archive = calloc((size_t)count, 1))) return err_set(err, "%s: out of memory", o->path);
    return (*start = take_back(o, count, err)) < 0 ? -1 : 0;
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
    zip_writer z;
    memset(&z, 0, sizeof z);
    const mode_t mask = umask(0);
    umask(mask);
    convert_dest o = {.path = dest, .mode = 0666 & ~mask, .zip = name_has_ext(dest, ".zip") ? &z : NULL};
    int status = 1, resumed = 0, finished = 0, start = 0;
    if (folder_list_sources(&d, source, err)) {
        err_set(err, "[convert] source: %s", err->msg);
        goto done;
    }
    const int count = max_images > 0 && max_images < d.count ? max_images : d.count;
    char settings[8400];
    settings_json(settings, sizeof settings, d.root, res, count);
    if (o.zip ? check_archive(dest, settings, &resumed, &finished, err) : check_folder(dest, settings, &resumed, err))
        goto done;
    if (finished) {
        LOG_INFO("%s holds this conversion already (%d images of %s at %dx%d): nothing to do", dest, count, d.root,
                 res, res);
        status = 0;
        goto done;
    }
    if (rc->dry_run) { /* (check: the source lists and dest takes this conversion) */
        status = 0;
        goto done;
    }
    if (open_dest(&o, &z, count, settings, resumed, &start, err)) goto done;
    int threads = (int)edm2_cfg_int(&jv.api, "threads", 0); /* (0: every core) */
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    int written = 0, kept_n = 0, skipped = 0, stopped = 0;
    if (o.zip) kept_n = (int)z.count; /* (the images taken back) */
    char continuing[200] = "";
    if (resumed && o.zip)
        snprintf(continuing, sizeof continuing, ", continuing the conversion there (%d images kept, from image %d on)",
                 kept_n, start);
    else if (resumed)
        snprintf(continuing, sizeof continuing, ", continuing the conversion there");
    LOG_INFO("converting %d images of %s (%s) to %dx%d PNGs in %s (the EDM dataset tool's layout%s) on %d threads%s%s",
             count, d.root, d.labels ? "labelled" : "unlabelled", res, res, dest, o.zip ? ", stored in an archive" : "",
             threads, continuing, image_read_has_jpeg() ? "" : " (PNG only: built without libjpeg)");
    stop_signals saved;
    stop_signals_install(&saved);
    const double t0 = now_s();
    double last_log = 0;
    const int round = round_images(res);
    for (int i0 = start; i0 < count && !stopped; i0 += round) {
        const int i1 = count - i0 < round ? count : i0 + round;
        if (convert_round(&d, &o, res, i0, i1, threads, &written, &kept_n, &skipped, err)) {
            stop_signals_restore(&saved);
            goto done;
        }
        if (now_s() - last_log >= 5 || i1 == count) { /* a line every 5 s */
            last_log = now_s();
            progress_log(NULL, "images", i1, count, start, t0, skipped ? "  (some skipped)" : NULL);
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
    int listed = 0;
    if (finish_dest(&o, &d, count, settings, &listed, err)) goto done;
    LOG_INFO("converted %d images into %s: %d written, %d kept from an earlier run, %d unreadable (left out); train "
             "on them with [data] source = folder, path = %s, resolution = %d",
             listed, dest, written, kept_n, skipped, dest, res);
    status = 0;
done:
    zip_writer_close(&z);
    free(o.in_archive);
    dataset_close(&d);
    return status;
}
