/* unet_config.c: the config keys of mp_unet (both builds) and their checks: every value a real network can
 * have, refusing absurd ones (from a damaged or foreign file's metadata) before anything is sized by them. */
#include "unet_config.h"

#include <limits.h>
#include <string.h>

const edm2_config_key unet_config_keys[] = {
    {"img_resolution", EDM2_CFG_INT, "32", "image resolution (square; divisible by 2^(levels-1))"},
    {"img_channels", EDM2_CFG_INT, "1", "image channels (4 for SD latents, 3 for RGB)"},
    {"label_dim", EDM2_CFG_INT, "0", "number of classes; 0 = unconditional"},
    {"model_channels", EDM2_CFG_INT, "192", "base channel count"},
    {"channel_mult", EDM2_CFG_INT_LIST, "1,2,3,4", "per-resolution channel multipliers"},
    {"channel_mult_noise", EDM2_CFG_INT, "0", "noise-embedding channels multiplier; 0 = channel_mult[0]"},
    {"channel_mult_emb", EDM2_CFG_INT, "0", "embedding channels multiplier; 0 = max(channel_mult)"},
    {"num_blocks", EDM2_CFG_INT, "3", "residual blocks per resolution"},
    {"attn_resolutions", EDM2_CFG_INT_LIST, "16,8", "resolutions with self-attention"},
    {"channels_per_head", EDM2_CFG_INT, "64", "channels per attention head"},
    {"label_balance", EDM2_CFG_FLOAT, "0.5", "noise vs. class embedding balance"},
    {"concat_balance", EDM2_CFG_FLOAT, "0.5", "balance of decoder input vs. skip connection"},
    {"res_balance", EDM2_CFG_FLOAT, "0.3", "balance of residual branch vs. main path"},
    {"attn_balance", EDM2_CFG_FLOAT, "0.3", "balance of attention vs. main path"},
    {"clip_act", EDM2_CFG_FLOAT, "256", "clamp block outputs to [-clip_act, clip_act]"},
    {"dropout", EDM2_CFG_FLOAT, "0", "dropout probability in the residual branch (training only)"},
    {"logvar_channels", EDM2_CFG_INT, "128", "Fourier features of the uncertainty head"},
    {"sigma_data", EDM2_CFG_FLOAT, "0.5", "expected standard deviation of the training data"},
    {"precision", EDM2_CFG_STRING, "fp32",
     "fp32 | bf16 | fp16: the U-Net body's activations and products (CUDA build; the CPU computes in fp32)"},
};

_Static_assert(sizeof unet_config_keys / sizeof *unet_config_keys == UNET_CONFIG_KEY_COUNT, "UNET_CONFIG_KEY_COUNT");

/* An int key, saturated to INT_MIN/INT_MAX so that out-of-range values fail the range checks below. */
static int cfg_int(const edm2_config *cfg, const char *key, int fallback) {
    long long v = edm2_cfg_int(cfg, key, fallback);
    return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

#define FAIL(...) edm2_logf(host, EDM2_LOG_ERROR, "mp_unet", EDM2_ERR_INVALID, __VA_ARGS__)

edm2_status unet_parse_hparams(const edm2_host *host, const edm2_config *cfg, unet_hparams *hp) {
    memset(hp, 0, sizeof *hp);
    hp->img_resolution = cfg_int(cfg, "img_resolution", 32);
    hp->img_channels = cfg_int(cfg, "img_channels", 1);
    hp->label_dim = cfg_int(cfg, "label_dim", 0);
    hp->model_channels = cfg_int(cfg, "model_channels", 192);
    hp->channel_mult_noise = cfg_int(cfg, "channel_mult_noise", 0);
    hp->channel_mult_emb = cfg_int(cfg, "channel_mult_emb", 0);
    hp->num_blocks = cfg_int(cfg, "num_blocks", 3);
    hp->channels_per_head = cfg_int(cfg, "channels_per_head", 64);
    hp->label_balance = (float)edm2_cfg_float(cfg, "label_balance", 0.5);
    hp->concat_balance = (float)edm2_cfg_float(cfg, "concat_balance", 0.5);
    hp->res_balance = (float)edm2_cfg_float(cfg, "res_balance", 0.3);
    hp->attn_balance = (float)edm2_cfg_float(cfg, "attn_balance", 0.3);
    hp->clip_act = (float)edm2_cfg_float(cfg, "clip_act", 256);
    hp->dropout = (float)edm2_cfg_float(cfg, "dropout", 0);
    hp->logvar_channels = cfg_int(cfg, "logvar_channels", 128);
    hp->sigma_data = (float)edm2_cfg_float(cfg, "sigma_data", 0.5);
    const char *prec = cfg ? cfg->get(cfg->ctx, "precision") : NULL;
    if (!prec || !strcmp(prec, "fp32") || !strcmp(prec, "float32")) hp->precision = UNET_FP32;
    else if (!strcmp(prec, "bf16") || !strcmp(prec, "bfloat16")) hp->precision = UNET_BF16;
    else if (!strcmp(prec, "fp16") || !strcmp(prec, "float16")) hp->precision = UNET_FP16;
    else return FAIL("precision = '%.40s': expected fp32, bf16 or fp16", prec);
    double v[UNET_MAX_LEVELS + 1];
    int n = edm2_cfg_floats(cfg, "channel_mult", v, UNET_MAX_LEVELS + 1);
    if (n < 1 || n > UNET_MAX_LEVELS) return FAIL("channel_mult: expected 1 to %d entries, got %d", UNET_MAX_LEVELS, n);
    hp->levels = n;
    for (int i = 0; i < n; i++) {
        if (!(v[i] >= 1 && v[i] <= 16)) return FAIL("channel_mult: entries must be in 1..16");
        hp->channel_mult[i] = (int)v[i];
    }
    n = edm2_cfg_floats(cfg, "attn_resolutions", v, UNET_MAX_ATTN + 1);
    if (n > UNET_MAX_ATTN) return FAIL("attn_resolutions: at most %d entries", UNET_MAX_ATTN);
    hp->n_attn = n;
    for (int i = 0; i < n; i++) hp->attn_resolutions[i] = v[i] >= 1 && v[i] <= 4096 ? (int)v[i] : 0;
    /* Ranges: every value a real network can have; absurd ones (from a damaged or foreign file's metadata)
     * are refused here, before anything is sized by them. */
    if (hp->img_resolution < 1 || hp->img_resolution > 4096 || hp->img_resolution % (1 << (hp->levels - 1)))
        return FAIL("img_resolution = %d: must be in 1..4096 and a multiple of 2^(levels-1) = %d", hp->img_resolution,
                    1 << (hp->levels - 1));
    if (hp->img_channels < 1 || hp->img_channels > 64) return FAIL("img_channels = %d: must be in 1..64", hp->img_channels);
    if (hp->label_dim < 0 || hp->label_dim > 65536) return FAIL("label_dim = %d: must be in 0..65536", hp->label_dim);
    if (hp->model_channels < 1 || hp->model_channels > 4096)
        return FAIL("model_channels = %d: must be in 1..4096", hp->model_channels);
    for (int i = 0; i < hp->levels; i++)
        if (hp->channel_mult[i] > 16) return FAIL("channel_mult: entries must be in 1..16");
    if (hp->channel_mult_noise < 0 || hp->channel_mult_noise > 16 || hp->channel_mult_emb < 0 || hp->channel_mult_emb > 16)
        return FAIL("channel_mult_noise = %d, channel_mult_emb = %d: must be in 0 (automatic)..16", hp->channel_mult_noise,
                    hp->channel_mult_emb);
    if (hp->num_blocks < 0 || hp->num_blocks > 64) return FAIL("num_blocks = %d: must be in 0..64", hp->num_blocks);
    if (hp->channels_per_head < 1 || hp->channels_per_head > 4096)
        return FAIL("channels_per_head = %d: must be in 1..4096", hp->channels_per_head);
    for (int i = 0; i < hp->n_attn; i++)
        if (hp->attn_resolutions[i] < 1) return FAIL("attn_resolutions: entries must be >= 1");
    /* Attention splits a block's channels into heads of channels_per_head: at every resolution with
     * attention, and at the lowest one (its first decoder block always attends). */
    for (int l = 0; l < hp->levels; l++) {
        int res = hp->img_resolution >> l, attends = l == hp->levels - 1;
        for (int i = 0; i < hp->n_attn; i++) attends |= hp->attn_resolutions[i] == res;
        int ch = hp->model_channels * hp->channel_mult[l];
        if (attends && ch % hp->channels_per_head)
            return FAIL("channels_per_head = %d does not divide the %d channels of the attention blocks at %dx%d",
                        hp->channels_per_head, ch, res, res);
    }
    if (hp->logvar_channels < 1 || hp->logvar_channels > 4096)
        return FAIL("logvar_channels = %d: must be in 1..4096", hp->logvar_channels);
    const float bal[4] = {hp->label_balance, hp->concat_balance, hp->res_balance, hp->attn_balance};
    const char *bal_name[4] = {"label_balance", "concat_balance", "res_balance", "attn_balance"};
    for (int i = 0; i < 4; i++)
        if (!(bal[i] >= 0 && bal[i] <= 1)) return FAIL("%s = %g: must be in [0, 1]", bal_name[i], bal[i]);
    if (!(hp->clip_act > 0)) return FAIL("clip_act = %g: must be > 0", hp->clip_act);
    if (!(hp->dropout >= 0 && hp->dropout < 1)) return FAIL("dropout = %g: must be in [0, 1)", hp->dropout);
    if (!(hp->sigma_data > 0)) return FAIL("sigma_data = %g: must be > 0", hp->sigma_data);
    return EDM2_OK;
}

