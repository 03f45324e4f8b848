/* data_fashion_mnist.c: Fashion-MNIST straight from the IDX files of the Debian package
 * dataset-fashion-mnist (gzip-compressed; plain files work too): 28x28 gray images and labels 0..9,
 * padded to 32x32 or averaged down to 32/k. The IDX headers are checked before anything is allocated,
 * and memory grows only with the bytes that actually decompress, so a lying header or a gzip bomb ends in
 * a one-line error, not a huge allocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data_sources.h"

#define IDX_MAX_IMAGES (1 << 20) /* Fashion-MNIST has 60000 + 10000 */

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Reads exactly `want` bytes into *out (malloc'ed, grown as data arrive). */
static int gz_read_exact(gzFile g, const char *path, size_t want, uint8_t **out, edm2_err *err) {
    size_t cap = want < (1u << 20) ? want : (1u << 20), n = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) return err_set(err, "%s: out of memory", path);
    while (n < want) {
        if (n == cap) {
            cap = cap * 2 < want ? cap * 2 : want;
            uint8_t *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                return err_set(err, "%s: out of memory", path);
            }
            buf = nb;
        }
        unsigned chunk = (unsigned)((cap - n) < (1u << 30) ? (cap - n) : (1u << 30));
        int r = gzread(g, buf + n, chunk);
        if (r < 0) {
            int e;
            const char *msg = gzerror(g, &e);
            free(buf);
            return err_set(err, "%s: corrupt gzip data: %s", path, msg);
        }
        if (r == 0) {
            free(buf);
            return err_set(err, "%s: truncated: %zu of the %zu bytes its header announces", path, n, want);
        }
        n += (size_t)r;
    }
    *out = buf;
    return 0;
}

/* One IDX file: magic, then `ndims` big-endian sizes; dims[0] is the item count. Reads the header and
 * at most `max_items` items (item_bytes each). */
static int idx_read(const char *path, uint32_t magic, int ndims, uint32_t *dims, int max_items, size_t item_bytes,
                    uint8_t **data, edm2_err *err) {
    gzFile g = gzopen(path, "rb");
    if (!g) return err_set(err, "%s: cannot open (install the Debian package dataset-fashion-mnist, or set [data] path)", path);
    uint8_t hdr[16];
    size_t hlen = 4 + 4 * (size_t)ndims;
    int r = gzread(g, hdr, (unsigned)hlen), rc = 0;
    if (r != (int)hlen || be32(hdr) != magic)
        rc = err_set(err, "%s: not an IDX %s file (magic 0x%08x expected)", path, ndims == 3 ? "image" : "label", magic);
    for (int i = 0; !rc && i < ndims; i++) dims[i] = be32(hdr + 4 + 4 * i);
    if (!rc && (dims[0] == 0 || dims[0] > IDX_MAX_IMAGES))
        rc = err_set(err, "%s: header announces %u items (expected 1 to %d)", path, dims[0], IDX_MAX_IMAGES);
    if (!rc) {
        uint32_t n = max_items > 0 && (uint32_t)max_items < dims[0] ? (uint32_t)max_items : dims[0];
        rc = gz_read_exact(g, path, (size_t)n * item_bytes, data, err);
        if (!rc) dims[0] = n;
    }
    gzclose(g);
    return rc;
}

/* 28x28 -> R x R: padded by 2 to 32, then f x f blocks averaged (f = 32 / R); R = 28 copies. */
static void resample(uint8_t *dst, const uint8_t *src, int R) {
    if (R == 28) {
        memcpy(dst, src, 784);
        return;
    }
    int f = 32 / R;
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

int fashion_mnist_open(dataset *d, const char *dir, const char *split, int max_images, edm2_err *err) {
    if (strcmp(split, "train") && strcmp(split, "test"))
        return err_set(err, "[data] split = '%s': expected 'train' or 'test'", split);
    int R = d->resolution;
    if ((R > 32 || R < 1 || 32 % R) && R != 28)
        return err_set(err, "[data] resolution = %d: Fashion-MNIST offers 28, 32 (padded) or 32/k (16, 8, ...)", R);
    char ip[4200], lp[4200];
    const char *prefix = !strcmp(split, "test") ? "t10k" : "train";
    snprintf(ip, sizeof ip, "%.4000s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lp, sizeof lp, "%.4000s/%s-labels-idx1-ubyte.gz", dir, prefix);
    uint32_t idims[3], ldims[1];
    uint8_t *im = NULL, *lb = NULL;
    if (idx_read(ip, 0x803, 3, idims, max_images, 784, &im, err)) return -1;
    int rc = 0;
    if (idims[1] != 28 || idims[2] != 28) rc = err_set(err, "%s: %ux%u images, expected 28x28", ip, idims[1], idims[2]);
    if (!rc) rc = idx_read(lp, 0x801, 1, ldims, max_images, 1, &lb, err);
    if (!rc && ldims[0] != idims[0])
        rc = err_set(err, "%s: %u labels for the %u images of %s", lp, ldims[0], idims[0], ip);
    const uint32_t count = idims[0];
    if (!rc) {
        d->count = (int)count;
        d->pixels = malloc((size_t)count * R * R);
        d->labels = malloc((size_t)count * sizeof *d->labels);
        if (!d->pixels || !d->labels) rc = err_set(err, "out of memory");
    }
    for (uint32_t i = 0; !rc && i < count; i++) {
        if (lb[i] > 9) {
            rc = err_set(err, "%s: label %u of image %u is not in 0..9", lp, lb[i], i);
            break;
        }
        d->labels[i] = lb[i];
        resample(d->pixels + (size_t)i * R * R, im + (size_t)i * 784, R);
    }
    free(im), free(lb);
    if (rc) return -1;
    d->channels = 1;
    d->label_dim = 10;
    snprintf(d->desc, sizeof d->desc, "Fashion-MNIST %s (%.300s): %d images, %dx%d gray, 10 classes", split, dir, d->count,
             R, R);
    return 0;
}
