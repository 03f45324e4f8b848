/* dataset.c: opening the [data] section's source, reading one image with its one-hot label, closing. The
 * sources themselves are data_fashion_mnist.c, data_folder.c, data_zip.c (with data_npy.c for .npy latents) and
 * data_tensors.c; the order is data_order.c. */
#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_sources.h"
#include "edm2/edm2_philox.h"
#include "fileio.h"
#include "image_io.h"
#include "image_read.h"
#include "safetensors.h"
#include "validate.h"
#include "zip_archive.h"

int labels_finish(dataset *d, const char *what, edm2_err *err) {
    int32_t maxl = -1;
    for (int i = 0; i < d->count; i++) {
        if (d->labels[i] < 0 || d->labels[i] >= DATA_MAX_CLASSES)
            return err_set(err, "%s: label %d of image %d is not a class index in 0..%d", what, d->labels[i], i,
                           DATA_MAX_CLASSES - 1);
        if (d->labels[i] > maxl) maxl = d->labels[i];
    }
    d->label_dim = maxl + 1;
    return 0;
}

int dataset_open(dataset *d, const cfg *c, edm2_err *err) {
    memset(d, 0, sizeof *d);
    config_view v;
    config_view_host(&v, c, "data");
    const char *source = v.api.get(v.api.ctx, "source");
    const char *path = v.api.get(v.api.ctx, "path");
    long long res = edm2_cfg_int(&v.api, "resolution", 32), max_images = edm2_cfg_int(&v.api, "max_images", 0);
    if (res < 1 || res > DATA_MAX_RESOLUTION)
        return err_set(err, "[data] resolution = %lld: expected 1 to %d", res, DATA_MAX_RESOLUTION);
    if (max_images < 0 || max_images > DATA_MAX_IMAGES)
        return err_set(err, "[data] max_images = %lld: expected 0 (all) to %d", max_images, DATA_MAX_IMAGES);
    d->resolution = (int)res;
    int rc;
    if (!strcmp(source, "fashion-mnist")) {
        rc = fashion_mnist_open(d, *path ? path : FMNIST_DEFAULT_DIR, v.api.get(v.api.ctx, "split"), (int)max_images, err);
    } else if (!strcmp(source, "folder")) {
        long long ch = edm2_cfg_int(&v.api, "channels", 3);
        if (ch != 1 && ch != 3) return err_set(err, "[data] channels = %lld: expected 1 or 3", ch);
        d->channels = (int)ch;
        if (!*path) return err_set(err, "[data] source = folder needs 'path = FOLDER' (or 'path = ARCHIVE.zip')");
        if (access(path, F_OK) != 0 && errno == ENOENT)
            return err_set(err, "[data] path = '%s': no such folder or .zip archive", path);
        if (is_folder(path)) rc = folder_open(d, &v.api, "[data] path", path, NULL, (int)max_images, err);
        else rc = zip_source_open(d, &v.api, "[data] path", path, (int)max_images, err);
    } else if (!strcmp(source, "images")) {
        if (!*path) return err_set(err, "[data] source = images needs 'path = FOLDER' (or 'path = ARCHIVE.zip')");
        rc = images_open(d, path, (int)max_images, err);
    } else if (!strcmp(source, "tensors")) {
        if (!*path) return err_set(err, "[data] source = tensors needs 'path = FILE.safetensors'");
        if (access(path, F_OK) != 0 && errno == ENOENT)
            return err_set(err, "[data] path = '%s': no such file (latents are made from a folder of images by the "
                                "encode job: configs/edm2-img512-encode.ini; the EDM2 reference's encoded .zip is read "
                                "by source = folder)", path);
        if (is_folder(path))
            return err_set(err, "[data] path = '%s' is a folder: source = tensors reads one .safetensors file "
                                "(source = folder reads a folder of images)", path);
        rc = tensors_open(d, path, (int)max_images, err);
    } else {
        return err_set(err, "[data] source = '%s': expected 'fashion-mnist', 'folder', 'images' or 'tensors'", source);
    }
    if (rc) dataset_close(d);
    return rc;
}

/* d->root/rel, resolved, into out[len] if it stays inside the folder (a symlink may not lead out of it). */
static int dataset_resolve(const dataset *d, const char *rel, char *out, size_t len, edm2_err *err) {
    char joined[8200];
    snprintf(joined, sizeof joined, "%s/%s", d->root, rel);
    char *real = realpath(joined, NULL);
    if (!real) return err_set(err, "%s: cannot open: %s", joined, strerror(errno));
    size_t rl = strlen(d->root);
    int inside = strncmp(real, d->root, rl) == 0 && (real[rl] == '/' || d->root[rl - 1] == '/');
    if (inside) snprintf(out, len, "%s", real);
    free(real);
    if (!inside) return err_set(err, "%s: leads outside the dataset folder %s", joined, d->root);
    return 0;
}

int dataset_file_bytes(const dataset *d, int index, const unsigned char **data, size_t *n, unsigned char **owned,
                       char *name, edm2_err *err) {
    *owned = NULL;
    if (d->zip) return zip_source_bytes(d->zip, d->files[index], data, n, owned, name, err);
    if (dataset_resolve(d, d->files[index], name, DATA_NAME_BYTES, err) || read_file(name, owned, n, err)) return -1;
    *data = *owned;
    return 0;
}

int dataset_source_crop(const dataset *d, int index, int res, uint8_t *crop, edm2_err *err) {
    const unsigned char *data;
    unsigned char *owned;
    size_t n;
    char name[DATA_NAME_BYTES];
    int rc = dataset_file_bytes(d, index, &data, &n, &owned, name, err) || image_decode_crop(data, n, name, res, crop, err);
    free(owned);
    return rc ? -1 : 0;
}

/* Image `index`, a PNG of the folder or the archive, encoded. */
static int file_png(const dataset *d, int index, float *img, edm2_err *err) {
    const unsigned char *data;
    unsigned char *owned;
    uint8_t *px = NULL;
    size_t n;
    int w, h;
    char name[DATA_NAME_BYTES];
    const int R = d->resolution;
    int rc = dataset_file_bytes(d, index, &data, &n, &owned, name, err) ||
             png_decode(data, n, name, d->channels, R, R, &px, &w, &h, err);
    if (!rc) pixels_encode(img, px, d->channels, R, R);
    free(px), free(owned);
    return rc ? -1 : 0;
}

/* Image `index`'s one-hot label into onehot[onehot_dim] (nothing when onehot is NULL). */
static void fill_onehot(const dataset *d, int index, float *onehot, int onehot_dim) {
    if (!onehot) return;
    memset(onehot, 0, (size_t)onehot_dim * sizeof(float));
    if (d->labels && d->labels[index] < onehot_dim) onehot[d->labels[index]] = 1.0f;
}

int dataset_get(const dataset *d, int index, float *img, float *onehot, int onehot_dim, edm2_err *err) {
    const int R = d->resolution;
    if (d->tensors) {
        const st_tensor *t = d->t_images;
        st_tensor one = *t; /* a view of image `index` (its mean, for moments) */
        const size_t per = (size_t)d->channels * R * R, esz = st_dtype_bytes(t->dtype);
        one.numel = per;
        one.data = t->data + (size_t)index * per * (d->moments ? 2 : 1) * esz;
        st_to_f32(&one, img);
    } else if (d->npy) {
        if (npy_moments_get(d, index, img, NULL, err)) return -1;
    } else if (d->cropped) {
        uint8_t *px = malloc((size_t)R * R * 3);
        int rc = !px ? err_set(err, "out of memory") : dataset_source_crop(d, index, R, px, err);
        if (!rc) pixels_encode(img, px, 3, R, R);
        free(px);
        if (rc) return -1;
    } else if (d->pixels) {
        pixels_encode(img, d->pixels + (size_t)index * R * R, 1, R, R);
    } else if (file_png(d, index, img, err)) {
        return -1;
    }
    fill_onehot(d, index, onehot, onehot_dim);
    return 0;
}

#define STREAM_LATENT_DRAW 0x4C4154454E54ull /* "LATENT": the training draws of posterior moments */

/* img[k] += std[k] n_k for k < n, n_k the normal draw number first + k of the (seed) latent stream. */
static void add_draw(float *img, const float *std, size_t n, uint64_t seed, uint64_t first) {
    float z[1024];
    for (size_t k0 = 0; k0 < n; k0 += 1024) {
        const size_t m = n - k0 < 1024 ? n - k0 : 1024;
        edm2_philox_normals(seed, STREAM_LATENT_DRAW, first + k0, m, z);
        for (size_t k = 0; k < m; k++) img[k0 + k] += std[k0 + k] * z[k];
    }
}

int dataset_draw(const dataset *d, int index, uint64_t seed, uint64_t pos, float *img, float *onehot, int onehot_dim,
                 edm2_err *err) {
    const size_t per = (size_t)d->channels * d->resolution * d->resolution;
    if (d->npy) { /* one read of the file for the mean and the std */
        float *std = malloc(per * sizeof *std);
        int rc = !std ? err_set(err, "out of memory") : npy_moments_get(d, index, img, std, err);
        if (!rc) add_draw(img, std, per, seed, pos * per), fill_onehot(d, index, onehot, onehot_dim);
        free(std);
        return rc ? -1 : 0;
    }
    if (dataset_get(d, index, img, onehot, onehot_dim, err)) return -1;
    if (!d->moments) return 0;
    st_tensor std = *(const st_tensor *)d->t_images; /* the std half of image `index`, converted a chunk at a time */
    const size_t esz = st_dtype_bytes(std.dtype);
    float chunk[1024];
    for (size_t k0 = 0; k0 < per; k0 += 1024) {
        std.numel = per - k0 < 1024 ? per - k0 : 1024;
        std.data = ((const st_tensor *)d->t_images)->data + ((size_t)index * 2 * per + per + k0) * esz;
        st_to_f32(&std, chunk);
        add_draw(img + k0, chunk, std.numel, seed, pos * per + k0);
    }
    return 0;
}

void dataset_close(dataset *d) {
    if (d->tensors) st_close(d->tensors);
    free(d->tensors);
    if (d->zip) zip_close(d->zip);
    free(d->zip);
    free(d->pixels);
    free(d->labels);
    for (int i = 0; d->files && i < d->count; i++) free(d->files[i]);
    free(d->files);
    free(d->root);
    memset(d, 0, sizeof *d);
}
