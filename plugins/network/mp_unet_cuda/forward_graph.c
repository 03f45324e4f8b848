/* forward_graph.c: evaluation forwards replayed as CUDA graphs (forward_graph.h). */
#include "forward_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fgraph_init(fgraph *f) {
    memset(f, 0, sizeof *f);
    const char *e = getenv("EDM2_CUDA_GRAPHS");
    f->enabled = !(e && !strcmp(e, "0"));
}

static void slot_clear(fgraph_slot *s) {
    if (s->exec) cudaGraphExecDestroy(s->exec);
    memset(s, 0, sizeof *s);
}

void fgraph_free(fgraph *f) {
    for (int i = 0; i < FGRAPH_SLOTS; i++) slot_clear(&f->slot[i]);
}

static edm2_forward_args key_of(const edm2_forward_args *a) {
    edm2_forward_args k;
    memset(&k, 0, sizeof k);
    k.params = a->params, k.x = a->x, k.sigma = a->sigma, k.labels = a->labels, k.N = a->N, k.D = a->D;
    k.logvar = a->logvar;
    return k;
}

static int same_key(const edm2_forward_args *k, const edm2_forward_args *a) {
    return k->params == a->params && k->x == a->x && k->sigma == a->sigma && k->labels == a->labels && k->N == a->N &&
           k->D == a->D && k->logvar == a->logvar;
}

/* The slot of this key, or a new one in place of the least recently used. */
static fgraph_slot *slot_for(fgraph *f, const edm2_forward_args *a) {
    fgraph_slot *lru = &f->slot[0];
    for (int i = 0; i < FGRAPH_SLOTS; i++) {
        fgraph_slot *s = &f->slot[i];
        if (s->seen && same_key(&s->key, a)) return s;
        if (s->used < lru->used) lru = s;
    }
    slot_clear(lru);
    lru->key = key_of(a);
    return lru;
}

static int turn_off(fgraph *f, const char *why, int *turned_off) {
    snprintf(f->why_off, sizeof f->why_off, "%s", why);
    f->enabled = 0;
    fgraph_free(f);
    *turned_off = 1;
    return 0;
}

/* Changes whenever a buffer a graph reads or writes moves: the forward workspaces, cuDNN's own workspace. */
static unsigned fgraph_epoch(const unet_cuda *u) { return u->fws.epoch + u->tws.epoch + u->gc.own_epoch; }

/* Device floats [n] to host, appended to *buf at offset off (grown as needed). */
static int fetch(unet_cuda *u, float **buf, size_t off, const float *dev, size_t n) {
    float *p = realloc(*buf, (off + n + 1) * sizeof(float));
    if (!p) return -1;
    *buf = p;
    return u->ops.vt->download(u->ops.b, p + off, dev, n * sizeof(float)) == EDM2_OK ? 0 : -1;
}

/* Captures the forward of `a` into s->exec, replays it once and compares its outputs with the eager pass
 * that has just written them. 0 (graph kept, or graphs turned off: the outputs are right either way), -1 on
 * a device failure. */
static int capture(fgraph *f, fgraph_slot *s, unet_cuda *u, const edm2_forward_args *a, int *turned_off) {
    const size_t nD = (size_t)a->N * u->g.hp.img_channels * u->g.hp.img_resolution * u->g.hp.img_resolution;
    const size_t nL = a->logvar ? (size_t)a->N : 0;
    float *eager = NULL, *replay = NULL;
    if (fetch(u, &eager, 0, a->D, nD) || (nL && fetch(u, &eager, nD, a->logvar, nL))) {
        free(eager);
        return gpu_fail(&u->gc, "CUDA graph", "cannot read the eager outputs back");
    }
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamBeginCapture(u->gc.stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        free(eager);
        char why[160];
        snprintf(why, sizeof why, "stream capture did not begin: %s", cudaGetErrorString(e));
        return turn_off(f, why, turned_off);
    }
    const unsigned epoch = fgraph_epoch(u);
    const int rc = unet_cuda_forward(u, a);
    e = cudaStreamEndCapture(u->gc.stream, &graph);
    char why[200] = "";
    if (rc) snprintf(why, sizeof why, "the forward failed under capture: %.150s", u->gc.err);
    else if (e != cudaSuccess) snprintf(why, sizeof why, "capture failed: %s", cudaGetErrorString(e));
    else if (u->fws.nextra || u->tws.nextra || fgraph_epoch(u) != epoch)
        snprintf(why, sizeof why, "a workspace grew under capture");
    else if ((e = cudaGraphInstantiate(&s->exec, graph, 0)) != cudaSuccess)
        snprintf(why, sizeof why, "graph instantiation failed: %s", cudaGetErrorString(e)), s->exec = NULL;
    else if ((e = cudaGraphLaunch(s->exec, u->gc.stream)) != cudaSuccess)
        snprintf(why, sizeof why, "graph launch failed: %s", cudaGetErrorString(e));
    if (graph) cudaGraphDestroy(graph);
    u->gc.err[0] = 0;
    if (!why[0] && (fetch(u, &replay, 0, a->D, nD) || (nL && fetch(u, &replay, nD, a->logvar, nL))))
        snprintf(why, sizeof why, "cannot read the replayed outputs back");
    if (!why[0] && memcmp(eager, replay, (nD + nL) * sizeof(float)))
        snprintf(why, sizeof why, "the replayed graph differs from the eager pass");
    free(eager), free(replay);
    if (!why[0]) {
        s->epoch = fgraph_epoch(u);
        return 0;
    }
    /* The eager outputs stand (a failed capture wrote nothing); a replay that differed is redone eagerly. */
    turn_off(f, why, turned_off);
    return unet_cuda_forward(u, a);
}

int fgraph_forward(fgraph *f, unet_cuda *u, const edm2_forward_args *a, int *turned_off) {
    *turned_off = 0;
    if (!f->enabled || a->training) return unet_cuda_forward(u, a);
    fgraph_slot *s = slot_for(f, a);
    s->used = ++f->clock;
    if (s->exec && s->epoch != fgraph_epoch(u)) { /* captured with buffers since moved: warm up anew */
        const edm2_forward_args k = s->key;
        slot_clear(s);
        s->key = k, s->used = f->clock;
    }
    if (s->exec) {
        u->have_saved = 0;
        cudaError_t e = cudaGraphLaunch(s->exec, u->gc.stream);
        return e == cudaSuccess ? 0 : gpu_fail(&u->gc, "CUDA graph launch", cudaGetErrorString(e));
    }
    s->seen++;
    /* Eager while the workspace settles: the first pass makes plans and grows it, the second sizes it. */
    const int rc = unet_cuda_forward(u, a);
    if (rc || s->seen < 3 || u->fws.nextra || u->tws.nextra) return rc;
    return capture(f, s, u, a, turned_off);
}
