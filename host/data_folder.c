/* data_folder.c: an image folder in the EDM dataset tool's layout: dataset.json lists the images with
 * their class ({"labels": [["00000/img00000000.png", 6], ...]}, or {"labels": null}), else every *.png
 * below the folder is used, unlabelled, in sorted order. Paths from dataset.json must stay inside the
 * folder (checked by name here, and by resolved path when each image is read). Also the dataset tool's own
 * sources (folder_list_sources: PNG/JPEG of any size, class subfolders), read centre-cropped as [data]
 * source = images (images_open). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data_sources.h"
#include "fileio.h"
#include "image_io.h"
#include "json.h"

#define JSON_MAX_BYTES (1u << 30)

typedef struct file_list {
    char **files;
    int32_t *labels;
    size_t n, cap;
} file_list;

static int push_file(file_list *l, const char *rel, int32_t label, edm2_err *err) {
    if (l->n >= DATA_MAX_IMAGES) return err_set(err, "more than %d images", DATA_MAX_IMAGES);
    if (l->n == l->cap) { /* doubling: a listing of millions of images costs linear time */
        size_t cap = l->cap ? 2 * l->cap : 1024;
        char **f = realloc(l->files, cap * sizeof *f);
        if (f) l->files = f;
        int32_t *lb = f ? realloc(l->labels, cap * sizeof *lb) : NULL;
        if (lb) l->labels = lb;
        if (!f || !lb) return err_set(err, "out of memory");
        l->cap = cap;
    }
    if (!(l->files[l->n] = strdup(rel))) return err_set(err, "out of memory");
    l->labels[l->n++] = label;
    return 0;
}

static void list_into(dataset *d, file_list *l, int labelled) {
    d->files = l->files;
    d->count = (int)l->n;
    if (labelled) d->labels = l->labels;
    else free(l->labels);
    memset(l, 0, sizeof *l);
}

static void list_free(file_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->files[i]);
    free(l->files), free(l->labels);
    memset(l, 0, sizeof *l);
}

int path_stays_inside(const char *rel) {
    size_t len = strlen(rel);
    if (!len || len >= 4096 || rel[0] == '/') return -1;
    for (const char *p = rel; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.')) return -1;
        if (!slash) break;
        p = slash + 1;
        if (!*p) return -1; /* trailing '/' */
    }
    return 0;
}

int folder_parse_json(dataset *d, const char *text, size_t len, const char *name, int *listed, edm2_err *err) {
    char why[256];
    *listed = 0;
    json_t *root = json_parse_strict(text, len, why, sizeof why);
    if (!root) return err_set(err, "%s: bad JSON: %s", name, why);
    json_t *labels = json_object_get(root, "labels");
    int rc = 0;
    if (!labels || (!json_is_array(labels) && !json_is_null(labels)))
        rc = err_set(err, "%s: expected {\"labels\": [[\"file.png\", label], ...]} or {\"labels\": null}", name);
    file_list l = {0};
    int with_label = 0, without_label = 0;
    for (size_t i = 0; !rc && json_is_array(labels) && i < json_array_size(labels); i++) {
        json_t *e = json_array_get(labels, i), *p = json_array_get(e, 0), *c = json_array_get(e, 1);
        int64_t label = -1;
        if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_string(p) ||
            (!json_is_null(c) && json_int_in(c, 0, DATA_MAX_CLASSES - 1, &label))) {
            rc = err_set(err, "%s: labels[%zu]: expected [\"file.png\", class index 0..%d or null]", name, i,
                         DATA_MAX_CLASSES - 1);
            break;
        }
        if (path_stays_inside(json_string_value(p))) {
            rc = err_set(err, "%s: labels[%zu]: '%.200s' is not a path inside the dataset folder", name, i,
                         json_string_value(p));
            break;
        }
        with_label += label >= 0, without_label += label < 0;
        if (with_label && without_label) {
            rc = err_set(err, "%s: labels[%zu]: some images have a class and some have none (null)", name, i);
            break;
        }
        rc = push_file(&l, json_string_value(p), (int32_t)label, err);
    }
    if (!rc && json_is_array(labels) && l.n == 0) rc = err_set(err, "%s: the labels list is empty", name);
    if (!rc && json_is_array(labels)) {
        list_into(d, &l, with_label > 0);
        *listed = 1;
    }
    list_free(&l);
    json_decref(root);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int name_has_ext(const char *name, const char *ext) {
    const size_t n = strlen(name), e = strlen(ext);
    return n > e && !strcasecmp(name + n - e, ext);
}

/* 1 when the file name ends in .png (any = 0), in .png, .jpg or .jpeg in any case (any = 1), or in .npy (any =
 * 2: the dataset tool's encoded latents). */
static int image_name(const char *name, int any) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    if (any == 0) return !strcmp(dot, ".png");
    if (any == 2) return name_has_ext(name, ".npy");
    return !strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg");
}

/* Every image below root/rel (*.png; with any = 1 also JPEGs; with any = 2 *.npy instead; sorted; folders not
 * followed past SCAN_MAX_DEPTH, hidden entries skipped), with `label`. */
static int scan_images(file_list *l, const char *root, const char *rel, int depth, int any, int32_t label,
                       edm2_err *err) {
    char path[8200];
    snprintf(path, sizeof path, "%.4000s%s%.4000s", root, *rel ? "/" : "", rel);
    DIR *dir = opendir(path);
    if (!dir) return err_set(err, "%s: cannot open folder", path);
    file_list names = {0};
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(dir));)
        if (e->d_name[0] != '.') rc = push_file(&names, e->d_name, -1, err);
    closedir(dir);
    if (names.n > 1) qsort(names.files, names.n, sizeof *names.files, cmp_str);
    for (size_t i = 0; !rc && i < names.n; i++) {
        char sub[4096], full[8200];
        if ((size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names.files[i]) >= sizeof sub) continue;
        snprintf(full, sizeof full, "%.4000s/%s", root, sub);
        struct stat st;
        size_t len = strlen(names.files[i]);
        if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (depth < SCAN_MAX_DEPTH) rc = scan_images(l, root, sub, depth + 1, any, label, err);
        } else if (len > 4 && image_name(names.files[i], any)) {
            rc = push_file(l, sub, label, err);
        }
    }
    list_free(&names);
    return rc;
}

/* ROOT/dataset.json into d->files / d->labels when it exists (*listed = 1 unless it says {"labels": null});
 * its path into jp[len]. */
static int read_listing(dataset *d, char *jp, size_t len, int *listed, edm2_err *err) {
    struct stat st;
    snprintf(jp, len, "%.4000s/dataset.json", d->root);
    if (stat(jp, &st) != 0) return 0;
    if (st.st_size > JSON_MAX_BYTES) return err_set(err, "%s: larger than %u bytes", jp, JSON_MAX_BYTES);
    unsigned char *text;
    size_t n;
    if (read_file(jp, &text, &n, err)) return -1;
    int rc = folder_parse_json(d, (const char *)text, n, jp, listed, err);
    free(text);
    return rc;
}

void dataset_keep_first(dataset *d, int max_images) {
    if (max_images <= 0 || max_images >= d->count) return;
    for (int i = max_images; i < d->count; i++) free(d->files[i]);
    d->count = max_images;
}

int dataset_check_first(dataset *d, edm2_err *err) {
    float *img = malloc((size_t)d->channels * d->resolution * d->resolution * sizeof(float));
    if (!img) return err_set(err, "out of memory");
    int rc = dataset_get(d, 0, img, NULL, 0, err);
    free(img);
    return rc;
}

int dataset_one_kind(dataset *d, const char *where, edm2_err *err) {
    d->npy = name_has_ext(d->files[0], ".npy");
    for (int i = 1; i < d->count; i++)
        if (name_has_ext(d->files[i], ".npy") != d->npy)
            return err_set(err, "%s: '%.200s' and '%.200s': PNG and .npy images do not mix", where, d->files[0],
                           d->files[i]);
    return 0;
}

int folder_open(dataset *d, const edm2_config *scaling, const char *key, const char *path, const char *skip,
                int max_images, edm2_err *err) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(err, "%s = '%s': not a folder", key, path);
    if (!(d->root = realpath(path, NULL))) return err_set(err, "%s = '%s': cannot resolve", key, path);
    char jp[4200];
    int listed = 0;
    if (read_listing(d, jp, sizeof jp, &listed, err)) return -1;
    if (!listed) {
        file_list l = {0};
        if (scan_images(&l, d->root, "", 0, 0, -1, err) || (l.n == 0 && scan_images(&l, d->root, "", 0, 2, -1, err))) {
            list_free(&l);
            return -1;
        }
        size_t kept = 0; /* (without `skip`) */
        for (size_t i = 0; i < l.n; i++) {
            if (skip && !strcmp(l.files[i], skip)) free(l.files[i]);
            else l.files[kept++] = l.files[i];
        }
        l.n = kept;
        list_into(d, &l, 0);
    }
    if (d->count == 0) return err_set(err, "%s = '%s': no .png or .npy images found", key, path);
    dataset_keep_first(d, max_images);
    if (d->labels && labels_finish(d, jp, err)) return -1;
    if (dataset_one_kind(d, d->root, err) || (d->npy && npy_moments_open(d, scaling, err))) return -1;
    if (dataset_check_first(d, err)) return -1;
    snprintf(d->desc, sizeof d->desc, "image folder %.300s: %d %s, %dx%dx%d, %d classes", d->root, d->count,
             d->npy ? DATA_NPY_DESC : "images", d->channels, d->resolution, d->resolution, d->label_dim);
    return 0;
}

int images_open(dataset *d, const char *path, int max_images, edm2_err *err) {
    if (folder_list_sources(d, path, err)) return err_set(err, "[data] path: %s", err->msg);
    d->channels = 3, d->cropped = 1;
    dataset_keep_first(d, max_images);
    if (dataset_check_first(d, err)) return -1;
    snprintf(d->desc, sizeof d->desc, "images %.300s: %d, centre-cropped to %dx%dx3, %d classes", d->root, d->count,
             d->resolution, d->resolution, d->label_dim);
    return 0;
}

int folder_list_sources(dataset *d, const char *path, edm2_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return err_set(err, "'%s': no such folder or .zip archive", path);
    char jp[4200];
    int listed = 0;
    if (!S_ISDIR(st.st_mode)) {
        if (zip_list_sources(d, path, err)) return -1;
    } else if (!(d->root = realpath(path, NULL))) {
        return err_set(err, "'%s': cannot resolve", path);
    } else if (read_listing(d, jp, sizeof jp, &listed, err)) {
        return -1;
    }
    if (!listed && !d->zip) { /* class subfolders (sorted names: classes 0, 1, ...), else every image unlabelled */
        file_list top = {0}, l = {0};
        DIR *dir = opendir(d->root);
        int rc = dir ? 0 : err_set(err, "%s: cannot open folder", d->root), classes = 0;
        for (struct dirent *e; !rc && dir && (e = readdir(dir));) {
            char full[8200];
            snprintf(full, sizeof full, "%.4000s/%.4000s", d->root, e->d_name);
            if (e->d_name[0] != '.' && lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) rc = push_file(&top, e->d_name, 0, err);
        }
        if (dir) closedir(dir);
        if (top.n > 1) qsort(top.files, top.n, sizeof *top.files, cmp_str);
        for (size_t i = 0; !rc && i < top.n; i++) {
            const size_t before = l.n;
            if (i >= DATA_MAX_CLASSES) rc = err_set(err, "%s: more than %d class folders", d->root, DATA_MAX_CLASSES);
            else rc = scan_images(&l, d->root, top.files[i], 1, 1, (int32_t)classes, err);
            classes += l.n > before; /* folders without images get no class */
        }
        if (!rc && classes == 0) rc = scan_images(&l, d->root, "", 0, 1, -1, err);
        list_free(&top);
        if (rc) {
            list_free(&l);
            return -1;
        }
        list_into(d, &l, classes > 0);
    }
    if (d->count == 0) return err_set(err, "'%s': no PNG or JPEG images found", path);
    if (d->labels && labels_finish(d, path, err)) return -1;
    return 0;
}
