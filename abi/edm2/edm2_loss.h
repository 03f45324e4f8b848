/* edm2_loss.h: the loss plugin kind: draws noise levels and noise, runs the network forward and
 * backward, and returns the training objective with its gradients accumulated into the grad arena.
 * Built once per backend (it works on backend memory directly).
 */
#ifndef EDM2_LOSS_H
#define EDM2_LOSS_H

#include "edm2_network.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edm2_loss edm2_loss; /* opaque instance */

/* One (micro-)batch. All tensor pointers are backend memory. */
typedef struct edm2_loss_batch {
    uint32_t struct_size;
    const float *y;      /* [N, C, H, W] clean images */
    const float *labels; /* [N, label_dim] or NULL (unconditional) */
    int N;
    /* The objective is sum(loss) * loss_scaling / batch_total, so that micro-batches of one
     * optimizer step add up to the full batch's objective. batch_total >= N. */
    int batch_total;
    /* Noise: when `sigma` and `noise` are NULL the plugin draws n ~ N(0,1) [N] and epsilon ~ N(0,1)
     * [N*C*H*W] from `rng`, so a batch's noise depends only on rng. The host's train job gives a pass of
     * gradient accumulation the offset (images seen + its first image's index) * (C*H*W + 1); the shipped
     * plugins draw image i's n at offset i * (C*H*W + 1) and its epsilon from the C*H*W offsets after it, so
     * that an image's noise does not depend on how the batch is split into passes.
     * Given (both non-NULL) they are used as is: sigma [N], noise = epsilon [N, C, H, W]. */
    const float *sigma;
    const float *noise;
    edm2_rng rng;
    edm2_rng dropout_rng;
    float *loss_out;     /* optional out [N, C, H, W]: the per-element loss (before scaling) */
} edm2_loss_batch;

/* All functions are called by the host only, from one thread at a time per instance, between create and
 * destroy; pointers to backend memory stay owned by whoever allocated them (the host for arenas and
 * batches, the plugin for its own state). */
typedef struct edm2_loss_vtable {
    uint32_t struct_size;
    /* Called by the host once per run; `backend` outlives the instance. */
    edm2_status (*create)(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                          edm2_loss **out);
    void (*destroy)(edm2_loss *loss); /* NULL is a no-op */
    /* Training forward + backward on one batch: runs net.forward(training=1) then net.backward,
     * accumulating into `grads` (arena). Writes the batch's objective contribution to *objective
     * (host memory). The caller applies forced weight normalisation before, if it wants it. */
    edm2_status (*compute)(edm2_loss *loss, edm2_network_ref net, const float *params, float *grads,
                           const edm2_loss_batch *batch, double *objective);
} edm2_loss_vtable;

#ifdef __cplusplus
}
#endif
#endif /* EDM2_LOSS_H */
