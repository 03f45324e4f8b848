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

/* Every entry zip_lists_entry takes, sorted (the archive's entries are sorted by name already). */
static int list_entries(dataset *d, const zip_archive *z, const char *ext, edm2_err *err) {
    size_t n = 0;
    for (size_t i = 0; i < z->count; i++) n += zip_lists_entry(z->entries[i].name, ext);
    if (n == 0) return 0;
    if (n > DATA_MAX_IMAGES) return err_set(err, "%s: more than %d images", z->path, DATA_MAX_IMAGES);
    if (!(d->files = calloc(n, sizeof *d->files))) return err_set(err, "out of memory");
    for (size_t i = 0; i < z->count; i++)
        if (zip_lists_entry(z->entries[i].name, ext) && !(d->files[d->count++] = strdup(z->entries[i].name)))
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

/* The archive at `path` into d->zip, and its dataset.json's listing into d->files and d->labels (*listed = 0
 * without one, or for {"labels": null}). `key` names the path in messages (NULL: the caller's message does). */
static int open_listed(dataset *d, const char *key, const char *path, int *listed, edm2_err *err) {
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
    if (open_listed(d, key, path, &listed, err)) return -1;
    const zip_archive *z = d->zip;
    if (!listed && (list_entries(d, z, ".png", err) || (d->count == 0 && list_entries(d, z, ".npy", err)))) return -1;
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

int zip_list_sources(dataset *d, const char *path, edm2_err *err) {
    int listed;
    if (open_listed(d, NULL, path, &listed, err)) return -1;
    const zip_archive *z = d->zip;
    if (!(d->root = realpath(path, NULL))) return err_set(err, "'%s': cannot resolve", path);
    if (listed) return check_listing(d, z, err);
    size_t n = 0, in_folders = 0;
    for (size_t i = 0; i < z->count; i++)
        if (source_entry(z->entries[i].name)) n++, in_folders += top_part(z->entries[i].name) > 0;
    if (n > DATA_MAX_IMAGES) return err_set(err, "%s: more than %d images", z->path, DATA_MAX_IMAGES);
    if (n == 0) return 0;
    /* Class folders, as a folder's: the top folders that hold images, in sorted order; the images at the top are
     * then left out. Without them every image, unlabelled. */
    const size_t kept = in_folders ? in_folders : n;
    if (!(d->files = calloc(kept, sizeof *d->files)) || (in_folders && !(d->labels = calloc(kept, sizeof *d->labels))))
        return err_set(err, "out of memory");
    for (size_t i = 0; i < z->count; i++) {
        const char *name = z->entries[i].name;
        if (source_entry(name) && (!in_folders || top_part(name)) && !(d->files[d->count++] = strdup(name)))
            return err_set(err, "out of memory");
    }
    qsort(d->files, kept, sizeof *d->files, in_folders ? cmp_top : cmp_scan);
    int32_t classes = 0;
    for (size_t i0 = 0, i1; in_folders && i0 < kept; i0 = i1, classes++) { /* each class folder's images in scan order */
        for (i1 = i0 + 1; i1 < kept && !cmp_top(&d->files[i0], &d->files[i1]); i1++) {}
        if (classes == DATA_MAX_CLASSES) return err_set(err, "%s: more than %d class folders", z->path, DATA_MAX_CLASSES);
        qsort(d->files + i0, i1 - i0, sizeof *d->files, cmp_scan);
        for (size_t i = i0; i < i1; i++) d->labels[i] = classes;
    }
    d->label_dim = classes;
    return 0;
}
