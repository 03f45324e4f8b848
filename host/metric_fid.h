/* metric_fid.h: the reference statistics of a Fréchet distance in a feature space, in a .safetensors file:
 * the mean ("M/mu" [dim]) and covariance ("M/sigma" [dim, dim]) of a dataset's features in float64, the
 * number of images and the fingerprint of the feature network's weights (metadata), M the metric's name:
 * fid (the Fréchet Inception Distance, Inception-v3's features) or fd_ID (the features of the [features]
 * plugin ID, e.g. fd_dinov2: FD_DINOv2). A dataset's statistics are computed once and reused, as the
 * reference tools do, and never compared with another network's features. The distance itself: frechet.h. */
#ifndef EDM2_HOST_METRIC_FID_H
#define EDM2_HOST_METRIC_FID_H

#include <stddef.h>

#include "errors.h"

#define FD_NAME_MAX 48

typedef struct fid_stats {
    char metric[FD_NAME_MAX]; /* fid, fd_dinov2, ... */
    int dim;
    size_t count;         /* images */
    double *mu, *sigma;   /* [dim], [dim, dim] */
    char fingerprint[24]; /* of the feature network's weights (feature_net.h) */
} fid_stats;

int fid_stats_alloc(fid_stats *s, const char *metric, int dim, edm2_err *err);
void fid_stats_free(fid_stats *s);
int fid_stats_save(const char *path, const fid_stats *s, const char *source, edm2_err *err);
/* Loads and checks the metric, dim and, when `fingerprint` is not empty, the network the statistics came from. */
int fid_stats_load(const char *path, const char *metric, int dim, const char *fingerprint, fid_stats *s, edm2_err *err);

#endif
