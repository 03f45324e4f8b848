/* edm2_optimizer.h: the optimizer plugin kind: updates the parameter arena from the gradient arena,
 * including its own learning-rate schedule. Built once per backend.
 */
#ifndef EDM2_OPTIMIZER_H
#define EDM2_OPTIMIZER_H

#include "edm2_network.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edm2_optimizer edm2_optimizer; /* opaque instance */

/* A named state buffer of the optimizer (e.g. Adam's "exp_avg"), for checkpoints. */
typedef struct edm2_state_buffer {
    const char *name; /* static */
    float *data;      /* backend memory, `numel` floats, owned by the optimizer */
    size_t numel;
} edm2_state_buffer;

/* All functions are called by the host only, from one thread at a time per instance, between create and
 * destroy; pointers to backend memory stay owned by whoever allocated them (the host for arenas and
 * batches, the plugin for its own state). */
typedef struct edm2_optimizer_vtable {
    uint32_t struct_size;
    /* Called by the host once per run. n_params = arena length in floats; `params` is the table
     * (the optimizer may skip entries without EDM2_PARAM_TRAINED). */
    edm2_status (*create)(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                          const edm2_network_info *net, edm2_optimizer **out);
    void (*destroy)(edm2_optimizer *opt); /* NULL is a no-op */
    /* The learning rate of the step that starts after `nimg` images with the given batch size. */
    double (*learning_rate)(edm2_optimizer *opt, int64_t nimg, int64_t batch);
    /* One step: replaces non-finite gradients by 0, then updates `params` in place from `grads`
     * (both arenas, backend memory). `nimg` = images seen before the step. Writes the lr used. */
    edm2_status (*step)(edm2_optimizer *opt, float *params, float *grads, int64_t nimg, int64_t batch,
                        double *lr_used);
    /* State for checkpoints: buffer i (0 <= i < count), and the step counter. The host reads and
     * writes the buffers' contents; the optimizer keeps owning them. */
    size_t (*state_count)(edm2_optimizer *opt);
    edm2_status (*state_buffer)(edm2_optimizer *opt, size_t i, edm2_state_buffer *out);
    int64_t (*get_step)(edm2_optimizer *opt);
    void (*set_step)(edm2_optimizer *opt, int64_t step);
    /* ---- ABI 1.3 (optional, read only when struct_size covers it) ---- */
    /* How many gradient entries the last step replaced by 0 because they were not finite (the host reports
     * them per status interval). */
    size_t (*nonfinite)(edm2_optimizer *opt);
} edm2_optimizer_vtable;

#ifdef __cplusplus
}
#endif
#endif /* EDM2_OPTIMIZER_H */
