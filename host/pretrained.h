/* pretrained.h: the weights of a fixed, pre-trained network (the plugin kinds features and vae): read from the
 * file a section's `weights` key names into a host arena by the plugin's table — under the table's own names or
 * one of the plugin's alias layouts, each also under a checkpoint prefix ("first_stage_model.", "vae.") — every
 * entry present with its shape (an alias may store the same elements in another shape) and finite; other
 * tensors of the file are ignored. Then put on the backend for the plugin's prepare(). */
#ifndef EDM2_HOST_PRETRAINED_H
#define EDM2_HOST_PRETRAINED_H

#include "runtime.h"

/* Name of table entry i in alias layout `layout` (1, 2, ...) into out[len]; 0 when there is no such layout. */
typedef int (*pretrained_alias)(void *ctx, int layout, size_t i, char *out, size_t len);

typedef struct pretrained_table {
    const char *who;               /* the plugin id, for messages */
    const edm2_param_desc *params; /* the plugin's table */
    size_t count, arena_floats;
    const char *names;             /* what the table's own names are called, e.g. "diffusers" (may be NULL) */
    pretrained_alias alias;        /* NULL: the table's names only */
    void *ctx;
    const char *hint;              /* appended to a missing or misshaped tensor's message (may be "") */
} pretrained_table;

/* *host = a new host arena with the weights of `path`; layout[len] says which names the file used. 0, or -1 with
 * a one-line reason naming the file and tensor. */
int pretrained_load(const pretrained_table *t, const char *path, float **host, char *layout, size_t len,
                    edm2_err *err);
/* *arena = a new backend arena holding *host, which is freed (so at most two copies exist at a time). */
int pretrained_upload(runtime *rt, float **host, size_t floats, float **arena, edm2_err *err);

#endif
