/* metric_fid_file.c: FID reference statistics in a .safetensors file (metric_fid.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metric_fid.h"
#include "safetensors.h"

int fid_stats_alloc(fid_stats *s, int dim, edm2_err *err) {
    memset(s, 0, sizeof *s);
    s->dim = dim;
    s->mu = malloc((size_t)dim * sizeof *s->mu);
    s->sigma = malloc((size_t)dim * dim * sizeof *s->sigma);
    if (!s->mu || !s->sigma) {
        fid_stats_free(s);
        return err_set(err, "out of memory for %dx%d statistics", dim, dim);
    }
    return 0;
}

void fid_stats_free(fid_stats *s) {
    free(s->mu), free(s->sigma);
    memset(s, 0, sizeof *s);
}

int fid_stats_save(const char *path, const fid_stats *s, const char *source, edm2_err *err) {
    st_out t[2] = {{"fid/mu", ST_F64, 1, {s->dim}, s->mu}, {"fid/sigma", ST_F64, 2, {s->dim, s->dim}, s->sigma}};
    char count[32], dim[16], src[128];
    snprintf(count, sizeof count, "%zu", s->count);
    snprintf(dim, sizeof dim, "%d", s->dim);
    snprintf(src, sizeof src, "%.120s", source);
    const char *keys[5] = {"edm2.metric", "fid.count", "fid.dim", "fid.weights", "edm2.source"};
    const char *vals[5] = {"fid", count, dim, s->fingerprint, src};
    return st_write(path, t, 2, keys, vals, 5, err);
}

int fid_stats_load(const char *path, int dim, const char *fingerprint, fid_stats *s, edm2_err *err) {
    st_file f;
    if (st_open(&f, path, err)) {
        st_close(&f);
        return -1;
    }
    int rc = 0;
    const char *m = st_meta(&f, "edm2.metric"), *fp = st_meta(&f, "fid.weights"), *cnt = st_meta(&f, "fid.count");
    const st_tensor *mu = st_find(&f, "fid/mu"), *sigma = st_find(&f, "fid/sigma");
    if (!m || strcmp(m, "fid"))
        rc = err_set(err, "%s: not FID reference statistics (edm2.metric = fid)", path);
    else if (!mu || !sigma || mu->ndim != 1 || mu->shape[0] != dim || sigma->ndim != 2 || sigma->shape[0] != dim ||
             sigma->shape[1] != dim)
        rc = err_set(err, "%s: expected tensors fid/mu [%d] and fid/sigma [%d, %d]", path, dim, dim, dim);
    else if (*fingerprint && (!fp || strcmp(fp, fingerprint)))
        rc = err_set(err, "%s: computed with other feature weights (fingerprint %s, these are %s); delete it to recompute",
                     path, fp ? fp : "(none)", fingerprint);
    else if (!fid_stats_alloc(s, dim, err)) {
        st_to_f64(mu, s->mu);
        st_to_f64(sigma, s->sigma);
        s->count = cnt ? strtoull(cnt, NULL, 10) : 0;
        snprintf(s->fingerprint, sizeof s->fingerprint, "%s", fp ? fp : "");
    } else
        rc = -1;
    st_close(&f);
    return rc;
}
