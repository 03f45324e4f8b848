/* inspect_archive.c: `edm2host inspect FILE.zip` and `FILE.npy`: what a dataset of the EDM2 dataset tool holds
 * (how many PNG or .npy images, their size, the classes of its dataset.json, the [data] settings that read it;
 * data_zip.c; without dataset.json also the source images the encode job would read; the archive's comment, such
 * as the convert job's settings), or the dtype and shape of one NumPy array. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_sources.h"
#include "fileio.h"
#include "inspect.h"
#include "npy.h"
#include "zip_archive.h"

static void print_shape(const npy_array *a, FILE *out) {
    fprintf(out, "[");
    for (int i = 0; i < a->ndim; i++) fprintf(out, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    fprintf(out, "] %s", st_dtype_word(a->dtype));
}

/* The first image of the archive: a PNG's size and channels from its header, or a .npy array's shape. */
static int describe_first(const zip_archive *z, const char *entry, int npy, FILE *out, edm2_err *err) {
    const unsigned char *b;
    unsigned char *owned;
    size_t n;
    char name[DATA_NAME_BYTES];
    if (zip_source_bytes(z, entry, &b, &n, &owned, name, err)) return -1;
    int rc = 0;
    if (npy) {
        npy_array a;
        if (!(rc = npy_parse(b, n, name, &a, err))) {
            fprintf(out, " ");
            print_shape(&a, out);
            if (a.ndim == 3 && a.shape[0] % 2 == 0)
                fprintf(out, " (posterior means and stds of %lld latent channels: [data] source = folder, resolution = "
                             "%lld)", (long long)a.shape[0] / 2, (long long)a.shape[2]);
        }
    } else if (n >= 26 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4)) {
        static const int channels[7] = {1, 0, 3, 3, 2, 0, 4}; /* by PNG colour type */
        const unsigned w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
        const unsigned h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
        const int c = b[25] < 7 ? channels[b[25]] : 0;
        fprintf(out, ", %ux%u, %d channel%s ([data] source = folder, resolution = %u, channels = %d)", w, h, c,
                c == 1 ? "" : "s", w, c == 1 ? 1 : 3);
    } else {
        rc = err_set(err, "%s: not a PNG image", name);
    }
    free(owned);
    return rc;
}

/* The archive's comment (the convert job's settings, for one), when it is one line of printable text. */
static void print_comment(const zip_archive *z, FILE *out) {
    size_t n = z->comment_len;
    while (n && (z->comment[n - 1] == '\n' || z->comment[n - 1] == '\r')) n--;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)z->comment[i] < 0x20 || z->comment[i] == 0x7f) return;
    if (n) fprintf(out, "  comment: %.*s\n", (int)n, z->comment);
}

static int inspect_zip(const char *path, FILE *out, edm2_err *err) {
    dataset d;
    memset(&d, 0, sizeof d);
    int listed = 0, rc = zip_open_listed(&d, NULL, path, &listed, err);
    const zip_archive *z = d.zip;
    const int json = z && zip_find(z, "dataset.json") != NULL;
    if (!rc && d.labels) {
        char name[DATA_NAME_BYTES];
        snprintf(name, sizeof name, "%.4000s:dataset.json", path);
        rc = labels_finish(&d, name, err);
    }
    if (!rc) {
        uint64_t bytes = 0;
        size_t png = 0, npy = 0, deflated = 0;
        for (size_t i = 0; i < z->count; i++) {
            png += zip_lists_entry(z->entries[i].name, ".png"), npy += zip_lists_entry(z->entries[i].name, ".npy");
            deflated += z->entries[i].method != 0, bytes += z->entries[i].usize;
        }
        fprintf(out, "%s: ZIP archive of %zu entries (%zu deflated), %.1f MiB uncompressed\n", path, z->count, deflated,
                (double)bytes / 1048576.0);
        const int as_npy = listed ? name_has_ext(d.files[0], ".npy") : png == 0 && npy > 0;
        const size_t images = listed ? (size_t)d.count : as_npy ? npy : png;
        if (images == 0) {
            fprintf(out, "  no .png or .npy images: not a dataset of the EDM dataset tool\n");
        } else {
            fprintf(out, "  images: %zu %s", images, as_npy ? ".npy arrays" : "PNGs");
            const char *first = listed ? d.files[0] : NULL;
            for (size_t i = 0; !first && i < z->count; i++)
                if (zip_lists_entry(z->entries[i].name, as_npy ? ".npy" : ".png")) first = z->entries[i].name;
            rc = describe_first(z, first, as_npy, out, err);
            fprintf(out, "\n  labels: %s", listed && d.labels ? "" : json ? "none (dataset.json says null)\n"
                                                                        : "none (no dataset.json)\n");
            if (listed && d.labels) fprintf(out, "%d classes (dataset.json)\n", d.label_dim);
        }
        print_comment(z, out);
    }
    /* Without dataset.json: the dataset tool's sources it holds (a zipped ImageNet folder), PNG or JPEG of any size. */
    if (!rc && !json && zip_sources_listing(&d, err)) rc = -1;
    else if (!rc && !json && d.labels)
        fprintf(out, "  sources: %d PNG or JPEG images in %d class folders ([encode] source, [data] source = images)\n",
                d.count, d.label_dim);
    else if (!rc && !json && d.count)
        fprintf(out, "  sources: %d PNG or JPEG images, unlabelled ([encode] source, [data] source = images)\n", d.count);
    dataset_close(&d);
    return rc ? -1 : 0;
}

static int inspect_npy(const char *path, FILE *out, edm2_err *err) {
    unsigned char *buf;
    size_t n;
    if (map_file(path, &buf, &n, err)) return -1;
    npy_array a;
    const int rc = npy_parse(buf, n, path, &a, err);
    if (!rc) {
        fprintf(out, "%s: NumPy array ", path);
        print_shape(&a, out);
        fprintf(out, "\n");
    }
    unmap_file(buf, n);
    return rc;
}

int inspect_archive(const char *path, FILE *out, edm2_err *err) {
    unsigned char head[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open", path);
    const size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got >= 6 && !memcmp(head, "\x93NUMPY", 6)) return inspect_npy(path, out, err);
    if (got >= 4 && head[0] == 'P' && head[1] == 'K') return inspect_zip(path, out, err);
    return 1;
}
