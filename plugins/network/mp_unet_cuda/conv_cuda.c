/* conv_cuda.c: MPConv products on the GPU: cuBLAS for fully connected and 1x1 layers, cuDNN for 3x3
 * convolutions, in float32 or, for bf16/fp16 activations, on tensor cores with float32 accumulation. A
 * cuDNN plan (descriptors and algorithms) is made once per convolution shape and kept: deterministic
 * algorithms only, unless EDM2_CUDNN_DETERMINISTIC=0 allows any in bf16/fp16; with EDM2_CUDNN_PLANS, timed
 * choices are saved to a file and taken from it in later runs (plan_file.h). In bf16/fp16 a 3x3 weight
 * gradient may instead run as cuBLAS products over zero-padded copies (wgrad_gemm), where that is faster
 * than cuDNN's choice. */
#include "conv_cuda.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_ops.h"
#include "conv_graph.h"
#include "plan_file.h"
#include "thin_conv.h"

struct conv_plan {
    int N, H, W, C, O, act;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd[3]; /* forward, backward data, backward filter: each with its math type */
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws_fwd, ws_data, ws_filter; /* their workspace bytes */
    cudnnMathType_t math[3];            /* bf16/fp16, timed: each kind's math type (cd's), for the plan file */
    cgraph_plan graph[3];               /* bf16/fp16, EDM2_CUDNN_API=graph or any: the graph API's plan of a kind
                                         * where timed faster (plan NULL: the legacy algorithm); p's own */
    int wgrad_gemm;                     /* bf16/fp16: the weight gradient by wgrad_gemm instead of cuDNN */
    unsigned probe;                     /* bit k: the first call of kind k (CALL_*) is still to be timed */
};

/* The three kinds of product of a plan (and the weight gradient as products). */
enum { CALL_FWD, CALL_DATA, CALL_FILTER, CALL_WGRAD_GEMM };
static const char *const k_call_name[] = {"forward", "backward data", "backward filter", "backward filter as products"};

/* y[P, O] = x w^T in `act`; dx (act) and dw (float32, +=) of it. */
static int linear_forward(gpu_ctx *g, int act, void *y, const void *x, const void *w, size_t P, int C, int O, int accumulate) {
    return gpu_gemm_ex(g, act, act, 0, 1, P, (size_t)O, (size_t)C, 1.0f, x, (size_t)C, 0, w, (size_t)C, 0,
                       accumulate ? 1.0f : 0.0f, y, (size_t)O, 0, 1);
}

static int linear_backward(gpu_ctx *g, int act, void *dx, float *dw_hat, const void *dy, const void *x, const void *w,
                           size_t P, int C, int O, int acc) {
    if (dx && gpu_gemm_ex(g, act, act, 0, 0, P, (size_t)C, (size_t)O, 1.0f, dy, (size_t)O, 0, w, (size_t)C, 0,
                          acc ? 1.0f : 0.0f, dx, (size_t)C, 0, 1))
        return -1;
    return gpu_gemm_ex(g, act, ACT_F32, 1, 0, (size_t)O, (size_t)C, P, 1.0f, dy, (size_t)O, 0, x, (size_t)C, 0, 1.0f,
                       dw_hat, (size_t)C, 0, 1);
}

int gpu_linear_forward(gpu_ctx *g, float *y, const float *x, const float *w_hat, size_t P, int C, int O, int accumulate) {
    return linear_forward(g, ACT_F32, y, x, w_hat, P, C, O, accumulate);
}

int gpu_linear_backward(gpu_ctx *g, float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat,
                        size_t P, int C, int O, int acc) {
    return linear_backward(g, ACT_F32, dx, dw_hat, dy, x, w_hat, P, C, O, acc);
}

/* ---- the 3x3 weight gradient as products ---- */

#define WGRAD_CHUNK_BYTES ((size_t)64 << 20) /* the padded copies of a chunk of images (at least one image) */


/* dw_hat[O, 3, 3, C] (float32, tap-major) += the 3x3 convolution's weight gradient from x[N, H, W, C] and
 * dy[N, H, W, O] (bf16/fp16), deterministic, on tensor cores: over the zero-padded grid q of a chunk of
 * images, dw[o, t, c] += sum_q dy_pad[q, o] x_pad[q + off_t, c] with off_t = (ky - 1)(W + 2) + kx - 1 for
 * tap t = 3 ky + kx (a border q has dy_pad 0, so what x_pad holds there does not count). One strided batch
 * of three products per ky: for kx = 0, 1, 2 x_pad starts one row further and dw one tap further. The
 * padded copies live in the network's workspace; the chunks of images are added in order. */
static int wgrad_gemm(gpu_ctx *g, int act, float *dw_hat, const void *dy, const void *x, int N, int H, int W, int C,
                      int O) {
    const size_t es = act_size(act), Wp = (size_t)W + 2, img = (size_t)(H + 2) * Wp, margin = Wp + 1;
    size_t nb = WGRAD_CHUNK_BYTES / (img * (size_t)(C + O) * es);
    nb = nb < 1 ? 1 : nb > (size_t)N ? (size_t)N : nb;
    const size_t x_bytes = ((2 * margin + nb * img) * C * es + 255) / 256 * 256;
    char *xp = gpu_workspace(g, x_bytes + nb * img * O * es);
    if (!xp) return -1;
    char *dyp = xp + x_bytes;
    for (size_t n0 = 0; n0 < (size_t)N; n0 += nb) {
        const size_t nc = (size_t)N - n0 < nb ? (size_t)N - n0 : nb;
        GPU_TRY(g, act_pad_rows(g->stream, act, xp, (const char *)x + n0 * H * W * C * es, (int)nc, H, W, C, (int)margin),
                return -1);
        GPU_TRY(g, act_pad_rows(g->stream, act, dyp, (const char *)dy + n0 * H * W * O * es, (int)nc, H, W, O, 0),
                return -1);
        for (int ky = 0; ky < 3; ky++) /* x_pad from row margin + off_t of tap (ky, 0) */
            if (gpu_gemm_ex(g, act, ACT_F32, 1, 0, (size_t)O, (size_t)C, nc * img, 1.0f, dyp, (size_t)O, 0,
                            xp + (margin + (ky - 1) * Wp - 1) * C * es, (size_t)C, C, 1.0f, dw_hat + (size_t)ky * 3 * C,
                            (size_t)9 * C, C, 3))
                return -1;
    }
    return 0;
}

/* ---- cuDNN plans ---- */

static void plan_destroy(conv_plan *p) {
    if (p->xd) cudnnDestroyTensorDescriptor(p->xd);
    if (p->yd) cudnnDestroyTensorDescriptor(p->yd);
    if (p->wd) cudnnDestroyFilterDescriptor(p->wd);
    for (int i = 0; i < 3; i++) {
        if (p->cd[i]) cudnnDestroyConvolutionDescriptor(p->cd[i]);
        cgraph_plan_free(&p->graph[i]);
    }
}

void conv_plans_free(gpu_ctx *g) {
    for (size_t i = 0; i < g->nplans; i++) plan_destroy(&g->plans[i]);
    free(g->plans);
    g->plans = NULL;
    g->nplans = g->cap_plans = 0;
}

/* Whether plan p may run nondeterministic algorithms: bf16/fp16 with EDM2_CUDNN_DETERMINISTIC=0; float32
 * never. */
static int any_determinism(const gpu_ctx *g, const conv_plan *p) { return !g->deterministic && p->act != ACT_F32; }
/* cuDNN's type of plan p's data. */
static cudnnDataType_t plan_dtype(const conv_plan *p) {
    return p->act == ACT_BF16 ? CUDNN_DATA_BFLOAT16 : p->act == ACT_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
}
/* Whether plan p may run an algorithm of this determinism (cudnnDeterminism_t). */
#define ALLOWED(g, p, determinism) ((determinism) == CUDNN_DETERMINISTIC || any_determinism(g, p))

/* Algorithm choice by cuDNN's heuristics (float32; bf16/fp16 with EDM2_CUDNN_ALGO=heuristic or where the
 * timing failed), the same for the three kinds (forward, backward data, backward filter): the first that
 * cuDNN's heuristics rank and that is deterministic (unless p may run any: ALLOWED), with float32 FMA math
 * (no TF32) for float32 data and any math (tensor cores first, as ranked) for bf16/fp16; else the first of
 * the kind's deterministic algorithms, in a fixed order, that cuDNN supports for the shape (its workspace
 * size query succeeds). The kind's descriptor takes the chosen math type. The workspace may exceed the
 * backend's: the network then keeps a larger one. When nothing qualifies, `why` lists what the heuristics
 * offered. `at`: the chosen entry of perf, or -1 (from the fixed order). */
#define PICK_ALGO(perf, n, order, norder, size_query, out, need, why, fma_only, cd, at)                        \
    do {                                                                                                       \
        out = -1, at = -1;                                                                                     \
        for (int i_ = 0; i_ < (n) && out < 0; i_++)                                                            \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS && ALLOWED(g, p, (perf)[i_].determinism) &&        \
                (!(fma_only) || (perf)[i_].mathType == CUDNN_FMA_MATH)) {                                      \
                out = (int)(perf)[i_].algo, need = (perf)[i_].memory, at = i_;                                 \
                GPU_DNN(g, cudnnSetConvolutionMathType(cd, (perf)[i_].mathType));                              \
            }                                                                                                  \
        for (int i_ = 0; i_ < (norder) && out < 0; i_++) {                                                     \
            size_t bytes_ = 0;                                                                                 \
            if (size_query((order)[i_], &bytes_) == CUDNN_STATUS_SUCCESS) out = (int)(order)[i_], need = bytes_; \
        }                                                                                                      \
        if (out < 0)                                                                                           \
            for (int i_ = 0, len_ = 0; i_ < (n) && len_ < (int)sizeof(why) - 40; i_++)                         \
                len_ += snprintf(why + len_, sizeof(why) - len_, " [algo %d: status %d, %s, math %d, %zu MiB]",     \
                                 (int)(perf)[i_].algo, (int)(perf)[i_].status,                                 \
                                 (perf)[i_].determinism == CUDNN_DETERMINISTIC ? "det" : "nondet",             \
                                 (int)(perf)[i_].mathType, (perf)[i_].memory >> 20);                           \
    } while (0)

static const char *math_name(cudnnMathType_t m) {
    return m == CUDNN_TENSOR_OP_MATH ? "tensor cores"
           : m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ? "tensor cores, converting"
           : m == CUDNN_FMA_MATH ? "FMA" : "default math";
}

static const cudnnConvolutionFwdAlgo_t k_fwd_order[] = {
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
    CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING};
static const cudnnConvolutionBwdDataAlgo_t k_data_order[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                                                             CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING};
static const cudnnConvolutionBwdFilterAlgo_t k_filter_order[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                                 CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING};

/* The workspace an algorithm of each kind needs for plan p (the fallback order of PICK_ALGO). */
#define FWD_SIZE(algo, bytes) cudnnGetConvolutionForwardWorkspaceSize(g->dnn, p->xd, p->wd, p->cd[0], p->yd, algo, bytes)
#define DATA_SIZE(algo, bytes)                                                                                       \
    cudnnGetConvolutionBackwardDataWorkspaceSize(g->dnn, p->wd, p->yd, p->cd[1], p->xd, algo, bytes)
#define FILTER_SIZE(algo, bytes)                                                                                     \
    cudnnGetConvolutionBackwardFilterWorkspaceSize(g->dnn, p->xd, p->yd, p->cd[2], p->wd, algo, bytes)

/* A plan's report: its choices, or what failed (plan_note). */
typedef struct plan_msg {
    char s[2048];
} plan_msg;

/* Appends printf-style text to m (cut at its size). */
static void msg_add(plan_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_add(plan_msg *m, const char *fmt, ...) {
    const size_t l = strlen(m->s);
    va_list ap;
    va_start(ap, fmt);
    if (l + 1 < sizeof m->s) vsnprintf(m->s + l, sizeof m->s - l, fmt, ap);
    va_end(ap);
}

/* Whether kind `kind` of plan p runs its graph-API plan when its output is scaled by beta before the sum
 * (0 or 1): it has one, and beta = 0, for which it was made. */
static int uses_graph(const conv_plan *p, int kind, float beta) { return beta == 0.0f && p->graph[kind].plan; }

/* The workspace bytes of kind `kind` of plan p as run_kind runs it. */
static size_t kind_ws(const conv_plan *p, int kind, float beta) {
    if (uses_graph(p, kind, beta)) return (size_t)p->graph[kind].ws;
    return kind == CALL_FWD ? p->ws_fwd : kind == CALL_DATA ? p->ws_data : p->ws_filter;
}

/* Kind `kind` (CALL_FWD, CALL_DATA, CALL_FILTER) of plan p on x[N, H, W, C], y[N, H, W, O] and w (the roles of
 * conv_graph.h: the input or its gradient, the output or its gradient, the filter or its gradient), its
 * output = conv + beta output: the graph-API plan where uses_graph, else the legacy algorithm; ws holds at
 * least kind_ws bytes. */
static cudnnStatus_t run_kind(gpu_ctx *g, const conv_plan *p, int kind, void *x, void *y, void *w, void *ws,
                              float beta) {
    const float one = 1.0f;
    const size_t wsb = kind_ws(p, kind, beta);
    if (uses_graph(p, kind, beta)) return cgraph_run(g->dnn, &p->graph[kind], x, y, w, ws);
    if (kind == CALL_FWD)
        return cudnnConvolutionForward(g->dnn, &one, p->xd, x, p->wd, w, p->cd[0], p->fwd, ws, wsb, &beta, p->yd, y);
    if (kind == CALL_DATA)
        return cudnnConvolutionBackwardData(g->dnn, &one, p->wd, w, p->yd, y, p->cd[1], p->bwd_data, ws, wsb, &beta,
                                            p->xd, x);
    return cudnnConvolutionBackwardFilter(g->dnn, &one, p->xd, x, p->yd, y, p->cd[2], p->bwd_filter, ws, wsb, &beta,
                                          p->wd, w);
}

/* A plan's scratch tensors while it is timed: x[N, H, W, C], y[N, H, W, O] and w (the weights or, for
 * CALL_FILTER, their gradient, in the data's type; for CALL_WGRAD_GEMM a float32 gradient), and a workspace
 * of ws_bytes. */
typedef struct conv_scratch {
    void *x, *y, *w, *ws;
    size_t ws_bytes;
} conv_scratch;

/* One call of plan p's product of a kind on the scratch tensors (run_kind, or wgrad_gemm). 0 or -1. */
static int scratch_call(gpu_ctx *g, const conv_plan *p, int kind, const conv_scratch *s) {
    if (kind == CALL_WGRAD_GEMM) return wgrad_gemm(g, p->act, s->w, s->y, s->x, p->N, p->H, p->W, p->C, p->O);
    return run_kind(g, p, kind, s->x, s->y, s->w, s->ws, 0.0f) == CUDNN_STATUS_SUCCESS ? 0 : -1;
}

float gpu_calls_ms(gpu_ctx *g, int (*call)(gpu_ctx *g, const void *arg), const void *arg, int calls) {
    float ms = -1;
    cudaEvent_t e0 = NULL, e1 = NULL;
    if (cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess &&
        cudaEventRecord(e0, g->stream) == cudaSuccess) {
        int ok = 1;
        for (int i = 0; i < calls && ok; i++) ok = call(g, arg) == 0;
        if (!ok || cudaEventRecord(e1, g->stream) != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess ||
            cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess)
            ms = -1;
    }
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    return ms;
}

/* scratch_call's arguments, for gpu_calls_ms. */
typedef struct scratch_arg {
    const conv_plan *p;
    int kind;
    const conv_scratch *s;
} scratch_arg;
static int scratch_call_of(gpu_ctx *g, const void *arg) {
    const scratch_arg *a = arg;
    return scratch_call(g, a->p, a->kind, a->s);
}
/* The time in ms of `calls` calls of scratch_call, or -1 when they failed. */
static float scratch_calls_ms(gpu_ctx *g, const conv_plan *p, int kind, const conv_scratch *s, int calls) {
    const scratch_arg a = {p, kind, s};
    return gpu_calls_ms(g, scratch_call_of, &a, calls);
}

/* Its time in ms: one call to warm up, one timed; when that is within `cutoff` ms (or cutoff < 0), the mean
 * of three more. -1 when it could not be timed (its failure is then forgotten). A candidate slower than the
 * best so far by far thus costs two calls, not four. */
static float scratch_ms(gpu_ctx *g, const conv_plan *p, int kind, const conv_scratch *s, float cutoff) {
    float ms = scratch_call(g, p, kind, s) == 0 ? scratch_calls_ms(g, p, kind, s, 1) : -1;
    if (ms >= 0 && (cutoff < 0 || ms <= cutoff)) {
        ms = scratch_calls_ms(g, p, kind, s, 3);
        if (ms >= 0) ms /= 3;
    }
    if (ms < 0) gpu_clear(g), (void)cudaGetLastError();
    return ms;
}

/* wgrad_gemm's time in ms for plan p on the scratch tensors x, y (scratch_ms), or -1. */
static float time_wgrad_gemm(gpu_ctx *g, const conv_plan *p, const conv_scratch *s) {
    float *dw = NULL, ms = -1;
    const size_t bytes = (size_t)p->O * 9 * p->C * sizeof(float);
    if (cudaMalloc((void **)&dw, bytes) == cudaSuccess && cudaMemsetAsync(dw, 0, bytes, g->stream) == cudaSuccess) {
        const conv_scratch sd = {s->x, s->y, dw, NULL, 0};
        ms = scratch_ms(g, p, CALL_WGRAD_GEMM, &sd, -1);
    } else {
        (void)cudaGetLastError();
    }
    cudaFree(dw);
    return ms;
}

/* One way to run a kind of product: a legacy algorithm from Find's results (or the heuristics') with its
 * math type and the workspace it is given, and cuDNN's time for it; or an execution plan of the graph API
 * (graph, whose workspace is its own; no Find time: -1). ms: its time as planned on the scratch tensors (-1:
 * not timed). */
typedef struct algo_try {
    int algo;
    cudnnMathType_t math;
    size_t ws;
    float find_ms, ms;
    int deterministic;
    const cgraph_plan *graph;
} algo_try;

/* Result e of cuDNN's Find or heuristics (a cudnnConvolution*AlgoPerf_t) as an untimed try. */
#define TRY_OF(e)                                                                                                  \
    ((algo_try){(int)(e).algo, (e).mathType, (e).memory, (e).time, -1.0f, (e).determinism == CUDNN_DETERMINISTIC, \
                NULL})

#define MAX_LEGACY 4     /* Find's results tried as planned (and the first once more with a larger workspace) */
#define MAX_GRAPH 6      /* the graph API's plans tried (EDM2_CUDNN_API=graph or any) */
#define MAX_TRIES (MAX_LEGACY + 1 + MAX_GRAPH)
#define TRY_WITHIN 3.0f  /* only those that Find timed within this factor of its fastest allowed one */
#define BIG_WS_GAIN 0.8f /* a workspace larger by more than 64 MiB must buy this time factor */

/* Find's results perf[0, n) that succeeded and that p may run (ALLOWED), fastest first (Find's order), into
 * tries[0, ntries). */
#define COLLECT_TRIES(perf, n, tries, ntries)                                                                      \
    do {                                                                                                           \
        ntries = 0;                                                                                                \
        for (int i_ = 0; i_ < (n) && ntries < MAX_LEGACY; i_++)                                                    \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS && ALLOWED(g, p, (perf)[i_].determinism) &&            \
                (ntries == 0 || (perf)[i_].time <= TRY_WITHIN * (tries)[0].find_ms))                               \
                (tries)[ntries++] = TRY_OF((perf)[i_]);                                                            \
    } while (0)

/* Find's fastest result of any determinism (perf[0]) as a try, or NULL when it failed. */
#define FASTEST_OF(perf, n) ((n) > 0 && (perf)[0].status == CUDNN_STATUS_SUCCESS ? &TRY_OF((perf)[0]) : NULL)

/* Kind `kind` of plan p runs as t says: a legacy algorithm (and no graph plan), or t's graph plan (the legacy
 * algorithm kept for the calls a graph plan does not cover, beta = 1). 0, or -1 (cuDNN refused the math type). */
static int plan_set(gpu_ctx *g, conv_plan *p, int kind, const algo_try *t) {
    if (t->graph) {
        p->graph[kind] = *t->graph; /* a copy; whose it is, choose_kind settles */
        return 0;
    }
    memset(&p->graph[kind], 0, sizeof p->graph[kind]); /* not p's: a copy of a try's (choose_kind frees those) */
    if (kind == CALL_FWD) p->fwd = (cudnnConvolutionFwdAlgo_t)t->algo, p->ws_fwd = t->ws;
    else if (kind == CALL_DATA) p->bwd_data = (cudnnConvolutionBwdDataAlgo_t)t->algo, p->ws_data = t->ws;
    else p->bwd_filter = (cudnnConvolutionBwdFilterAlgo_t)t->algo, p->ws_filter = t->ws;
    GPU_DNN(g, cudnnSetConvolutionMathType(p->cd[kind], t->math));
    p->math[kind] = t->math;
    return 0;
}

/* Appends "NAME (math[, nondeterministic], W MiB)" of try t to m. */
static void note_try(plan_msg *m, const algo_try *t) {
    if (t->graph) msg_add(m, "graph engine %lld (", (long long)t->graph->engine);
    else msg_add(m, "algo %d (", t->algo);
    msg_add(m, "%s%s, %zu MiB)",
            t->graph ? (t->graph->tensor_core ? "tensor cores" : "no tensor-core note") : math_name(t->math),
            t->deterministic ? "" : ", nondeterministic", t->ws >> 20);
}

/* Kind `kind` of plan p, chosen from t[0, n) (legacy tries from Find's results, COLLECT_TRIES, then graph
 * plans; t has room for MAX_TRIES) by running each as planned (the plan's descriptors, the algorithm, math
 * type and workspace size; or the execution plan) on the scratch tensors and keeping the fastest measured:
 * what cuDNN runs for a legacy algorithm need not be what Find timed for it (docs/cuda-network.md,
 * Convolution algorithms). When Find's fastest runs more than 1.5x slower than Find timed it, it is tried
 * once more with Find's whole workspace (s->ws_bytes). A workspace larger by more than 64 MiB than the best
 * so far is kept only when it is faster by BIG_WS_GAIN; one more than 3x slower than the best so far is
 * timed once only (scratch_ms). With no time measured, the first. A graph plan chosen, the fastest legacy
 * try is set too (plan_set). The choice, and what else was tried, are appended to m; *chosen: the chosen
 * entry. 0, or -1 (nothing to choose from, or cuDNN refused a setting). */
static int plan_choose(gpu_ctx *g, conv_plan *p, int kind, algo_try *t, int n, const conv_scratch *s, plan_msg *m,
                       const algo_try **chosen) {
    if (n <= 0) return -1;
    int best = -1, best_legacy = -1;
    for (int i = 0; i < n; i++) {
        if (plan_set(g, p, kind, &t[i])) return -1;
        t[i].ms = scratch_ms(g, p, kind, s, best < 0 ? -1 : 3 * t[best].ms); /* 3x the best: once only */
        if (i == 0 && !t[0].graph && t[0].ms > 1.5f * t[0].find_ms + 0.01f && t[0].ws < s->ws_bytes && n < MAX_TRIES) {
            memmove(&t[2], &t[1], (size_t)(n - 1) * sizeof *t); /* next, ahead of the graph plans */
            t[1] = t[0], t[1].ws = s->ws_bytes, t[1].ms = -1, n++;
        }
        if (t[i].ms < 0) continue;
        const int bigger = best >= 0 && t[i].ws > t[best].ws + ((size_t)64 << 20); /* must buy BIG_WS_GAIN */
        if (best < 0 || t[i].ms < t[best].ms * (bigger ? BIG_WS_GAIN : 1.0f)) best = i;
        if (!t[i].graph && (best_legacy < 0 || t[i].ms < t[best_legacy].ms)) best_legacy = i;
    }
    if (best < 0) best = 0;
    if (t[best].graph && best_legacy >= 0 && plan_set(g, p, kind, &t[best_legacy])) return -1;
    if (plan_set(g, p, kind, &t[best])) return -1;
    const algo_try *c = &t[best];
    msg_add(m, "; %s ", k_call_name[kind]);
    note_try(m, c);
    if (!c->graph) msg_add(m, ": Find %.3f ms", c->find_ms);
    msg_add(m, ", as planned ");
    if (c->ms < 0) msg_add(m, "untimed");
    else msg_add(m, "%.3f ms%s", c->ms, !c->graph && c->ms > 2 * c->find_ms + 0.05f ? " (not what Find timed)" : "");
    int k = 0;
    for (int i = 0; i < n; i++)
        if (i != best) {
            msg_add(m, "%s", k++ ? ", " : " [also tried: ");
            note_try(m, &t[i]);
            if (t[i].ms < 0) msg_add(m, " untimed");
            else msg_add(m, " %.3f ms", t[i].ms);
        }
    if (k) msg_add(m, "]");
    *chosen = c;
    return 0;
}

/* Kind `kind` of plan p from the legacy tries t[0, nt) and, where g->conv_api asks for them, the graph API's
 * plans (those alone where EDM2_CUDNN_API=graph and there are any; both where =any): plan_choose, then the
 * graph plans that were not chosen freed (the chosen one is p's). fastest: Find's fastest result, for the
 * report (or NULL). *ms: the choice's time as planned, or Find's where untimed. 0 or -1. */
static int choose_kind(gpu_ctx *g, conv_plan *p, int kind, algo_try *t, int nt, const algo_try *fastest,
                       const conv_scratch *s, plan_msg *m, float *ms) {
    cgraph_plan gp[MAX_GRAPH];
    int ng = 0;
    char why[200] = "";
    if (g->conv_api != CONV_API_LEGACY && nt > 0) {
        ng = cgraph_plans(g->dnn, kind, p->N, p->H, p->W, p->C, p->O, plan_dtype(p), 0.0f, any_determinism(g, p),
                          s->ws_bytes, gp, MAX_GRAPH, why, sizeof why);
        (void)cudaGetLastError(); /* what an engine that failed to finalize may have left */
        if (ng < 0) ng = 0;
        if (ng > 0 && g->conv_api == CONV_API_GRAPH) { /* Find's fastest legacy one stays set for beta = 1 */
            if (plan_set(g, p, kind, &t[0])) {
                for (int j = 0; j < ng; j++) cgraph_plan_free(&gp[j]);
                return -1;
            }
            nt = 0;
        }
        for (int j = 0; j < ng; j++)
            t[nt++] = (algo_try){-1, CUDNN_DEFAULT_MATH, (size_t)gp[j].ws, -1.0f, -1.0f, gp[j].deterministic, &gp[j]};
    }
    const algo_try *c = NULL;
    const int rc = plan_choose(g, p, kind, t, nt, s, m, &c);
    for (int j = 0; j < ng; j++)
        if (rc || c->graph != &gp[j]) cgraph_plan_free(&gp[j]);
    if (rc) {
        memset(&p->graph[kind], 0, sizeof p->graph[kind]); /* a copy of a plan freed above */
        return -1;
    }
    if (g->conv_api != CONV_API_LEGACY && ng == 0) msg_add(m, " (graph API: %s)", why[0] ? why : "no plan qualifies");
    if (fastest && (c->graph || fastest->algo != c->algo || fastest->math != c->math))
        msg_add(m, " [Find's fastest: algo %d, %s, %.3f ms, %s]", fastest->algo, math_name(fastest->math),
                fastest->find_ms, fastest->deterministic ? "deterministic" : "nondeterministic");
    *ms = c->ms >= 0 ? c->ms : c->find_ms;
    return 0;
}

/* bf16/fp16: each kind's fastest allowed algorithm (ALLOWED) by cuDNN's Find functions on scratch tensors of the
 * plan's shapes (as PyTorch's cudnn.benchmark), confirmed as planned (choose_kind), with a workspace of at
 * most 512 MiB (an eighth of the free memory when less), against the graph API's plans where g->conv_api
 * asks for them; and where g->wgrad says so, the weight gradient as products instead when they are faster.
 * Once per shape; the scratch is freed at once. 0, or -1 when it could not be done (the heuristics then
 * choose); the choices, or what failed, are appended to m. */
static int plan_time(gpu_ctx *g, conv_plan *p, plan_msg *m) {
    const size_t es = act_size(p->act), nx = (size_t)p->N * p->H * p->W * p->C, ny = (size_t)p->N * p->H * p->W * p->O;
    const size_t nw = (size_t)p->O * 9 * p->C;
    size_t free_b = 0, total_b = 0;
    conv_scratch s = {NULL, NULL, NULL, NULL, (size_t)512 << 20};
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && free_b / 8 < s.ws_bytes) s.ws_bytes = free_b / 8;
    int rc = -1, n = 0, nt = 0;
    float kind_ms = -1; /* the last kind's time as planned: after the backward filter's, its */
    const char *step = "allocating the scratch tensors";
    algo_try t[MAX_TRIES];
    cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    if (cudaMalloc(&s.x, nx * es) != cudaSuccess || cudaMalloc(&s.y, ny * es) != cudaSuccess ||
        cudaMalloc(&s.w, nw * es) != cudaSuccess || cudaMalloc(&s.ws, s.ws_bytes) != cudaSuccess ||
        cudaMemsetAsync(s.x, 0, nx * es, g->stream) != cudaSuccess ||
        cudaMemsetAsync(s.y, 0, ny * es, g->stream) != cudaSuccess ||
        cudaMemsetAsync(s.w, 0, nw * es, g->stream) != cudaSuccess)
        goto done;
    step = "timing the forward";
    if (cudnnFindConvolutionForwardAlgorithmEx(g->dnn, p->xd, s.x, p->wd, s.w, p->cd[0], p->yd, s.y,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, fp, s.ws,
                                               s.ws_bytes) != CUDNN_STATUS_SUCCESS)
        goto done;
    step = "choosing the forward";
    COLLECT_TRIES(fp, n, t, nt);
    if (choose_kind(g, p, CALL_FWD, t, nt, FASTEST_OF(fp, n), &s, m, &kind_ms)) goto done;
    step = "timing the backward data";
    if (cudnnFindConvolutionBackwardDataAlgorithmEx(g->dnn, p->wd, s.w, p->yd, s.y, p->cd[1], p->xd, s.x,
                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, dp, s.ws,
                                                    s.ws_bytes) != CUDNN_STATUS_SUCCESS)
        goto done;
    step = "choosing the backward data";
    COLLECT_TRIES(dp, n, t, nt);
    if (choose_kind(g, p, CALL_DATA, t, nt, FASTEST_OF(dp, n), &s, m, &kind_ms)) goto done;
    step = "timing the backward filter";
    if (cudnnFindConvolutionBackwardFilterAlgorithmEx(g->dnn, p->xd, s.x, p->yd, s.y, p->cd[2], p->wd, s.w,
                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, wp, s.ws,
                                                      s.ws_bytes) != CUDNN_STATUS_SUCCESS)
        goto done;
    step = "choosing the backward filter";
    COLLECT_TRIES(wp, n, t, nt);
    if (choose_kind(g, p, CALL_FILTER, t, nt, FASTEST_OF(wp, n), &s, m, &kind_ms)) goto done;
    if (g->wgrad == WGRAD_TIMED) { /* the products instead, where faster than cuDNN's as it runs */
        const float ms = time_wgrad_gemm(g, p, &s);
        p->wgrad_gemm = ms >= 0 && ms < kind_ms;
        msg_add(m, "; backward filter as products %s%.3f ms: %s", ms < 0 ? "(untimed) " : "", ms < 0 ? 0.0 : ms,
                p->wgrad_gemm ? "taken" : "not taken");
    }
    rc = 0;
done:
    cudaFree(s.x), cudaFree(s.y), cudaFree(s.w), cudaFree(s.ws);
    if (rc) {
        (void)cudaGetLastError(); /* a failed allocation must not fail the next kernel launch's check */
        for (int k = 0; k < 3; k++) cgraph_plan_free(&p->graph[k]); /* the heuristics choose: legacy only */
        char why[400] = "";
        if (g->err[0]) snprintf(why, sizeof why, ": %s", g->err);
        gpu_clear(g); /* recovered: the heuristics choose */
        snprintf(m->s, sizeof m->s, "; timing failed (%s%s), so the heuristics choose", step,
                 nt == 0 && n > 0 ? ": no allowed result" : why);
    }
    return rc;
}

/* Appends the heuristics' choice of a kind to m: "; KIND " and the try (heuristics' result), or "algo A
 * (fixed order)" where the choice came from the fixed order (t NULL). */
static void note_pick(plan_msg *m, const char *kind, const algo_try *t, int algo) {
    msg_add(m, "; %s ", kind);
    if (t) note_try(m, t);
    else msg_add(m, "algo %d (fixed order)", algo);
}

/* One line on what plan p runs (gpu_ctx.note), e.g. "cuDNN 3x3 convolution 64x64, 128 -> 128 channels, batch
 * 64, bf16, timed; forward algo 1 (tensor cores, 0 MiB): Find 0.113 ms, as planned 0.115 ms; ..."; returns 0. */
static int plan_note(gpu_ctx *g, const conv_plan *p, const char *how, const plan_msg *m) {
    if (!g->note) return 0;
    char line[sizeof m->s + 200];
    snprintf(line, sizeof line, "cuDNN 3x3 convolution %dx%d, %d -> %d channels, batch %d, %s, %s%s", p->H, p->W, p->C,
             p->O, p->N, act_name(p->act), how, m->s);
    g->note(g->note_arg, line);
    return 0;
}

/* ---- EDM2_CUDNN_PLANS: the timed choices kept in a file (plan_file.h) ---- */

/* Plan p's key in the file: the GPU, cuDNN's version, what bounds the choice (precision, determinism, API,
 * the weight gradient's way) and the shape, e.g. "NVIDIA H100 80GB HBM3 sm_90 cuDNN 91000 bf16 deterministic
 * legacy-api wgrad-timed 256x64x64 128->128". */
static void plan_key(const gpu_ctx *g, const conv_plan *p, char *key, size_t n) {
    static const char *const api[] = {"legacy-api", "graph-api", "any-api"};
    static const char *const wgrad[] = {"wgrad-timed", "wgrad-gemm", "wgrad-cudnn"};
    snprintf(key, n, "%s cuDNN %zu %s %s %s %s %dx%dx%d %d->%d", g->gpu_key, cudnnGetVersion(),
             act_name(p->act), any_determinism(g, p) ? "any-determinism" : "deterministic",
             api[g->conv_api], wgrad[g->wgrad], p->N, p->H, p->W, p->C, p->O);
}

/* Plan p's choices (plan_time's) written into the plan file under its key; "; saved to FILE" appended to
 * m. 0 or -1. */
static int plan_save(gpu_ctx *g, const conv_plan *p, plan_msg *m) {
    plan_rec r;
    memset(&r, 0, sizeof r);
    plan_key(g, p, r.key, sizeof r.key);
    const int algo[3] = {(int)p->fwd, (int)p->bwd_data, (int)p->bwd_filter};
    const size_t ws[3] = {p->ws_fwd, p->ws_data, p->ws_filter};
    for (int k = 0; k < 3; k++) {
        const cgraph_plan *gp = &p->graph[k];
        r.kind[k] = (plan_kind_rec){algo[k], (int)p->math[k], ws[k], gp->plan ? gp->engine : -1,
                                    gp->plan ? (uint64_t)gp->ws : 0};
    }
    r.wgrad_gemm = p->wgrad_gemm;
    char why[600];
    if (plan_file_put(g->plan_file, &r, why, sizeof why)) return gpu_plans_fail(g, why);
    msg_add(m, "; saved to %s", g->plan_file);
    return 0;
}

/* Kind `kind` of plan p set to record q of the plan file's line `line`: the legacy algorithm with its math
 * type, after cuDNN's workspace query for it says it runs the shape within the recorded workspace, and
 * where q names one, the graph API's plan of that engine and workspace among those cuDNN's heuristics offer
 * (cgraph_plans, which the choice came from). Its report appended to m. 0 or -1. */
static int restore_kind(gpu_ctx *g, conv_plan *p, int kind, const plan_kind_rec *q, int line, plan_msg *m) {
    algo_try t = {q->algo, (cudnnMathType_t)q->math, (size_t)q->ws, -1.0f, -1.0f, 1, NULL};
    char why[600];
    if (plan_set(g, p, kind, &t)) return -1;
    size_t need = 0;
    const cudnnStatus_t st = kind == CALL_FWD  ? FWD_SIZE((cudnnConvolutionFwdAlgo_t)q->algo, &need)
                             : kind == CALL_DATA ? DATA_SIZE((cudnnConvolutionBwdDataAlgo_t)q->algo, &need)
                                                 : FILTER_SIZE((cudnnConvolutionBwdFilterAlgo_t)q->algo, &need);
    if (st != CUDNN_STATUS_SUCCESS || need > q->ws) {
        snprintf(why, sizeof why, "%.400s:%d: %s algo %d math %d: %s", g->plan_file, line, plan_kind_name(kind),
                 q->algo, q->math,
                 st != CUDNN_STATUS_SUCCESS ? cudnnGetErrorString(st) : "needs more workspace than the line gives");
        return gpu_plans_fail(g, why);
    }
    if (q->engine >= 0) {
        cgraph_plan gp[MAX_GRAPH];
        char cwhy[200] = "";
        const int ng = g->conv_api == CONV_API_LEGACY
                           ? 0
                           : cgraph_plans(g->dnn, kind, p->N, p->H, p->W, p->C, p->O, plan_dtype(p), 0.0f,
                                          any_determinism(g, p), (size_t)q->graph_ws, gp, MAX_GRAPH, cwhy, sizeof cwhy);
        (void)cudaGetLastError(); /* what an engine that failed to finalize may have left */
        int at = -1;
        for (int j = 0; j < ng; j++)
            if (at < 0 && gp[j].engine == q->engine && (uint64_t)gp[j].ws == q->graph_ws) at = j;
        for (int j = 0; j < ng; j++)
            if (j != at) cgraph_plan_free(&gp[j]);
        if (at < 0) {
            snprintf(why, sizeof why, "%.200s:%d: %s graph %lld ws %llu: cuDNN offers no such plan for this shape%s"
                     "%.150s", g->plan_file, line, plan_kind_name(kind), (long long)q->engine,
                     (unsigned long long)q->graph_ws, cwhy[0] ? ": " : "", cwhy);
            return gpu_plans_fail(g, why);
        }
        p->graph[kind] = gp[at];
        t.graph = &p->graph[kind];
    }
    msg_add(m, "; %s ", k_call_name[kind]);
    note_try(m, &t);
    return 0;
}

/* Plan p from the plan file, where it has a line of p's key (plan_key): each kind (restore_kind) and the
 * weight gradient's way. 1 when restored (*line: the line), 0 when the file has no such line, -1 on a
 * failure (the line does not fit what cuDNN offers, or the file cannot be read). The file is read afresh for
 * each plan (once per shape, when the network first meets it), so the lines that another process of the
 * same run saved meanwhile count too. */
static int plan_restore(gpu_ctx *g, conv_plan *p, plan_msg *m, int *line) {
    char key[PLAN_KEY_MAX], why[600];
    plan_rec r;
    plan_key(g, p, key, sizeof key);
    const int got = plan_file_find(g->plan_file, key, &r, line, why, sizeof why);
    if (got <= 0) return got < 0 ? gpu_plans_fail(g, why) : 0;
    for (int k = 0; k < 3; k++)
        if (restore_kind(g, p, k, &r.kind[k], *line, m)) return -1;
    if (g->wgrad == WGRAD_TIMED) {
        p->wgrad_gemm = r.wgrad_gemm;
        msg_add(m, "; backward filter as products: %s", p->wgrad_gemm ? "taken" : "not taken");
    }
    return 1;
}

static int plan_make(gpu_ctx *g, conv_plan *p) {
    const cudnnDataType_t dt = plan_dtype(p);
    const int fma = p->act == ACT_F32;
    GPU_DNN(g, cudnnCreateTensorDescriptor(&p->xd));
    GPU_DNN(g, cudnnCreateTensorDescriptor(&p->yd));
    GPU_DNN(g, cudnnCreateFilterDescriptor(&p->wd));
    GPU_DNN(g, cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NHWC, dt, p->N, p->C, p->H, p->W));
    GPU_DNN(g, cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NHWC, dt, p->N, p->O, p->H, p->W));
    GPU_DNN(g, cudnnSetFilter4dDescriptor(p->wd, dt, CUDNN_TENSOR_NHWC, p->O, p->C, 3, 3));
    for (int i = 0; i < 3; i++) { /* float32 accumulation in every case */
        GPU_DNN(g, cudnnCreateConvolutionDescriptor(&p->cd[i]));
        GPU_DNN(g, cudnnSetConvolution2dDescriptor(p->cd[i], 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        GPU_DNN(g, cudnnSetConvolutionMathType(p->cd[i], fma ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
    }
    plan_msg m = {""};
    p->wgrad_gemm = !fma && g->wgrad == WGRAD_GEMM;
    if (p->wgrad_gemm) msg_add(&m, "; backward filter as products (EDM2_CUDNN_WGRAD=gemm)");
    if (!fma && g->plan_file[0]) { /* the file's choice, where it has one (set only where plans are timed) */
        int line = 0;
        const int got = plan_restore(g, p, &m, &line);
        if (got < 0) return -1;
        char how[sizeof g->plan_file + 40];
        snprintf(how, sizeof how, "from %s:%d", g->plan_file, line);
        if (got) return plan_note(g, p, how, &m);
    }
    if (!fma && g->time_algos && plan_time(g, p, &m) == 0) {
        if (g->plan_file[0] && plan_save(g, p, &m)) return -1;
        return plan_note(g, p, any_determinism(g, p) ? "timed, any determinism" : "timed", &m);
    }
    for (int i = 0; !fma && i < 3; i++) /* the heuristics query with tensor cores allowed */
        GPU_DNN(g, cudnnSetConvolutionMathType(p->cd[i], CUDNN_TENSOR_OP_MATH));
    int n = 0, a, at;
    char why[400] = "";
    const char *kind = "forward";
    cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    GPU_DNN(g, cudnnGetConvolutionForwardAlgorithm_v7(g->dnn, p->xd, p->wd, p->cd[0], p->yd,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, fp));
    PICK_ALGO(fp, n, k_fwd_order, 5, FWD_SIZE, a, p->ws_fwd, why, fma, p->cd[0], at);
    if (a < 0) goto none;
    p->fwd = (cudnnConvolutionFwdAlgo_t)a;
    note_pick(&m, "forward", at >= 0 ? &TRY_OF(fp[at]) : NULL, a);
    kind = "backward data";
    cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    GPU_DNN(g, cudnnGetConvolutionBackwardDataAlgorithm_v7(g->dnn, p->wd, p->yd, p->cd[1], p->xd,
                                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, dp));
    PICK_ALGO(dp, n, k_data_order, 2, DATA_SIZE, a, p->ws_data, why, fma, p->cd[1], at);
    if (a < 0) goto none;
    p->bwd_data = (cudnnConvolutionBwdDataAlgo_t)a;
    note_pick(&m, "backward data", at >= 0 ? &TRY_OF(dp[at]) : NULL, a);
    kind = "backward filter";
    cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    GPU_DNN(g, cudnnGetConvolutionBackwardFilterAlgorithm_v7(g->dnn, p->xd, p->yd, p->cd[2], p->wd,
                                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, wp));
    PICK_ALGO(wp, n, k_filter_order, 2, FILTER_SIZE, a, p->ws_filter, why, fma, p->cd[2], at);
    if (a < 0) goto none;
    p->bwd_filter = (cudnnConvolutionBwdFilterAlgo_t)a;
    note_pick(&m, "backward filter", at >= 0 ? &TRY_OF(wp[at]) : NULL, a);
    return plan_note(g, p, any_determinism(g, p) ? "ranked by cuDNN's heuristics, any determinism"
                                                 : "ranked by cuDNN's heuristics", &m);
none:;
    char msg[560];
    snprintf(msg, sizeof msg, "no %s%s %s algorithm for %dx%d, %d -> %d channels; offered:%s",
             any_determinism(g, p) ? "" : "deterministic ",
             act_name(p->act), kind, p->H, p->W, p->C, p->O, why);
    return gpu_fail(g, "cuDNN 3x3 convolution", msg);
}

void *gpu_workspace(gpu_ctx *g, size_t need) {
    if (need <= g->scratch_bytes) return g->scratch;
    if (need > g->own_bytes) {
        if (g->own) g->ops.vt->free(g->ops.b, g->own);
        g->own = NULL, g->own_bytes = 0;
        if (g->ops.vt->alloc(g->ops.b, need, &g->own) != EDM2_OK) {
            gpu_oom(g, "cuDNN workspace");
            return NULL;
        }
        g->own_bytes = need;
        g->own_epoch++;
    }
    return g->own;
}

static conv_plan *plan_for(gpu_ctx *g, int act, int N, int H, int W, int C, int O) {
    for (size_t i = 0; i < g->nplans; i++) {
        conv_plan *p = &g->plans[i];
        if (p->N == N && p->H == H && p->W == W && p->C == C && p->O == O && p->act == act) return p;
    }
    if (g->nplans == g->cap_plans) {
        size_t cap = g->cap_plans ? 2 * g->cap_plans : 32;
        conv_plan *p = realloc(g->plans, cap * sizeof *p);
        if (!p) {
            gpu_fail(g, "cuDNN plan", "out of host memory");
            return NULL;
        }
        g->plans = p;
        g->cap_plans = cap;
    }
    conv_plan *p = &g->plans[g->nplans];
    memset(p, 0, sizeof *p);
    p->N = N, p->H = H, p->W = W, p->C = C, p->O = O, p->act = act;
    p->probe = g->note ? 7u : 0u;
    if (plan_make(g, p)) {
        plan_destroy(p);
        return NULL;
    }
    g->nplans++;
    return p;
}

/* The first call of each kind of a plan, timed on the network's own tensors when plans are reported (not
 * while a CUDA graph is being captured): next to the plan's "as planned" time on scratch tensors, it shows
 * whether the pass runs what cuDNN timed. A debug line; nothing else depends on it. */
typedef struct probe {
    cudaEvent_t e[2];
    int on;
} probe;
static void probe_begin(gpu_ctx *g, const conv_plan *p, int kind, probe *pr) {
    enum cudaStreamCaptureStatus st = cudaStreamCaptureStatusActive;
    pr->e[0] = pr->e[1] = NULL;
    pr->on = g->note && (p->probe >> kind & 1u) && cudaStreamIsCapturing(g->stream, &st) == cudaSuccess &&
             st == cudaStreamCaptureStatusNone;
    if (pr->on && (cudaEventCreate(&pr->e[0]) != cudaSuccess || cudaEventCreate(&pr->e[1]) != cudaSuccess ||
                   cudaEventRecord(pr->e[0], g->stream) != cudaSuccess))
        pr->on = 0, (void)cudaGetLastError(); /* no timing, and no failure left for the next launch's check */
}
static void probe_end(gpu_ctx *g, conv_plan *p, int kind, probe *pr) {
    float ms = -1;
    if (pr->on) {
        if (cudaEventRecord(pr->e[1], g->stream) == cudaSuccess && cudaEventSynchronize(pr->e[1]) == cudaSuccess &&
            cudaEventElapsedTime(&ms, pr->e[0], pr->e[1]) == cudaSuccess) {
            char line[300];
            snprintf(line, sizeof line, "cuDNN 3x3 convolution %dx%d, %d -> %d channels, batch %d: first %s on the "
                     "network's tensors %.3f ms", p->H, p->W, p->C, p->O, p->N,
                     kind == CALL_FILTER && p->wgrad_gemm ? k_call_name[CALL_WGRAD_GEMM] : k_call_name[kind], ms);
            g->note(g->note_arg, line);
        }
        p->probe &= ~(1u << kind);
    }
    if (pr->e[0]) cudaEventDestroy(pr->e[0]);
    if (pr->e[1]) cudaEventDestroy(pr->e[1]);
}

static int conv_forward(gpu_ctx *g, int act, void *y, const void *x, const void *w_hat, int N, int H, int W, int C, int O,
                        int k) {
    if (k == 1) return linear_forward(g, act, y, x, w_hat, (size_t)N * H * W, C, O, 0);
    conv_plan *p = plan_for(g, act, N, H, W, C, O);
    if (!p) return -1;
    void *ws = gpu_workspace(g, kind_ws(p, CALL_FWD, 0.0f));
    if (!ws) return -1;
    probe pr;
    probe_begin(g, p, CALL_FWD, &pr);
    const cudnnStatus_t s = run_kind(g, p, CALL_FWD, (void *)x, y, (void *)w_hat, ws, 0.0f);
    probe_end(g, p, CALL_FWD, &pr);
    GPU_DNN(g, s);
    return 0;
}

static int conv_backward(gpu_ctx *g, int act, void *dx, float *dw_hat, const void *dy, const void *x, const void *w_hat,
                         int N, int H, int W, int C, int O, int k, int acc) {
    if (k == 1) return linear_backward(g, act, dx, dw_hat, dy, x, w_hat, (size_t)N * H * W, C, O, acc);
    conv_plan *p = plan_for(g, act, N, H, W, C, O);
    if (!p) return -1;
    void *ws = NULL;
    probe pr;
    if (dx) {
        const float beta = acc ? 1.0f : 0.0f;
        if (!(ws = gpu_workspace(g, kind_ws(p, CALL_DATA, beta)))) return -1;
        probe_begin(g, p, CALL_DATA, &pr);
        const cudnnStatus_t s = run_kind(g, p, CALL_DATA, dx, (void *)dy, (void *)w_hat, ws, beta);
        probe_end(g, p, CALL_DATA, &pr);
        GPU_DNN(g, s);
    }
    /* cuDNN: in float32 straight into dw_hat; in bf16/fp16 in the data's type, then added to the float32 one. */
    const int lp = act != ACT_F32;
    const float beta = lp ? 0.0f : 1.0f;
    if (!p->wgrad_gemm && !(ws = gpu_workspace(g, kind_ws(p, CALL_FILTER, beta)))) return -1;
    int rc = 0;
    cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
    probe_begin(g, p, CALL_FILTER, &pr);
    if (p->wgrad_gemm) rc = wgrad_gemm(g, act, dw_hat, dy, x, N, H, W, C, O);
    else s = run_kind(g, p, CALL_FILTER, (void *)x, (void *)dy, lp ? g->dw_tmp : (void *)dw_hat, ws, beta);
    probe_end(g, p, CALL_FILTER, &pr);
    GPU_DNN(g, s);
    if (rc) return -1;
    if (lp && !p->wgrad_gemm) GPU_TRY(g, act_add_to_f32(g->stream, act, dw_hat, g->dw_tmp, (size_t)O * 9 * C), return -1);
    return 0;
}

int gpu_conv2d_forward(gpu_ctx *g, void *y, const void *x, const void *w_hat, int N, int H, int W, int C, int O, int k) {
    return conv_forward(g, g->act, y, x, w_hat, N, H, W, C, O, k);
}
int gpu_conv2d_backward(gpu_ctx *g, void *dx, float *dw_hat, const void *dy, const void *x, const void *w_hat, int N,
                        int H, int W, int C, int O, int k, int acc) {
    return conv_backward(g, g->act, dx, dw_hat, dy, x, w_hat, N, H, W, C, O, k, acc);
}
/* The network's first and last convolutions: few channels on one side, so thin_conv's kernels where they
 * take the shape (thin_conv.h), else cuDNN's. */
int gpu_conv2d_forward_f32(gpu_ctx *g, float *y, const float *x, const float *w_hat, int N, int H, int W, int C, int O,
                           int k) {
    if (k != 3 || !(thin_conv_kinds(C, O) & THIN_FWD)) return conv_forward(g, ACT_F32, y, x, w_hat, N, H, W, C, O, k);
    GPU_TRY(g, thin_conv_forward(g->stream, y, x, w_hat, N, H, W, C, O), return -1);
    return 0;
}
int gpu_conv2d_backward_f32(gpu_ctx *g, float *dx, float *dw_hat, const float *dy, const float *x, const float *w_hat,
                            int N, int H, int W, int C, int O, int k, int acc) {
    const int kinds = k == 3 ? thin_conv_kinds(C, O) : 0;
    if (!(kinds & THIN_FILTER) || (dx && !(kinds & THIN_DATA)))
        return conv_backward(g, ACT_F32, dx, dw_hat, dy, x, w_hat, N, H, W, C, O, k, acc);
    float *part = gpu_workspace(g, thin_conv_part_floats(N, H, W, C, O) * sizeof(float));
    if (!part) return -1;
    if (dx) GPU_TRY(g, thin_conv_backward_data(g->stream, dx, dy, w_hat, N, H, W, C, O, acc), return -1);
    GPU_TRY(g, thin_conv_backward_filter(g->stream, dw_hat, dy, x, N, H, W, C, O, part), return -1);
    return 0;
}
