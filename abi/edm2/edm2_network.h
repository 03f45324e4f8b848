/* edm2_network.h: the network plugin kind: a denoiser D(x; sigma, labels) with an uncertainty head,
 * whose parameters live in one flat float32 arena described by a table of (name, shape, offset).
 *
 * The host allocates the arenas (parameters, gradients, optimizer moments, EMAs: same layout) on the
 * backend the plugin was built for and passes them to every call; the plugin owns only its workspace
 * (activations saved for backward). Tensors are float32, NCHW, in backend memory.
 */
#ifndef EDM2_NETWORK_H
#define EDM2_NETWORK_H

#include "edm2_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edm2_network edm2_network; /* opaque instance */

#define EDM2_MAX_DIMS 4

/* Parameter flags. */
#define EDM2_PARAM_TRAINED 1u      /* receives gradients and optimizer updates */
#define EDM2_PARAM_WEIGHT_NORMED 2u /* forced weight normalisation applies (MP weights) */

/* One entry of the arena table. Names are the PyTorch reference's state_dict names. */
typedef struct edm2_param_desc {
    const char *name;     /* e.g. "unet.enc.64x64_block0.conv_res0.weight"; valid for the instance */
    uint32_t ndim;        /* 0 for a scalar */
    int64_t shape[EDM2_MAX_DIMS];
    size_t offset;        /* in floats from the arena start; multiple of 64 */
    size_t numel;
    uint32_t flags;       /* EDM2_PARAM_* */
} edm2_param_desc;

typedef struct edm2_network_info {
    uint32_t struct_size;
    int img_resolution, img_channels, label_dim;
    double sigma_data;
    size_t arena_floats;  /* total arena length in floats, including alignment padding */
    size_t param_count;   /* entries in the table */
    const edm2_param_desc *params; /* the table; valid for the instance */
    double gflops_per_image;  /* forward multiply-adds x2 / 1e9, for benchmarks (0 if unknown) */
} edm2_network_info;

/* Arguments of one forward pass. Shapes: N = batch, C = img_channels, H = W = img_resolution. */
typedef struct edm2_forward_args {
    uint32_t struct_size;
    const float *params; /* arena */
    const float *x;      /* [N, C, H, W] noisy images */
    const float *sigma;  /* [N] noise levels (> 0) */
    const float *labels; /* [N, label_dim] one-hot or soft labels; NULL = all zero (unconditional) */
    int N;
    int training;        /* 1: save activations for backward, apply dropout */
    edm2_rng dropout_rng;/* used only when training and dropout > 0. The host's train job gives a pass the
                          * stream (a base + its first image's index in the batch); the shipped networks draw
                          * image i's masks from stream + i, so that they do not depend on how the batch is
                          * split into passes */
    float *D;            /* out [N, C, H, W] denoised images */
    float *logvar;       /* out [N] uncertainty head, or NULL to skip it */
} edm2_forward_args;

/* Called by the host, and get_info/forward/backward also by the loss plugin it hands an edm2_network_ref;
 * one thread at a time per instance, between create and destroy. Arenas and batch tensors are the
 * caller's; the workspace (saved activations) is the plugin's. */
typedef struct edm2_network_vtable {
    uint32_t struct_size;
    /* Called by the host once per network. Hyperparameters come from `cfg`; `backend` is the instance
     * the plugin allocates its workspace on (it must be of the plugin's backend kind). */
    edm2_status (*create)(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                          edm2_network **out);
    void (*destroy)(edm2_network *net); /* NULL is a no-op; frees the workspace */
    /* Fills *info (caller sets info->struct_size). Pointers inside stay valid for the instance. */
    edm2_status (*get_info)(edm2_network *net, edm2_network_info *info);
    /* Writes the initial parameters (and buffers) into `params` (arena, backend memory) from the
     * random stream (seed, stream 0..): same seed, same network, on every backend. */
    edm2_status (*init_params)(edm2_network *net, float *params, uint64_t seed);
    /* Forced weight normalisation of every EDM2_PARAM_WEIGHT_NORMED tensor, in place; the training
     * loop calls it before each training forward. */
    edm2_status (*normalize_weights)(edm2_network *net, float *params);
    /* Forward pass. With training = 1 the activations are kept until the next forward. */
    edm2_status (*forward)(edm2_network *net, const edm2_forward_args *args);
    /* Backward of the last training forward: *accumulates* d(objective)/d(params) into `grads`
     * (arena layout). dD: [N, C, H, W] gradient w.r.t. D; dlogvar: [N] or NULL. */
    edm2_status (*backward)(edm2_network *net, const float *params, const float *dD, const float *dlogvar,
                            float *grads);
    /* Planned (not yet in the ABI): the compute precision of a network (float32, TF32, bfloat16 with
     * float32 master weights) will be a field appended to edm2_forward_args, read only when its
     * struct_size covers it, so that float32-only plugins keep working. */
} edm2_network_vtable;

/* A network instance plus its table, as handed to loss plugins. */
typedef struct edm2_network_ref {
    const edm2_network_vtable *vt;
    edm2_network *net;
} edm2_network_ref;

#ifdef __cplusplus
}
#endif
#endif /* EDM2_NETWORK_H */
