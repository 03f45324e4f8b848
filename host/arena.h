/* arena.h: moving a network's parameter arena to and from safetensors files by the reference's names,
 * with shape checks. Host-memory arenas (float32, arena layout). */
#ifndef EDM2_HOST_ARENA_H
#define EDM2_HOST_ARENA_H

#include "edm2/edm2_network.h"
#include "errors.h"
#include "safetensors.h"

/* Checks that every table entry is present as tensor `prefix + name` with its shape (a scalar may be
 * stored as [] or [1]), and that every tensor under the prefix names an entry, so a file whose metadata
 * describe another network than its tensors is refused. Allocates nothing. */
int arena_check(const edm2_network_info *info, const st_file *f, const char *prefix, edm2_err *err);
/* Fills the entry d of arena[] from tensor t (the same element count); every value must be finite (else a
 * message naming `path` and the tensor). */
int arena_fill_one(const edm2_param_desc *d, const st_tensor *t, const char *path, float *arena, edm2_err *err);
/* Fills arena[] from the tensors of a file arena_check accepted; every value must be finite. */
int arena_fill(const edm2_network_info *info, const st_file *f, const char *prefix, float *arena, edm2_err *err);
/* arena_check, then arena_fill. */
int arena_load(const edm2_network_info *info, const st_file *f, const char *prefix, float *arena, edm2_err *err);
/* Checks one tensor against one table entry (same count of elements and the same shape). */
int arena_shape_matches(const edm2_param_desc *d, const st_tensor *t);
/* "[a, b, ...]" into buf[len]. */
void arena_shape_str(char *buf, size_t len, int ndim, const int64_t *shape);
/* Describes the entries of an arena as st_out records named prefix+name (names in `names`, caller frees
 * each and the arrays). Only entries with any of `flags_any` set, or all when 0. */
int arena_outputs(const edm2_network_info *info, const float *arena, const char *prefix, uint32_t flags_any,
                  st_dtype dtype, st_out **outs, char ***names, size_t *n);
void arena_outputs_free(st_out *outs, char **names, size_t n);

#endif
