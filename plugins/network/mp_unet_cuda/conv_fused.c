/* conv_fused.c: a 3x3 convolution and the element-wise layer after it as one cuDNN graph (conv_fused.h). */
#include "conv_fused.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_ops.h"
#include "conv_cuda.h"
#include "conv_graph.h"
#include "mp_math.h"

#define MAX_FUSED 2 /* fused plans timed per shape (cuDNN compiles each when it is finalized: seconds) */

struct fused_plan {
    int N, H, W, C, O, act, epi; /* the shape, the activations' type, the graph's epilogue (CG_EPI_*) */
    float clip;
    cgraph_plan plan; /* plan.plan NULL: not fused */
};

/* The graph's epilogue for e: the sum clamped or not. */
static int epi_of(const conv_epilogue *e) { return e->kind == CG_EPI_SUM && e->clip > 0 ? CG_EPI_SUM_CLIP : e->kind; }

/* e's operand and scalars as the graph takes them (conv_graph.h): MP-SiLU's 1 / 0.596; mp_sum(z, acc, t) =
 * ((1 - t) z + t acc) / sqrt((1 - t)^2 + t^2) (docs/formulas.md §1) as (acc s0 + z) s1. */
static const void *epi_args(const conv_epilogue *e, float s[2]) {
    if (e->kind == CG_EPI_MOD_SILU) {
        s[0] = 1.0f / MP_SILU_SCALE, s[1] = 0.0f;
        return e->c;
    }
    const float inv = mp_sum_scale(e->t), wz = (1.0f - e->t) * inv, wacc = e->t * inv;
    s[0] = wacc / wz, s[1] = wz;
    return e->z;
}

static int run_fused(gpu_ctx *g, const fused_plan *f, void *y, const void *x, const void *w_hat, const conv_epilogue *e) {
    float s[2];
    const void *b = epi_args(e, s);
    void *ws = gpu_workspace(g, (size_t)f->plan.ws);
    if (!ws) return -1;
    GPU_DNN(g, cgraph_run_epi(g->dnn, &f->plan, (void *)x, y, (void *)w_hat, ws, b, s));
    return 0;
}

int conv_epilogue_apart(gpu_ctx *g, void *y, void *tmp, unsigned char *keep, const void *x, const void *w_hat, int N,
                        int H, int W, int C, int O, const conv_epilogue *e) {
    if (gpu_conv2d_forward(g, tmp, x, w_hat, N, H, W, C, O, 3)) return -1;
    const size_t HW = (size_t)H * W, n = (size_t)N * HW * O;
    void *st = g->stream;
    GPU_TRY(g,
            e->kind == CG_EPI_MOD_SILU ? act_modulate_silu_forward(st, g->act, y, tmp, e->c, N, HW, O)
            : e->clip > 0              ? act_sum_clip_forward(st, g->act, y, keep, e->z, tmp, e->t, e->clip, n)
                                       : act_sum_forward(st, g->act, y, e->z, tmp, e->t, n),
            return -1);
    return 0;
}

/* One way of running it on scratch tensors, for gpu_calls_ms: fused by plan f, or unfused (f->plan NULL). */
typedef struct trial {
    const fused_plan *f;
    void *y, *tmp;
    const void *x, *w;
    const conv_epilogue *e;
} trial;
static int trial_call(gpu_ctx *g, const void *arg) {
    const trial *t = arg;
    const fused_plan *f = t->f;
    if (f->plan.plan) return run_fused(g, f, t->y, t->x, t->w, t->e);
    return conv_epilogue_apart(g, t->y, t->tmp, NULL, t->x, t->w, f->N, f->H, f->W, f->C, f->O, t->e);
}
/* Its time in ms: one call to warm up (and compile), the mean of three timed; -1 when it failed (the failure
 * is then forgotten: the other way runs). */
static float trial_ms(gpu_ctx *g, const trial *t) {
    float ms = trial_call(g, t) == 0 ? gpu_calls_ms(g, trial_call, t, 3) : -1.0f;
    if (ms < 0) gpu_clear(g), (void)cudaGetLastError();
    return ms < 0 ? -1.0f : ms / 3;
}

static const char *epi_name(int epi) {
    return epi == CG_EPI_MOD_SILU ? "modulation + MP-SiLU" : epi == CG_EPI_SUM ? "MP sum" : "MP sum + clip";
}

/* Plan f for epilogue e: cuDNN's fused plans (deterministic unless any determinism is allowed, a workspace
 * of at most 512 MiB or an eighth of the free memory), each timed on scratch tensors: with
 * EDM2_CUDNN_FUSE=on the first that cuDNN's heuristics rank (no choice by time: a rerun fuses the same way,
 * hence the same bits), kept where it runs; with =timed the fastest of MAX_FUSED, kept where faster than
 * the unfused way. Else none (the caller runs the two apart). Reported as one debug line. A fused plan that
 * cannot be made, timed or run is not a failure: the unfused way stays. */
static void fused_make(gpu_ctx *g, fused_plan *f, const conv_epilogue *e) {
    const size_t es = act_size(f->act), P = (size_t)f->N * f->H * f->W;
    const size_t nx = P * f->C, ny = P * f->O, nw = (size_t)f->O * 9 * f->C;
    const size_t nb = e->kind == CG_EPI_MOD_SILU ? (size_t)f->N * f->O * sizeof(float) : ny * es;
    size_t free_b = 0, total_b = 0, max_ws = (size_t)512 << 20;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && free_b / 8 < max_ws) max_ws = free_b / 8;
    char why[200] = "", line[1400];
    int len = snprintf(line, sizeof line, "cuDNN fused 3x3 convolution %dx%d, %d -> %d channels, batch %d, %s, %s (%s): ",
                       f->H, f->W, f->C, f->O, f->N, act_name(f->act), epi_name(f->epi),
                       g->fuse == FUSE_ON ? "EDM2_CUDNN_FUSE=on" : "timed");
    cgraph_plan gp[MAX_FUSED];
    const int n = cgraph_plans_epi(g->dnn, f->epi, f->clip, f->N, f->H, f->W, f->C, f->O,
                                   f->act == ACT_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF, !g->deterministic, max_ws,
                                   gp, g->fuse == FUSE_ON ? 1 : MAX_FUSED, why, sizeof why);
    (void)cudaGetLastError(); /* what an engine that failed to compile may have left */
    void *x = NULL, *y = NULL, *tmp = NULL, *w = NULL, *b = NULL;
    float ms[MAX_FUSED], unfused = -1;
    int best = -1;
    conv_epilogue se = *e; /* the same layer on the scratch operand */
    if (n <= 0) {
        snprintf(line + len, sizeof line - len, "not fused (cuDNN fuses no plan for it%s%s)", why[0] ? ": " : "", why);
        goto done;
    }
    if (cudaMalloc(&x, nx * es) != cudaSuccess || cudaMalloc(&y, ny * es) != cudaSuccess ||
        cudaMalloc(&tmp, ny * es) != cudaSuccess || cudaMalloc(&w, nw * es) != cudaSuccess ||
        cudaMalloc(&b, nb) != cudaSuccess || cudaMemsetAsync(x, 0, nx * es, g->stream) != cudaSuccess ||
        cudaMemsetAsync(w, 0, nw * es, g->stream) != cudaSuccess || cudaMemsetAsync(b, 0, nb, g->stream) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(line + len, sizeof line - len, "not fused (no device memory to time the plans)");
        goto done;
    }
    if (e->kind == CG_EPI_MOD_SILU) se.c = b;
    else se.z = b;
    for (int i = 0; i < n; i++) {
        fused_plan fi = *f;
        fi.plan = gp[i];
        const trial t = {&fi, y, tmp, x, w, &se};
        ms[i] = trial_ms(g, &t);
        if (ms[i] >= 0 && (best < 0 || ms[i] < ms[best])) best = i;
    }
    if (g->fuse == FUSE_TIMED) {
        fused_plan fu = *f;
        memset(&fu.plan, 0, sizeof fu.plan);
        const trial t = {&fu, y, tmp, x, w, &se};
        unfused = trial_ms(g, &t);
    }
    const int use = best >= 0 && (g->fuse == FUSE_ON || (unfused >= 0 && ms[best] < unfused));
    if (use) len += snprintf(line + len, sizeof line - len, "fused, graph engine %lld (%lld MiB) %.3f ms",
                             (long long)gp[best].engine, (long long)(gp[best].ws >> 20), ms[best]);
    else len += snprintf(line + len, sizeof line - len, "not fused (%s)",
                         best < 0 ? "no fused plan ran" : "the convolution and the layer apart are faster");
    for (int i = 0, k = 0; i < n && len < (int)sizeof line; i++)
        if (!use || i != best)
            len += snprintf(line + len, sizeof line - len, "%sgraph engine %lld %s%.3f ms", k++ ? ", " : "; tried ",
                            (long long)gp[i].engine, ms[i] < 0 ? "failed " : "", ms[i] < 0 ? 0.0 : ms[i]);
    if (g->fuse == FUSE_TIMED && len < (int)sizeof line)
        snprintf(line + len, sizeof line - len, "; apart %s%.3f ms", unfused < 0 ? "failed " : "",
                 unfused < 0 ? 0.0 : unfused);
    if (use) f->plan = gp[best];
done:
    (void)cudaStreamSynchronize(g->stream); /* every trial done (a failed one may have queued work) */
    for (int i = 0; i < n; i++)
        if (!f->plan.plan || i != best) cgraph_plan_free(&gp[i]);
    cudaFree(x), cudaFree(y), cudaFree(tmp), cudaFree(w), cudaFree(b);
    (void)cudaGetLastError();
    if (g->note) g->note(g->note_arg, line);
}

/* The plan of this shape and epilogue made so far, or NULL. */
static fused_plan *plan_found(gpu_ctx *g, int N, int H, int W, int C, int O, int epi, float clip) {
    for (size_t i = 0; i < g->nfplans; i++) {
        fused_plan *f = &g->fplans[i];
        if (f->N == N && f->H == H && f->W == W && f->C == C && f->O == O && f->act == g->act && f->epi == epi &&
            f->clip == clip)
            return f;
    }
    return NULL;
}

/* A new plan of this shape and epilogue (fused_make); NULL when out of host memory (recorded). */
static fused_plan *plan_new(gpu_ctx *g, int N, int H, int W, int C, int O, int epi, float clip, const conv_epilogue *e) {
    if (g->nfplans == g->cap_fplans) {
        const size_t cap = g->cap_fplans ? 2 * g->cap_fplans : 16;
        fused_plan *p = realloc(g->fplans, cap * sizeof *p);
        if (!p) {
            gpu_fail(g, "cuDNN fused plan", "out of host memory");
            return NULL;
        }
        g->fplans = p, g->cap_fplans = cap;
    }
    fused_plan *f = &g->fplans[g->nfplans];
    memset(f, 0, sizeof *f);
    f->N = N, f->H = H, f->W = W, f->C = C, f->O = O, f->act = g->act, f->epi = epi, f->clip = clip;
    fused_make(g, f, e);
    g->nfplans++;
    return f;
}

int conv_fused_forward(gpu_ctx *g, void *y, const void *x, const void *w_hat, int N, int H, int W, int C, int O,
                       const conv_epilogue *e) {
    if (g->fuse == FUSE_OFF || (e->kind == CG_EPI_SUM && !(e->t > 0 && e->t < 1))) return 1; /* (float32: off) */
    const int epi = epi_of(e);
    const float clip = epi == CG_EPI_SUM_CLIP ? e->clip : 0.0f;
    fused_plan *f = plan_found(g, N, H, W, C, O, epi, clip);
    if (!f) { /* made (timed) on first use, never while a CUDA graph is being captured */
        enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(g->stream, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone) return 1;
        if (!(f = plan_new(g, N, H, W, C, O, epi, clip, e))) return -1;
    }
    if (!f->plan.plan) return 1;
    return run_fused(g, f, y, x, w_hat, e) ? -1 : 0;
}

void conv_fused_free(gpu_ctx *g) {
    for (size_t i = 0; i < g->nfplans; i++) cgraph_plan_free(&g->fplans[i].plan);
    free(g->fplans);
    g->fplans = NULL;
    g->nfplans = g->cap_fplans = 0;
}
