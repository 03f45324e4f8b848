/* data_zip.c: [data] source = folder with path = a ZIP archive, as the EDM and EDM2 dataset tools write their
 * datasets (Python's zipfile; see zip_archive.h): dataset.json and the images inside the archive, in the folder
 * layout of data_folder.c. Two kinds, never mixed:
 *   - PNGs (the tool's convert step: 00000/img00000000.png ...), read as [data] channels;
 *   - .npy arrays (its encode step: 00000/img-mean-std-00000000.npy ...), the VAE's posterior moments, read
 *     and scaled by data_npy.c.
 * Images are read by dataset.c through zip_source_bytes.
 * Without dataset.json every .png (or, when there are none, every .npy) entry is used, unlabelled, sorted by
 * name (hidden entries skipped). Each entry is checked against its CRC-32 when it is read.
 * Also the encode job's sources in an archive (zip_list_sources): PNG and JPEG of any size, listed as
 * folder_list_sources lists the unpacked folder (class folders and their order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_sources.h"
#include "zip_archive.h"

#define JSON_MAX_BYTES (1u << 30)

int zip_lists_entry(const char *name, const char *ext) {
    if (!name_has_ext(name, ext) || !strncmp(name, "__MACOSX/", 9)) return 0;
    for (const char *p = name;; p++) { /* each part's first character */
        if (*p == '.') return 0;
        if (!(p = strchr(p, '/'))) return 1;
    }
}

static int png_entry(const char *name) { return zip_lists_entry(name, ".png"); }
static int npy_entry(const char *name) { return zip_lists_entry(name, ".npy"); }

/* Every entry `take` takes into d->files, sorted by name (the archive's entries are sorted already). */
static int list_entries(dataset *d, const zip_archive *z, int (*take)(const char *name), edm2_err *err) {
    size_t n = 0;
    for (size_t i = 0; i < z->count; i++) n += take(z->entries[i].name);
    if (n == 0) return 0;
    if (n > DATA_MAX_IMAGES) return err_set(err, "%s: more than %d images", z->path, DATA_MAX_IMAGES);
    if (!(d->files = calloc(n, sizeof *d->files))) return err_set(err, "out of memory");
    for (size_t i = 0; i < z->count; i++)
        if (take(z->entries[i].name) && !(d->files[d->count++] = strdup(z->entries[i].name)))
            return err_set(err, "out of memory");
    return 0;
}

int zip_source_bytes(const void *archive, const char *rel, const unsigned char **data, size_t *n, unsigned char **owned,
                     char *name, edm2_err *err) {
    const zip_archive *z = archive;
    snprintf(name, DATA_NAME_BYTES, "%.4000s:%.300s", z->path, rel);
    const zip_entry *e = zip_find(z, rel);
    if (!e) return err_set(err, "%s: no such entry in the archive", name);
    return zip_read(z, e, data, n, owned, err);
}

/* dataset.json inside the archive, when there is one (*listed = 0 for {"labels": null}). */
static int read_json(dataset *d, const zip_archive *z, int *listed, edm2_err *err) {
    *listed = 0;
    const zip_entry *e = zip_find(z, "dataset.json");
    if (!e) return 0;
    if (e->usize > JSON_MAX_BYTES) return err_set(err, "%s: dataset.json is larger than %u bytes", z->path, JSON_MAX_BYTES);
    const unsigned char *text;
    unsigned char *owned;
    size_t n;
    char name[DATA_NAME_BYTES];
    if (zip_source_bytes(z, "dataset.json", &text, &n, &owned, name, err)) return -1;
    int rc = folder_parse_json(d, (const char *)text, n, name, listed, err);
    free(owned);
    return rc;
}

/* Every listed file is an entry that can be read. */
static int check_listing(const dataset *d, const zip_archive *z, edm2_err *err) {
    for (int i = 0; i < d->count; i++) {
        const zip_entry *e = zip_find(z, d->files[i]);
        if (!e) return err_set(err, "%s: dataset.json lists '%.200s', which is not in the archive", z->path, d->files[i]);
        if (zip_check(z, e, err)) return -1;
    }
    return 0;
}

int zip_open_listed(dataset *d, const char *key, const char *path, int *listed, edm2_err *err) {
    zip_archive *z = calloc(1, sizeof *z);
    if (!z) return err_set(err, "out of memory");
    if (zip_open(z, path, err)) {
        free(z);
        return key ? err_set(err, "%s = '%s': neither a folder nor a readable ZIP archive: %s", key, path, err->msg)
                   : err_set(err, "'%s': neither a folder nor a readable ZIP archive: %s", path, err->msg);
    }
    d->zip = z;
    return read_json(d, z, listed, err);
}

int zip_source_open(dataset *d, const edm2_config *scaling, const char *key, const char *path, int max_images,
                    edm2_err *err) {
    int listed;
    if (zip_open_listed(d, key, path, &listed, err)) return -1;
    const zip_archive *z = d->zip;
    if (!listed && (list_entries(d, z, png_entry, err) || (d->count == 0 && list_entries(d, z, npy_entry, err))))
        return -1;
    if (d->count == 0) return err_set(err, "%s = '%s': no .png or .npy images in the archive", key, path);
    if (check_listing(d, z, err) || dataset_one_kind(d, z->path, err)) return -1;
    dataset_keep_first(d, max_images);
    if (d->labels && labels_finish(d, path, err)) return -1;
    if (d->npy && npy_moments_open(d, scaling, err)) return -1;
    if (dataset_check_first(d, err)) return -1;
    snprintf(d->desc, sizeof d->desc, "archive %.300s: %d %s, %dx%dx%d, %d classes", path, d->count,
             d->npy ? DATA_NPY_DESC : "images", d->channels, d->resolution, d->resolution, d->label_dim);
    return 0;
}

/* ---- the dataset tool's source images in an archive (folder_list_sources) ---- */

/* 1 when entry `name` is a source image a folder's scan would find: a PNG or JPEG (.png, .jpg, .jpeg in any case),
 * not hidden, at most SCAN_MAX_DEPTH folders deep. */
static int source_entry(const char *name) {
    if (!zip_lists_entry(name, ".png") && !zip_lists_entry(name, ".jpg") && !zip_lists_entry(name, ".jpeg")) return 0;
    int depth = 0;
    for (const char *p = name; (p = strchr(p, '/')); p++) depth++;
    return depth <= SCAN_MAX_DEPTH;
}

/* A folder's scan order (names sorted within each folder, a folder's images where its name sorts): strcmp with '/'
 * before every other character. */
static int cmp_scan(const void *pa, const void *pb) {
    const unsigned char *a = *(const unsigned char *const *)pa, *b = *(const unsigned char *const *)pb;
    for (; *a && *a == *b; a++, b++) {}
    const int ka = *a == '/' ? 1 : *a + 1, kb = *b == '/' ? 1 : *b + 1; /* NUL 0, '/' 1, others above */
    return ka - kb;
}

/* Length of the first part of `name` (its class folder), or 0 for an entry at the top. */
static size_t top_part(const char *name) {
    const char *slash = strchr(name, '/');
    return slash ? (size_t)(slash - name) : 0;
}

static int cmp_top(const void *pa, const void *pb) {
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    const size_t la = top_part(a), lb = top_part(b);
    const int c = strncmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* Class folders in a folder's order (by name), then a folder's scan order inside each. */
static int cmp_source(const void *a, const void *b) {
    const int c = cmp_top(a, b);
    return c ? c : cmp_scan(a, b);
}

int zip_sources_listing(dataset *d, edm2_err *err) {
    if (list_entries(d, d->zip, source_entry, err)) return -1;
    /* Class folders, as a folder's: the top folders that hold images; the images at the top are then left out.
     * Without them every image, unlabelled. */
    int in_folders = 0, kept = 0;
    for (int i = 0; i < d->count; i++) in_folders |= top_part(d->files[i]) > 0;
    for (int i = 0; in_folders && i < d->count; i++) {
        if (top_part(d->files[i])) d->files[kept++] = d->files[i];
        else free(d->files[i]);
    }
    if (in_folders) d->count = kept;
    if (d->count > 1) qsort(d->files, (size_t)d->count, sizeof *d->files, cmp_source);
    if (!in_folders || d->count == 0) return 0;
    if (!(d->labels = malloc((size_t)d->count * sizeof *d->labels))) return err_set(err, "out of memory");
    int32_t classes = 0;
    for (int i = 0; i < d->count; i++) {
        classes += i > 0 && cmp_top(&d->files[i - 1], &d->files[i]) != 0;
        if (classes == DATA_MAX_CLASSES)
            return err_set(err, "%s: more than %d class folders", ((const zip_archive *)d->zip)->path, DATA_MAX_CLASSES);
        d->labels[i] = classes;
    }
    d->label_dim = classes + 1;
    return 0;
}

int zip_list_sources(dataset *d, const char *path, edm2_err *err) {
    int listed;
    if (zip_open_listed(d, NULL, path, &listed, err)) return -1;
    if (!(d->root = realpath(path, NULL))) return err_set(err, "'%s': cannot resolve", path);
    return listed ? check_listing(d, d->zip, err) : zip_sources_listing(d, err);
}
