/* workspace_cuda.c: bump allocation of activations in device memory, self-sizing across passes. */
#include "workspace_cuda.h"

#include <stdlib.h>
#include <string.h>

#include "act_type.h"

#define GWS_ALIGN 64 /* floats */

static float *dev_alloc(gws *ws, size_t n) {
    void *p = NULL;
    return ws->ops.vt->alloc(ws->ops.b, n * sizeof(float), &p) == EDM2_OK ? p : NULL;
}

float *gws_alloc(gws *ws, size_t n) {
    size_t rounded = (n + GWS_ALIGN - 1) / GWS_ALIGN * GWS_ALIGN;
    if (rounded == 0) rounded = GWS_ALIGN;
    ws->need += rounded;
    if (ws->used + rounded <= ws->cap) {
        float *p = ws->base + ws->used;
        ws->used += rounded;
        return p;
    }
    if (ws->nextra == ws->cap_extra) {
        size_t cap = ws->cap_extra ? 2 * ws->cap_extra : 64;
        void **e = realloc(ws->extra, cap * sizeof *e);
        if (!e) {
            ws->failed = 1;
            return NULL;
        }
        ws->extra = e;
        ws->cap_extra = cap;
    }
    float *p = dev_alloc(ws, rounded);
    if (!p) {
        ws->failed = 1;
        return NULL;
    }
    ws->extra[ws->nextra++] = p;
    return p;
}

float *gws_zeros(gws *ws, size_t n) {
    float *p = gws_alloc(ws, n);
    if (p && ws->ops.vt->fill(ws->ops.b, p, 0.0f, n) != EDM2_OK) {
        ws->failed = 1;
        return NULL;
    }
    return p;
}

void *gws_act(gws *ws, int act, size_t n) { return gws_alloc(ws, act == ACT_F32 ? n : (n + 1) / 2); }

/* Frees the blocks allocated beyond the base this pass. */
static void free_extra(gws *ws) {
    for (size_t i = 0; i < ws->nextra; i++) ws->ops.vt->free(ws->ops.b, ws->extra[i]);
    ws->nextra = 0;
}

int gws_reset(gws *ws) {
    const int grow = ws->nextra > 0;
    free_extra(ws);
    ws->used = 0;
    ws->failed = 0;
    if (grow) {
        ws->ops.vt->free(ws->ops.b, ws->base);
        ws->cap = ws->need;
        ws->base = dev_alloc(ws, ws->cap);
        ws->epoch++;
        if (!ws->base) {
            ws->cap = ws->need = 0;
            return -1;
        }
    }
    ws->need = 0;
    return 0;
}

void gws_release(gws *ws) {
    if (!ws->ops.vt) return;
    free_extra(ws);
    ws->ops.vt->free(ws->ops.b, ws->base); /* (not gws_reset: that would allocate the grown base first) */
    ws->base = NULL;
    ws->cap = ws->used = ws->need = 0;
    ws->failed = 0;
    ws->epoch++;
}

void gws_free(gws *ws) {
    gws_release(ws);
    free(ws->extra);
    memset(ws, 0, sizeof *ws);
}
