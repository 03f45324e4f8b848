/* pass_graph.h: the CUDA mp_unet's passes replayed as CUDA graphs, so that launching a few thousand kernels
 * per pass stops costing time at small batches (a sampler's dozens of evaluations, a small network's
 * training steps). A graph is kept per kind of pass (evaluation forward, training forward, backward) and
 * set of arguments (the pointers and N; a sampler alternates a few buffers), captured at the third pass
 * with those arguments, once the workspaces have stopped growing, and checked once, bitwise, against the eager pass it stands for (for the backward, which adds
 * into the gradients, from the same starting gradients). A graph that does not reproduce its eager pass, or
 * a capture that fails, turns the graphs off for the instance with a warning: every pass then runs eagerly,
 * as before. When any workspace moves (a larger pass grew it) the graphs are captured anew. A replayed
 * training forward restores the record its backward reads (unet_record, the blocks' gblock_saved and the
 * modules' outputs), which another pass may have replaced since. Training passes of a network with dropout
 * run eagerly (the kernels take each step's draw by value). EDM2_CUDA_GRAPHS=0 in the environment turns
 * the graphs off. */
#ifndef EDM2_PASS_GRAPH_H
#define EDM2_PASS_GRAPH_H

#include "unet_cuda.h"

#define PGRAPH_SLOTS 6

enum { PASS_EVAL = 1, PASS_TRAIN = 2, PASS_BACKWARD = 3 };

/* What a graph is kept for: the kind of pass (PASS_*; 0: an empty slot), N and the pointers (forwards:
 * arena, x, sigma, labels, D, logvar; backward: arena, dD, dlogvar, gradients). Compared bytewise. */
typedef struct pgraph_key {
    int kind, N;
    const void *ptr[6];
} pgraph_key;

typedef struct pgraph_slot {
    pgraph_key key;
    int seen;                   /* passes with these arguments so far */
    cudaGraphExec_t exec;       /* NULL until captured and checked */
    unet_record rec;            /* training forward: the record it leaves (unet_cuda.rec), */
    gblock_saved *saved;        /* its blocks' (unet_cuda.saved, [nmods]) */
    void **mod_out;             /* and its modules' outputs (unet_cuda.mod_out, [nmods]) */
    unsigned long long used;
} pgraph_slot;

typedef struct pgraph {
    int enabled;
    unsigned epoch;             /* the workspaces' addresses the graphs hold (pgraph_epoch) */
    char why_off[200];          /* set when the graphs were turned off after a failure */
    unsigned captured;          /* graphs captured and checked so far */
    pgraph_slot slot[PGRAPH_SLOTS];
    unsigned long long clock;
} pgraph;

/* enabled: 1 unless EDM2_CUDA_GRAPHS=0. */
void pgraph_init(pgraph *p);
void pgraph_free(pgraph *p);
/* A forward / backward through the graphs: replayed, captured, or eager. 0, or -1 with a reason in
 * u->gc.err. *turned_off is set to 1 when this call turned the graphs off (p->why_off says why; the pass's
 * results are right either way). */
int pgraph_forward(pgraph *p, unet_cuda *u, const edm2_forward_args *a, int *turned_off);
int pgraph_backward(pgraph *p, unet_cuda *u, const float *params, const float *dD, const float *dlogvar, float *grads,
                    int *turned_off);

#endif
