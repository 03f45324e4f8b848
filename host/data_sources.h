/* data_sources.h: the dataset sources' open functions (internal to dataset.c and the fuzz harnesses).
 * Each fills count, channels, label_dim, labels, desc and its own fields of *d (resolution is set by the
 * caller), and returns 0 or -1 with a one-line error naming the file and what was expected. */
#ifndef EDM2_HOST_DATA_SOURCES_H
#define EDM2_HOST_DATA_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "edm2/edm2.h"

#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

int fashion_mnist_open(dataset *d, const char *dir, const char *split, int max_images, edm2_err *err);
/* `key` names the folder in messages ("[data] path"); `skip`, when not NULL, is a file directly in the folder
 * to leave out of a listing without dataset.json (the grid.png of a generate job's outdir). A folder of .npy
 * latents (data_npy.c) is scaled by `scaling` ([data]; NULL: refused). */
int folder_open(dataset *d, const edm2_config *scaling, const char *key, const char *root, const char *skip,
                int max_images, edm2_err *err);
int tensors_open(dataset *d, const char *path, int max_images, edm2_err *err);
/* The source images of the dataset tool (the encode job) in a folder or a ZIP archive of one, any size:
 * dataset.json when there is one; else class subfolders (sorted by name; class i = the i-th folder holding
 * images), each searched below for *.png, *.jpg and *.jpeg (at most SCAN_MAX_DEPTH folders deep, hidden ones
 * skipped); else every such image, unlabelled. Fills root (a folder) or zip, files, count, labels and label_dim
 * of *d (close with dataset_close); read an image with dataset_file_bytes. */
int folder_list_sources(dataset *d, const char *path, edm2_err *err);
#define SCAN_MAX_DEPTH 8
/* The same for an archive (data_zip.c): d->zip open, root its resolved path, its listing in files, labels and
 * label_dim; the count (which may be 0) checked by the caller. */
int zip_list_sources(dataset *d, const char *path, edm2_err *err);
/* The archive at `path` opened into d->zip, and its dataset.json's listing into d->files and d->labels (*listed = 0
 * without one, or for {"labels": null}). `key` names the path in messages (NULL: the caller's message does). */
int zip_open_listed(dataset *d, const char *key, const char *path, int *listed, edm2_err *err);
/* The sources of the open archive d->zip that has no dataset.json, as zip_list_sources lists them (d->files empty
 * before). */
int zip_sources_listing(dataset *d, edm2_err *err);
/* [data] source = images: the images folder_list_sources finds, each read as RGB and centre-cropped to the
 * resolution as the dataset tool does (the encode job's pixels before its VAE), e.g. ImageNet's train folder
 * as the reference images of an img512 evaluation. */
int images_open(dataset *d, const char *path, int max_images, edm2_err *err);

/* dataset.json text -> d->files / d->labels (paths checked to stay inside the folder). `label_json` names
 * the file in messages. Sets *listed to 0 when the file says {"labels": null} (then the folder is scanned). */
int folder_parse_json(dataset *d, const char *text, size_t len, const char *label_json, int *listed, edm2_err *err);
/* 0 when `rel` is a relative path that stays inside its folder (no "..", no leading '/', no empty or NUL
 * parts, at most 4095 bytes). */
int path_stays_inside(const char *rel);

/* [data] source = folder with path = an archive (data_zip.c): the dataset tool's ZIP of PNGs, or of .npy posterior
 * moments of VAE latents (scaled by `scaling`'s latent_mean, latent_std, final_mean, final_std: [data]'s keys).
 * `key` names the path in messages. */
int zip_source_open(dataset *d, const edm2_config *scaling, const char *key, const char *path, int max_images,
                    edm2_err *err);
/* 1 when an archive without dataset.json lists entry `name` as an image: it ends in `ext` and is not hidden (no
 * part of its path begins with '.', as a folder's scan skips them, e.g. macOS's "._x.png"; not below "__MACOSX/",
 * the resource forks macOS's zip adds). */
int zip_lists_entry(const char *name, const char *ext);
/* Entry `rel` of an archive (a zip_archive*, d->zip): its bytes (*data into the mapping, or *owned, malloc'ed, for
 * a deflated entry), with "ARCHIVE:ENTRY" for messages in name[DATA_NAME_BYTES]. */
int zip_source_bytes(const void *archive, const char *rel, const unsigned char **data, size_t *n, unsigned char **owned,
                     char *name, edm2_err *err);

/* The bytes of image `index`'s file, from the archive (zip_source_bytes) or the folder (read into *owned; *data is
 * *owned), with its name for messages in name[DATA_NAME_BYTES]; the caller frees *owned. */
#define DATA_NAME_BYTES 4400
int dataset_file_bytes(const dataset *d, int index, const unsigned char **data, size_t *n, unsigned char **owned,
                       char *name, edm2_err *err);

/* crop[res, res, 3] = source image `index` of folder_list_sources' listing, read as RGB and centre-cropped
 * (image_decode_crop). 0, or -1 with a reason naming the file (or ARCHIVE:ENTRY). */
int dataset_source_crop(const dataset *d, int index, int res, uint8_t *crop, edm2_err *err);

/* The dataset tool's .npy posterior moments (data_npy.c), in a folder or an archive: npy_moments_open takes the
 * channels and checks the resolution of the first image's array, reads the scaling from `scaling` ([data]; NULL:
 * latents are refused) and sets d->npy, d->moments and the latent metadata; npy_moments_get scales image `index`
 * into img[C * R * R] (means) and std[C * R * R] (stds; when not NULL). */
int npy_moments_open(dataset *d, const edm2_config *scaling, edm2_err *err);
int npy_moments_get(const dataset *d, int index, float *img, float *std, edm2_err *err);

#define DATA_NPY_DESC "latent images (posterior means and stds, scaled by [data] latent_mean/latent_std)"

/* 1 when name ends in ext (".npy"; any case). */
int name_has_ext(const char *name, const char *ext);
/* Sets d->npy when the listed files are .npy arrays; -1 when PNG and .npy files are mixed (`where` in messages). */
int dataset_one_kind(dataset *d, const char *where, edm2_err *err);

/* Only the first max_images images of a listing (0: all). */
void dataset_keep_first(dataset *d, int max_images);
/* Reads the first image now, so a wrong resolution, channel count or file fails before a job's work starts. */
int dataset_check_first(dataset *d, edm2_err *err);

/* Labels: checks that every label is in 0..DATA_MAX_CLASSES-1 and sets d->label_dim = max + 1. */
int labels_finish(dataset *d, const char *what, edm2_err *err);

#endif
