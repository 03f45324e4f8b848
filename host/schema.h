/* schema.h: typed config values: checking a text against a schema type, and "did you mean" suggestions. */
#ifndef EDM2_HOST_SCHEMA_H
#define EDM2_HOST_SCHEMA_H

#include <stddef.h>

#include "edm2/edm2_plugin.h"

const char *type_name(edm2_config_type t); /* "integer", "comma-separated floats", ... */
/* 0 when `s` parses as type t; -1 otherwise. */
int value_check(edm2_config_type t, const char *s);
/* The candidate closest to `word` by edit distance, or NULL when none is plausibly meant. */
const char *closest_name(const char *word, const char *const *cands, size_t n);
/* The schema entry for `key`, or NULL. */
const edm2_config_key *schema_find(const edm2_config_key *keys, size_t n, const char *key);

#endif
