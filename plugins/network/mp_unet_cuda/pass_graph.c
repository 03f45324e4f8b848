/* pass_graph.c: the network's passes replayed as CUDA graphs (pass_graph.h). */
#include "pass_graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One pass: its kind and arguments, the outputs its check compares, and the output it adds into (the
 * backward's gradients), which the check restores before the replay. */
typedef struct pass {
    int kind;
    const edm2_forward_args *fwd;                          /* forwards */
    const float *params, *dD, *dlogvar;                    /* backward */
    float *grads;
    float *out[2];                                         /* compared: D and logvar, or the gradients */
    size_t nout[2];
    int accumulates;                                       /* out[0] is added into (the backward) */
} pass;

void pgraph_init(pgraph *p) {
    memset(p, 0, sizeof *p);
    const char *e = getenv("EDM2_CUDA_GRAPHS");
    p->enabled = !(e && !strcmp(e, "0"));
}

static void slot_clear(pgraph_slot *s) {
    if (s->exec) cudaGraphExecDestroy(s->exec);
    free(s->saved), free(s->mod_out);
    memset(s, 0, sizeof *s);
}

void pgraph_free(pgraph *p) {
    for (int i = 0; i < PGRAPH_SLOTS; i++) slot_clear(&p->slot[i]);
}

/* Changes whenever a buffer a graph reads or writes moves: the workspaces, cuDNN's own workspace. */
static unsigned pgraph_epoch(const unet_cuda *u) {
    return u->fws.epoch + u->bws.epoch + u->bpp[0].epoch + u->bpp[1].epoch + u->gc.own_epoch;
}

/* No workspace that a pass of this kind uses needed more than its block in its last pass: the next such
 * passes allocate nothing. A forward uses fws and bpp (unet_cuda.c); only a backward uses bws, which keeps
 * the overflow of the last backward until the next one grows it. */
static int settled(const unet_cuda *u, int kind) {
    return !u->fws.nextra && (kind != PASS_BACKWARD || !u->bws.nextra) && !u->bpp[0].nextra && !u->bpp[1].nextra;
}

static pgraph_key key_of(const pass *ps, const unet_cuda *u) {
    pgraph_key k;
    memset(&k, 0, sizeof k);
    k.kind = ps->kind;
    if (ps->fwd) {
        const edm2_forward_args *a = ps->fwd;
        const void *p[6] = {a->params, a->x, a->sigma, a->labels, a->D, a->logvar};
        memcpy(k.ptr, p, sizeof p);
        k.N = a->N;
    } else {
        const void *p[4] = {ps->params, ps->dD, ps->dlogvar, ps->grads};
        memcpy(k.ptr, p, sizeof p);
        k.N = u->rec.N;
    }
    return k;
}

/* The slot of this key, or a new one in place of the least recently used. */
static pgraph_slot *slot_for(pgraph *p, const pgraph_key *k) {
    pgraph_slot *lru = &p->slot[0];
    for (int i = 0; i < PGRAPH_SLOTS; i++) {
        pgraph_slot *s = &p->slot[i];
        if (s->key.kind && !memcmp(&s->key, k, sizeof *k)) return s;
        if (s->used < lru->used) lru = s;
    }
    slot_clear(lru);
    lru->key = *k;
    return lru;
}

static int run(unet_cuda *u, const pass *ps) {
    return ps->fwd ? unet_cuda_forward(u, ps->fwd) : unet_cuda_backward(u, ps->params, ps->dD, ps->dlogvar, ps->grads);
}

/* ---- device copies for the check: outside the backend's pool, so that its peak (what benchmarks report)
 * is that of the passes themselves, not of this one-time check ---- */

static float *dev_dup(unet_cuda *u, const float *src, size_t n) {
    void *p = NULL;
    if (cudaMalloc(&p, (n + 1) * sizeof(float)) != cudaSuccess ||
        cudaMemcpyAsync(p, src, n * sizeof(float), cudaMemcpyDeviceToDevice, u->gc.stream) != cudaSuccess) {
        cudaFree(p);
        (void)cudaGetLastError(); /* the failure must not fail the next kernel launch's check */
        return NULL;
    }
    return p;
}

/* cudaFree waits for the device: the copies' readers have finished. */
static void dev_free(float *p) {
    if (p) cudaFree(p);
}

static int dev_put(unet_cuda *u, float *dst, const float *src, size_t n) {
    return cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, u->gc.stream) == cudaSuccess ? 0 : -1;
}

/* 1 when a[n] and b[n] (device) agree, 0 when not, -1 when they cannot be read back. They agree when
 * bitwise equal or, where nondeterministic cuDNN algorithms are allowed (gpu_ctx.deterministic = 0, whose
 * sums come in another order at each call), when NaN sits at the same places and no other element
 * differs by more than 1/64 of the largest magnitude of a (a fault of capture gives order-1 errors). */
static int agree_on_device(unet_cuda *u, const float *a, const float *b, size_t n) {
    const size_t chunk = (size_t)1 << 22;
    float *ha = malloc(chunk * sizeof(float)), *hb = malloc(chunk * sizeof(float));
    int agree = ha && hb ? 1 : -1;
    double amax = 0, dmax = 0;
    for (size_t off = 0; agree == 1 && off < n; off += chunk) {
        const size_t m = n - off < chunk ? n - off : chunk;
        if (u->ops.vt->download(u->ops.b, ha, a + off, m * sizeof(float)) != EDM2_OK ||
            u->ops.vt->download(u->ops.b, hb, b + off, m * sizeof(float)) != EDM2_OK)
            agree = -1;
        else if (u->gc.deterministic)
            agree = memcmp(ha, hb, m * sizeof(float)) ? 0 : 1;
        else
            for (size_t i = 0; i < m && agree == 1; i++) {
                if (isnan(ha[i]) || isnan(hb[i])) {
                    agree = !isnan(ha[i]) == !isnan(hb[i]);
                    continue;
                }
                if (fabs((double)ha[i]) > amax) amax = fabs((double)ha[i]);
                if (ha[i] == hb[i]) continue;
                if (isinf(ha[i]) || isinf(hb[i])) {
                    agree = 0;
                    continue;
                }
                const double d = fabs((double)ha[i] - (double)hb[i]);
                if (d > dmax) dmax = d;
            }
    }
    if (agree == 1 && dmax > amax / 64) agree = 0;
    free(ha), free(hb);
    return agree;
}

static void turn_off(pgraph *p, const char *why, int *turned_off) {
    snprintf(p->why_off, sizeof p->why_off, "%s", why);
    p->enabled = 0;
    pgraph_free(p);
    *turned_off = 1;
}

/* The capture round: the eager pass (its outputs kept), then the pass captured, replayed and compared with
 * it. Any failure turns the graphs off and leaves the eager pass's results. */
static int capture(pgraph *p, pgraph_slot *s, unet_cuda *u, const pass *ps, int *turned_off) {
    char why[200] = "";
    float *before = NULL, *eager[2] = {NULL, NULL};
    if (ps->accumulates && !(before = dev_dup(u, ps->out[0], ps->nout[0])))
        snprintf(why, sizeof why, "no device memory to check the graph of a backward");
    int rc = run(u, ps); /* eager */
    if (!rc && why[0]) turn_off(p, why, turned_off);
    if (rc || why[0] || !settled(u, ps->kind) || p->epoch != pgraph_epoch(u)) goto eager_only; /* capture at a later pass */
    for (int i = 0; i < 2 && !why[0]; i++)
        if (ps->nout[i] && !(eager[i] = dev_dup(u, ps->out[i], ps->nout[i])))
            snprintf(why, sizeof why, "no device memory to check a graph");
    if (!why[0] && before && dev_put(u, ps->out[0], before, ps->nout[0]))
        snprintf(why, sizeof why, "cannot restore the gradients for the check");
    if (!why[0]) {
        cudaGraph_t graph = NULL;
        cudaError_t e = cudaStreamBeginCapture(u->gc.stream, cudaStreamCaptureModeThreadLocal);
        if (e != cudaSuccess) {
            snprintf(why, sizeof why, "stream capture did not begin: %s", cudaGetErrorString(e));
        } else {
            const int crc = run(u, ps);
            e = cudaStreamEndCapture(u->gc.stream, &graph);
            if (crc) snprintf(why, sizeof why, "the pass failed under capture: %.150s", u->gc.err);
            else if (e != cudaSuccess) snprintf(why, sizeof why, "capture failed: %s", cudaGetErrorString(e));
            else if (!settled(u, ps->kind) || p->epoch != pgraph_epoch(u))
                snprintf(why, sizeof why, "a workspace grew under capture");
            else if ((e = cudaGraphInstantiate(&s->exec, graph, 0)) != cudaSuccess)
                snprintf(why, sizeof why, "graph instantiation failed: %s", cudaGetErrorString(e)), s->exec = NULL;
            else if ((e = cudaGraphLaunch(s->exec, u->gc.stream)) != cudaSuccess)
                snprintf(why, sizeof why, "graph launch failed: %s", cudaGetErrorString(e));
            if (graph) cudaGraphDestroy(graph);
            if (why[0]) (void)cudaGetLastError(); /* a failed capture's error must not fail the next launch check */
            gpu_clear(&u->gc);
        }
    }
    for (int i = 0; i < 2 && !why[0]; i++) {
        if (!ps->nout[i]) continue;
        const int agree = agree_on_device(u, eager[i], ps->out[i], ps->nout[i]);
        if (agree < 0) snprintf(why, sizeof why, "cannot read a graph's outputs back");
        else if (!agree) snprintf(why, sizeof why, "a replayed graph differs from its eager pass");
    }
    if (!why[0] && ps->kind == PASS_TRAIN) { /* the record this forward leaves, restored at each replay */
        const size_t bytes = (size_t)u->g.nmods * sizeof *u->saved, out_bytes = (size_t)u->g.nmods * sizeof *u->mod_out;
        s->saved = malloc(bytes), s->mod_out = malloc(out_bytes);
        if (s->saved && s->mod_out) {
            memcpy(s->saved, u->saved, bytes), memcpy(s->mod_out, u->mod_out, out_bytes);
            s->rec = u->rec;
        } else {
            snprintf(why, sizeof why, "out of host memory");
        }
    }
    if (!why[0]) p->captured++;
    if (why[0]) { /* the eager pass's results again: restored, or recomputed from the state before it */
        turn_off(p, why, turned_off);
        if (before && eager[0]) rc = dev_put(u, ps->out[0], eager[0], ps->nout[0])
                                         ? gpu_fail(&u->gc, "CUDA graph check", "cannot restore the gradients")
                                         : 0;
        else if (before) rc = dev_put(u, ps->out[0], before, ps->nout[0]) || run(u, ps) ? -1 : 0;
        else rc = run(u, ps);
    }
eager_only:
    dev_free(eager[0]), dev_free(eager[1]), dev_free(before);
    return rc;
}

static int pgraph_run(pgraph *p, unet_cuda *u, const pass *ps, int *turned_off) {
    *turned_off = 0;
    /* Training passes with dropout run eagerly: the kernels take each step's draw by value. */
    if (!p->enabled || (ps->kind != PASS_EVAL && u->g.hp.dropout > 0)) return run(u, ps);
    if (p->epoch != pgraph_epoch(u)) { /* a workspace moved: every graph holds stale addresses */
        pgraph_free(p);
        p->epoch = pgraph_epoch(u);
    }
    const pgraph_key k = key_of(ps, u);
    pgraph_slot *s = slot_for(p, &k);
    s->used = ++p->clock;
    if (s->exec) {
        if (ps->kind == PASS_TRAIN) {
            memcpy(u->saved, s->saved, (size_t)u->g.nmods * sizeof *u->saved);
            memcpy(u->mod_out, s->mod_out, (size_t)u->g.nmods * sizeof *u->mod_out);
            u->rec = s->rec, u->have_saved = 1;
        } else if (ps->kind == PASS_EVAL) {
            u->have_saved = 0;
        }
        const cudaError_t e = cudaGraphLaunch(s->exec, u->gc.stream);
        return e == cudaSuccess ? 0 : gpu_fail(&u->gc, "CUDA graph launch", cudaGetErrorString(e));
    }
    /* Eager while the workspaces settle: the first pass makes plans and grows them, the second sizes them. */
    if (++s->seen < 3) return run(u, ps);
    return capture(p, s, u, ps, turned_off);
}

int pgraph_forward(pgraph *p, unet_cuda *u, const edm2_forward_args *a, int *turned_off) {
    const size_t nD = (size_t)a->N * u->g.hp.img_channels * u->g.hp.img_resolution * u->g.hp.img_resolution;
    pass ps = {a->training ? PASS_TRAIN : PASS_EVAL, a, NULL, NULL, NULL, NULL, {a->D, a->logvar},
               {nD, a->logvar ? (size_t)a->N : 0}, 0};
    return pgraph_run(p, u, &ps, turned_off);
}

int pgraph_backward(pgraph *p, unet_cuda *u, const float *params, const float *dD, const float *dlogvar, float *grads,
                    int *turned_off) {
    pass ps = {PASS_BACKWARD, NULL, params, dD, dlogvar, grads, {grads, NULL}, {u->g.arena_floats, 0}, 1};
    return pgraph_run(p, u, &ps, turned_off);
}
