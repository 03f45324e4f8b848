/* workspace.h: a bump allocator for activations. It keeps its memory across passes; when a pass needs
 * more than it holds, the excess comes from separate blocks and the next reset grows the main block to
 * that pass's total. Within a pass every buffer is fresh memory (no reuse): giving temporaries back for
 * reuse made steps ~10% slower on the 2-vCPU development machine (a buffer's cache lines, last written by
 * the other core, must come back before they are overwritten), so memory is reused only across passes. */
#ifndef EDM2_WORKSPACE_H
#define EDM2_WORKSPACE_H

#include <stddef.h>

typedef struct ws_block {
    float *p;
    size_t n; /* floats */
} ws_block;

typedef struct workspace {
    float *base;
    size_t cap, used; /* floats */
    ws_block *extra;  /* overflow blocks of this pass (unmapped at the next reset) */
    size_t nextra;
    size_t need;      /* floats this pass has asked for */
    int failed;       /* an allocation failed in this pass */
} workspace;

/* n floats, 64-float aligned, uninitialised; NULL (and ws->failed) when out of memory. */
float *ws_alloc(workspace *ws, size_t n);
float *ws_zeros(workspace *ws, size_t n);
/* Frees everything of the previous pass; grows the block to the previous pass's total. 0 or -1. */
int ws_reset(workspace *ws);
void ws_free(workspace *ws);

#endif
