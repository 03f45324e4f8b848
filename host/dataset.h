/* dataset.h: the training images, from one of four sources (one file each):
 *   data_fashion_mnist.c  Fashion-MNIST read directly from its IDX .gz files (28x28 gray, padded to 32x32
 *                         or downsampled to 32/k, 10 classes);
 *   data_folder.c         an image folder with the EDM dataset tool's dataset.json
 *                         ({"labels": [["00000/img00000000.png", 6], ...]}), or every PNG below it;
 *   data_zip.c            the folder's layout inside a ZIP archive, as the EDM2 dataset tool writes it (PNGs, or
 *                         .npy posterior moments of VAE latents from its encode step);
 *   data_tensors.c        a safetensors file holding `images` [N, C, R, R] already in data scale (e.g.
 *                         normalised VAE latents) with optional `labels` [N] (class indices);
 * and the seeded epoch-wise shuffle (data_order.c). Pixel images come out encoded as x / 127.5 - 1, CHW.
 * Every source is validated when it is opened: counts, shapes, labels (integers in 0..DATA_MAX_CLASSES-1,
 * all images labelled or none) and image paths (inside the folder). */
#ifndef EDM2_HOST_DATASET_H
#define EDM2_HOST_DATASET_H

#include <stdint.h>

#include "config.h"
#include "errors.h"

#define DATA_MAX_CLASSES 65536       /* class indices 0..65535 (ImageNet-21k has 21841) */
#define DATA_MAX_IMAGES (1 << 30)    /* images per dataset */
#define DATA_MAX_CHANNELS 64
#define DATA_MAX_RESOLUTION 4096

typedef struct dataset {
    int count, channels, resolution, label_dim;
    char desc[512];
    int32_t *labels; /* [count] class indices, or NULL when the data have no labels */
    /* Fashion-MNIST: all pixels in memory (count x resolution x resolution). */
    uint8_t *pixels;
    /* Tensors file: images [N, C, R, R] in data scale. */
    void *tensors;         /* st_file* */
    const void *t_images;  /* st_tensor* */
    /* Tensors file of VAE latents (the encode job's): the VAE plugin and the scaling of the data (vae_net.h)
     * as metadata text, copied into snapshots; empty strings for pixel data. */
    char latents[64], latent_scale[512], latent_bias[512];
    /* 1: the file holds each latent image's posterior mean and std (already scaled; 2 x channels), and a
     * training draw is mean + std n with fresh noise n per use of the image, as the EDM2 reference trains. */
    int moments;
    /* Image folder: the folder (resolved) and each image's path relative to it (for the dataset tool's sources in
     * an archive, folder_list_sources: the archive's resolved path, and each image's entry). */
    char *root;
    char **files;
    /* 1: images of any size, each read as RGB and centre-cropped to the resolution (source = images). */
    int cropped;
    /* ZIP archive (zip_archive*; files[] name its entries). npy = 1: the entries are .npy posterior moments
     * [2C, R, R] (means, then stds) before scaling; the mean of channel c is scaled to mean * npy_scale[c] +
     * npy_bias[c], the std to std * npy_scale[c] (and moments = 1). */
    void *zip;
    int npy;
    float npy_scale[DATA_MAX_CHANNELS], npy_bias[DATA_MAX_CHANNELS];
} dataset;

/* Opens the [data] section of a config. Returns 0, or -1 with a one-line error. */
int dataset_open(dataset *d, const cfg *c, edm2_err *err);
/* Image `index` into img[C * R * R] (encoded) and its one-hot label into onehot[onehot_dim] (if non-NULL;
 * all zeros when the data have no labels). onehot_dim must exceed every label (checked by the caller
 * against label_dim). For posterior moments (d->moments), the mean. */
int dataset_get(const dataset *d, int index, float *img, float *onehot, int onehot_dim, edm2_err *err);
/* The same for training: for posterior moments, a draw mean + std n whose noise n is a function of (seed, pos),
 * pos the image's position in the data stream (each use of an image draws anew; reproducible on resume and
 * the same whatever the number of processes). Other data: as dataset_get. */
int dataset_draw(const dataset *d, int index, uint64_t seed, uint64_t pos, float *img, float *onehot, int onehot_dim,
                 edm2_err *err);
void dataset_close(dataset *d);

/* The dataset index at stream position `pos` (images consumed so far): epoch-wise shuffled with a
 * permutation seeded by (seed, epoch), so the data order is a pure function of the position. `perm` is a
 * caller-owned cache of one epoch's permutation (count ints) with its epoch in *perm_epoch (-1 = none). */
int dataset_order(const dataset *d, uint64_t seed, uint64_t pos, int *perm, int64_t *perm_epoch);
/* Fills perm[0..n) with the permutation of epoch `epoch` (Fisher-Yates with exact integer draws). */
void shuffle_permutation(int *perm, int n, uint64_t seed, uint64_t epoch);

#endif
