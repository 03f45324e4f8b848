/* workspace.c: bump allocation of activations with self-sizing. */
#include "workspace.h"

#include <stdlib.h>
#include <string.h>

#define WS_ALIGN 64

float *ws_alloc(workspace *ws, size_t n) {
    size_t rounded = (n + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
    ws->need += rounded;
    if (ws->used + rounded <= ws->cap) {
        float *p = ws->base + ws->used;
        ws->used += rounded;
        return p;
    }
    float **extra = realloc(ws->extra, (ws->nextra + 1) * sizeof *extra);
    if (!extra) {
        ws->failed = 1;
        return NULL;
    }
    ws->extra = extra;
    float *p = aligned_alloc(WS_ALIGN * sizeof(float), rounded * sizeof(float));
    if (!p) {
        ws->failed = 1;
        return NULL;
    }
    ws->extra[ws->nextra++] = p;
    return p;
}

float *ws_zeros(workspace *ws, size_t n) {
    float *p = ws_alloc(ws, n);
    if (!p) return NULL;
    /* Large buffers are cleared by all threads (a serial memset would leave the others waiting). */
    const size_t chunk = 1 << 16;
    const long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (long c = 0; c < nchunks; c++) {
        size_t lo = (size_t)c * chunk, len = n - lo < chunk ? n - lo : chunk;
        memset(p + lo, 0, len * sizeof(float));
    }
    return p;
}

int ws_reset(workspace *ws) {
    for (size_t i = 0; i < ws->nextra; i++) free(ws->extra[i]);
    int grow = ws->nextra > 0;
    ws->nextra = 0;
    ws->used = 0;
    ws->failed = 0;
    if (grow) {
        free(ws->base);
        ws->cap = ws->need;
        ws->base = aligned_alloc(WS_ALIGN * sizeof(float), ws->cap * sizeof(float));
        if (!ws->base) {
            ws->cap = 0;
            ws->need = 0;
            return -1;
        }
    }
    ws->need = 0;
    return 0;
}

void ws_free(workspace *ws) {
    ws_reset(ws);
    free(ws->base);
    free(ws->extra);
    memset(ws, 0, sizeof *ws);
}
