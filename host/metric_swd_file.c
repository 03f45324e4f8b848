/* metric_swd_file.c: reference statistics of the sliced Wasserstein distance in a .safetensors file: each
 * pyramid level's normalised descriptors ("swd/levelL" [count, dim]) and the settings they were made with
 * (metadata), so a dataset's reference is computed once and reused, as reference tools do. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metric_swd.h"
#include "safetensors.h"

#define NMETA 8

int swd_set_save(const char *path, const swd_set *s, const swd_params *p, const char *source, edm2_err *err) {
    st_out t[SWD_MAX_LEVELS];
    char names[SWD_MAX_LEVELS][32], v[NMETA][64];
    for (int l = 0; l < s->levels; l++) {
        snprintf(names[l], sizeof names[l], "swd/level%d", l);
        t[l] = (st_out){names[l], ST_F32, 2, {(int64_t)s->count, s->dim}, s->desc[l]};
    }
    const char *keys[NMETA] = {"edm2.metric", "swd.patch", "swd.patches", "swd.min_res", "swd.seed", "swd.channels",
                               "swd.resolution", "edm2.source"};
    snprintf(v[0], sizeof v[0], "swd");
    snprintf(v[1], sizeof v[1], "%d", p->patch);
    snprintf(v[2], sizeof v[2], "%d", p->patches);
    snprintf(v[3], sizeof v[3], "%d", p->min_res);
    snprintf(v[4], sizeof v[4], "%" PRIu64, p->seed);
    snprintf(v[5], sizeof v[5], "%d", s->C);
    snprintf(v[6], sizeof v[6], "%d", s->R);
    snprintf(v[7], sizeof v[7], "%.60s", source);
    const char *vals[NMETA] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    return st_write(path, t, (size_t)s->levels, keys, vals, NMETA, err);
}

int swd_set_load(const char *path, const swd_params *p, int C, int R, swd_set *s, edm2_err *err) {
    if (swd_set_init(s, p, C, R, err)) return -1;
    st_file f;
    if (st_open(&f, path, err)) return -1;
    const char *keys[5] = {"swd.patch", "swd.patches", "swd.min_res", "swd.channels", "swd.resolution"};
    const long want[5] = {p->patch, p->patches, p->min_res, C, R};
    int rc = 0;
    const char *m = st_meta(&f, "edm2.metric");
    if (!m || strcmp(m, "swd")) rc = err_set(err, "%s: not SWD reference statistics (edm2.metric = swd)", path);
    for (int k = 0; !rc && k < 5; k++) {
        const char *v = st_meta(&f, keys[k]);
        if (!v || strtol(v, NULL, 10) != want[k])
            rc = err_set(err, "%s: made with %s = %s, this evaluation uses %ld (delete the file to recompute it)", path,
                         keys[k], v ? v : "(none)", want[k]);
    }
    for (int l = 0; !rc && l < s->levels; l++) {
        char name[32];
        snprintf(name, sizeof name, "swd/level%d", l);
        const st_tensor *t = st_find(&f, name);
        if (!t || t->ndim != 2 || t->shape[1] != s->dim || t->shape[0] < 1 || (l && (size_t)t->shape[0] != s->count)) {
            rc = err_set(err, "%s: missing or misshaped '%s' (expected [count, %d])", path, name, s->dim);
            break;
        }
        s->count = s->cap = (size_t)t->shape[0];
        if (!(s->desc[l] = malloc(t->numel * sizeof(float)))) {
            rc = err_set(err, "out of memory");
            break;
        }
        st_to_f32(t, s->desc[l]);
    }
    st_close(&f);
    if (rc) swd_set_free(s);
    return rc;
}
