/* dataset.h: training data sources: Fashion-MNIST read directly from its IDX .gz files (28x28 gray,
 * padded to 32x32, 10 classes) and an image folder with the EDM/EDM2 dataset tool's dataset.json
 * ({"labels": [["00000/img00000000.png", 6], ...]}), and a safetensors file holding `images` [N, C, R, R]
 * already in data scale (e.g. normalised VAE latents) with optional `labels` [N] (class indices).
 * Pixel images come out encoded as x / 127.5 - 1, CHW. */
#ifndef EDM2_HOST_DATASET_H
#define EDM2_HOST_DATASET_H

#include <stdint.h>

#include "config.h"
#include "errors.h"

typedef struct dataset {
    int count, channels, resolution, label_dim;
    char desc[512];
    /* Fashion-MNIST: all pixels in memory (count x resolution x resolution, padded) and labels. */
    uint8_t *pixels;
    uint8_t *labels;
    /* Tensors file: images [N, C, R, R] in data scale, optional labels [N] (class indices). */
    void *tensors; /* st_file* */
    const void *t_images, *t_labels; /* st_tensor* */
    /* Image folder: files (relative to root) and their labels (-1 = none). */
    char *root;
    char **files;
    int *file_labels;
} dataset;

/* Opens the [data] section of a config. Returns 0, or -1 with a one-line error. */
int dataset_open(dataset *d, const cfg *c, edm2_err *err);
/* Image `index` into img[C * R * R] (encoded) and its one-hot label into onehot[onehot_dim] (if non-NULL;
 * zeros when the image has no label or onehot_dim is smaller than its label). */
int dataset_get(const dataset *d, int index, float *img, float *onehot, int onehot_dim, edm2_err *err);
void dataset_close(dataset *d);

/* The dataset index at stream position `pos` (images consumed so far): epoch-wise shuffled with a
 * permutation seeded by (seed, epoch), so the data order is a pure function of the position. `perm` is a
 * caller-owned cache of one epoch's permutation (count ints) with its epoch in *perm_epoch (-1 = none). */
int dataset_order(const dataset *d, uint64_t seed, uint64_t pos, int *perm, int64_t *perm_epoch);

#endif
