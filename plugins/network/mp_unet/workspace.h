/* workspace.h: a bump allocator for activations. It keeps its memory across passes; when a pass needs
 * more than it holds, the excess comes from separate blocks and the next reset grows the main block to
 * that pass's peak. Temporaries are given back in stack order with ws_mark / ws_release. */
#ifndef EDM2_WORKSPACE_H
#define EDM2_WORKSPACE_H

#include <stddef.h>

typedef struct ws_block {
    float *p;
    size_t n; /* floats */
} ws_block;

typedef struct workspace {
    float *base;
    size_t cap, used;  /* floats */
    ws_block *extra;   /* overflow allocations of this pass (freed at the next reset) */
    size_t nextra;
    size_t live, peak; /* floats handed out and not released; their maximum in this pass */
    int failed;        /* an allocation failed in this pass */
} workspace;

/* A point to return to: ws_release frees everything allocated after it. */
typedef struct ws_point {
    size_t used, live, nextra;
} ws_point;

/* n floats, 64-float aligned, uninitialised; NULL (and ws->failed) when out of memory. */
float *ws_alloc(workspace *ws, size_t n);
float *ws_zeros(workspace *ws, size_t n);
ws_point ws_mark(const workspace *ws);
void ws_release(workspace *ws, ws_point p);
/* Frees everything of the previous pass; grows the block to the previous pass's peak. 0 or -1. */
int ws_reset(workspace *ws);
void ws_free(workspace *ws);

#endif
