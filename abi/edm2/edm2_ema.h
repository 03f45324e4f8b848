/* edm2_ema.h: the EMA-profile plugin kind (backend-agnostic): tracks one or more exponential moving
 * averages of the parameters during training, and describes its averaging profiles so that post-hoc
 * reconstruction can combine snapshots into any other profile (docs/formulas.md §5).
 *
 * An EMA profile plugin never touches memory directly: it works through the edm2_backend_ops the host
 * gives it, so one build runs on every backend.
 */
#ifndef EDM2_EMA_H
#define EDM2_EMA_H

#include "edm2_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edm2_ema edm2_ema; /* opaque instance */

/* All functions are called by the host only, from one thread at a time per instance, between create and
 * destroy; pointers to backend memory stay owned by whoever allocated them (the host for arenas and
 * batches, the plugin for its own state). */
typedef struct edm2_ema_vtable {
    uint32_t struct_size;
    /* Called by the host once per run; `backend` outlives the instance. */
    edm2_status (*create)(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                          edm2_ema **out);
    void (*destroy)(edm2_ema *ema); /* NULL is a no-op */
    /* How many averages this instance tracks, and the profile parameter of each (e.g. sigma_rel for
     * power EMA, half-life in Mimg for traditional EMA) with a label used in snapshot names
     * (e.g. "0.050"; static for the instance). */
    size_t (*count)(edm2_ema *ema);
    double (*profile_param)(edm2_ema *ema, size_t i);
    const char *(*label)(edm2_ema *ema, size_t i);
    /* Called by the host after each optimizer step: updates average i (arena `avg[i]`, n floats,
     * backend memory) towards `params`. t = images seen after the step, dt = images in the step. */
    edm2_status (*update)(edm2_ema *ema, float *const *avg, const float *params, size_t n, int64_t t,
                          int64_t dt);

    /* ---- For post-hoc reconstruction (pure functions of the profile parameters) ---- */
    /* Weight at training time tau (images) of the profile with parameter p snapshotted at time t
     * (tau in [0, t]); integrates to 1 over [0, t]. */
    double (*weight)(edm2_ema *ema, double p, double t, double tau);
    /* Optional (may be NULL): inner product of two profiles in closed form,
     * integral over tau of weight(pa, ta, tau) * weight(pb, tb, tau). When NULL the host integrates
     * `weight` numerically. */
    double (*inner_product)(edm2_ema *ema, double pa, double ta, double pb, double tb);
    /* The range of valid profile parameters for reconstruction outputs: (lo, hi) exclusive. */
    void (*param_range)(edm2_ema *ema, double *lo, double *hi);
} edm2_ema_vtable;

#ifdef __cplusplus
}
#endif
#endif /* EDM2_EMA_H */
