/* vae_config.h: the config keys of the sd_vae plugin (CPU and CUDA builds) and their checks. The host reads
 * `weights` (the file it fills the arena from) and the latent scaling keys; the plugin the architecture. */
#ifndef EDM2_VAE_CONFIG_H
#define EDM2_VAE_CONFIG_H

#include "edm2/edm2.h"
#include "vae_graph.h"

#define VAE_KEYS                                                                                                 \
    {"weights", EDM2_CFG_STRING, NULL,                                                                          \
     "the VAE's weights (.safetensors, diffusers' AutoencoderKL names or the single-file checkpoints' names)"},\
    {"block_out_channels", EDM2_CFG_INT_LIST, "128,256,512,512", "channels per level (the SD VAE's)"},         \
    {"layers_per_block", EDM2_CFG_INT, "2", "ResNet blocks per encoder level (decoder: one more)"},            \
    {"norm_num_groups", EDM2_CFG_INT, "32", "GroupNorm groups"},                                                \
    {"latent_channels", EDM2_CFG_INT, "4", "latent channels"},                                                  \
    {"latent_mean", EDM2_CFG_FLOAT_LIST, "5.81,3.25,0.12,-2.15",                                                \
     "assumed per-channel mean of the raw latents (EDM2's values for stabilityai/sd-vae-ft-mse)"},             \
    {"latent_std", EDM2_CFG_FLOAT_LIST, "4.17,4.62,3.71,3.28", "assumed per-channel std of the raw latents"},  \
    {"final_mean", EDM2_CFG_FLOAT, "0", "mean of the latents the network sees"},                                 \
    {"final_std", EDM2_CFG_FLOAT, "0.5", "standard deviation of the latents the network sees"}

/* Reads and checks the architecture keys. EDM2_OK, or an error logged with the key named. */
static inline edm2_status vae_parse_hparams(const edm2_host *host, const edm2_config *cfg, const char *id,
                                            vae_hparams *hp) {
    double ch[VAE_MAX_LEVELS + 1];
    const int n = edm2_cfg_floats(cfg, "block_out_channels", ch, VAE_MAX_LEVELS + 1);
    hp->layers = (int)edm2_cfg_int(cfg, "layers_per_block", 2);
    hp->groups = (int)edm2_cfg_int(cfg, "norm_num_groups", 32);
    hp->latent = (int)edm2_cfg_int(cfg, "latent_channels", 4);
    if (n < 1 || n > VAE_MAX_LEVELS)
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "[vae] block_out_channels: expected 1 to %d values",
                         VAE_MAX_LEVELS);
    hp->levels = n;
    if (hp->groups < 1 || hp->groups > 4096)
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "[vae] norm_num_groups = %d: expected 1..4096",
                         hp->groups);
    for (int i = 0; i < n; i++) {
        hp->ch[i] = (int)ch[i];
        if (!(ch[i] >= 1 && ch[i] <= 8192) || hp->ch[i] % hp->groups)
            return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID,
                             "[vae] block_out_channels: %g is not a positive multiple of norm_num_groups = %d", ch[i],
                             hp->groups);
    }
    if (hp->layers < 1 || hp->layers > 16)
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "[vae] layers_per_block = %d: expected 1..16",
                         hp->layers);
    if (hp->latent < 1 || hp->latent > 64)
        return edm2_logf(host, EDM2_LOG_ERROR, id, EDM2_ERR_INVALID, "[vae] latent_channels = %d: expected 1..64",
                         hp->latent);
    return EDM2_OK;
}

#endif
