/* validate.c: config validation against host sections and plugin schemas, with "did you mean". */
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

static const char *view_get(const void *ctx, const char *key) {
    const config_view *v = ctx;
    const edm2_config_key *k = schema_find(v->keys, v->nkeys, key);
    if (!k) return NULL;
    const cfg_entry *e = cfg_get(v->c, v->section, key);
    return e ? e->value : k->default_value;
}

void config_view_init(config_view *v, const cfg *c, const char *section, const edm2_config_key *keys, size_t nkeys) {
    v->c = c;
    v->section = section;
    v->keys = keys;
    v->nkeys = nkeys;
    v->api.struct_size = sizeof v->api;
    v->api.ctx = v;
    v->api.get = view_get;
}

void config_view_host(config_view *v, const cfg *c, const char *section) {
    const host_section *s = host_section_find(section);
    config_view_init(v, c, section, s ? s->keys : NULL, s ? s->nkeys : 0);
}

void config_view_plugin(config_view *v, const run_config *rc, edm2_kind kind) {
    const edm2_plugin_desc *d = rc->plugin[kind] ? rc->plugin[kind]->desc : NULL;
    config_view_init(v, rc->cfg, kind_name(kind), d ? d->keys : NULL, d ? d->key_count : 0);
}

/* Every section name the config may use: host sections and plugin kinds. */
static size_t all_section_names(const char **out, size_t cap) {
    size_t n = 0, nh;
    const host_section *hs = host_section_list(&nh);
    for (size_t i = 0; i < nh && n < cap; i++) out[n++] = hs[i].name;
    for (int k = 0; k < EDM2_KIND_COUNT_ && n < cap; k++) out[n++] = kind_name((edm2_kind)k);
    return n;
}

static void suffix_suggestion(char *buf, size_t len, const char *best) {
    if (best) snprintf(buf, len, "; did you mean '%s'?", best);
    else buf[0] = 0;
}

/* Checks every key of `section` against the schema; the schema's required keys must be present. */
static int check_section_keys(const cfg *c, const char *section, const edm2_config_key *keys, size_t nkeys,
                              const char *owner, edm2_err *err) {
    const char *names[256];
    size_t nn = nkeys < 255 ? nkeys : 255;
    for (size_t i = 0; i < nn; i++) names[i] = keys[i].name;
    names[nn++] = "plugin";
    for (size_t i = 0; i < c->n; i++) {
        const cfg_entry *e = &c->v[i];
        if (strcmp(e->section, section) != 0) continue;
        if (owner && strcmp(e->key, "plugin") == 0) continue;
        const edm2_config_key *k = schema_find(keys, nkeys, e->key);
        if (!k) {
            char hint[160];
            suffix_suggestion(hint, sizeof hint, closest_name(e->key, names, owner ? nn : nn - 1));
            return err_set(err, "%s: [%s] unknown key '%s'%s%s%s", cfg_where(e).s, section, e->key,
                           owner ? " for plugin " : "", owner ? owner : "", hint);
        }
        const host_range *r = owner ? NULL : host_range_find(section, e->key);
        const char *word = owner ? NULL : host_key_word(section, e->key);
        if (word && !strcmp(e->value, word)) continue;
        char or_word[64] = "";
        if (word) snprintf(or_word, sizeof or_word, " or '%s'", word);
        if (value_check(k->type, e->value))
            return err_set(err, "%s: [%s] %s = '%s': expected %s%s", cfg_where(e).s, section, e->key, e->value,
                           type_name(k->type), or_word);
        double v = r ? strtod(e->value, NULL) : 0;
        if (r && !(v >= r->lo && v <= r->hi))
            return err_set(err, "%s: [%s] %s = %s: expected %s from %.15g to %.15g%s", cfg_where(e).s, section, e->key,
                           e->value, k->type == EDM2_CFG_INT ? "an integer" : "a number", r->lo, r->hi, or_word);
    }
    for (size_t i = 0; i < nkeys; i++)
        if (!keys[i].default_value && !cfg_get(c, section, keys[i].name))
            return err_set(err, "%s: [%s] missing required key '%s' (%s)", c->path, section, keys[i].name,
                           keys[i].help);
    return 0;
}

static const char *first_problem_note(const plugin_registry *r, char *buf, size_t len) {
    if (!r->nproblems) return "";
    snprintf(buf, len, " (note: %zu plugin file%s could not be loaded, e.g. %s)", r->nproblems,
             r->nproblems == 1 ? "" : "s", r->problems[0]);
    return buf;
}

static int resolve_plugin(const cfg *c, const plugin_registry *r, edm2_kind kind, edm2_backend_id backend,
                          const plugin_rec **out, edm2_err *err) {
    const char *section = kind_name(kind);
    const cfg_entry *e = cfg_get(c, section, "plugin");
    if (!e) return err_set(err, "%s: [%s] needs 'plugin = ID' (see `edm2host plugins`)", c->path, section);
    /* A backend is named by id alone (its build is what it is); the others must fit that backend. */
    const plugin_rec *p = kind == EDM2_KIND_BACKEND ? registry_find_id(r, e->value, (int)kind)
                                                    : registry_find(r, kind, e->value, backend);
    if (p) {
        *out = p;
        return 0;
    }
    const char *ids[256];
    size_t n = 0;
    for (size_t i = 0; i < r->nplugins && n < 256; i++)
        if (r->plugins[i].desc->kind == kind) ids[n++] = r->plugins[i].desc->id;
    char hint[160], note[1400];
    suffix_suggestion(hint, sizeof hint, closest_name(e->value, ids, n));
    const plugin_rec *other = registry_find_id(r, e->value, (int)kind);
    if (other)
        return err_set(err, "%s: [%s] plugin '%s' exists only for backend %s, not %s", cfg_where(e).s, section,
                       e->value, backend_name(other->desc->backend), backend_name(backend));
    return err_set(err, "%s: [%s] plugin '%s' not found on the plugin path%s%s", cfg_where(e).s, section,
                   e->value, hint, first_problem_note(r, note, sizeof note));
}

int config_validate(const cfg *c, const plugin_registry *r, run_config *out, edm2_err *err) {
    memset(out, 0, sizeof *out);
    out->cfg = c;
    out->registry = r;
    /* 1. Sections. */
    const char *names[64];
    size_t nn = all_section_names(names, 64);
    for (size_t i = 0; i < c->n; i++) {
        const cfg_entry *e = &c->v[i];
        if (!e->section[0]) continue;
        int known = 0;
        for (size_t j = 0; j < nn; j++) known |= strcmp(names[j], e->section) == 0;
        if (!known) {
            char hint[160];
            suffix_suggestion(hint, sizeof hint, closest_name(e->section, names, nn));
            return err_set(err, "%s: unknown section [%s]%s", cfg_where(e).s, e->section, hint);
        }
    }
    /* 2. The job. */
    const cfg_entry *je = cfg_get(c, "job", "type");
    if (!je) return err_set(err, "%s: [job] missing required key 'type'", c->path);
    out->job = job_find(je->value);
    if (!out->job) {
        size_t nj;
        const job_def *jobs = job_list(&nj);
        const char *jn[32];
        char list[256] = "";
        for (size_t i = 0; i < nj && i < 32; i++) {
            jn[i] = jobs[i].type;
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, jobs[i].type, sizeof list - strlen(list) - 1);
        }
        char hint[160];
        suffix_suggestion(hint, sizeof hint, closest_name(je->value, jn, nj < 32 ? nj : 32));
        return err_set(err, "%s: [job] type = '%s': unknown job (known: %s)%s", cfg_where(je).s, je->value,
                       list, hint);
    }
    /* 3. Host sections. */
    size_t nh;
    const host_section *hs = host_section_list(&nh);
    for (size_t i = 0; i < nh; i++) {
        int needed = strcmp(hs[i].name, "job") == 0;
        for (const char *const *s = out->job->sections_required; s && *s; s++) needed |= strcmp(*s, hs[i].name) == 0;
        if (!needed && !cfg_has_section(c, hs[i].name)) continue;
        if (check_section_keys(c, hs[i].name, hs[i].keys, hs[i].nkeys, NULL, err)) return -1;
    }
    /* 4. Plugin sections: the backend first, since it decides which builds of the others fit. */
    out->backend = EDM2_BACKEND_CPU;
    for (int k = 0; k < EDM2_KIND_COUNT_; k++) {
        const char *section = kind_name((edm2_kind)k);
        int needed = (out->job->kinds_required >> k) & 1u;
        if (!cfg_has_section(c, section)) {
            if (needed && k != EDM2_KIND_BACKEND)
                return err_set(err, "%s: job '%s' needs a [%s] section with 'plugin = ID'", c->path, out->job->type,
                               section);
            if (needed) { /* no [backend]: the CPU backend */
                const plugin_rec *p = registry_find(r, EDM2_KIND_BACKEND, "cpu", EDM2_BACKEND_CPU);
                if (!p) return err_set(err, "%s: no [backend] section and no 'cpu' backend plugin found", c->path);
                out->plugin[k] = p;
            }
            continue;
        }
        if (resolve_plugin(c, r, (edm2_kind)k, out->backend, &out->plugin[k], err)) return -1;
        const edm2_plugin_desc *d = out->plugin[k]->desc;
        if (k == EDM2_KIND_BACKEND) out->backend = d->backend;
        if (check_section_keys(c, section, d->keys, d->key_count, d->id, err)) return -1;
    }
    return 0;
}
