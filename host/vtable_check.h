/* vtable_check.h: what the host checks of a plugin's function table when it loads the plugin (ABI 1.1):
 * struct_size covers at least the 1.0 table of its kind, and no required function is NULL. Fields a
 * minor version added later are read only when struct_size covers them. */
#ifndef EDM2_HOST_VTABLE_CHECK_H
#define EDM2_HOST_VTABLE_CHECK_H

#include <stddef.h>

#include "edm2/edm2.h"

/* NULL when d's table is fine; else a description ("its network table lacks 'backward'") in buf. */
const char *vtable_problem(const edm2_plugin_desc *d, char *buf, size_t len);
/* 1 when the table of `vtable` (first field struct_size) has the field ending at `end` (offset + size). */
int vtable_has(const void *vtable, size_t end);

#endif
