/* conv_graph.c: 3x3 convolutions through cuDNN's graph API (conv_graph.h). */
#include "conv_graph.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tensors' unique ids in every graph and variant pack: x, y, w; an epilogue's operand b and scalars s0,
 * s1; its virtual tensors (the convolution's float32 sums, then each pointwise result but the last). */
enum { UID_X = 1, UID_Y = 2, UID_W = 3, UID_B = 4, UID_S0 = 5, UID_S1 = 6, UID_ACC = 10 };
#define MAX_CFGS 16  /* engine configurations looked at per heuristics mode */
#define MAX_EXTRA 24 /* an epilogue's descriptors: tensors, pointwise descriptors and operations */

/* What the plans of one graph share, kept until the last of them is freed: the operation graph and what
 * it is made of (whether cuDNN copies them into a plan or refers to them is not documented). */
typedef struct cgraph_ops {
    cudnnBackendDescriptor_t t[3], conv, op, graph; /* t: x, y, w */
    cudnnBackendDescriptor_t extra[MAX_EXTRA];      /* the epilogue's, in the order made */
    int nextra, epi;
    int refs;
} cgraph_ops;

/* What a plan was made from, freed with it (cgraph_plan.owned). */
typedef struct cgraph_owned {
    cudnnBackendDescriptor_t cfg, engine;
    cgraph_ops *ops;
} cgraph_owned;

static void destroy(cudnnBackendDescriptor_t d) {
    if (d) cudnnBackendDestroyDescriptor(d);
}

static void ops_release(cgraph_ops *o) {
    if (!o || --o->refs > 0) return;
    destroy(o->graph), destroy(o->op), destroy(o->conv);
    for (int i = o->nextra - 1; i >= 0; i--) destroy(o->extra[i]);
    for (int i = 0; i < 3; i++) destroy(o->t[i]);
    free(o);
}

#define SET(d, name, type, n, ptr) cudnnBackendSetAttribute((d), (name), (type), (n), (ptr))
#define GET(d, name, type, n, count, ptr) cudnnBackendGetAttribute((d), (name), (type), (n), (count), (ptr))
#define DESC CUDNN_TYPE_BACKEND_DESCRIPTOR
#define OK CUDNN_STATUS_SUCCESS

/* Tensor flags: a virtual tensor (an intermediate that lives inside the fused kernel), a scalar given by
 * value (its variant-pack pointer is host memory). */
enum { T_VIRTUAL = 1, T_BY_VALUE = 2 };

/* A finalized tensor descriptor of logical dimensions (n, c, h, w), laid out channels-last (NHWC; a
 * filter's (k, c, r, s) in KRSC, the same strides; dimensions of 1 broadcast); 16-byte aligned (the
 * network's buffers are). */
static cudnnStatus_t make_tensor_as(cudnnBackendDescriptor_t *d, int64_t uid, cudnnDataType_t dt, int64_t n, int64_t c,
                                    int64_t h, int64_t w, int flags) {
    const int64_t dims[4] = {n, c, h, w}, strides[4] = {h * w * c, 1, w * c, c}, align = 16;
    const bool virt = flags & T_VIRTUAL, by_value = flags & T_BY_VALUE;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, d);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    if (s == OK && virt) s = SET(*d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt);
    if (s == OK && by_value) s = SET(*d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
    if (s == OK) s = cudnnBackendFinalize(*d);
    return s;
}
static cudnnStatus_t make_tensor(cudnnBackendDescriptor_t *d, int64_t uid, cudnnDataType_t dt, int64_t n, int64_t c,
                                 int64_t h, int64_t w) {
    return make_tensor_as(d, uid, dt, n, c, h, w, 0);
}

/* Cross-correlation with padding 1, stride 1, dilation 1, float32 accumulation. */
static cudnnStatus_t make_conv(cudnnBackendDescriptor_t *d) {
    const int64_t dims = 2, pad[2] = {1, 1}, one[2] = {1, 1};
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, d);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, one);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, one);
    if (s == OK) s = cudnnBackendFinalize(*d);
    return s;
}

/* Each kind's operation and the attributes of its x, y and w roles, its convolution, alpha and beta. */
static const cudnnBackendDescriptorType_t k_op_type[3] = {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                                                         CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                                                         CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR};
static const cudnnBackendAttributeName_t k_op_attr[3][6] = {
    {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA},
    {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA},
    {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA}};

/* A pointwise operation y = mode(x[, b]) in float32 into o's epilogue (its descriptor and operation, in
 * o->extra; *op: the operation). clip: a ReLU's bound (lower -clip, upper clip, no slope: a clamp). */
static cudnnStatus_t add_pointwise(cgraph_ops *o, cudnnPointwiseMode_t mode, double clip, cudnnBackendDescriptor_t x,
                                   cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y,
                                   cudnnBackendDescriptor_t *op) {
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    const double lower = -clip, slope = 0.0, beta = 1.0;
    const float one = 1.0f;
    cudnnBackendDescriptor_t *pw = &o->extra[o->nextra];
    if (o->nextra + 2 > MAX_EXTRA) return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, pw);
    if (s == OK) o->nextra++;
    if (s == OK) s = SET(*pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    if (s == OK) s = SET(*pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    if (s == OK && mode == CUDNN_POINTWISE_RELU_FWD) {
        s = SET(*pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP, CUDNN_TYPE_DOUBLE, 1, &lower);
        if (s == OK) s = SET(*pw, CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, CUDNN_TYPE_DOUBLE, 1, &clip);
        if (s == OK) s = SET(*pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE, CUDNN_TYPE_DOUBLE, 1, &slope);
    }
    if (s == OK && mode == CUDNN_POINTWISE_SWISH_FWD)
        s = SET(*pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, 1, &beta);
    if (s == OK) s = cudnnBackendFinalize(*pw);
    if (s == OK) s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op);
    if (s == OK) o->extra[o->nextra++] = *op;
    if (s == OK) s = SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, DESC, 1, pw);
    if (s == OK) s = SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, DESC, 1, &x);
    if (s == OK && b) s = SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, DESC, 1, &b);
    if (s == OK) s = SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, DESC, 1, &y);
    if (s == OK) s = SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one); /* x and b unscaled */
    if (s == OK && b) s = SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one);
    if (s == OK) s = cudnnBackendFinalize(*op);
    return s;
}

/* A tensor of o's epilogue (make_tensor_as, kept in o->extra). */
static cudnnStatus_t extra_tensor(cgraph_ops *o, cudnnBackendDescriptor_t *d, int64_t uid, cudnnDataType_t dt,
                                  int64_t n, int64_t c, int64_t h, int64_t w, int flags) {
    if (o->nextra + 1 > MAX_EXTRA) return CUDNN_STATUS_BAD_PARAM;
    const cudnnStatus_t s = make_tensor_as(d, uid, dt, n, c, h, w, flags);
    if (s == OK) o->extra[o->nextra++] = *d;
    return s;
}

/* Epilogue `epi` (conv_graph.h) from the convolution's sums acc to y (o->t[1]) as pointwise operations into
 * ops[*n, ...): each result but the last a virtual float32 tensor of y's shape. */
static cudnnStatus_t make_epilogue(cgraph_ops *o, int epi, double clip, int N, int H, int W, int O, cudnnDataType_t dt,
                                   cudnnBackendDescriptor_t acc, cudnnBackendDescriptor_t *ops, int *n) {
    const cudnnDataType_t f = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t b = NULL, s0 = NULL, s1 = NULL, v[3] = {NULL, NULL, NULL};
    cudnnStatus_t s = epi == CG_EPI_MOD_SILU ? extra_tensor(o, &b, UID_B, f, N, O, 1, 1, 0)
                                             : extra_tensor(o, &b, UID_B, dt, N, O, H, W, 0);
    if (s == OK) s = extra_tensor(o, &s0, UID_S0, f, 1, 1, 1, 1, T_BY_VALUE);
    if (s == OK && epi != CG_EPI_MOD_SILU) s = extra_tensor(o, &s1, UID_S1, f, 1, 1, 1, 1, T_BY_VALUE);
    const int nv = epi == CG_EPI_SUM ? 2 : 3 - (epi == CG_EPI_MOD_SILU);
    for (int i = 0; i < nv && s == OK; i++) s = extra_tensor(o, &v[i], UID_ACC + 1 + i, f, N, O, H, W, T_VIRTUAL);
    if (s != OK) return s;
    if (epi == CG_EPI_MOD_SILU) { /* swish(acc b) s0 */
        s = add_pointwise(o, CUDNN_POINTWISE_MUL, 0, acc, b, v[0], &ops[(*n)++]);
        if (s == OK) s = add_pointwise(o, CUDNN_POINTWISE_SWISH_FWD, 0, v[0], NULL, v[1], &ops[(*n)++]);
        if (s == OK) s = add_pointwise(o, CUDNN_POINTWISE_MUL, 0, v[1], s0, o->t[1], &ops[(*n)++]);
        return s;
    }
    /* (acc s0 + b) s1, clamped for CG_EPI_SUM_CLIP */
    s = add_pointwise(o, CUDNN_POINTWISE_MUL, 0, acc, s0, v[0], &ops[(*n)++]);
    if (s == OK) s = add_pointwise(o, CUDNN_POINTWISE_ADD, 0, v[0], b, v[1], &ops[(*n)++]);
    const cudnnBackendDescriptor_t sum = epi == CG_EPI_SUM ? o->t[1] : v[2];
    if (s == OK) s = add_pointwise(o, CUDNN_POINTWISE_MUL, 0, v[1], s1, sum, &ops[(*n)++]);
    if (s == OK && epi == CG_EPI_SUM_CLIP)
        s = add_pointwise(o, CUDNN_POINTWISE_RELU_FWD, clip, v[2], NULL, o->t[1], &ops[(*n)++]);
    return s;
}

/* The operation graph of one convolution of `kind`, with epilogue `epi` (forward only; CG_EPI_NONE: none);
 * *step: the call that failed. */
static cudnnStatus_t make_ops(cudnnHandle_t h, cgraph_ops *o, int kind, int epi, double clip, int N, int H, int W,
                              int C, int O, cudnnDataType_t dt, float beta, const char **step) {
    const float alpha = 1.0f;
    cudnnBackendDescriptor_t acc = NULL, ops[6];
    int nops = 1;
    cudnnStatus_t s;
    o->epi = epi;
    *step = "tensor descriptors";
    s = make_tensor(&o->t[0], UID_X, dt, N, C, H, W);
    if (s == OK) s = make_tensor(&o->t[1], UID_Y, dt, N, O, H, W);
    if (s == OK) s = make_tensor(&o->t[2], UID_W, dt, O, C, 3, 3);
    if (s == OK && epi != CG_EPI_NONE) s = extra_tensor(o, &acc, UID_ACC, CUDNN_DATA_FLOAT, N, O, H, W, T_VIRTUAL);
    if (s != OK) return s;
    *step = "convolution descriptor";
    if ((s = make_conv(&o->conv)) != OK) return s;
    *step = "operation";
    const cudnnBackendAttributeName_t *a = k_op_attr[kind];
    cudnnBackendDescriptor_t roles[3] = {o->t[0], acc ? acc : o->t[1], o->t[2]};
    s = cudnnBackendCreateDescriptor(k_op_type[kind], &o->op);
    for (int i = 0; i < 3 && s == OK; i++) s = SET(o->op, a[i], DESC, 1, &roles[i]);
    if (s == OK) s = SET(o->op, a[3], DESC, 1, &o->conv);
    if (s == OK) s = SET(o->op, a[4], CUDNN_TYPE_FLOAT, 1, &alpha);
    if (s == OK) s = SET(o->op, a[5], CUDNN_TYPE_FLOAT, 1, &beta);
    if (s == OK) s = cudnnBackendFinalize(o->op);
    if (s != OK) return s;
    ops[0] = o->op;
    if (epi != CG_EPI_NONE) {
        *step = "epilogue";
        if ((s = make_epilogue(o, epi, clip, N, H, W, O, dt, acc, ops, &nops)) != OK) return s;
    }
    *step = "operation graph";
    s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &o->graph);
    if (s == OK) s = SET(o->graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, DESC, nops, ops);
    if (s == OK) s = SET(o->graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    if (s == OK) s = cudnnBackendFinalize(o->graph);
    return s;
}

/* Engine configuration cfg as an execution plan into *p when it finalizes and qualifies (deterministic
 * unless any_determinism, at most max_ws of workspace): 1; 0 when not (cfg is then destroyed). An engine
 * whose notes cannot be read counts as nondeterministic; its global index is only reported (-1: unknown). */
static int plan_of(cudnnHandle_t h, cudnnBackendDescriptor_t cfg, cgraph_ops *o, int any_determinism, size_t max_ws,
                   cgraph_plan *p) {
    cgraph_owned *own = calloc(1, sizeof *own);
    cudnnBackendDescriptor_t plan = NULL, engine = NULL;
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    int64_t n = 0, nnotes = -1, ws = 0, index = -1;
    int ok = own && cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) == OK &&
             GET(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, DESC, 1, &n, &engine) == OK;
    if (ok && GET(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT,
                  &nnotes, notes) != OK)
        nnotes = -1;
    if (ok && GET(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index) != OK)
        index = -1;
    int deterministic = nnotes >= 0, tensor_core = 0;
    for (int64_t i = 0; i < nnotes && i < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; i++) {
        if (notes[i] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) deterministic = 0;
        if (notes[i] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE) tensor_core = 1;
    }
    ok = ok && (deterministic || any_determinism) &&
         cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) == OK &&
         SET(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h) == OK &&
         SET(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, DESC, 1, &cfg) == OK &&
         cudnnBackendFinalize(plan) == OK &&
         GET(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws) == OK &&
         ws >= 0 && (size_t)ws <= max_ws;
    if (!ok) {
        destroy(plan), destroy(engine), destroy(cfg);
        free(own);
        return 0;
    }
    own->cfg = cfg, own->engine = engine, own->ops = o;
    o->refs++;
    *p = (cgraph_plan){plan, o->epi, ws, index, deterministic, tensor_core, own};
    return 1;
}

/* The plans of heuristics mode `mode` into out[*n, max) (plan_of); 0, or the failing status. */
static cudnnStatus_t from_heuristics(cudnnHandle_t h, cgraph_ops *o, cudnnBackendHeurMode_t mode, int any_determinism,
                                     size_t max_ws, cgraph_plan *out, int *n, int max) {
    cudnnBackendDescriptor_t heur = NULL, cfg[MAX_CFGS] = {NULL};
    int64_t count = 0;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur);
    if (s == OK) s = SET(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, DESC, 1, &o->graph);
    if (s == OK) s = SET(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (s == OK) s = cudnnBackendFinalize(heur);
    if (s == OK) s = GET(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, DESC, 0, &count, NULL);
    if (count > MAX_CFGS) count = MAX_CFGS;
    for (int64_t i = 0; i < count && s == OK; i++)
        s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfg[i]);
    if (s == OK && count > 0)
        s = GET(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, DESC, count, &count, cfg);
    for (int64_t i = 0; i < count; i++) { /* each cfg kept by its plan, or destroyed (by plan_of when it fails) */
        if (s != OK || *n >= max) destroy(cfg[i]);
        else if (plan_of(h, cfg[i], o, any_determinism, max_ws, &out[*n])) ++*n;
    }
    destroy(heur);
    return s;
}

/* The plans of a graph (make_ops's arguments): heuristics mode A, then the fallback list where A offers
 * none that qualifies. */
static int plans_of(cudnnHandle_t h, int kind, int epi, double clip, int N, int H, int W, int C, int O,
                    cudnnDataType_t dt, float beta, int any_determinism, size_t max_ws, cgraph_plan *out, int max,
                    char *why, size_t whylen) {
    cgraph_ops *o = calloc(1, sizeof *o);
    const char *step = "out of host memory";
    int n = 0;
    cudnnStatus_t s = o ? make_ops(h, o, kind, epi, clip, N, H, W, C, O, dt, beta, &step)
                        : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    if (o) o->refs = 1; /* ours until the plans are made */
    if (s == OK) {
        step = "heuristics, mode A";
        s = from_heuristics(h, o, CUDNN_HEUR_MODE_A, any_determinism, max_ws, out, &n, max);
    }
    if (s == OK && n == 0) {
        step = "heuristics, fallback";
        s = from_heuristics(h, o, CUDNN_HEUR_MODE_FALLBACK, any_determinism, max_ws, out, &n, max);
    }
    ops_release(o);
    if (s != OK) {
        snprintf(why, whylen, "%s: %s", step, cudnnGetErrorString(s));
        for (int i = 0; i < n; i++) cgraph_plan_free(&out[i]);
        return -1;
    }
    return n;
}

int cgraph_plans(cudnnHandle_t h, int kind, int N, int H, int W, int C, int O, cudnnDataType_t dt, float beta,
                 int any_determinism, size_t max_ws, cgraph_plan *out, int max, char *why, size_t whylen) {
    return plans_of(h, kind, CG_EPI_NONE, 0, N, H, W, C, O, dt, beta, any_determinism, max_ws, out, max, why, whylen);
}

int cgraph_plans_epi(cudnnHandle_t h, int epi, double clip, int N, int H, int W, int C, int O, cudnnDataType_t dt,
                     int any_determinism, size_t max_ws, cgraph_plan *out, int max, char *why, size_t whylen) {
    if (epi <= CG_EPI_NONE || epi > CG_EPI_SUM_CLIP) {
        snprintf(why, whylen, "no such epilogue (%d)", epi);
        return -1;
    }
    return plans_of(h, CG_FWD, epi, clip, N, H, W, C, O, dt, 0.0f, any_determinism, max_ws, out, max, why, whylen);
}

cudnnStatus_t cgraph_run_epi(cudnnHandle_t h, const cgraph_plan *p, void *x, void *y, void *w, void *ws, const void *b,
                             const float s[2]) {
    /* the epilogue's operand and scalars after x, y, w: CG_EPI_MOD_SILU has s0 only */
    void *ptrs[6] = {x, y, w, (void *)b, s ? (void *)&s[0] : NULL, s ? (void *)&s[1] : NULL};
    const int64_t uids[6] = {UID_X, UID_Y, UID_W, UID_B, UID_S0, UID_S1};
    const int64_t n = p->epi == CG_EPI_NONE ? 3 : p->epi == CG_EPI_MOD_SILU ? 5 : 6;
    if (p->epi != CG_EPI_NONE && (!b || !s)) return CUDNN_STATUS_BAD_PARAM;
    cudnnBackendDescriptor_t vp = NULL;
    cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
    if (st == OK) st = SET(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
    if (st == OK) st = SET(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    if (st == OK) st = SET(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (st == OK) st = cudnnBackendFinalize(vp);
    if (st == OK) st = cudnnBackendExecute(h, p->plan, vp);
    destroy(vp);
    return st;
}

cudnnStatus_t cgraph_run(cudnnHandle_t h, const cgraph_plan *p, void *x, void *y, void *w, void *ws) {
    return cgraph_run_epi(h, p, x, y, w, ws, NULL, NULL);
}

void cgraph_plan_free(cgraph_plan *p) {
    cgraph_owned *own = p->owned;
    destroy(p->plan);
    if (own) {
        destroy(own->cfg), destroy(own->engine);
        ops_release(own->ops);
        free(own);
    }
    memset(p, 0, sizeof *p);
}
