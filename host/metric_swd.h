/* metric_swd.h: the sliced Wasserstein distance between two image sets on Laplacian-pyramid patches
 * (Karras et al., "Progressive Growing of GANs", ICLR 2018, appendix D; docs/formulas.md §8): a metric that
 * needs no network weights. Each image is split into a Laplacian pyramid (5-tap binomial filter, mirrored
 * borders) from its resolution down to `min_res`; from each level, `patches` random patch x patch
 * neighbourhoods per image are the descriptors; each level's descriptors are normalised per channel (mean
 * 0, standard deviation 1 over the set); the distance per level is the mean, over `repeats` x `dirs` random
 * unit directions, of the mean absolute difference between the two sets' sorted projections. Reported x1e3
 * as in the paper. Deterministic for a seed: patch positions come from each image's index, directions from
 * the seed. */
#ifndef EDM2_HOST_METRIC_SWD_H
#define EDM2_HOST_METRIC_SWD_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define SWD_MAX_LEVELS 8

typedef struct swd_params {
    int patch;    /* neighbourhood size (odd), 7 */
    int patches;  /* per image and level, 128 */
    int min_res;  /* coarsest pyramid level, 16 (at least patch + 1) */
    int dirs;     /* random directions per repeat, 128 */
    int repeats;  /* 4 */
    uint64_t seed;
} swd_params;

void swd_default_params(swd_params *p);

/* Descriptors of one image set, per pyramid level: raw until swd_set_finalize, then normalised. */
typedef struct swd_set {
    int C, R, levels, dim; /* dim = C * patch * patch */
    size_t count, cap;     /* descriptors per level */
    float *desc[SWD_MAX_LEVELS]; /* [count, dim] */
} swd_set;

/* Pyramid levels for resolution R: R, R/2, ... down to min_res. 0 when R < min_res or R is not a power of 2
 * times a size >= min_res. */
int swd_levels(int R, int min_res);
int swd_set_init(swd_set *s, const swd_params *p, int C, int R, edm2_err *err);
/* Room for `extra` more descriptors per level (for a caller that appends them itself, count last). */
int swd_set_reserve(swd_set *s, size_t extra, edm2_err *err);
/* Adds the descriptors of n images x[n, C, R, R] whose indices in the set are first .. first + n - 1. */
int swd_set_add(swd_set *s, const swd_params *p, const float *x, int n, uint64_t first, edm2_err *err);
void swd_set_finalize(swd_set *s);
void swd_set_free(swd_set *s);

/* The Laplacian pyramid of one channel img[R, R] into lev[level] (each [R >> level, R >> level]). */
void swd_pyramid(const float *img, int R, int levels, float **lev);

/* Sliced Wasserstein distance between point sets A[na, dim] and B[nb, dim] (the first min(na, nb) of each;
 * both random already): mean over directions of mean |sorted(A d) - sorted(B d)|. Returns -1 when out of
 * memory or when a set is empty. */
double swd_distance(const float *A, size_t na, const float *B, size_t nb, int dim, const swd_params *p);
/* Per level (x1e3) and their mean; 0 or -1 with a reason. */
int swd_compare(const swd_set *a, const swd_set *b, const swd_params *p, double *per_level, double *mean,
                edm2_err *err);

/* Reference statistics in a file (metric_swd_file.c): a finalised set and the settings it was made with.
 * Loading checks the settings against p, C and R. 0, or -1 with a reason. */
int swd_set_save(const char *path, const swd_set *s, const swd_params *p, const char *source, edm2_err *err);
int swd_set_load(const char *path, const swd_params *p, int C, int R, swd_set *s, edm2_err *err);

#endif
