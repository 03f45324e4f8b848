/* workspace.h: a bump allocator for activations. It keeps its memory across passes; when a pass needs
 * more than it holds, the excess comes from the heap and the next reset grows the block to fit. */
#ifndef EDM2_WORKSPACE_H
#define EDM2_WORKSPACE_H

#include <stddef.h>

typedef struct workspace {
    float *base;
    size_t cap, used;  /* floats */
    float **extra;     /* overflow allocations of this pass */
    size_t nextra, need;
    int failed;        /* an allocation failed in this pass */
} workspace;

/* n floats, 64-float aligned, uninitialised; NULL (and ws->failed) when out of memory. */
float *ws_alloc(workspace *ws, size_t n);
float *ws_zeros(workspace *ws, size_t n);
/* Frees everything of the previous pass; grows the block to the previous pass's total. 0 or -1. */
int ws_reset(workspace *ws);
void ws_free(workspace *ws);

#endif
