/* vtable_check.c: per kind, the size of the ABI 1.0 function table and its required functions. */
#include "vtable_check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "plugin_loader.h"

typedef struct fn_slot {
    size_t offset;
    const char *name;
} fn_slot;

#define F(T, f) {offsetof(T, f), #f}

static const fn_slot k_backend[] = {
    F(edm2_backend_vtable, create),   F(edm2_backend_vtable, destroy),     F(edm2_backend_vtable, device_name),
    F(edm2_backend_vtable, alloc),    F(edm2_backend_vtable, free),        F(edm2_backend_vtable, upload),
    F(edm2_backend_vtable, download), F(edm2_backend_vtable, copy),        F(edm2_backend_vtable, synchronize),
    F(edm2_backend_vtable, memory_stats), F(edm2_backend_vtable, fill),    F(edm2_backend_vtable, scale),
    F(edm2_backend_vtable, axpby),    F(edm2_backend_vtable, lerp),        F(edm2_backend_vtable, sum),
    F(edm2_backend_vtable, dot),      F(edm2_backend_vtable, norm2),       F(edm2_backend_vtable, nan_to_zero),
    F(edm2_backend_vtable, randn),    F(edm2_backend_vtable, rand)};
static const fn_slot k_network[] = {
    F(edm2_network_vtable, create),      F(edm2_network_vtable, destroy),           F(edm2_network_vtable, get_info),
    F(edm2_network_vtable, init_params), F(edm2_network_vtable, normalize_weights), F(edm2_network_vtable, forward),
    F(edm2_network_vtable, backward)};
static const fn_slot k_loss[] = {F(edm2_loss_vtable, create), F(edm2_loss_vtable, destroy),
                                 F(edm2_loss_vtable, compute)};
static const fn_slot k_optimizer[] = {
    F(edm2_optimizer_vtable, create),      F(edm2_optimizer_vtable, destroy),      F(edm2_optimizer_vtable, learning_rate),
    F(edm2_optimizer_vtable, step),        F(edm2_optimizer_vtable, state_count),  F(edm2_optimizer_vtable, state_buffer),
    F(edm2_optimizer_vtable, get_step),    F(edm2_optimizer_vtable, set_step)};
/* inner_product is optional (the host integrates weight functions numerically without it). */
static const fn_slot k_ema[] = {F(edm2_ema_vtable, create),        F(edm2_ema_vtable, destroy),
                                F(edm2_ema_vtable, count),         F(edm2_ema_vtable, profile_param),
                                F(edm2_ema_vtable, label),         F(edm2_ema_vtable, update),
                                F(edm2_ema_vtable, weight),        F(edm2_ema_vtable, param_range)};
static const fn_slot k_sampler[] = {F(edm2_sampler_vtable, create), F(edm2_sampler_vtable, destroy),
                                    F(edm2_sampler_vtable, num_evals), F(edm2_sampler_vtable, sample)};
static const fn_slot k_features[] = {F(edm2_features_vtable, create), F(edm2_features_vtable, destroy),
                                     F(edm2_features_vtable, get_info), F(edm2_features_vtable, prepare),
                                     F(edm2_features_vtable, extract)};
static const fn_slot k_vae[] = {F(edm2_vae_vtable, create),  F(edm2_vae_vtable, destroy), F(edm2_vae_vtable, get_info),
                                F(edm2_vae_vtable, prepare), F(edm2_vae_vtable, encode),  F(edm2_vae_vtable, decode)};

#define KIND(table, size) {table, sizeof table / sizeof *table, size}
static const struct {
    const fn_slot *fns;
    size_t n, size_1_0; /* required functions; the size of the kind's ABI 1.0 table */
} k_kinds[EDM2_KIND_COUNT_] = {
    [EDM2_KIND_BACKEND] = KIND(k_backend, offsetof(edm2_backend_vtable, native)),
    [EDM2_KIND_NETWORK] = KIND(k_network, sizeof(edm2_network_vtable)),
    [EDM2_KIND_LOSS] = KIND(k_loss, sizeof(edm2_loss_vtable)),
    [EDM2_KIND_OPTIMIZER] = KIND(k_optimizer, sizeof(edm2_optimizer_vtable)),
    [EDM2_KIND_EMA] = KIND(k_ema, sizeof(edm2_ema_vtable)),
    [EDM2_KIND_SAMPLER] = KIND(k_sampler, sizeof(edm2_sampler_vtable)),
    [EDM2_KIND_FEATURES] = KIND(k_features, sizeof(edm2_features_vtable)), /* its first table is ABI 1.3's */
    [EDM2_KIND_VAE] = KIND(k_vae, sizeof(edm2_vae_vtable)),                /* also ABI 1.3's */
};

int vtable_has(const void *vtable, size_t end) {
    uint32_t size;
    memcpy(&size, vtable, sizeof size);
    return size >= end;
}

const char *vtable_problem(const edm2_plugin_desc *d, char *buf, size_t len) {
    const unsigned k = (unsigned)d->kind;
    uint32_t size;
    memcpy(&size, d->vtable, sizeof size);
    if (size < k_kinds[k].size_1_0) {
        snprintf(buf, len, "its %s function table has %u bytes, ABI 1.0's has %zu", kind_name(d->kind), size,
                 k_kinds[k].size_1_0);
        return buf;
    }
    for (size_t i = 0; i < k_kinds[k].n; i++) {
        void (*fn)(void);
        memcpy(&fn, (const char *)d->vtable + k_kinds[k].fns[i].offset, sizeof fn);
        if (!fn) {
            snprintf(buf, len, "its %s function table lacks the required '%s'", kind_name(d->kind), k_kinds[k].fns[i].name);
            return buf;
        }
    }
    return NULL;
}
