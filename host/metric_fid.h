/* metric_fid.h: the Fréchet Inception Distance's reference statistics in a .safetensors file: the mean
 * ("fid/mu" [dim]) and covariance ("fid/sigma" [dim, dim]) of a dataset's features in float64, the number
 * of images and the fingerprint of the feature network's weights (metadata), so a dataset's statistics are
 * computed once and reused, as the reference tools do, and never compared with another network's features.
 * The distance itself: frechet.h. */
#ifndef EDM2_HOST_METRIC_FID_H
#define EDM2_HOST_METRIC_FID_H

#include <stddef.h>

#include "errors.h"

typedef struct fid_stats {
    int dim;
    size_t count;         /* images */
    double *mu, *sigma;   /* [dim], [dim, dim] */
    char fingerprint[24]; /* of the feature network's weights (feature_net.h) */
} fid_stats;

int fid_stats_alloc(fid_stats *s, int dim, edm2_err *err);
void fid_stats_free(fid_stats *s);
int fid_stats_save(const char *path, const fid_stats *s, const char *source, edm2_err *err);
/* Loads and checks dim and, when `fingerprint` is not empty, the network the statistics came from. */
int fid_stats_load(const char *path, int dim, const char *fingerprint, fid_stats *s, edm2_err *err);

#endif
