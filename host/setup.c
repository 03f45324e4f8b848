/* setup.c: config + overrides + plugin search path + explicit plugin loads + the backend (auto) + validation. */
#include "setup.h"

#include <stdlib.h>
#include <string.h>

#include "backend_auto.h"

/* A list value of [plugins] resolved against the folder of the file that set it. */
static char *resolve_list(const cfg_entry *e, const char *sep_in, char sep_out) {
    char *dir = strcmp(e->file, CFG_COMMAND_LINE) == 0 ? strdup(".") : path_dirname(e->file);
    char *copy = strdup(e->value), *save = NULL;
    size_t cap = strlen(e->value) * 2 + 4096, len = 0;
    char *out = calloc(1, cap);
    if (!dir || !copy || !out) goto done;
    for (char *tok = strtok_r(copy, sep_in, &save); tok; tok = strtok_r(NULL, sep_in, &save)) {
        while (*tok == ' ') tok++;
        size_t tl = strlen(tok);
        while (tl && tok[tl - 1] == ' ') tok[--tl] = 0;
        if (!tl) continue;
        char *p = path_join(dir, tok);
        if (!p) continue;
        if (len + strlen(p) + 2 < cap) len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? (char[]){sep_out, 0} : "", p);
        free(p);
    }
done:
    free(dir);
    free(copy);
    return out;
}

int setup_from_config(setup *s, const char *path, char *const *sets, int nsets, edm2_err *err) {
    memset(s, 0, sizeof *s);
    if (cfg_load(&s->cfg, path, err)) return -1;
    for (int i = 0; i < nsets; i++)
        if (cfg_set(&s->cfg, sets[i], err)) return -1;
    const cfg_entry *pe = cfg_get(&s->cfg, "plugins", "path");
    char *dirs = pe ? resolve_list(pe, ":", ':') : NULL;
    char missing[4200];
    if (path_list_missing(dirs, missing, sizeof missing)) { /* each folder the config names is there */
        err_set(err, "%s: [plugins] path: '%s' is not a folder", cfg_where(pe).s, missing);
        free(dirs);
        return -1;
    }
    registry_default_dirs(&s->reg, dirs);
    free(dirs);
    const cfg_entry *le = cfg_get(&s->cfg, "plugins", "load");
    if (le) {
        char *files = resolve_list(le, ",", ',');
        char *save = NULL;
        int rc = 0;
        for (char *f = files ? strtok_r(files, ",", &save) : NULL; f && !rc; f = strtok_r(NULL, ",", &save)) {
            edm2_err why;
            if (registry_load_file(&s->reg, f, &why))
                rc = err_set(err, "%s: [plugins] load: %s", cfg_where(le).s, why.msg);
        }
        free(files);
        if (rc) return -1;
    }
    registry_scan(&s->reg);
    if (backend_resolve_auto(&s->cfg, &s->reg, s->backend_note, sizeof s->backend_note, err)) return -1;
    return config_validate(&s->cfg, &s->reg, &s->rc, err);
}

void setup_free(setup *s) {
    cfg_free(&s->cfg);
    registry_free(&s->reg);
}
