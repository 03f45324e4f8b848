/* backend_auto.c: `[backend] plugin = auto` resolved to cuda or cpu (see backend_auto.h). */
#include "backend_auto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "log.h"
#include "schema.h"

/* Whether the CUDA backend can run this config (or, c NULL, run here): its plugin is on the search path, its
 * probe finds a device, and every other plugin section names a plugin with a CUDA (or any-backend) build.
 * Else why not, in why. */
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
    for (int k = 0; c && k < EDM2_KIND_COUNT_; k++) {
        const char *id = cfg_value(c, kind_name((edm2_kind)k), "plugin", NULL);
        if (k == EDM2_KIND_BACKEND || !id || registry_find(r, (edm2_kind)k, id, EDM2_BACKEND_CUDA)) continue;
        if (!registry_find(r, (edm2_kind)k, id, EDM2_BACKEND_CPU)) continue; /* (validation names it) */
        snprintf(why, len, "[%s] plugin '%s' has no CUDA build", kind_name((edm2_kind)k), id);
        return 0;
    }
    snprintf(why, len, "a CUDA device is present");
    return 1;
}

const char *backend_auto_choice(const plugin_registry *r, char *why, size_t len) {
    return cuda_fits(NULL, r, why, len) ? "cuda" : "cpu";
}

/* With several processes (mpirun): every one chose the same backend, or the run would mix NCCL's all-reduce
 * with the host's; else an error naming a process of each. 0 or -1. */
static int same_everywhere(int cuda, const char *why, edm2_err *err) {
    const int world = comm_world();
    if (world <= 1) return 0;
    char *all = malloc((size_t)world);
    if (!all) return err_set(err, "out of memory");
    const char mine = (char)cuda;
    int rc = comm_allgather(&mine, all, 1, err), other = -1;
    for (int p = 0; !rc && p < world && other < 0; p++)
        if (all[p] != mine) other = p;
    free(all);
    if (rc || other < 0) return rc ? -1 : 0;
    return err_set(err, "[backend] plugin = auto chose %s on process %d (%s) but %s on process %d: name the backend "
                        "(plugin = cuda or cpu)",
                   cuda ? "cuda" : "cpu", comm_rank(), why, cuda ? "cpu" : "cuda", other);
}

int backend_resolve_auto(cfg *c, const plugin_registry *r, char *note, size_t len, edm2_err *err) {
    const cfg_entry *e = cfg_get(c, "backend", "plugin");
    note[0] = 0;
    if (!e || strcmp(e->value, "auto")) return 0; /* a backend named (no [backend]: cpu, validate.c) */
    char why[400];
    const int cuda = cuda_fits(c, r, why, sizeof why);
    const char *id = cuda ? "cuda" : "cpu";
    if (same_everywhere(cuda, why, err)) return -1;
    snprintf(note, len, "chosen by plugin = auto: %s", why);
    LOG_DEBUG("backend %s, %s (%s)", id, note, cfg_where(e).s);
    /* A key of the backend not chosen (the cuda backend's device) cannot apply: said here, with why. (Other
     * unknown keys are validation's, with its suggestions.) */
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
