/* backend_auto.c: `[backend] plugin = auto` resolved to cuda or cpu (see backend_auto.h). */
#include "backend_auto.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "schema.h"

/* Whether the CUDA backend can run this config: its plugin is on the search path, its probe finds a device,
 * and every other plugin section names a plugin with a CUDA (or any-backend) build. Else why not, in why. */
static int cuda_fits(const cfg *c, const plugin_registry *r, char *why, size_t len) {
    const plugin_rec *b = registry_find(r, EDM2_KIND_BACKEND, "cuda", EDM2_BACKEND_CUDA);
    if (!b) {
        snprintf(why, len, "no CUDA backend plugin on the plugin path");
        return 0;
    }
    char probe[256] = "";
    if (b->desc->probe && b->desc->probe(probe, sizeof probe) != EDM2_OK) {
        snprintf(why, len, "cuda: %s", probe);
        return 0;
    }
    for (int k = 0; k < EDM2_KIND_COUNT_; k++) {
        const char *id = cfg_value(c, kind_name((edm2_kind)k), "plugin", NULL);
        if (k == EDM2_KIND_BACKEND || !id || registry_find(r, (edm2_kind)k, id, EDM2_BACKEND_CUDA)) continue;
        if (!registry_find(r, (edm2_kind)k, id, EDM2_BACKEND_CPU)) continue; /* (validation names it) */
        snprintf(why, len, "[%s] plugin '%s' has no CUDA build", kind_name((edm2_kind)k), id);
        return 0;
    }
    snprintf(why, len, "a CUDA device is present");
    return 1;
}

int backend_resolve_auto(cfg *c, const plugin_registry *r, char *note, size_t len, edm2_err *err) {
    const cfg_entry *e = cfg_get(c, "backend", "plugin");
    note[0] = 0;
    if (!e || strcmp(e->value, "auto")) return 0; /* a backend named (no [backend]: cpu, validate.c) */
    char why[400];
    const char *id = cuda_fits(c, r, why, sizeof why) ? "cuda" : "cpu";
    snprintf(note, len, "chosen by plugin = auto: %s", why);
    LOG_DEBUG("backend %s, %s (%s)", id, note, cfg_where(e).s);
    /* A key of the backend not chosen (the cuda backend's device) cannot apply: said here, with why. (Other
     * unknown keys are validation's, with its suggestions.) */
    const int cuda = !strcmp(id, "cuda");
    const plugin_rec *chosen = registry_find(r, EDM2_KIND_BACKEND, id, cuda ? EDM2_BACKEND_CUDA : EDM2_BACKEND_CPU);
    const plugin_rec *other = registry_find(r, EDM2_KIND_BACKEND, cuda ? "cpu" : "cuda",
                                            cuda ? EDM2_BACKEND_CPU : EDM2_BACKEND_CUDA);
    for (size_t i = 0; chosen && other && i < c->n; i++) {
        const cfg_entry *k = &c->v[i];
        if (strcmp(k->section, "backend") || !strcmp(k->key, "plugin") ||
            schema_find(chosen->desc->keys, chosen->desc->key_count, k->key) ||
            !schema_find(other->desc->keys, other->desc->key_count, k->key))
            continue;
        return err_set(err, "%s: [backend] %s is not a key of the %s backend, which plugin = auto chose here (%s): "
                            "name the backend (plugin = cuda or cpu) or drop the key",
                       cfg_where(k).s, k->key, id, why);
    }
    if (cfg_replace_value(c, "backend", "plugin", id)) return err_set(err, "out of memory");
    return 0;
}
