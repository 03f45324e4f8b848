/* plugin_loader.h: finds plugin .so files on the search path, dlopens them, checks the entry symbol and
 * the ABI version, and keeps a registry of the plugins they describe. A file that fails never crashes
 * the host: it becomes a one-line problem report. */
#ifndef EDM2_HOST_PLUGIN_LOADER_H
#define EDM2_HOST_PLUGIN_LOADER_H

#include "edm2/edm2.h"
#include "errors.h"

typedef struct plugin_rec {
    const edm2_plugin_desc *desc;
    const char *file;   /* the .so it came from (registry-owned) */
    edm2_version abi;   /* the ABI its file was built against */
} plugin_rec;

typedef struct plugin_registry {
    void **handles;
    char **files;
    size_t nlibs;
    plugin_rec *plugins;
    size_t nplugins;
    char **problems;    /* one line each: files that are not loadable plugins */
    size_t nproblems;
    char **dirs;        /* the search path actually used, in order */
    size_t ndirs;
} plugin_registry;

const char *kind_name(edm2_kind kind);     /* "backend", "network", ... */
const char *backend_name(edm2_backend_id b); /* "any", "cpu", "cuda" */
int kind_from_name(const char *name);      /* -1 if unknown */

/* The search path, in order: `config_dirs` (colon-separated, may be NULL), $EDM2_PLUGIN_PATH, the build
 * tree's plugin folder (when running from the build tree), the install prefix. */
int registry_default_dirs(plugin_registry *r, const char *config_dirs);
/* The first entry of a colon-separated folder list that is not a folder, into out[len]; NULL when all are. */
const char *path_list_missing(const char *list, char *out, size_t len);
/* Scans every directory of the search path for *.so; problems are recorded, not fatal. */
void registry_scan(plugin_registry *r);
/* Loads one file. Returns 0, or -1 with a one-line reason (also recorded in problems). Plugins whose
 * (kind, id, backend) is already registered are skipped: the first on the search path wins. */
int registry_load_file(plugin_registry *r, const char *path, edm2_err *err);
/* The plugin of `kind` with `id` usable with backend `backend` (exact match first, then ANY). */
const plugin_rec *registry_find(const plugin_registry *r, edm2_kind kind, const char *id, edm2_backend_id backend);
/* Any plugin with this id (for messages and --describe). */
const plugin_rec *registry_find_id(const plugin_registry *r, const char *id, int kind_or_minus1);
void registry_free(plugin_registry *r);

#endif
