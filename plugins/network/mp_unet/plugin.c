/* plugin.c: the network plugin "mp_unet" (CPU build): config schema, hyperparameter checks, and the
 * edm2_network_vtable over unet.c. */
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2.h"
#include "unet.h"

#define ID "mp_unet"

struct edm2_network {
    const edm2_host *host;
    unet u;
    int threads;
};

static const edm2_config_key k_keys[] = {
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
};

/* An int key, saturated to INT_MIN/INT_MAX so that out-of-range values fail the range checks below. */
static int cfg_int(const edm2_config *cfg, const char *key, int fallback) {
    long long v = edm2_cfg_int(cfg, key, fallback);
    return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

#define FAIL(...) edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, __VA_ARGS__)

static edm2_status parse_hparams(const edm2_host *host, const edm2_config *cfg, unet_hparams *hp) {
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

static edm2_status net_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                              edm2_network **out) {
    (void)backend;
    edm2_network *net = calloc(1, sizeof *net);
    if (!net) return EDM2_ERR_NOMEM;
    net->host = host;
    net->threads = host && host->threads > 0 ? host->threads : 1;
    unet_hparams hp;
    edm2_status s = parse_hparams(host, cfg, &hp);
    if (s != EDM2_OK) {
        free(net);
        return s;
    }
    char err[256];
    if (unet_build(&net->u, &hp, err, sizeof err)) {
        free(net);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "%s", err);
    }
    *out = net;
    return EDM2_OK;
}

static void net_destroy(edm2_network *net) {
    if (!net) return;
    unet_free(&net->u);
    free(net);
}

static edm2_status net_get_info(edm2_network *net, edm2_network_info *info) {
    const unet *u = &net->u;
    info->img_resolution = u->hp.img_resolution;
    info->img_channels = u->hp.img_channels;
    info->label_dim = u->hp.label_dim;
    info->sigma_data = u->hp.sigma_data;
    info->arena_floats = u->arena_floats;
    info->param_count = u->nparams;
    info->params = u->params;
    if (info->struct_size >= offsetof(edm2_network_info, gflops_per_image) + sizeof(double))
        info->gflops_per_image = u->gflops;
    return EDM2_OK;
}

/* Threads are set per call (OpenMP keeps them process-wide); OpenMP is the plugin's only thread pool. The
 * host may lower its count between calls while other work competes for the cores; results do not depend
 * on it. */
static void use_threads(edm2_network *net) {
    int t = net->host ? net->host->threads : net->threads;
    omp_set_num_threads(t < 1 ? 1 : t > net->threads ? net->threads : t);
}

static edm2_status net_init_params(edm2_network *net, float *params, uint64_t seed) {
    unet_init_params(&net->u, params, seed);
    return EDM2_OK;
}

static edm2_status net_normalize_weights(edm2_network *net, float *params) {
    use_threads(net);
    unet_normalize_weights(&net->u, params);
    return EDM2_OK;
}

static edm2_status net_forward(edm2_network *net, const edm2_forward_args *a) {
    if (a->N < 1) return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "forward: batch N = %d", a->N);
    for (int n = 0; n < a->N; n++)
        if (!(a->sigma[n] > 0))
            return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "forward: sigma[%d] = %g must be > 0", n,
                             a->sigma[n]);
    use_threads(net);
    if (unet_forward(&net->u, a))
        return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "forward: out of memory (batch %d)", a->N);
    return EDM2_OK;
}

static edm2_status net_backward(edm2_network *net, const float *params, const float *dD, const float *dlogvar,
                                float *grads) {
    if (!net->u.have_saved)
        return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "backward without a training forward");
    use_threads(net);
    if (unet_backward(&net->u, params, dD, dlogvar, grads))
        return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_NOMEM, "backward: out of memory");
    return EDM2_OK;
}

static const edm2_network_vtable k_vtable = {
    sizeof(edm2_network_vtable), net_create,  net_destroy,  net_get_info, net_init_params, net_normalize_weights,
    net_forward,                 net_backward,
};

static const edm2_plugin_desc k_desc = {
    sizeof(edm2_plugin_desc), ID, EDM2_KIND_NETWORK, EDM2_BACKEND_CPU, "1.0.0",
    "EDM2 magnitude-preserving U-Net with preconditioning and uncertainty head",
    k_keys, sizeof k_keys / sizeof *k_keys, NULL, &k_vtable,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
