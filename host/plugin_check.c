/* plugin_check.c: creating (and at once destroying) an instance of every plugin a config names, so that a
 * value that passes its type check but cannot work (num_steps = 0, a beta of 1, heads that do not divide
 * the channels) is reported by `edm2host check` and at the start of a job, not hours into it. Nothing
 * arena-sized is allocated: the network builds its table only, and the optimizer is shown a one-parameter
 * network. */
#include <string.h>

#include "log.h"
#include "plugin_check.h"
#include "runtime.h"

/* Puts in front of a plugin's refusal (err: "WHAT: KEY = ..." or "WHAT: KEY: ...", WHAT naming the plugin)
 * where the plugin's section set KEY ("FILE:LINE", "--set SECTION.KEY"), else the config's path. */
static int placed(const run_config *rc, edm2_kind kind, edm2_err *err) {
    const cfg_entry *e = NULL;
    const char *p = err->msg;
    for (int tries = 0; tries < 2 && !e && (p = strstr(p, ": ")); tries++) /* (after WHAT, or WHO after it) */
        e = cfg_about(rc->cfg, kind_name(kind), p += 2);
    edm2_err whole = *err;
    return err_set(err, "%s: %s", e ? cfg_where(e).s : rc->cfg->path, whole.msg);
}

int config_instantiate(const run_config *rc, edm2_network_info *net, edm2_err *err) {
    const plugin_rec *brec = rc->plugin[EDM2_KIND_BACKEND];
    if (!brec) return 0;
    runtime rt;
    config_view v;
    config_view_plugin(&v, rc, EDM2_KIND_BACKEND);
    if (runtime_open(&rt, brec, &v.api, 1, err)) {
        if (rt.b) runtime_close(&rt);
        return placed(rc, EDM2_KIND_BACKEND, err);
    }
    int rc_ = 0;
    edm2_kind failed = EDM2_KIND_BACKEND;
    const plugin_rec *p;
    if ((p = rc->plugin[EDM2_KIND_NETWORK])) {
        net_instance ni;
        config_view_plugin(&v, rc, EDM2_KIND_NETWORK);
        rc_ = net_create(&ni, &rt, p, &v.api, err);
        failed = EDM2_KIND_NETWORK;
        if (!rc_ && net) *net = ni.info, net->params = NULL;
        if (ni.net) net_close(&ni, &rt);
    }
    /* Kinds whose create takes (host, config, backend ops). */
#define TRY_CREATE(kind, vtable_t, instance_t)                                                                      \
    if (!rc_ && (p = rc->plugin[kind])) {                                                                           \
        const vtable_t *vt = p->desc->vtable;                                                                       \
        instance_t *x = NULL;                                                                                       \
        config_view_plugin(&v, rc, kind);                                                                           \
        if (vt->create(&rt.services, &v.api, &rt.ops, &x) != EDM2_OK)                                               \
            rc_ = err_plugin(err, "[%s] %s", kind_name(kind), p->desc->id), failed = kind;                          \
        if (x) vt->destroy(x);                                                                                      \
    }
    TRY_CREATE(EDM2_KIND_LOSS, edm2_loss_vtable, edm2_loss)
    TRY_CREATE(EDM2_KIND_EMA, edm2_ema_vtable, edm2_ema)
    TRY_CREATE(EDM2_KIND_SAMPLER, edm2_sampler_vtable, edm2_sampler)
    TRY_CREATE(EDM2_KIND_FEATURES, edm2_features_vtable, edm2_features)
    TRY_CREATE(EDM2_KIND_VAE, edm2_vae_vtable, edm2_vae)
#undef TRY_CREATE
    if (!rc_ && (p = rc->plugin[EDM2_KIND_OPTIMIZER])) {
        const edm2_optimizer_vtable *vt = p->desc->vtable;
        edm2_param_desc one = {"x", 1, {1}, 0, 1, EDM2_PARAM_TRAINED};
        edm2_network_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        info.img_resolution = info.img_channels = 1;
        info.sigma_data = 0.5;
        info.arena_floats = info.param_count = 1;
        info.params = &one;
        edm2_optimizer *x = NULL;
        config_view_plugin(&v, rc, EDM2_KIND_OPTIMIZER);
        if (vt->create(&rt.services, &v.api, &rt.ops, &info, &x) != EDM2_OK)
            rc_ = err_plugin(err, "[%s] %s", kind_name(EDM2_KIND_OPTIMIZER), p->desc->id), failed = EDM2_KIND_OPTIMIZER;
        if (x) vt->destroy(x);
    }
    runtime_close(&rt);
    return rc_ ? placed(rc, failed, err) : 0;
}
