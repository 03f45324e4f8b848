/* st_rewrite.h: copies a safetensors file with changes, for tests that damage snapshots and checkpoints:
 * metadata values replaced, added or removed, tensors dropped, one value of a tensor overwritten. */
#ifndef EDM2_TEST_ST_REWRITE_H
#define EDM2_TEST_ST_REWRITE_H

#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

typedef struct st_change {
    const char *meta_key;   /* set meta_key = meta_value (NULL value: remove the key) */
    const char *meta_value;
    const char *drop;       /* remove this tensor */
    const char *poke;       /* set element 0 of this tensor to poke_value */
    float poke_value;
} st_change;

/* Returns 0, or -1 (the reason on stderr). */
static inline int st_rewrite(const char *src, const char *dst, const st_change *ch, size_t nch) {
    st_file f;
    edm2_err err;
    if (st_open(&f, src, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        st_close(&f);
        return -1;
    }
    st_out *outs = calloc(f.n + 1, sizeof *outs);
    float **data = calloc(f.n + 1, sizeof *data);
    const char **keys = calloc(f.nmeta + nch + 1, sizeof *keys), **vals = calloc(f.nmeta + nch + 1, sizeof *vals);
    size_t no = 0, nm = 0;
    for (size_t i = 0; i < f.n; i++) {
        int dropped = 0;
        for (size_t c = 0; c < nch; c++) dropped |= ch[c].drop && !strcmp(ch[c].drop, f.t[i].name);
        if (dropped) continue;
        data[no] = malloc(f.t[i].numel * sizeof(float) + 4);
        st_to_f32(&f.t[i], data[no]);
        for (size_t c = 0; c < nch; c++)
            if (ch[c].poke && !strcmp(ch[c].poke, f.t[i].name)) data[no][0] = ch[c].poke_value;
        outs[no] = (st_out){f.t[i].name, ST_F32, f.t[i].ndim, {0}, data[no]};
        memcpy(outs[no].shape, f.t[i].shape, sizeof f.t[i].shape);
        no++;
    }
    for (size_t i = 0; i < f.nmeta; i++) {
        int changed = 0;
        for (size_t c = 0; c < nch; c++) changed |= ch[c].meta_key && !strcmp(ch[c].meta_key, f.meta_keys[i]);
        if (!changed) keys[nm] = f.meta_keys[i], vals[nm++] = f.meta_vals[i];
    }
    for (size_t c = 0; c < nch; c++)
        if (ch[c].meta_key && ch[c].meta_value) keys[nm] = ch[c].meta_key, vals[nm++] = ch[c].meta_value;
    int rc = st_write(dst, outs, no, keys, vals, nm, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    for (size_t i = 0; i < no; i++) free(data[i]);
    free(outs), free(data), free(keys), free(vals);
    st_close(&f);
    return rc;
}

#endif
