/* gen_session.c: what the jobs that sample from a snapshot share (generate, evaluate): the backend, the
 * snapshot and its guiding snapshot, the sampler, and the seeds and labels of the images. */
#include "gen_session.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "process_group.h"
#include "snapshot.h"

int seeds_parse(const char *s, uint64_t **out, int *n, edm2_err *err) {
    *out = NULL;
    *n = 0;
    int cap = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        char *end;
        if (!isdigit((unsigned char)*p)) return err_set(err, "seeds = '%s': expected numbers and ranges", s);
        unsigned long long a = strtoull(p, &end, 10), b = a;
        p = end;
        if (*p == '-') {
            if (!isdigit((unsigned char)p[1])) return err_set(err, "seeds = '%s': bad range", s);
            b = strtoull(p + 1, &end, 10);
            p = end;
        }
        if (b < a || b - a > 10000000) return err_set(err, "seeds = '%s': bad range %llu-%llu", s, a, b);
        for (unsigned long long v = a; v <= b; v++) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                uint64_t *nv = realloc(*out, (size_t)cap * sizeof *nv);
                if (!nv) return err_set(err, "out of memory");
                *out = nv;
            }
            (*out)[(*n)++] = v;
        }
        while (*p == ' ') p++;
        if (*p && *p != ',') return err_set(err, "seeds = '%s': unexpected '%c'", s, *p);
    }
    if (!*n) return err_set(err, "seeds = '%s': no seeds", s);
    return 0;
}

int label_class(const char *mode, int fixed, int i, uint64_t seed, int cols, int L) {
    if (!strcmp(mode, "rows")) return (i / cols) % L;
    if (!strcmp(mode, "random")) return random_class(seed, L);
    return fixed;
}

int label_mode(const char *mode, int L, int *fixed, edm2_err *err) {
    *fixed = -1;
    if (!L || !strcmp(mode, "rows") || !strcmp(mode, "random")) return 0;
    char *end;
    long v = strtol(mode, &end, 10);
    if (*end || end == mode || v < 0 || v >= L)
        return err_set(err, "labels = '%s': expected rows, random or a class in 0..%d", mode, L - 1);
    *fixed = (int)v;
    return 0;
}

int gen_session_open_backend(gen_session *s, const run_config *rc, edm2_err *err) {
    memset(s, 0, sizeof *s);
    config_view jv, bv;
    config_view_host(&jv, rc->cfg, "job");
    config_view_plugin(&bv, rc, EDM2_KIND_BACKEND);
    const int threads = group_threads((int)edm2_cfg_int(&jv.api, "threads", 0)); /* (a node's processes share it) */
    if (runtime_open(&s->rt, rc->plugin[EDM2_KIND_BACKEND], &bv.api, threads, err)) return -1;
    cpu_share_init(&s->share, s->rt.services.threads);
    return 0;
}

int gen_session_open(gen_session *s, const run_config *rc, const edm2_config *sec, const char *section, edm2_err *err) {
    if (gen_session_open_backend(s, rc, err)) return -1;
    config_view sv;
    config_view_plugin(&sv, rc, EDM2_KIND_SAMPLER);
    const char *net_path = sec->get(sec->ctx, "net"), *gnet_path = sec->get(sec->ctx, "gnet");
    const char *precision = sec->get(sec->ctx, "precision");
    const double guidance = edm2_cfg_float(sec, "guidance", 1);
    if (snapshot_open(net_path, rc->registry, &s->rt, &s->net, &s->nf, precision, err)) return -1;
    if (guidance != 1.0) {
        if (!*gnet_path)
            return err_set(err, "[%s] guidance = %g needs 'gnet = SNAPSHOT' (a guiding network)", section, guidance);
        if (snapshot_open(gnet_path, rc->registry, &s->rt, &s->gnet, &s->gf, precision, err)) return -1;
    }
    s->L = s->net.info.label_dim, s->C = s->net.info.img_channels, s->R = s->net.info.img_resolution;
    s->per = (size_t)s->C * s->R * s->R;
    return generator_open(&s->gen, &s->rt, &s->net, guidance != 1.0 ? &s->gnet : NULL, guidance,
                          rc->plugin[EDM2_KIND_SAMPLER], &sv.api, err);
}

void gen_session_share_cpu(gen_session *s) {
    int changed;
    s->rt.services.threads = cpu_share_update(&s->share, &changed);
    if (changed) cpu_share_log_change(&s->share);
}

void gen_session_close(gen_session *s) {
    if (s->gen.s) generator_close(&s->gen);
    if (s->gnet.net) net_close(&s->gnet, &s->rt);
    if (s->net.net) net_close(&s->net, &s->rt);
    st_close(&s->nf), st_close(&s->gf);
    if (s->rt.b) runtime_close(&s->rt);
    memset(s, 0, sizeof *s);
}
