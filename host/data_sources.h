/* data_sources.h: the dataset sources' open functions (internal to dataset.c and the fuzz harnesses).
 * Each fills count, channels, label_dim, labels, desc and its own fields of *d (resolution is set by the
 * caller), and returns 0 or -1 with a one-line error naming the file and what was expected. */
#ifndef EDM2_HOST_DATA_SOURCES_H
#define EDM2_HOST_DATA_SOURCES_H

#include <stddef.h>

#include "dataset.h"

#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

int fashion_mnist_open(dataset *d, const char *dir, const char *split, int max_images, edm2_err *err);
/* `key` names the folder in messages ("[data] path"); `skip`, when not NULL, is a file directly in the folder
 * to leave out of a listing without dataset.json (the grid.png of a generate job's outdir). */
int folder_open(dataset *d, const char *key, const char *root, const char *skip, int max_images, edm2_err *err);
int tensors_open(dataset *d, const char *path, int max_images, edm2_err *err);
/* The source images of the dataset tool (the encode job) in a folder, any size: dataset.json when there is
 * one; else class subfolders (sorted by name; class i = the i-th folder holding images), each searched
 * below for *.png, *.jpg and *.jpeg; else every such image, unlabelled. Fills root, files, count, labels and
 * label_dim of *d (close with dataset_close). */
int folder_list_sources(dataset *d, const char *path, edm2_err *err);
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

/* Labels: checks that every label is in 0..DATA_MAX_CLASSES-1 and sets d->label_dim = max + 1. */
int labels_finish(dataset *d, const char *what, edm2_err *err);

#endif
