/* cmd_plugins.c: `edm2host plugins`: list every plugin found, or describe one plugin's config keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_auto.h"
#include "commands.h"
#include "log.h"
#include "schema.h"
#include "validate.h"

/* The keys of a plugin, or of host section `section` (with the valid range of those that have one). */
static void print_keys(const edm2_config_key *keys, size_t n, const char *section) {
    if (!n) printf("  (no config keys)\n");
    for (size_t i = 0; i < n; i++) {
        const char *def = keys[i].default_value;
        const host_range *r = section ? host_range_find(section, keys[i].name) : NULL;
        char range[80] = "";
        const char *word = section ? host_key_word(section, keys[i].name) : NULL;
        if (r) snprintf(range, sizeof range, " [%.15g to %.15g%s%s]", r->lo, r->hi, word ? " or " : "", word ? word : "");
        printf("  %-20s %-24s default %-14s %s%s\n", keys[i].name, type_name(keys[i].type),
               def ? (*def ? def : "(empty)") : "(required)", keys[i].help, range);
    }
}

static int describe(const plugin_registry *r, const char *id, const char *backend) {
    int found = 0;
    for (size_t i = 0; i < r->nplugins; i++) {
        const edm2_plugin_desc *d = r->plugins[i].desc;
        if (strcmp(d->id, id) != 0) continue;
        if (backend && strcmp(backend_name(d->backend), backend) != 0) continue;
        found = 1;
        char why[256] = "";
        int usable = !d->probe || d->probe(why, sizeof why) == EDM2_OK;
        printf("%s %s (%s backend, version %s, ABI %u.%u)\n  %s\n  file: %s\n", kind_name(d->kind), d->id,
               backend_name(d->backend), d->version, r->plugins[i].abi.major, r->plugins[i].abi.minor, d->description,
               r->plugins[i].file);
        if (!usable) printf("  not usable here: %s\n", why);
        printf("config keys for section [%s] (besides 'plugin = %s'):\n", kind_name(d->kind), d->id);
        print_keys(d->keys, d->key_count, NULL);
        printf("\n");
    }
    if (found) return 0;
    const host_section *hs = host_section_find(id);
    if (hs) {
        printf("host section [%s]: %s\n", hs->name, hs->help);
        print_keys(hs->keys, hs->nkeys, hs->name);
        return 0;
    }
    const char *ids[512];
    size_t n = 0;
    for (size_t i = 0; i < r->nplugins && n < 512; i++) ids[n++] = r->plugins[i].desc->id;
    const char *best = closest_name(id, ids, n);
    LOG_ERROR("no plugin or host section '%s'%s%s%s", id, best ? "; did you mean '" : "", best ? best : "",
              best ? "'?" : "");
    return 1;
}

static void list(const plugin_registry *r) {
    printf("%-10s %-14s %-8s %-8s %-40s %s\n", "KIND", "ID", "BACKEND", "VERSION", "DESCRIPTION", "FILE");
    for (int k = 0; k < EDM2_KIND_COUNT_; k++)
        for (size_t i = 0; i < r->nplugins; i++) {
            const edm2_plugin_desc *d = r->plugins[i].desc;
            if ((int)d->kind != k) continue;
            char why[256] = "";
            int usable = !d->probe || d->probe(why, sizeof why) == EDM2_OK;
            char desc[200];
            snprintf(desc, sizeof desc, "%s%s%s", d->description, usable ? "" : " [unusable: ", usable ? "" : why);
            if (!usable) strncat(desc, "]", sizeof desc - strlen(desc) - 1);
            printf("%-10s %-14s %-8s %-8s %-40s %s\n", kind_name(d->kind), d->id, backend_name(d->backend), d->version,
                   desc, r->plugins[i].file);
        }
    if (!r->nplugins) printf("(no plugins found)\n");
    char why[400];
    const char *id = backend_auto_choice(r, why, sizeof why);
    printf("\n[backend] plugin = auto chooses %s here (%s)\n", id, why);
    printf("\nsearch path:\n");
    for (size_t i = 0; i < r->ndirs; i++) printf("  %s\n", r->dirs[i]);
}

int cmd_plugins(int argc, char **argv) {
    const char *desc_id = NULL, *backend = NULL, *path = NULL;
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0, rc = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: edm2host plugins [--describe ID|SECTION] [--backend cpu|cuda] [--file X.so ...] "
                   "[--path DIRS]\n\nLists every plugin on the search path (kind, id, backend, version, file), or\n"
                   "with --describe prints a plugin's (or a host section's) config keys: type, default, help.\n"
                   "--file loads exactly the given plugin files (an error if one does not load);\n"
                   "--path puts colon-separated folders first on the search path.\n");
            free(files);
            return 0;
        } else if (!strcmp(argv[i], "--describe") && i + 1 < argc) {
            desc_id = argv[++i];
        } else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            backend = argv[++i];
        } else if (!strcmp(argv[i], "--file") && i + 1 < argc) {
            files[nfiles++] = argv[++i];
        } else if (!strcmp(argv[i], "--path") && i + 1 < argc) {
            path = argv[++i];
        } else {
            LOG_ERROR("plugins: unexpected argument '%s' (see edm2host plugins --help)", argv[i]);
            free(files);
            return 2;
        }
    }
    plugin_registry r = {0};
    if (nfiles) {
        for (int i = 0; i < nfiles; i++) {
            edm2_err err;
            if (registry_load_file(&r, files[i], &err)) {
                LOG_ERROR("%s", err.msg);
                rc = 1;
            }
        }
    } else {
        char missing[4200];
        if (path_list_missing(path, missing, sizeof missing)) {
            LOG_ERROR("plugins --path: '%s' is not a folder", missing);
            free(files);
            return 1;
        }
        registry_default_dirs(&r, path);
        registry_scan(&r);
        for (size_t i = 0; i < r.nproblems; i++) LOG_WARN("%s", r.problems[i]);
    }
    if (!rc) {
        if (desc_id) rc = describe(&r, desc_id, backend);
        else list(&r);
    }
    registry_free(&r);
    free(files);
    return rc;
}
