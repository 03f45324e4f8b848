/* loader.h: batches of training data prepared on a background thread while the previous batch trains.
 * The batch at stream position pos holds the images dataset_order(seed, pos + i), so the data order
 * depends only on the seed and the number of images seen (exact resume). A process of a data-parallel run
 * loads its slice of each global batch: images first .. first + batch - 1 of it. */
#ifndef EDM2_HOST_LOADER_H
#define EDM2_HOST_LOADER_H

#include <pthread.h>
#include <stdint.h>

#include "dataset.h"

/* Where the batch buffers live (e.g. page-locked memory for uploads that do not stall); NULL: malloc. */
typedef struct loader_mem {
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *p);
    void *ctx;
} loader_mem;

typedef struct loader {
    const dataset *d;
    uint64_t seed;
    int batch, onehot_dim; /* images this process loads per global batch */
    uint64_t first, stride; /* its slice's offset in the global batch; the global batch size */
    size_t img_floats; /* per image */
    float *img[2], *lab[2];
    uint64_t pos[2];
    int state[2]; /* 0 empty, 1 requested, 2 ready */
    int *perm;
    int64_t perm_epoch;
    int *idx;    /* [batch] the dataset indices of the batch being prepared */
    int threads; /* OpenMP threads that draw a batch's images */
    loader_mem mem;
    int slot, stop, failed, started;
    edm2_err err;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} loader;

/* The threads that draw a batch's images for a training run: 1 beside the CPU backend (its training step needs the
 * cores), up to LOADER_GPU_THREADS of the process's `cores` beside a GPU backend (a latent draw costs about
 * 0.5 ms an image on one core, so one thread would hold a fast GPU back). */
#define LOADER_GPU_THREADS 8
int loader_threads_for(int gpu_backend, int cores);

/* `threads`: how many threads draw a batch's images (the same bits for any count). */
int loader_open(loader *l, const dataset *d, uint64_t seed, int batch, uint64_t first, uint64_t stride, int onehot_dim,
                uint64_t start_pos, const loader_mem *mem, int threads, edm2_err *err);
/* The next batch: images [batch, C, R, R] and one-hot labels [batch, onehot_dim] (NULL when
 * onehot_dim is 0), valid and unchanged until the next call. Starts preparing the batch after it. */
int loader_next(loader *l, const float **img, const float **lab, edm2_err *err);
void loader_close(loader *l);

#endif
