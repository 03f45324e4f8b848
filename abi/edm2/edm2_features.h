/* edm2_features.h: the feature-network plugin kind (ABI 1.3): a fixed, pre-trained image network whose
 * features a metric compares, e.g. the 2048 pool features of Inception-v3 that the Fréchet Inception
 * Distance uses. Its weights live in one float32 arena described by a table of (name, shape, offset), as a
 * network's (edm2_param_desc); the host fills that arena from the weights file the user names in the
 * plugin's section (key `weights`, which every features plugin declares in its schema) and checks every
 * tensor's name and shape against the table before the plugin sees it.
 *
 * Images are float32 NCHW in backend memory with values in [0, 1] (0 = black, 1 = white), C = 1 (grey,
 * used as all three colours) or C = 3 (RGB), any resolution: resizing to the network's own input size is
 * the plugin's business, done as the metric's standard defines it.
 */
#ifndef EDM2_FEATURES_H
#define EDM2_FEATURES_H

#include "edm2_network.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edm2_features edm2_features; /* opaque instance */

typedef struct edm2_features_info {
    uint32_t struct_size;
    int dim;                       /* features per image, e.g. 2048 */
    int input_resolution;          /* the size images are resized to inside extract (informational) */
    size_t arena_floats;           /* weights arena length in floats, including alignment padding */
    size_t param_count;            /* entries in the table */
    const edm2_param_desc *params; /* the table (names as in the weights file); valid for the instance */
    double gflops_per_image;       /* multiply-adds x2 / 1e9 of one image, for progress output (0 if unknown) */
} edm2_features_info;

/* Called by the host only, from one thread at a time per instance, between create and destroy. */
typedef struct edm2_features_vtable {
    uint32_t struct_size;
    /* `backend` is the instance the plugin allocates its workspace on (of the plugin's backend kind). */
    edm2_status (*create)(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                          edm2_features **out);
    void (*destroy)(edm2_features *f); /* NULL is a no-op */
    /* Fills *info (caller sets info->struct_size). Pointers inside stay valid for the instance. */
    edm2_status (*get_info)(edm2_features *f, edm2_features_info *info);
    /* Called once, after the host filled `params` (the arena, backend memory) from the weights file and
     * before any extract. The plugin derives what it computes with (it may keep its own copy, e.g. with
     * batch normalisation folded into per-channel scales); the host may free the arena afterwards. */
    edm2_status (*prepare)(edm2_features *f, const float *params);
    /* out[N, dim] = the features of images[N, C, H, W] (backend memory, values in [0, 1]). An image's
     * features do not depend on the other images of the call or on the thread count. */
    edm2_status (*extract)(edm2_features *f, const float *images, int N, int C, int H, int W, float *out);
} edm2_features_vtable;

#ifdef __cplusplus
}
#endif
#endif /* EDM2_FEATURES_H */
