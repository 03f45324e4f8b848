/* pretrained.c: the weights of fixed, pre-trained networks (pretrained.h). */
#include "pretrained.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "safetensors.h"

static const char *const k_prefix[] = {"", "first_stage_model.", "vae."};
#define MAX_LAYOUTS 8

/* Name of table entry i in `layout` (0: the table's own) under `prefix`; 0 when there is no such layout. */
static int entry_name(const pretrained_table *t, int layout, const char *prefix, size_t i, char *out, size_t len) {
    char base[512];
    if (layout == 0) snprintf(base, sizeof base, "%s", t->params[i].name);
    else if (!t->alias || !t->alias(t->ctx, layout, i, base, sizeof base)) return 0;
    snprintf(out, len, "%s%s", prefix, base);
    return 1;
}

/* 1 when every entry is in the file under this layout and prefix. */
static int complete(const pretrained_table *t, const st_file *f, int layout, const char *prefix) {
    char name[640];
    for (size_t i = 0; i < t->count; i++)
        if (!entry_name(t, layout, prefix, i, name, sizeof name) || !st_find(f, name)) return 0;
    return 1;
}

int pretrained_load(const pretrained_table *t, const char *path, float **host, char *layout, size_t len,
                    edm2_err *err) {
    *host = NULL;
    st_file f;
    if (st_open(&f, path, err)) {
        st_close(&f);
        return -1;
    }
    int found_layout = -1, rc = 0;
    size_t found_prefix = 0;
    for (int l = 0; l < MAX_LAYOUTS && found_layout < 0; l++)
        for (size_t p = 0; p < sizeof k_prefix / sizeof *k_prefix && found_layout < 0; p++)
            if (complete(t, &f, l, k_prefix[p])) found_layout = l, found_prefix = p;
    const char *made_for = st_meta(&f, "edm2.features"); /* (what the converters write) */
    if (found_layout < 0 && made_for && strcmp(made_for, t->who)) {
        rc = err_set(err, "%s: the weights of the features plugin %s (its edm2.features), not of %s%s", path, made_for,
                     t->who, t->hint);
    } else if (found_layout < 0) {
        for (size_t i = 0; i < t->count; i++) /* name the first entry missing under the table's own names */
            if (!st_find(&f, t->params[i].name)) {
                rc = err_set(err, "%s: missing tensor '%s': not the weights of %s%s", path, t->params[i].name, t->who,
                             t->hint);
                break;
            }
        if (!rc) rc = err_set(err, "%s: not the weights of %s%s", path, t->who, t->hint);
    } else if (!(*host = calloc(t->arena_floats + 1, sizeof **host)))
        rc = err_set(err, "out of memory for the weights of %s", t->who);
    for (size_t i = 0; !rc && i < t->count; i++) {
        const edm2_param_desc *d = &t->params[i];
        char name[640];
        entry_name(t, found_layout, k_prefix[found_prefix], i, name, sizeof name);
        const st_tensor *s = st_find(&f, name);
        if (s->numel != d->numel || (found_layout == 0 && !arena_shape_matches(d, s))) {
            char want[128], got[128];
            arena_shape_str(want, sizeof want, (int)d->ndim, d->shape);
            arena_shape_str(got, sizeof got, s->ndim, s->shape);
            rc = err_set(err, "%s: tensor '%s' has shape %s, %s expects %s%s", path, name, got, t->who, want, t->hint);
        } else
            rc = arena_fill_one(d, s, path, *host, err);
    }
    if (!rc) {
        if (found_layout) snprintf(layout, len, "the plugin's alias names %d", found_layout);
        else snprintf(layout, len, "%s names", t->names ? t->names : "its own");
        if (*k_prefix[found_prefix])
            snprintf(layout + strlen(layout), len - strlen(layout), " under %s", k_prefix[found_prefix]);
    }
    st_close(&f);
    if (rc) free(*host), *host = NULL;
    return rc;
}

int pretrained_upload(runtime *rt, float **host, size_t floats, float **arena, edm2_err *err) {
    int rc = !(*arena = rt_alloc(rt, floats, err)) || rt_upload(rt, *arena, *host, floats, err) ? -1 : 0;
    free(*host);
    *host = NULL;
    return rc;
}
