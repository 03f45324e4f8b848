/* loader.c: double-buffered background batch preparation, each batch's images drawn on a few threads. */
#include "loader.h"

#include <stdlib.h>
#include <string.h>

/* Batch slot s: the data order in turn (it caches an epoch's permutation), then the images on l->threads threads,
 * each into its own place (the same bits for any thread count). The first failing image's error is kept. */
static int fill(loader *l, int s, edm2_err *err) {
    const uint64_t pos0 = l->pos[s] + l->first;
    for (int i = 0; i < l->batch; i++)
        l->idx[i] = dataset_order(l->d, l->seed, pos0 + (uint64_t)i, l->perm, &l->perm_epoch);
    int first_failed = l->batch;
#pragma omp parallel for num_threads(l->threads) schedule(dynamic, 4) if (l->threads > 1)
    for (int i = 0; i < l->batch; i++) {
        edm2_err e;
        if (dataset_draw(l->d, l->idx[i], l->seed, pos0 + (uint64_t)i, l->img[s] + (size_t)i * l->img_floats,
                         l->onehot_dim ? l->lab[s] + (size_t)i * l->onehot_dim : NULL, l->onehot_dim, &e)) {
#pragma omp critical(loader_error)
            if (i < first_failed) first_failed = i, *err = e;
        }
    }
    return first_failed < l->batch ? -1 : 0;
}

static void *worker(void *arg) {
    loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->state[0] != 1 && l->state[1] != 1) pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop) break;
        int s = l->state[0] == 1 ? 0 : 1;
        pthread_mutex_unlock(&l->mu);
        edm2_err err;
        int rc = fill(l, s, &err);
        pthread_mutex_lock(&l->mu);
        if (rc) {
            l->failed = 1;
            l->err = err;
        }
        l->state[s] = 2;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int loader_threads_for(int gpu_backend, int cores) {
    if (!gpu_backend || cores < 1) return 1;
    return cores < LOADER_GPU_THREADS ? cores : LOADER_GPU_THREADS;
}

static void *mem_alloc(const loader *l, size_t bytes) { return l->mem.alloc ? l->mem.alloc(l->mem.ctx, bytes) : malloc(bytes); }
static void mem_free(const loader *l, void *p) {
    if (!p) return;
    if (l->mem.free) l->mem.free(l->mem.ctx, p);
    else free(p);
}

int loader_open(loader *l, const dataset *d, uint64_t seed, int batch, uint64_t first, uint64_t stride, int onehot_dim,
                uint64_t start_pos, const loader_mem *mem, int threads, edm2_err *err) {
    memset(l, 0, sizeof *l);
    l->d = d;
    l->threads = threads < 1 ? 1 : threads;
    l->seed = seed;
    l->batch = batch;
    l->onehot_dim = onehot_dim;
    l->first = first, l->stride = stride;
    if (mem) l->mem = *mem;
    l->img_floats = (size_t)d->channels * d->resolution * d->resolution;
    l->perm = malloc((size_t)d->count * sizeof(int));
    l->idx = malloc((size_t)batch * sizeof(int));
    l->perm_epoch = -1;
    for (int s = 0; s < 2; s++) {
        l->img[s] = mem_alloc(l, (size_t)batch * l->img_floats * sizeof(float));
        l->lab[s] = mem_alloc(l, ((size_t)batch * (onehot_dim ? onehot_dim : 1)) * sizeof(float));
    }
    if (!l->perm || !l->idx || !l->img[0] || !l->img[1] || !l->lab[0] || !l->lab[1])
        return err_set(err, "out of memory for the data loader");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->pos[0] = start_pos;
    l->state[0] = 1;
    if (pthread_create(&l->thread, NULL, worker, l)) return err_set(err, "cannot start the data loader thread");
    l->started = 1;
    return 0;
}

int loader_next(loader *l, const float **img, const float **lab, edm2_err *err) {
    pthread_mutex_lock(&l->mu);
    int s = l->slot;
    while (l->state[s] != 2) pthread_cond_wait(&l->cv, &l->mu);
    if (l->failed) {
        *err = l->err;
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    /* Hand out slot s; the other slot (free since our previous call) prepares the next batch. */
    int o = s ^ 1;
    l->pos[o] = l->pos[s] + l->stride;
    l->state[o] = 1;
    l->state[s] = 0;
    l->slot = o;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    *img = l->img[s];
    *lab = l->onehot_dim ? l->lab[s] : NULL;
    return 0;
}

void loader_close(loader *l) {
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    for (int s = 0; s < 2; s++) mem_free(l, l->img[s]), mem_free(l, l->lab[s]);
    free(l->perm), free(l->idx);
    memset(l, 0, sizeof *l);
}
