/* arena.c: arena <-> safetensors by name, with shape checks. */
#include "arena.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int arena_shape_matches(const edm2_param_desc *d, const st_tensor *t) {
    if (t->numel != d->numel) return 0;
    if ((int)d->ndim == t->ndim) {
        for (int i = 0; i < t->ndim; i++)
            if (t->shape[i] != d->shape[i]) return 0;
        return 1;
    }
    return d->numel == 1 && t->ndim <= 1 && d->ndim <= 1; /* scalar stored as [] or [1] */
}

void arena_shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && n < len; i++) n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

int arena_check(const edm2_network_info *info, const st_file *f, const char *prefix, edm2_err *err) {
    char name[512];
    for (size_t i = 0; i < info->param_count; i++) {
        const edm2_param_desc *d = &info->params[i];
        snprintf(name, sizeof name, "%s%s", prefix, d->name);
        const st_tensor *t = st_find(f, name);
        if (!t)
            return err_set(err, "%s: missing tensor '%s' (the network its metadata describe has it)", f->path, name);
        if (!arena_shape_matches(d, t)) {
            char want[128], got[128];
            arena_shape_str(want, sizeof want, (int)d->ndim, d->shape);
            arena_shape_str(got, sizeof got, t->ndim, t->shape);
            return err_set(err, "%s: tensor '%s' has shape %s, the network expects %s", f->path, name, got, want);
        }
    }
    /* Every tensor under the prefix must be used. */
    size_t plen = strlen(prefix);
    for (size_t j = 0; j < f->n; j++) {
        if (strncmp(f->t[j].name, prefix, plen) != 0) continue;
        int known = 0;
        for (size_t i = 0; i < info->param_count && !known; i++) known = strcmp(f->t[j].name + plen, info->params[i].name) == 0;
        if (!known)
            return err_set(err, "%s: unexpected tensor '%s': not a parameter of the network its metadata describe",
                           f->path, f->t[j].name);
    }
    return 0;
}

int arena_fill_one(const edm2_param_desc *d, const st_tensor *t, const char *path, float *arena, edm2_err *err) {
    float *dst = arena + d->offset;
    st_to_f32(t, dst);
    for (size_t k = 0; k < d->numel; k++)
        if (!isfinite(dst[k])) return err_set(err, "%s: tensor '%s' holds %g at index %zu", path, t->name, dst[k], k);
    return 0;
}

int arena_fill(const edm2_network_info *info, const st_file *f, const char *prefix, float *arena, edm2_err *err) {
    char name[512];
    for (size_t i = 0; i < info->param_count; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, info->params[i].name);
        if (arena_fill_one(&info->params[i], st_find(f, name), f->path, arena, err)) return -1;
    }
    return 0;
}

int arena_outputs(const edm2_network_info *info, const float *arena, const char *prefix, uint32_t flags_any,
                  st_dtype dtype, st_out **outs, char ***names, size_t *n) {
    *outs = calloc(info->param_count + 1, sizeof **outs);
    *names = calloc(info->param_count + 1, sizeof **names);
    *n = 0;
    if (!*outs || !*names) return -1;
    for (size_t i = 0; i < info->param_count; i++) {
        const edm2_param_desc *d = &info->params[i];
        if (flags_any && !(d->flags & flags_any)) continue;
        size_t len = strlen(prefix) + strlen(d->name) + 1;
        char *nm = malloc(len);
        if (!nm) return -1;
        snprintf(nm, len, "%s%s", prefix, d->name);
        st_out *o = &(*outs)[*n];
        (*names)[*n] = nm;
        o->name = nm;
        o->dtype = dtype;
        o->ndim = (int)d->ndim;
        for (uint32_t k = 0; k < d->ndim; k++) o->shape[k] = d->shape[k];
        o->data = arena + d->offset;
        (*n)++;
    }
    return 0;
}

void arena_outputs_free(st_out *outs, char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(outs);
}

int arena_load(const edm2_network_info *info, const st_file *f, const char *prefix, float *arena, edm2_err *err) {
    return arena_check(info, f, prefix, err) || arena_fill(info, f, prefix, arena, err) ? -1 : 0;
}
