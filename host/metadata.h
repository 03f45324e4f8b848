/* metadata.h: reading the __metadata__ strings of safetensors files (snapshots, checkpoints, reference
 * files), which may come from other machines and other tools. A plugin's hyperparameters become a config
 * section: "None" / "null" (Python's and JSON's "not set") stand for the plugin's default, i.e. the
 * automatic setting; Python list syntax ("[1, 2, 3]", "(16, 8)") reads as a comma-separated list; every
 * value is type-checked. Integers and numbers are read with their valid range. Errors are one line
 * naming the file and the key. */
#ifndef EDM2_HOST_METADATA_H
#define EDM2_HOST_METADATA_H

#include <stdint.h>

#include "config.h"
#include "edm2/edm2_plugin.h"
#include "errors.h"
#include "safetensors.h"

/* Puts the values of d's schema keys found in f's metadata into section `section` of *out. A key missing
 * from the metadata is looked up as alias_prefix + key when alias_prefix is non-NULL ("adam_beta1"). */
int meta_section(const st_file *f, const edm2_plugin_desc *d, const char *alias_prefix, cfg *out, const char *section,
                 edm2_err *err);
/* The integer value of `key`, in [lo, hi]. A missing key is an error too ("not a ... file"). */
int meta_int(const st_file *f, const char *key, int64_t lo, int64_t hi, int64_t *out, edm2_err *err);
/* A finite number in [lo, hi]. */
int meta_number(const st_file *f, const char *key, double lo, double hi, double *out, edm2_err *err);
/* 1 when the value means "not set" (None, null, or empty). */
int meta_is_unset(const char *value);

#endif
