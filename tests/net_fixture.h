/* net_fixture.h: opens the CPU backend and a CPU plugin of any kind from the build tree for tests, with
 * config values given as "key=value" strings. */
#ifndef EDM2_TEST_NET_FIXTURE_H
#define EDM2_TEST_NET_FIXTURE_H

#include <string.h>

#include "backend_fixture.h"
#include "config.h"
#include "validate.h"

typedef struct fixture {
    plugin_registry reg;
    runtime rt;
} fixture;

static inline int fixture_open(fixture *f) {
    memset(f, 0, sizeof *f);
    char why[512];
    registry_default_dirs(&f->reg, EDM2_BUILD_DIR "/plugins");
    registry_scan(&f->reg);
    if (open_backend(&f->reg, &f->rt, "edm2_backend_cpu.so", "cpu", why, sizeof why)) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    return 0;
}

static inline void fixture_close(fixture *f) {
    runtime_close(&f->rt);
    registry_free(&f->reg);
}

/* Fills a cfg section from "key=value" strings (NULL-terminated) and a view on it for plugin `p`. */
static inline void fixture_config(cfg *c, config_view *v, const char *section, const plugin_rec *p,
                                  const char *const *kv) {
    for (; kv && *kv; kv++) {
        char key[128];
        const char *eq = strchr(*kv, '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - *kv), *kv);
        cfg_put(c, section, key, eq + 1);
    }
    config_view_init(v, c, section, p->desc->keys, p->desc->key_count);
}

static inline const plugin_rec *fixture_plugin(fixture *f, edm2_kind kind, const char *id) {
    return registry_find(&f->reg, kind, id, EDM2_BACKEND_CPU);
}

/* Opens network `id` with the given hyperparameters. */
static inline int fixture_net(fixture *f, net_instance *ni, const char *const *kv) {
    const plugin_rec *p = fixture_plugin(f, EDM2_KIND_NETWORK, "mp_unet");
    if (!p) return -1;
    cfg c = {0};
    config_view v;
    fixture_config(&c, &v, "network", p, kv);
    edm2_err err;
    int rc = net_open(ni, &f->rt, p, &v.api, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    cfg_free(&c);
    return rc;
}

/* Initialises the parameters from `seed` and sets every scalar gain (0 after init) to `gain`, so that
 * every path of the network carries signal. */
static inline void fixture_init_with_gains(net_instance *ni, uint64_t seed, float gain) {
    ni->vt->init_params(ni->net, ni->params, seed);
    for (size_t i = 0; i < ni->info.param_count; i++)
        if (ni->info.params[i].numel == 1 && (ni->info.params[i].flags & EDM2_PARAM_TRAINED))
            ni->params[ni->info.params[i].offset] = gain;
}

#endif
