/* metric_fid_file.c: Fréchet-distance reference statistics in a .safetensors file (metric_fid.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metric_fid.h"
#include "safetensors.h"

int fid_stats_alloc(fid_stats *s, const char *metric, int dim, edm2_err *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->metric, sizeof s->metric, "%s", metric);
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
    char mu[FD_NAME_MAX + 8], sigma[FD_NAME_MAX + 8], kc[FD_NAME_MAX + 8], kd[FD_NAME_MAX + 8], kw[FD_NAME_MAX + 8];
    snprintf(mu, sizeof mu, "%s/mu", s->metric), snprintf(sigma, sizeof sigma, "%s/sigma", s->metric);
    snprintf(kc, sizeof kc, "%s.count", s->metric), snprintf(kd, sizeof kd, "%s.dim", s->metric);
    snprintf(kw, sizeof kw, "%s.weights", s->metric);
    st_out t[2] = {{mu, ST_F64, 1, {s->dim}, s->mu}, {sigma, ST_F64, 2, {s->dim, s->dim}, s->sigma}};
    char count[32], dim[16], src[128];
    snprintf(count, sizeof count, "%zu", s->count);
    snprintf(dim, sizeof dim, "%d", s->dim);
    snprintf(src, sizeof src, "%.120s", source);
    const char *keys[5] = {"edm2.metric", kc, kd, kw, "edm2.source"};
    const char *vals[5] = {s->metric, count, dim, s->fingerprint, src};
    return st_write(path, t, 2, keys, vals, 5, err);
}

int fid_stats_load(const char *path, const char *metric, int dim, const char *fingerprint, fid_stats *s, edm2_err *err) {
    st_file f;
    if (st_open(&f, path, err)) {
        st_close(&f);
        return -1;
    }
    char name[FD_NAME_MAX + 8];
    int rc = 0;
    const char *m = st_meta(&f, "edm2.metric");
    snprintf(name, sizeof name, "%s.weights", metric);
    const char *fp = st_meta(&f, name);
    snprintf(name, sizeof name, "%s.count", metric);
    const char *cnt = st_meta(&f, name);
    snprintf(name, sizeof name, "%s/mu", metric);
    const st_tensor *mu = st_find(&f, name);
    snprintf(name, sizeof name, "%s/sigma", metric);
    const st_tensor *sigma = st_find(&f, name);
    if (!m || strcmp(m, metric))
        rc = err_set(err, "%s: not %s reference statistics (edm2.metric = %s)%s", path, metric, m ? m : "(none)",
                     m && (!strcmp(m, "fid") || !strncmp(m, "fd_", 3)) ? ": another feature network's; give another file"
                                                                        : "");
    else if (!mu || !sigma || mu->ndim != 1 || mu->shape[0] != dim || sigma->ndim != 2 || sigma->shape[0] != dim ||
             sigma->shape[1] != dim)
        rc = err_set(err, "%s: expected tensors %s/mu [%d] and %s/sigma [%d, %d]", path, metric, dim, metric, dim, dim);
    else if (*fingerprint && (!fp || strcmp(fp, fingerprint)))
        rc = err_set(err, "%s: computed with other feature weights (fingerprint %s, these are %s); delete it to recompute",
                     path, fp ? fp : "(none)", fingerprint);
    else if (!fid_stats_alloc(s, metric, dim, err)) {
        st_to_f64(mu, s->mu);
        st_to_f64(sigma, s->sigma);
        s->count = cnt ? strtoull(cnt, NULL, 10) : 0;
        snprintf(s->fingerprint, sizeof s->fingerprint, "%s", fp ? fp : "");
    } else
        rc = -1;
    st_close(&f);
    return rc;
}
