/* backend_fixture.h: loads a backend plugin from the build tree for tests. */
#ifndef EDM2_TEST_BACKEND_FIXTURE_H
#define EDM2_TEST_BACKEND_FIXTURE_H

#include "plugin_loader.h"
#include "runtime.h"

/* Loads BUILD/plugins/<file> and opens backend `id`. Returns 0, or -1 with a reason in why. */
static inline int open_backend(plugin_registry *reg, runtime *rt, const char *file, const char *id, char *why,
                               size_t why_len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/plugins/%s", EDM2_BUILD_DIR, file);
    edm2_err err;
    if (registry_load_file(reg, path, &err)) {
        snprintf(why, why_len, "%.400s", err.msg);
        return -1;
    }
    const plugin_rec *p = NULL;
    for (size_t i = 0; i < reg->nplugins; i++)
        if (reg->plugins[i].desc->kind == EDM2_KIND_BACKEND && !strcmp(reg->plugins[i].desc->id, id)) p = &reg->plugins[i];
    if (!p) {
        snprintf(why, why_len, "no backend %s in %s", id, file);
        return -1;
    }
    if (runtime_open(rt, p, NULL, 2, &err)) {
        snprintf(why, why_len, "%.400s", err.msg);
        return -1;
    }
    return 0;
}

#endif
