/* dataset.c: Fashion-MNIST from IDX .gz files (zlib), image folders with dataset.json (libpng), and the
 * seeded epoch-wise shuffling. */
#include "dataset.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../plugins/common/philox.h"
#include "fileio.h"
#include "image_io.h"
#include "json.h"
#include "safetensors.h"
#include "validate.h"

#define FMNIST_DEFAULT "/usr/share/datasets/fashion-mnist"
#define STREAM_SHUFFLE 0x5348554646ull /* "SHUFF" */

/* Reads a whole gzip file. */
static int gz_read_all(const char *path, uint8_t **out, size_t *len, edm2_err *err) {
    gzFile g = gzopen(path, "rb");
    if (!g) return err_set(err, "%s: cannot open (install the Debian package dataset-fashion-mnist, or set [data] path)", path);
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            gzclose(g);
            return err_set(err, "%s: out of memory", path);
        }
        int r = gzread(g, buf + n, (unsigned)(cap - n));
        if (r < 0) {
            int e;
            const char *msg = gzerror(g, &e);
            free(buf);
            gzclose(g);
            return err_set(err, "%s: corrupt gzip data: %s", path, msg);
        }
        n += (size_t)r;
        if (r == 0) break;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    gzclose(g);
    *out = buf;
    *len = n;
    return 0;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int open_fashion_mnist(dataset *d, const char *dir, const char *split, int max_images, edm2_err *err) {
    char ip[1024], lp[1024];
    const char *prefix = !strcmp(split, "test") ? "t10k" : "train";
    if (strcmp(split, "train") && strcmp(split, "test"))
        return err_set(err, "[data] split = '%s': expected 'train' or 'test'", split);
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    uint8_t *im = NULL, *lb = NULL;
    size_t ni = 0, nl = 0;
    if (gz_read_all(ip, &im, &ni, err)) return -1;
    if (gz_read_all(lp, &lb, &nl, err)) {
        free(im);
        return -1;
    }
    int rc = 0;
    if (ni < 16 || be32(im) != 0x803 || be32(im + 8) != 28 || be32(im + 12) != 28)
        rc = err_set(err, "%s: not an IDX file of 28x28 images", ip);
    else if (nl < 8 || be32(lb) != 0x801)
        rc = err_set(err, "%s: not an IDX label file", lp);
    uint32_t count = rc ? 0 : be32(im + 4);
    if (!rc && (ni < 16 + (size_t)count * 784 || be32(lb + 4) != count || nl < 8 + (size_t)count))
        rc = err_set(err, "%s: truncated (%u images announced)", ip, count);
    if (!rc && max_images > 0 && (uint32_t)max_images < count) count = (uint32_t)max_images;
    int R = d->resolution;
    if (!rc && (R > 32 || 32 % R || R < 1) && R != 28)
        rc = err_set(err, "[data] resolution = %d: Fashion-MNIST offers 28, 32 (padded) or 32/k (16, 8, ...)", R);
    if (!rc) {
        d->count = (int)count;
        d->pixels = malloc((size_t)count * R * R);
        d->labels = malloc(count);
        if (!d->pixels || !d->labels) rc = err_set(err, "out of memory");
    }
    for (uint32_t i = 0; !rc && i < count; i++) {
        const uint8_t *src = im + 16 + (size_t)i * 784;
        uint8_t *dst = d->pixels + (size_t)i * R * R;
        if (lb[8 + i] > 9) {
            rc = err_set(err, "%s: label %u of image %u is not in 0..9", lp, lb[8 + i], i);
            break;
        }
        d->labels[i] = lb[8 + i];
        if (R == 28) {
            memcpy(dst, src, 784);
            continue;
        }
        int f = 32 / R; /* pad 28 -> 32 by 2, then average f x f blocks */
        for (int y = 0; y < R; y++)
            for (int x = 0; x < R; x++) {
                unsigned sum = 0;
                for (int dy = 0; dy < f; dy++)
                    for (int dx = 0; dx < f; dx++) {
                        int sy = y * f + dy - 2, sx = x * f + dx - 2;
                        if (sy >= 0 && sy < 28 && sx >= 0 && sx < 28) sum += src[sy * 28 + sx];
                    }
                dst[y * R + x] = (uint8_t)((sum + f * f / 2) / (f * f));
            }
    }
    free(im), free(lb);
    if (!rc) {
        d->channels = 1;
        d->label_dim = 10;
        snprintf(d->desc, sizeof d->desc, "Fashion-MNIST %s (%s): %d images, %dx%d gray, 10 classes", split, dir,
                 d->count, R, R);
    }
    return rc;
}

static int push_file(dataset *d, const char *rel, int label, edm2_err *err) {
    char **f = realloc(d->files, ((size_t)d->count + 1) * sizeof *f);
    int *l = f ? realloc(d->file_labels, ((size_t)d->count + 1) * sizeof *l) : NULL;
    if (f) d->files = f;
    if (l) d->file_labels = l;
    if (!f || !l || !(d->files[d->count] = strdup(rel))) return err_set(err, "out of memory");
    d->file_labels[d->count++] = label;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every *.png below root (sorted), when there is no dataset.json. */
static int scan_pngs(dataset *d, const char *root, const char *rel, int depth, edm2_err *err) {
    char path[8200];
    snprintf(path, sizeof path, "%.4000s%s%.4000s", root, *rel ? "/" : "", rel);
    DIR *dir = opendir(path);
    if (!dir) return err_set(err, "%s: cannot open folder", path);
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.') continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn) break;
        names = nn;
        names[n++] = strdup(e->d_name);
    }
    closedir(dir);
    if (n > 1) qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char sub[4096], full[8200];
        snprintf(sub, sizeof sub, "%.2000s%s%.1000s", rel, *rel ? "/" : "", names[i]);
        snprintf(full, sizeof full, "%.4000s/%s", root, sub);
        struct stat st;
        size_t len = strlen(names[i]);
        if (!rc && stat(full, &st) == 0 && S_ISDIR(st.st_mode) && depth < 8) rc = scan_pngs(d, root, sub, depth + 1, err);
        else if (!rc && len > 4 && !strcmp(names[i] + len - 4, ".png")) rc = push_file(d, sub, -1, err);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int open_folder(dataset *d, const char *root, int max_images, edm2_err *err) {
    char jp[4096];
    snprintf(jp, sizeof jp, "%s/dataset.json", root);
    d->root = strdup(root);
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(err, "[data] path = '%s': not a folder", root);
    if (stat(jp, &st) == 0) {
        unsigned char *text;
        size_t len;
        if (read_file(jp, &text, &len, err)) return -1;
        json_value v;
        char why[256];
        int rc = json_parse((const char *)text, len, &v, why, sizeof why);
        free(text);
        if (rc) return err_set(err, "%s: bad JSON: %s", jp, why);
        const json_value *labels = json_get(&v, "labels");
        if (!labels || (labels->type != JSON_ARRAY && labels->type != JSON_NULL)) {
            json_free(&v);
            return err_set(err, "%s: expected {\"labels\": [[\"file.png\", label], ...]} or {\"labels\": null}", jp);
        }
        for (size_t i = 0; labels->type == JSON_ARRAY && i < labels->n && !rc; i++) {
            const json_value *e = &labels->items[i];
            if (e->type != JSON_ARRAY || e->n != 2 || e->items[0].type != JSON_STRING ||
                (e->items[1].type != JSON_NUMBER && e->items[1].type != JSON_NULL) ||
                (e->items[1].type == JSON_NUMBER && (e->items[1].number < 0 || e->items[1].number > 1e6)))
                rc = err_set(err, "%s: labels[%zu]: expected [\"file.png\", non-negative integer]", jp, i);
            else rc = push_file(d, e->items[0].string, e->items[1].type == JSON_NUMBER ? (int)e->items[1].number : -1, err);
        }
        int no_labels = labels->type == JSON_NULL;
        json_free(&v);
        if (rc) return -1;
        if (no_labels && scan_pngs(d, root, "", 0, err)) return -1;
    } else if (scan_pngs(d, root, "", 0, err)) {
        return -1;
    }
    if (d->count == 0) return err_set(err, "[data] path = '%s': no images found", root);
    if (max_images > 0 && max_images < d->count) {
        for (int i = max_images; i < d->count; i++) free(d->files[i]);
        d->count = max_images;
    }
    int maxl = -1;
    for (int i = 0; i < d->count; i++) maxl = d->file_labels[i] > maxl ? d->file_labels[i] : maxl;
    d->label_dim = maxl + 1;
    /* Check the first image now, so a wrong resolution fails before training starts. */
    uint8_t *px;
    int w, h;
    char p0[4096];
    snprintf(p0, sizeof p0, "%s/%s", root, d->files[0]);
    if (png_read(p0, d->channels, &px, &w, &h, err)) return -1;
    free(px);
    if (w != d->resolution || h != d->resolution)
        return err_set(err, "%s: %dx%d pixels, but [data] resolution = %d", p0, w, h, d->resolution);
    snprintf(d->desc, sizeof d->desc, "image folder %s: %d images, %dx%dx%d, %d classes", root, d->count, d->channels,
             d->resolution, d->resolution, d->label_dim);
    return 0;
}

static int open_tensors(dataset *d, const char *path, int max_images, edm2_err *err) {
    st_file *f = calloc(1, sizeof *f);
    if (!f) return err_set(err, "out of memory");
    d->tensors = f;
    if (st_open(f, path, err)) return -1;
    const st_tensor *im = st_find(f, "images"), *lb = st_find(f, "labels");
    if (!im || im->ndim != 4 || im->shape[2] != im->shape[3] || im->shape[0] < 1)
        return err_set(err, "%s: needs a tensor 'images' [N, C, R, R]", path);
    if (lb && (lb->ndim != 1 || lb->shape[0] != im->shape[0]))
        return err_set(err, "%s: 'labels' must be [N] class indices, N = %lld", path, (long long)im->shape[0]);
    d->t_images = im, d->t_labels = lb;
    d->count = (int)im->shape[0];
    if (max_images > 0 && max_images < d->count) d->count = max_images;
    d->channels = (int)im->shape[1];
    if (im->shape[2] != d->resolution)
        return err_set(err, "%s: images are %lldx%lld, but [data] resolution = %d", path, (long long)im->shape[2],
                       (long long)im->shape[3], d->resolution);
    if (lb) {
        float *l = malloc((size_t)lb->numel * sizeof(float));
        if (!l) return err_set(err, "out of memory");
        st_to_f32(lb, l);
        d->labels = malloc((size_t)d->count);
        for (int i = 0; d->labels && i < d->count; i++) {
            if (!(l[i] >= 0 && l[i] < 256 && l[i] == (int)l[i])) {
                err_set(err, "%s: labels[%d] = %g is not a class index in 0..255", path, i, l[i]);
                free(l);
                return -1;
            }
            d->labels[i] = (uint8_t)l[i];
            if (l[i] + 1 > d->label_dim) d->label_dim = (int)l[i] + 1;
        }
        free(l);
    }
    snprintf(d->desc, sizeof d->desc, "tensors %s: %d images, %dx%dx%d, %d classes", path, d->count, d->channels,
             d->resolution, d->resolution, d->label_dim);
    return 0;
}

int dataset_open(dataset *d, const cfg *c, edm2_err *err) {
    memset(d, 0, sizeof *d);
    config_view v;
    config_view_host(&v, c, "data");
    const char *source = v.api.get(v.api.ctx, "source");
    const char *path = v.api.get(v.api.ctx, "path");
    d->resolution = (int)edm2_cfg_int(&v.api, "resolution", 32);
    int max_images = (int)edm2_cfg_int(&v.api, "max_images", 0);
    int rc;
    if (!strcmp(source, "fashion-mnist")) {
        rc = open_fashion_mnist(d, *path ? path : FMNIST_DEFAULT, v.api.get(v.api.ctx, "split"), max_images, err);
    } else if (!strcmp(source, "folder")) {
        d->channels = (int)edm2_cfg_int(&v.api, "channels", 3);
        if (d->channels != 1 && d->channels != 3) return err_set(err, "[data] channels = %d: expected 1 or 3", d->channels);
        if (!*path) return err_set(err, "[data] source = folder needs 'path = FOLDER'");
        rc = open_folder(d, path, max_images, err);
    } else if (!strcmp(source, "tensors")) {
        if (!*path) return err_set(err, "[data] source = tensors needs 'path = FILE.safetensors'");
        rc = open_tensors(d, path, max_images, err);
    } else {
        return err_set(err, "[data] source = '%s': expected 'fashion-mnist', 'folder' or 'tensors'", source);
    }
    if (rc) dataset_close(d);
    return rc;
}

int dataset_get(const dataset *d, int index, float *img, float *onehot, int onehot_dim, edm2_err *err) {
    int R = d->resolution, label;
    if (d->tensors) {
        const st_tensor *t = d->t_images;
        st_tensor one = *t; /* a view of image `index` */
        size_t per = (size_t)d->channels * R * R, esz = t->dtype == ST_F32 ? 4 : 2;
        one.numel = per;
        one.data = t->data + (size_t)index * per * esz;
        st_to_f32(&one, img);
        label = d->labels ? d->labels[index] : -1;
    } else if (d->pixels) {
        pixels_encode(img, d->pixels + (size_t)index * R * R, 1, R, R);
        label = d->labels[index];
    } else {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", d->root, d->files[index]);
        uint8_t *px;
        int w, h;
        if (png_read(p, d->channels, &px, &w, &h, err)) return -1;
        if (w != R || h != R) {
            free(px);
            return err_set(err, "%s: %dx%d pixels, but [data] resolution = %d", p, w, h, R);
        }
        pixels_encode(img, px, d->channels, R, R);
        free(px);
        label = d->file_labels[index];
    }
    if (onehot) {
        memset(onehot, 0, (size_t)onehot_dim * sizeof(float));
        if (label >= 0 && label < onehot_dim) onehot[label] = 1.0f;
    }
    return 0;
}

void dataset_close(dataset *d) {
    if (d->tensors) st_close(d->tensors);
    free(d->tensors);
    free(d->pixels);
    free(d->labels);
    for (int i = 0; d->files && i < d->count; i++) free(d->files[i]);
    free(d->files);
    free(d->file_labels);
    free(d->root);
    memset(d, 0, sizeof *d);
}

int dataset_order(const dataset *d, uint64_t seed, uint64_t pos, int *perm, int64_t *perm_epoch) {
    int64_t epoch = (int64_t)(pos / (uint64_t)d->count);
    if (*perm_epoch != epoch) {
        for (int i = 0; i < d->count; i++) perm[i] = i;
        for (int i = d->count - 1; i > 0; i--) { /* Fisher-Yates from the (seed, epoch) stream */
            float u = philox_uniform(seed, STREAM_SHUFFLE + (uint64_t)epoch, (uint64_t)i);
            int j = (int)(u * (float)(i + 1));
            if (j > i) j = i;
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        *perm_epoch = epoch;
    }
    return perm[pos % (uint64_t)d->count];
}
