/* edm2_vae.h: the VAE plugin kind (ABI 1.3): a fixed, pre-trained autoencoder between images and the
 * latents a network trains on (the img512 presets: the Stable Diffusion VAE, 8x downsampling, 4 latent
 * channels). Its weights live in one float32 arena described by a table of (name, shape, offset), as a
 * network's (edm2_param_desc); the host fills the arena from the file the section's `weights` key names
 * (every VAE plugin declares that key), checking each tensor's name and shape, and may accept other
 * layouts of the same weights through the plugin's `alias` function.
 *
 * Images are float32 NCHW in backend memory with values in [0, 1] (the range the EDM2 reference gives its
 * VAE); latents are the VAE's own ("raw") latents: the scaling to the network's data range is the host's
 * (keys of the plugin's section, read by the host: see the plugin's schema).
 */
#ifndef EDM2_VAE_H
#define EDM2_VAE_H

#include "edm2_network.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edm2_vae edm2_vae; /* opaque instance */

typedef struct edm2_vae_info {
    uint32_t struct_size;
    int image_channels;            /* 3 */
    int latent_channels;           /* 4 */
    int downsample;                /* image size / latent size, 8 */
    size_t arena_floats;           /* weights arena length in floats, including alignment padding */
    size_t param_count;            /* entries in the table */
    const edm2_param_desc *params; /* the table (names as in the plugin's main weights layout) */
    const char *layout;            /* the name of that layout, e.g. "diffusers" (for messages) */
} edm2_vae_info;

/* Called by the host only, from one thread at a time per instance, between create and destroy. */
typedef struct edm2_vae_vtable {
    uint32_t struct_size;
    edm2_status (*create)(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                          edm2_vae **out);
    void (*destroy)(edm2_vae *v); /* NULL is a no-op */
    /* Fills *info (caller sets info->struct_size). Pointers inside stay valid for the instance. */
    edm2_status (*get_info)(edm2_vae *v, edm2_vae_info *info);
    /* Optional (may be NULL): the name table entry `index` has in another layout of the same weights
     * (`layout` 1, 2, ...; e.g. the single-file checkpoints' names), written to out[len]; returns 0 when the
     * layout is unknown. A tensor found under an alias may have the table's element count in another
     * shape (e.g. [C, C, 1, 1] for [C, C]). */
    int (*alias)(edm2_vae *v, int layout, size_t index, char *out, size_t len);
    /* Called once after the host filled `params` (backend memory) and before encode/decode; the host may
     * free the arena afterwards. */
    edm2_status (*prepare)(edm2_vae *v, const float *params);
    /* moments[N, 2 * latent_channels, H / d, W / d] = the posterior's mean then standard deviation of
     * images[N, image_channels, H, W] (H, W multiples of d = downsample). */
    edm2_status (*encode)(edm2_vae *v, const float *images, int N, int H, int W, float *moments);
    /* images[N, image_channels, h * d, w * d] (not clamped) of latents[N, latent_channels, h, w]. An
     * image's result does not depend on the others of the call or the thread count. */
    edm2_status (*decode)(edm2_vae *v, const float *latents, int N, int h, int w, float *images);
} edm2_vae_vtable;

#ifdef __cplusplus
}
#endif
#endif /* EDM2_VAE_H */
