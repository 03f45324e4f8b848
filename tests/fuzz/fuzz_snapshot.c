/* fuzz_snapshot.c: a snapshot as `generate` and `phema` open it: safetensors bytes whose metadata name a
 * network plugin and its hyperparameters (as edm2 or other tools write them); the network is built from
 * the metadata and the file checked against its table (every tensor used, every parameter present with
 * its shape) before any arena is allocated; then loaded. Absurd metadata must fail before anything is
 * sized by it. */
#include "arena.h"
#include "fuzz_util.h"
#include "metadata.h"
#include "runtime.h"
#include "safetensors.h"
#include "snapshot.h"
#include "validate.h"

static runtime g_rt;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_dir();
    const plugin_rec *b = registry_find(fuzz_registry(), EDM2_KIND_BACKEND, "cpu", EDM2_BACKEND_CPU);
    edm2_err err;
    if (!b || runtime_open(&g_rt, b, NULL, 1, &err)) {
        fprintf(stderr, "fuzz_snapshot: no CPU backend in %s\n", EDM2_FUZZ_PLUGIN_DIR);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    edm2_err err;
    net_instance ni;
    memset(&ni, 0, sizeof ni);
    cfg c = {0};
    int rc = st_parse(&f, "fuzz.safetensors", data, size, &err), parsed = !rc;
    const plugin_rec *p = rc ? NULL : registry_find(fuzz_registry(), EDM2_KIND_NETWORK, "mp_unet", EDM2_BACKEND_CPU);
    if (!rc) rc = meta_section(&f, p->desc, NULL, &c, "network", &err);
    if (!rc) {
        config_view v;
        config_view_init(&v, &c, "network", p->desc->keys, p->desc->key_count);
        rc = net_create(&ni, &g_rt, p, &v.api, &err);
    }
    if (!rc) rc = arena_check(&ni.info, &f, "", &err);
    if (!rc) {
        /* The file holds every parameter, so the arena is no larger than the file's data. */
        if (ni.info.arena_floats > size + 64 * ni.info.param_count) abort();
        float *host = malloc((ni.info.arena_floats + 1) * sizeof(float));
        rc = arena_load(&ni.info, &f, "", host, &err);
        free(host);
    }
    if (rc) fuzz_one_line(&err);
    int64_t nimg;
    if (parsed && snapshot_nimg(&f, &nimg, &err)) fuzz_one_line(&err);
    if (ni.net) net_close(&ni, &g_rt);
    cfg_free(&c);
    st_close(&f);
    return 0;
}
