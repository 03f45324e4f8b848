/* forward_graph.h: the CUDA mp_unet's evaluation forward replayed as a CUDA graph (issue: launch overhead at
 * small batch, e.g. a sampler's 63 evaluations). A graph is kept per set of forward arguments (the arena,
 * x, sigma, labels, D, logvar pointers and N: a sampler alternates a few buffers), captured at the third
 * evaluation with those arguments, once the workspace has stopped growing, and checked once, bitwise,
 * against the eager pass it replaces: a graph that does not reproduce it (or a capture that fails) turns
 * the graphs off for the instance with a warning, and every evaluation runs eagerly as before. A graph
 * whose workspace has moved since (a larger pass grew it) is dropped and captured anew. Training passes
 * always run eagerly. EDM2_CUDA_GRAPHS=0 in the environment turns the graphs off. */
#ifndef EDM2_FORWARD_GRAPH_H
#define EDM2_FORWARD_GRAPH_H

#include "unet_cuda.h"

#define FGRAPH_SLOTS 4

typedef struct fgraph_slot {
    edm2_forward_args key; /* struct_size, training and dropout_rng cleared */
    int seen;              /* evaluations with this key so far */
    cudaGraphExec_t exec;  /* NULL until captured and checked */
    unsigned epoch;        /* the workspaces' addresses it was captured with (fgraph_epoch) */
    unsigned long long used;
} fgraph_slot;

typedef struct fgraph {
    int enabled;
    char why_off[200];     /* set when the graphs were turned off after a failure */
    fgraph_slot slot[FGRAPH_SLOTS];
    unsigned long long clock;
} fgraph;

/* enabled: 1 unless EDM2_CUDA_GRAPHS=0. */
void fgraph_init(fgraph *f);
void fgraph_free(fgraph *f);
/* An evaluation forward (a->training == 0) through the cache: replayed, captured, or eager. 0, or -1 with
 * a reason in u->gc.err. *turned_off is set to 1 when this call turned the graphs off (f->why_off says
 * why; the call's result is still right). */
int fgraph_forward(fgraph *f, unet_cuda *u, const edm2_forward_args *a, int *turned_off);

#endif
