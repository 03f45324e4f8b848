/* plugin.c: the network plugin "mp_unet" (CUDA build): the CPU build's config keys and checks
 * (../mp_unet/unet_config.c), and the edm2_network_vtable over unet_cuda.c (passes through the CUDA graphs
 * of pass_graph.c). */
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2.h"
#include "pass_graph.h"
#include "unet_config.h"
#include "unet_cuda.h"

#define ID "mp_unet"

struct edm2_network {
    const edm2_host *host;
    unet_cuda u;
    pgraph graphs;
    float *sigma_host; /* forward's noise levels, read back to check them */
    int sigma_cap;
    size_t noted_bytes; /* the workspaces' total at the last memory_note */
};

/* Every call starts on the backend's device and with no recorded failure. */
static void enter(edm2_network *net) {
    cudaSetDevice(net->u.gc.device);
    gpu_clear(&net->u.gc);
}

/* A failed call's error; after running out of memory the workspaces are given back (the caller may try a
 * smaller batch: batch_gpu = auto). */
static edm2_status failed(edm2_network *net, const char *what) {
    if (net->u.gc.oom) unet_cuda_release_workspaces(&net->u);
    return edm2_logf(net->host, EDM2_LOG_ERROR, ID, net->u.gc.oom ? EDM2_ERR_NOMEM : EDM2_ERR_INTERNAL, "%s on the GPU: %s",
                     what, net->u.gc.err);
}

/* gpu_ctx.note: the cuDNN plans' choices, one debug line each. */
static void plan_note(void *arg, const char *msg) {
    edm2_logf(((edm2_network *)arg)->host, EDM2_LOG_DEBUG, ID, EDM2_OK, "%s", msg);
}

static edm2_status net_create(const edm2_host *host, const edm2_config *cfg, const edm2_backend_ops *backend,
                              edm2_network **out) {
    unet_hparams hp;
    edm2_status s = unet_parse_hparams(host, cfg, &hp);
    if (s != EDM2_OK) return s;
    edm2_network *net = calloc(1, sizeof *net);
    if (!net) return EDM2_ERR_NOMEM;
    net->host = host;
    char err[384];
    if (unet_cuda_build(&net->u, &hp, backend, err, sizeof err)) {
        free(net);
        return edm2_logf(host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "%s", err);
    }
    pgraph_init(&net->graphs);
    net->u.gc.note = plan_note, net->u.gc.note_arg = net;
    if (hp.precision != UNET_FP32)
        edm2_logf(host, EDM2_LOG_INFO, ID, EDM2_OK,
                  "precision = %s: the U-Net body on tensor cores; weights, gradients, embedding and output in fp32%s%s",
                  hp.precision == UNET_BF16 ? "bf16" : "fp16", net->graphs.enabled ? "; CUDA graphs on" : "",
                  net->u.gc.fuse == FUSE_ON      ? "; evaluations' convolutions fused with their layers (EDM2_CUDNN_FUSE=on)"
                  : net->u.gc.fuse == FUSE_TIMED ? "; evaluations' convolutions fused with their layers where faster "
                                                   "(EDM2_CUDNN_FUSE=timed)"
                                                 : "");
    *out = net;
    return EDM2_OK;
}

static void net_destroy(edm2_network *net) {
    if (!net) return;
    if (net->u.ops.vt) cudaSetDevice(net->u.gc.device);
    pgraph_free(&net->graphs);
    unet_cuda_free(&net->u);
    free(net->sigma_host);
    free(net);
}

static edm2_status net_get_info(edm2_network *net, edm2_network_info *info) {
    unet_graph_info(&net->u.g, info);
    return EDM2_OK;
}

static edm2_status net_init_params(edm2_network *net, float *params, uint64_t seed) {
    enter(net);
    return unet_cuda_init_params(&net->u, params, seed) ? failed(net, "init_params") : EDM2_OK;
}

static edm2_status net_normalize_weights(edm2_network *net, float *params) {
    enter(net);
    return unet_cuda_normalize_weights(&net->u, params) ? failed(net, "forced weight normalisation") : EDM2_OK;
}

/* The noise levels live in device memory: they are read back (N floats) and checked like the CPU build's. */
static edm2_status check_sigma(edm2_network *net, const edm2_forward_args *a) {
    if (a->N > net->sigma_cap) {
        float *p = realloc(net->sigma_host, (size_t)a->N * sizeof *p);
        if (!p) return EDM2_ERR_NOMEM;
        net->sigma_host = p;
        net->sigma_cap = a->N;
    }
    edm2_status s = net->u.ops.vt->download(net->u.ops.b, net->sigma_host, a->sigma, (size_t)a->N * sizeof(float));
    if (s != EDM2_OK) return s;
    for (int n = 0; n < a->N; n++)
        if (!(net->sigma_host[n] > 0))
            return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "forward: sigma[%d] = %g must be > 0", n,
                             net->sigma_host[n]);
    return EDM2_OK;
}

/* One warning when the CUDA graphs were turned off (the passes run eagerly from then on); a debug line for
 * each graph captured (`captured`: the count before the pass). */
static void graphs_note(edm2_network *net, int turned_off, unsigned captured) {
    if (net->graphs.captured > captured)
        edm2_logf(net->host, EDM2_LOG_DEBUG, ID, EDM2_OK,
                  "CUDA graph captured and checked %sagainst its eager pass (%u so far)",
                  net->u.gc.deterministic ? "bitwise " : "", net->graphs.captured);
    if (turned_off)
        edm2_logf(net->host, EDM2_LOG_WARN, ID, EDM2_OK, "CUDA graphs turned off (passes run eagerly): %s",
                  net->graphs.why_off);
}

static edm2_status net_forward(edm2_network *net, const edm2_forward_args *a) {
    if (a->N < 1) return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "forward: batch N = %d", a->N);
    enter(net);
    edm2_status s = check_sigma(net, a);
    if (s != EDM2_OK) return s;
    int turned_off = 0;
    const unsigned captured = net->graphs.captured;
    const int rc = pgraph_forward(&net->graphs, &net->u, a, &turned_off);
    graphs_note(net, turned_off, captured);
    return rc ? failed(net, "forward") : EDM2_OK;
}

/* A debug line on where a training step's device memory went, after a backward, when it changed (it
 * settles within a few steps): the workspaces of docs/cuda-network.md (Memory) and the prepared weights. */
static size_t ws_bytes(const gws *w) { return (w->cap > w->need ? w->cap : w->need) * sizeof(float); }
static void memory_note(edm2_network *net) {
    const unet_cuda *u = &net->u;
    const size_t es = act_size(u->gc.act), kept = ws_bytes(&u->fws), pass = ws_bytes(&u->bws);
    const size_t m0 = ws_bytes(&u->bpp[0]), m1 = ws_bytes(&u->bpp[1]), own = u->gc.own_bytes;
    const size_t total = kept + pass + m0 + m1 + own;
    if (total == net->noted_bytes) return;
    net->noted_bytes = total;
    const size_t weights = (u->f32_floats + u->max_span) * sizeof(float) + (u->w_lp ? u->g.arena_floats * es : 0);
    const double MiB = 1048576.0;
    edm2_logf(net->host, EDM2_LOG_DEBUG, ID, EDM2_OK,
              "device memory of a training step: forward kept %.1f MiB, backward pass-long %.1f MiB, per module %.1f + "
              "%.1f MiB, products' own workspace %.1f MiB, prepared weights and their gradient %.1f MiB",
              kept / MiB, pass / MiB, m0 / MiB, m1 / MiB, own / MiB, weights / MiB);
}

static edm2_status net_backward(edm2_network *net, const float *params, const float *dD, const float *dlogvar,
                                float *grads) {
    if (!net->u.have_saved)
        return edm2_logf(net->host, EDM2_LOG_ERROR, ID, EDM2_ERR_INVALID, "backward without a training forward");
    enter(net);
    int turned_off = 0;
    const unsigned captured = net->graphs.captured;
    const int rc = pgraph_backward(&net->graphs, &net->u, params, dD, dlogvar, grads, &turned_off);
    graphs_note(net, turned_off, captured);
    if (rc) return failed(net, "backward");
    memory_note(net);
    return EDM2_OK;
}

static const edm2_network_vtable k_vtable = {
    sizeof(edm2_network_vtable), net_create,  net_destroy,  net_get_info, net_init_params, net_normalize_weights,
    net_forward,                 net_backward,
};

static const edm2_plugin_desc k_desc = {
    sizeof(edm2_plugin_desc), ID, EDM2_KIND_NETWORK, EDM2_BACKEND_CUDA, "1.0.0",
    "EDM2 magnitude-preserving U-Net with preconditioning and uncertainty head (CUDA: cuDNN, cuBLAS)",
    unet_config_keys, UNET_CONFIG_KEY_COUNT, NULL, &k_vtable,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
