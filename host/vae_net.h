/* vae_net.h: the job's VAE (the [vae] plugin, e.g. sd_vae) with its weights loaded from the file its `weights`
 * key names, in the plugin's main layout (diffusers' names) or one of its alias layouts (the single-file
 * checkpoints' names, optionally under "first_stage_model."), and the latent scaling of EDM2: the network
 * sees x = raw * scale + bias per channel, scale = final_std / latent_std, bias = final_mean - latent_mean *
 * scale (float32, as the reference computes them). */
#ifndef EDM2_HOST_VAE_NET_H
#define EDM2_HOST_VAE_NET_H

#include "runtime.h"

#define VAE_MAX_LATENT 64

typedef struct vae_instance {
    const plugin_rec *rec;
    const edm2_vae_vtable *vt;
    edm2_vae *v;
    edm2_vae_info info;
    runtime *rt;
    char weights[1024];
    char layout[64];            /* which names the file used */
    float scale[VAE_MAX_LATENT], bias[VAE_MAX_LATENT];
    float *in, *out;            /* backend buffers */
    size_t in_cap, out_cap;
} vae_instance;

/* Creates the plugin on rt's backend with its section cfg, loads and checks the weights, prepares it and
 * reads the scaling keys. 0, or -1 with a one-line reason naming the file, tensor or key. */
int vae_open(vae_instance *vi, runtime *rt, const plugin_rec *rec, const edm2_config *cfg, edm2_err *err);
void vae_close(vae_instance *vi);
/* The latent scaling of the keys latent_mean, latent_std (L values each), final_mean and final_std of cfg (its
 * section named in messages: [vae], or [data] for the dataset tool's .npy archives); 0 or -1. */
int latent_scaling_read(const edm2_config *cfg, const char *section, int L, float *scale, float *bias, edm2_err *err);
/* scale[L] and bias[L] as metadata text ("s0,s1,..."; `len` bytes each). */
void latent_scaling_format(const float *scale, const float *bias, int L, char *s, char *b, size_t len);
/* The scaling as metadata text ("s0,s1,..."), and back (from a snapshot or data file); 0 or -1. */
void vae_scaling_text(const vae_instance *vi, char *scale, char *bias, size_t len);
int vae_scaling_parse(vae_instance *vi, const char *scale, const char *bias, edm2_err *err);
/* moments[n, 2L, H/d, W/d] (host; mean then std, raw latents) of images[n, 3, H, W] (host, values in [0, 1]). */
int vae_encode_images(vae_instance *vi, const float *images, int n, int H, int W, float *moments, edm2_err *err);
/* images[n, 3, h d, w d] (host, encoded like generated images: 2 v - 1 for decoded values v in [0, 1]) of
 * latents[n, L, h, w] (host, the network's scale). */
int vae_decode_latents(vae_instance *vi, const float *latents, int n, int h, int w, float *images, edm2_err *err);

#endif
