/* workspace.c: bump allocation of activations with self-sizing. Blocks come straight from mmap, so what
 * a reset frees goes back to the system (the first, self-sizing pass would otherwise leave hundreds of MB
 * of freed heap resident). */
#include "workspace.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define WS_ALIGN 64 /* floats; mmap returns page-aligned memory */

static float *map_floats(size_t n) {
    void *p = mmap(NULL, n * sizeof(float), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap_floats(float *p, size_t n) {
    if (p) munmap(p, n * sizeof(float));
}

float *ws_alloc(workspace *ws, size_t n) {
    size_t rounded = (n + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
    if (rounded == 0) rounded = WS_ALIGN;
    ws->need += rounded;
    if (ws->used + rounded <= ws->cap) {
        float *p = ws->base + ws->used;
        ws->used += rounded;
        return p;
    }
    ws_block *extra = realloc(ws->extra, (ws->nextra + 1) * sizeof *extra);
    if (!extra) {
        ws->failed = 1;
        return NULL;
    }
    ws->extra = extra;
    float *p = map_floats(rounded);
    if (!p) {
        ws->failed = 1;
        return NULL;
    }
    ws->extra[ws->nextra].p = p;
    ws->extra[ws->nextra++].n = rounded;
    return p;
}

float *ws_zeros(workspace *ws, size_t n) {
    float *p = ws_alloc(ws, n);
    if (p) memset(p, 0, n * sizeof(float));
    return p;
}

int ws_reset(workspace *ws) {
    const int grow = ws->nextra > 0;
    for (size_t i = 0; i < ws->nextra; i++) unmap_floats(ws->extra[i].p, ws->extra[i].n);
    ws->nextra = 0;
    ws->used = 0;
    ws->failed = 0;
    if (grow) {
        unmap_floats(ws->base, ws->cap);
        ws->cap = ws->need;
        ws->base = map_floats(ws->cap);
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
    unmap_floats(ws->base, ws->cap);
    free(ws->extra);
    memset(ws, 0, sizeof *ws);
}
