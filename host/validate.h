/* validate.h: checks a loaded config against the host's own sections and the schemas of the plugins it
 * names, resolving each plugin section to a loaded plugin; gives plugins a typed view of a section. */
#ifndef EDM2_HOST_VALIDATE_H
#define EDM2_HOST_VALIDATE_H

#include "config.h"
#include "plugin_loader.h"

/* A section the host itself reads ([job], [data], [training], ...). */
typedef struct host_section {
    const char *name;
    const char *help;
    const edm2_config_key *keys;
    size_t nkeys;
} host_section;

struct run_config;
typedef struct job_def {
    const char *type;
    const char *help;
    uint32_t kinds_required; /* bit (1 << edm2_kind) for each plugin section the job needs */
    const char *const *sections_required; /* host sections beyond [job], NULL-terminated, may be NULL */
    /* Returns the process exit status: 0 done; 1 failed (reason in err); 128 + signal when a signal
     * stopped the job cleanly (it said so in the log). */
    int (*run)(const struct run_config *rc, edm2_err *err);
} job_def;

typedef struct run_config {
    const cfg *cfg;
    const job_def *job;
    edm2_backend_id backend;
    const plugin_rec *plugin[EDM2_KIND_COUNT_]; /* NULL where the config has no such section */
    const plugin_registry *registry;
    /* 1 for `edm2host check`: the job (other than train) opens and checks its inputs as it would run, then
     * returns 0 before it computes anything large or writes anything (its "dry point"). */
    int dry_run;
} run_config;

/* The valid range of a numeric host key (inclusive), or NULL when any value of its type works. */
typedef struct host_range {
    const char *section, *key;
    double lo, hi;
} host_range;
const host_range *host_range_find(const char *section, const char *key);
/* The word a numeric host key accepts in place of a number (batch_gpu = auto), or NULL. */
const char *host_key_word(const char *section, const char *key);

const host_section *host_section_find(const char *name);
const host_section *host_section_list(size_t *n);
const job_def *job_find(const char *type);
const job_def *job_list(size_t *n);

/* Validates everything; fills *out. Returns 0, or -1 with a one-line error naming file:line. */
int config_validate(const cfg *c, const plugin_registry *r, run_config *out, edm2_err *err);

/* A typed view of one section for plugins (edm2_config) and for the host (edm2_cfg_* of edm2_util.h). */
typedef struct config_view {
    const cfg *c;
    const char *section;
    const edm2_config_key *keys;
    size_t nkeys;
    edm2_config api;
} config_view;
void config_view_init(config_view *v, const cfg *c, const char *section, const edm2_config_key *keys, size_t nkeys);
/* The view of a host section (keys from its schema). */
void config_view_host(config_view *v, const cfg *c, const char *section);
/* The view of the plugin section of `kind` as resolved in rc. */
void config_view_plugin(config_view *v, const run_config *rc, edm2_kind kind);

#endif
