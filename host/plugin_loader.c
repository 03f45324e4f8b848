/* plugin_loader.c: search path, dlopen, entry-symbol and ABI-version checks, registry. */
#include "plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "vtable_check.h"

static const char *const k_kind_names[EDM2_KIND_COUNT_] = {"backend", "network", "loss",
                                                          "optimizer", "ema", "sampler", "features", "vae"};

const char *kind_name(edm2_kind kind) {
    return (unsigned)kind < EDM2_KIND_COUNT_ ? k_kind_names[kind] : "unknown";
}

int kind_from_name(const char *name) {
    for (int k = 0; k < EDM2_KIND_COUNT_; k++)
        if (strcmp(name, k_kind_names[k]) == 0) return k;
    return -1;
}

const char *backend_name(edm2_backend_id b) {
    switch (b) {
    case EDM2_BACKEND_ANY: return "any";
    case EDM2_BACKEND_CPU: return "cpu";
    case EDM2_BACKEND_CUDA: return "cuda";
    }
    return "unknown";
}

static int push_str(char ***arr, size_t *n, const char *s) {
    char **a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a) return -1;
    *arr = a;
    a[*n] = strdup(s);
    if (!a[*n]) return -1;
    (*n)++;
    return 0;
}

static void add_dir(plugin_registry *r, const char *dir) {
    if (!*dir) return;
    for (size_t i = 0; i < r->ndirs; i++)
        if (strcmp(r->dirs[i], dir) == 0) return;
    push_str(&r->dirs, &r->ndirs, dir);
}

const char *path_list_missing(const char *list, char *out, size_t len) {
    for (const char *d = list; d && *d;) {
        const size_t n = strcspn(d, ":");
        snprintf(out, len, "%.*s", (int)n, d);
        if (n && !is_folder(out)) return out;
        d += n + (d[n] == ':');
    }
    return NULL;
}

static void add_path_list(plugin_registry *r, const char *list) {
    if (!list) return;
    char *copy = strdup(list), *save = NULL;
    if (!copy) return;
    for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) add_dir(r, tok);
    free(copy);
}

int registry_default_dirs(plugin_registry *r, const char *config_dirs) {
    add_path_list(r, config_dirs);
    add_path_list(r, getenv("EDM2_PLUGIN_PATH"));
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        char p[PATH_MAX + 64];
        /* Build tree: the host lives in BUILD/ and plugins in BUILD/plugins. */
        snprintf(p, sizeof p, "%s/plugins", exe);
        if (is_folder(p)) add_dir(r, p);
        /* Installed: PREFIX/bin/edm2host and PREFIX/lib/edm2/plugins. */
        snprintf(p, sizeof p, "%s/../lib/edm2/plugins", exe);
        if (is_folder(p)) add_dir(r, p);
    }
#ifdef EDM2_INSTALL_PLUGIN_DIR
    if (is_folder(EDM2_INSTALL_PLUGIN_DIR)) add_dir(r, EDM2_INSTALL_PLUGIN_DIR);
#endif
    return 0;
}

static void problem(plugin_registry *r, edm2_err *err, const char *fmt, ...) {
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    push_str(&r->problems, &r->nproblems, line);
    err_set(err, "%s", line);
}

static const plugin_rec *find_exact(const plugin_registry *r, edm2_kind kind, const char *id, edm2_backend_id b) {
    for (size_t i = 0; i < r->nplugins; i++) {
        const edm2_plugin_desc *d = r->plugins[i].desc;
        if (d->kind == kind && d->backend == b && strcmp(d->id, id) == 0) return &r->plugins[i];
    }
    return NULL;
}

/* Checks the descriptor fields the host relies on; returns NULL when fine, else what is wrong. */
static const char *desc_problem(const edm2_plugin_desc *d) {
    if (!d) return "a NULL descriptor";
    if (d->struct_size < sizeof(edm2_plugin_desc)) return "a descriptor smaller than ABI 1.0's";
    if (!d->id || !*d->id) return "a descriptor without id";
    if ((unsigned)d->kind >= EDM2_KIND_COUNT_) return "a descriptor of unknown kind";
    if (!d->vtable) return "a descriptor without function table";
    if (d->key_count && !d->keys) return "a descriptor whose schema is NULL";
    return NULL;
}

int registry_load_file(plugin_registry *r, const char *path, edm2_err *err) {
    char real[PATH_MAX];
    const char *file = realpath(path, real) ? real : path;
    for (size_t i = 0; i < r->nlibs; i++)
        if (strcmp(r->files[i], file) == 0) return 0; /* already loaded */
    dlerror();
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        problem(r, err, "%s: cannot load: %s", file, why ? why : "unknown dlopen error");
        return -1;
    }
    const edm2_plugin_entry_t *entry = (const edm2_plugin_entry_t *)dlsym(h, EDM2_ENTRY_SYMBOL);
    if (!entry) {
        dlclose(h);
        problem(r, err, "%s: not an edm2 plugin (no '%s' symbol)", file, EDM2_ENTRY_SYMBOL);
        return -1;
    }
    if (entry->abi.major != EDM2_ABI_MAJOR) {
        char versions[96];
        snprintf(versions, sizeof versions, "%u.%u, but this host speaks ABI %d.%d (major versions must match)",
                 entry->abi.major, entry->abi.minor, EDM2_ABI_MAJOR, EDM2_ABI_MINOR);
        dlclose(h);
        problem(r, err, "%s: built for edm2 plugin ABI %s", file, versions);
        return -1;
    }
    if (entry->struct_size < sizeof(edm2_plugin_entry_t) || (entry->plugin_count && !entry->plugins)) {
        dlclose(h);
        problem(r, err, "%s: malformed entry symbol", file);
        return -1;
    }
    for (uint32_t i = 0; i < entry->plugin_count; i++) {
        char why[256];
        const char *bad = desc_problem(entry->plugins[i]);
        if (bad) {
            dlclose(h);
            problem(r, err, "%s: malformed plugin: %s", file, bad);
            return -1;
        }
        if ((bad = vtable_problem(entry->plugins[i], why, sizeof why))) {
            problem(r, err, "%s: plugin '%.64s': %s", file, entry->plugins[i]->id, bad); /* before dlclose */
            dlclose(h);
            return -1;
        }
    }
    void **hs = realloc(r->handles, (r->nlibs + 1) * sizeof *hs);
    if (!hs) {
        dlclose(h);
        return err_set(err, "out of memory");
    }
    r->handles = hs;
    if (push_str(&r->files, &r->nlibs, file)) {
        dlclose(h);
        return err_set(err, "out of memory");
    }
    r->handles[r->nlibs - 1] = h;
    const char *owned = r->files[r->nlibs - 1];
    for (uint32_t i = 0; i < entry->plugin_count; i++) {
        const edm2_plugin_desc *d = entry->plugins[i];
        const plugin_rec *prev = find_exact(r, d->kind, d->id, d->backend);
        if (prev) {
            LOG_DEBUG("%s: %s plugin '%s' (%s) already found in %s; skipped", owned, kind_name(d->kind), d->id,
                      backend_name(d->backend), prev->file);
            continue;
        }
        plugin_rec *ps = realloc(r->plugins, (r->nplugins + 1) * sizeof *ps);
        if (!ps) return err_set(err, "out of memory");
        r->plugins = ps;
        ps[r->nplugins++] = (plugin_rec){d, owned, entry->abi};
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void registry_scan(plugin_registry *r) {
    for (size_t d = 0; d < r->ndirs; d++) {
        DIR *dir = opendir(r->dirs[d]);
        if (!dir) {
            LOG_DEBUG("plugin folder %s: cannot open", r->dirs[d]);
            continue;
        }
        char **names = NULL;
        size_t n = 0;
        for (struct dirent *de; (de = readdir(dir));) {
            size_t len = strlen(de->d_name);
            if (len > 3 && strcmp(de->d_name + len - 3, ".so") == 0) push_str(&names, &n, de->d_name);
        }
        closedir(dir);
        if (n > 1) qsort(names, n, sizeof *names, cmp_str); /* deterministic order within a folder */
        for (size_t i = 0; i < n; i++) {
            char *p = malloc(strlen(r->dirs[d]) + strlen(names[i]) + 2);
            if (p) {
                sprintf(p, "%s/%s", r->dirs[d], names[i]);
                registry_load_file(r, p, NULL);
                free(p);
            }
            free(names[i]);
        }
        free(names);
    }
}

const plugin_rec *registry_find(const plugin_registry *r, edm2_kind kind, const char *id, edm2_backend_id backend) {
    const plugin_rec *p = find_exact(r, kind, id, backend);
    return p ? p : find_exact(r, kind, id, EDM2_BACKEND_ANY);
}

const plugin_rec *registry_find_id(const plugin_registry *r, const char *id, int kind) {
    for (size_t i = 0; i < r->nplugins; i++)
        if (strcmp(r->plugins[i].desc->id, id) == 0 && (kind < 0 || (int)r->plugins[i].desc->kind == kind))
            return &r->plugins[i];
    return NULL;
}

static void free_strs(char **a, size_t n) {
    for (size_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

void registry_free(plugin_registry *r) {
    /* Handles are kept open until exit on purpose: instances may still reference static data of
     * their plugins, and unloading buys nothing in a short-lived process. */
    free(r->handles);
    free_strs(r->files, r->nlibs);
    free(r->plugins);
    free_strs(r->problems, r->nproblems);
    free_strs(r->dirs, r->ndirs);
    memset(r, 0, sizeof *r);
}
