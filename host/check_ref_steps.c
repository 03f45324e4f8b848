/* check_ref_steps.c: the check-ref groups of the optimizer and EMA steps: Adam and the power EMA fed the
 * reference's own inputs (stepK/normed, stepK/grad; absolute tolerance 1e-6), then the same two steps
 * driven end to end by this project's forced weight normalisation, gradients, Adam and EMA (at least
 * 99% of the entries within 1e-5). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_ref.h"
#include "metadata.h"
#include "validate.h"
#include "log.h"

/* The reference gradients of step k as an arena (0 where absent). */
static float *ref_grads(check_ctx *c, int k, edm2_err *err) {
    const edm2_network_info *info = &c->net.info;
    float *g = calloc(info->arena_floats + 1, sizeof(float));
    if (!g) {
        err_set(err, "out of memory");
        return NULL;
    }
    char name[512];
    for (size_t i = 0; i < info->param_count; i++) {
        const edm2_param_desc *d = &info->params[i];
        if (!(d->flags & EDM2_PARAM_TRAINED)) continue;
        snprintf(name, sizeof name, "step%d/grad/%s", k, d->name);
        const st_tensor *t = st_find(&c->ref, name);
        if (!t || !arena_shape_matches(d, t)) {
            free(g);
            err_set(err, "%s: missing or misshaped '%s'", c->ref.path, name);
            return NULL;
        }
        st_to_f32(t, g + d->offset);
    }
    return g;
}

typedef struct step_plugins {
    const edm2_optimizer_vtable *ovt;
    edm2_optimizer *opt;
    const edm2_ema_vtable *evt;
    edm2_ema *ema;
    float *avg[64];
    size_t nema;
} step_plugins;

static int plugins_open(check_ctx *c, step_plugins *sp, const plugin_rec *orec, const plugin_rec *erec,
                        const float *init, edm2_err *err) {
    memset(sp, 0, sizeof *sp);
    cfg oc = {0}, ec = {0};
    config_view ov, ev;
    int rc = -1;
    if (meta_section(&c->ref, orec->desc, "adam_", &oc, "optimizer", err) ||
        meta_section(&c->ref, erec->desc, "ema_", &ec, "ema", err))
        goto done;
    config_view_init(&ov, &oc, "optimizer", orec->desc->keys, orec->desc->key_count);
    config_view_init(&ev, &ec, "ema", erec->desc->keys, erec->desc->key_count);
    sp->ovt = orec->desc->vtable;
    sp->evt = erec->desc->vtable;
    if (sp->ovt->create(&c->rt.services, &ov.api, &c->rt.ops, &c->net.info, &sp->opt) != EDM2_OK) {
        err_plugin(err, "optimizer %s", orec->desc->id);
        goto done;
    }
    if (sp->evt->create(&c->rt.services, &ev.api, &c->rt.ops, &sp->ema) != EDM2_OK) {
        err_plugin(err, "ema %s", erec->desc->id);
        goto done;
    }
    sp->nema = sp->evt->count(sp->ema);
    if (sp->nema > 64) sp->nema = 64;
    for (size_t i = 0; i < sp->nema; i++) {
        if (!(sp->avg[i] = rt_alloc(&c->rt, c->net.info.arena_floats, err))) goto done;
        if (rt_upload(&c->rt, sp->avg[i], init, c->net.info.arena_floats, err)) goto done;
    }
    rc = 0;
done:
    cfg_free(&oc);
    cfg_free(&ec);
    return rc;
}

static void plugins_close(check_ctx *c, step_plugins *sp) {
    for (size_t i = 0; i < sp->nema; i++) rt_free(&c->rt, sp->avg[i]);
    if (sp->ema) sp->evt->destroy(sp->ema);
    if (sp->opt) sp->ovt->destroy(sp->opt);
}

/* Updates the EMAs towards `params` (backend arena) and compares them with stepK/ema<label>/. */
static int ema_step(check_ctx *c, step_plugins *sp, const float *params, long long t, long long dt, int k,
                    const char *tag, cmp_mode mode, float *host, edm2_err *err) {
    size_t A = c->net.info.arena_floats;
    if (sp->evt->update(sp->ema, sp->avg, params, A, t, dt) != EDM2_OK) return err_plugin(err, "ema update failed");
    for (size_t i = 0; i < sp->nema; i++) {
        char prefix[96], label[96];
        snprintf(prefix, sizeof prefix, "step%d/ema%s/", k, sp->evt->label(sp->ema, i));
        snprintf(label, sizeof label, "step%d/ema%s%s", k, sp->evt->label(sp->ema, i), tag);
        if (rt_download(&c->rt, host, sp->avg[i], A, err)) return -1;
        compare_arena(c, label, host, prefix, mode);
    }
    return 0;
}

int group_steps(check_ctx *c, batch_bufs *b, edm2_err *err) {
    if (!st_find(&c->ref, "step1/lr")) {
        skip(c, "stepK/params, EMAs", "no optimizer/EMA groups");
        return 0;
    }
    int64_t start, batch;
    if (meta_int(&c->ref, "start_nimg", 0, (int64_t)1 << 50, &start, err) ||
        meta_int(&c->ref, "batch", 1, 1 << 24, &batch, err))
        return -1;
    edm2_backend_id bid = c->rt.backend_rec->desc->backend;
    const plugin_rec *orec = registry_find(&c->reg, EDM2_KIND_OPTIMIZER, "adam", bid);
    const plugin_rec *erec = registry_find(&c->reg, EDM2_KIND_EMA, "power", bid);
    if (!orec || !erec) return err_set(err, "check-ref needs the 'adam' optimizer and 'power' EMA plugins");
    int K = 0;
    for (char name[64];; K++) {
        snprintf(name, sizeof name, "step%d/lr", K + 1);
        if (!st_find(&c->ref, name)) break;
    }
    size_t A = c->net.info.arena_floats;
    float *init = ref_arena(c, "init/", err), *host = malloc((A + 1) * sizeof(float));
    float *grads = malloc((A + 1) * sizeof(float)), *tmp = rt_alloc(&c->rt, A, err);
    step_plugins fed, e2e;
    memset(&fed, 0, sizeof fed), memset(&e2e, 0, sizeof e2e);
    int rc = -1;
    if (!init || !host || !grads || !tmp) goto done;
    if (plugins_open(c, &fed, orec, erec, init, err) || plugins_open(c, &e2e, orec, erec, init, err)) goto done;

    printf("stepK/params and EMAs: Adam and power EMA fed the reference's normed parameters and gradients\n");
    for (int k = 1; k <= K; k++) {
        char name[96];
        snprintf(name, sizeof name, "step%d/normed/", k);
        float *p = ref_arena(c, name, err), *g = p ? ref_grads(c, k, err) : NULL;
        if (!p || !g) {
            free(p);
            goto done;
        }
        double lr = 0;
        int bad = rt_upload(&c->rt, c->net.params, p, A, err) || rt_upload(&c->rt, b->grads, g, A, err);
        free(p), free(g);
        if (bad) goto done;
        if (fed.ovt->step(fed.opt, c->net.params, b->grads, start + (k - 1) * batch, batch, &lr) != EDM2_OK) {
            err_plugin(err, "optimizer step failed");
            goto done;
        }
        snprintf(name, sizeof name, "step%d/lr", k);
        float lrf = (float)lr, *want = ref_tensor(c, name, 1);
        int64_t one[1] = {1};
        dump_add(c, name, &lrf, 1, one);
        if (want) report(c, name, fabs(lr - want[0]), 1e-6 * fabs(want[0]), NULL);
        free(want);
        if (rt_download(&c->rt, host, c->net.params, A, err)) goto done;
        snprintf(name, sizeof name, "step%d/params/", k);
        char label[64];
        snprintf(label, sizeof label, "step%d/params", k);
        compare_arena(c, label, host, name, CMP_ABS);
        /* The EMA follows the reference's parameters after the step. */
        float *pk = ref_arena(c, name, err);
        if (!pk) goto done;
        bad = rt_upload(&c->rt, tmp, pk, A, err);
        free(pk);
        if (bad || ema_step(c, &fed, tmp, start + k * batch, batch, k, "", CMP_ABS, host, err)) goto done;
    }

    printf("end to end: forced weight normalisation, loss gradients, Adam and EMA of this project\n");
    memcpy(host, init, A * sizeof(float));
    for (int k = 1; k <= K; k++) {
        char name[96], label[96];
        if (rt_upload(&c->rt, c->net.params, host, A, err)) goto done;
        if (c->net.vt->normalize_weights(c->net.net, c->net.params) != EDM2_OK) {
            err_plugin(err, "normalize_weights failed");
            goto done;
        }
        if (rt_download(&c->rt, host, c->net.params, A, err)) goto done;
        snprintf(name, sizeof name, "step%d/normed/", k);
        float *want = ref_arena(c, name, err);
        if (!want) goto done;
        snprintf(label, sizeof label, "step%d/normed (own)", k);
        double e = 0;
        for (size_t i = 0; i < A; i++) e = fmax(e, fabs((double)host[i] - want[i]));
        report(c, label, e, FWD_TOL * (1 + max_abs(want, A)), NULL);
        free(want);
        double objective;
        if (run_loss(c, b, host, grads, NULL, &objective, err)) goto done; /* uploads host as params */
        if (rt_upload(&c->rt, b->grads, grads, A, err)) goto done;
        if (e2e.ovt->step(e2e.opt, c->net.params, b->grads, start + (k - 1) * batch, batch, NULL) != EDM2_OK) {
            err_plugin(err, "optimizer step failed");
            goto done;
        }
        if (rt_download(&c->rt, host, c->net.params, A, err)) goto done;
        snprintf(name, sizeof name, "step%d/params/", k);
        snprintf(label, sizeof label, "step%d/params (own)", k);
        compare_arena(c, label, host, name, CMP_FRACTION);
        if (ema_step(c, &e2e, c->net.params, start + k * batch, batch, k, " (own)", CMP_FRACTION, grads, err)) goto done;
    }
    rc = 0;
done:
    plugins_close(c, &fed);
    plugins_close(c, &e2e);
    rt_free(&c->rt, tmp);
    free(init), free(host), free(grads);
    return rc;
}
