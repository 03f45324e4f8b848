/* config.h: INI configuration files: loading with inih, `extends = base.ini` inheritance (path relative
 * to the including file), `--set section.key=value` overrides, and lookup with file:line provenance.
 * Type checking against schemas lives in validate.c. */
#ifndef EDM2_HOST_CONFIG_H
#define EDM2_HOST_CONFIG_H

#include <stddef.h>

#include "errors.h"

typedef struct cfg_entry {
    char *section; /* "" for keys before the first section (only `extends` is allowed there) */
    char *key;
    char *value;
    char *file;    /* where the value was set; CFG_COMMAND_LINE for --set, "<program>" for cfg_put */
    int line;      /* 1-based; 0 for --set and cfg_put */
} cfg_entry;

#define CFG_COMMAND_LINE "<command line>"

/* Where an entry was set, for messages (cfg_where(e).s): "FILE:LINE", "--set SECTION.KEY" for an override
 * on the command line, or "<program>" for a value the host put itself. */
typedef struct cfg_place {
    char s[512];
} cfg_place;

typedef struct cfg {
    cfg_entry *v;
    size_t n, cap;
    char *path; /* the top-level file */
} cfg;

/* Loads `path` and everything it extends. Returns 0, or -1 with a one-line error naming file:line.
 * A file (or --set) that changes a section's `plugin` drops the keys that section inherited, since
 * they were meant for the other plugin. */
int cfg_load(cfg *c, const char *path, edm2_err *err);
/* Applies one "section.key=value" override (adds or replaces). */
int cfg_set(cfg *c, const char *assignment, edm2_err *err);
/* Adds or replaces one value programmatically (file "<program>"). Returns 0 or -1 (no memory). */
int cfg_put(cfg *c, const char *section, const char *key, const char *value);
/* The value of an existing section.key replaced, its file and line kept (for messages). 0, or -1 when there is
 * no such key or no memory. */
int cfg_replace_value(cfg *c, const char *section, const char *key, const char *value);
/* dst = a copy of src, each entry with its provenance. Returns 0 or -1 (no memory; dst then freed). */
int cfg_copy(cfg *dst, const cfg *src);
cfg_place cfg_where(const cfg_entry *e);
/* Whether two values of a key are the same: the same text, or the same numbers (comma-separated lists item
 * by item: "0" and "0.0", "1,2" and "1, 2"). */
int cfg_same_value(const char *a, const char *b);
/* Writes the config, section by section (files, extends and --set resolved), to `path` atomically, after the
 * comment line "; COMMENT" (which should say "written by edm2host", see cfg_foreign). Returns 0 or -1. */
int cfg_write(const cfg *c, const char *path, const char *comment, edm2_err *err);
/* Whether `path` is there and not a record cfg_write made (its first line a comment "written by edm2host"):
 * a config of the user's, which the jobs' records never overwrite. */
int cfg_foreign(const char *path);
/* The entry a message is about, when it begins "[SECTION] KEY = ..." or "[SECTION] KEY: ..." (section NULL),
 * or "KEY = ..." or "KEY: ..." with the section given; NULL when it does not, or the config has no such key. */
const cfg_entry *cfg_about(const cfg *c, const char *section, const char *msg);
/* The entry whose value is `value`, or has it as one item of a comma-separated list, one of `section`
 * first (NULL: any); NULL when none has. For errors about a file a value names ("PATH: cannot open"). */
const cfg_entry *cfg_with_value(const cfg *c, const char *section, const char *value);
const cfg_entry *cfg_get(const cfg *c, const char *section, const char *key);
const char *cfg_value(const cfg *c, const char *section, const char *key, const char *fallback);
int cfg_has_section(const cfg *c, const char *section);
void cfg_free(cfg *c);

/* Directory part of a path ("." when none); caller frees. */
char *path_dirname(const char *path);
/* The last component of a path, without trailing slashes, into out[len]. */
void path_basename(const char *path, char *out, size_t len);
/* Splits s in place at commas into at most `max` trimmed, non-empty items; returns how many. */
int split_list(char *s, char **items, int max);
/* `rel` resolved against directory `dir` unless absolute; caller frees. */
char *path_join(const char *dir, const char *rel);

#endif
