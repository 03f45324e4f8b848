/* cmd_check_ref.c: `edm2host check-ref FILE.safetensors`: rebuilds the network described by a reference
 * file's metadata, recomputes every group the file holds (eval forward, training-step objectives and
 * gradients, ...) and compares with the reference's tolerances (see ../shared/ref/README.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_ref.h"
#include "cli_args.h"
#include "commands.h"
#include "config.h"
#include "log.h"
#include "runtime.h"
#include "metadata.h"
#include "schema.h"
#include "validate.h"

/* Keeps a copy of a computed tensor for --dump. A name computed twice (stepK/params: fed the reference's
 * inputs, then end to end) keeps the later, end-to-end value. */
void dump_add(check_ctx *c, const char *name, const float *data, int ndim, const int64_t *shape) {
    if (!c->dumping) return;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    for (size_t i = 0; i < c->dump.n; i++)
        if (strcmp(c->dump.t[i].name, name) == 0 && c->dump.t[i].ndim == ndim) {
            size_t have = 1;
            for (int k = 0; k < ndim; k++) have *= (size_t)c->dump.t[i].shape[k];
            if (have == numel) {
                memcpy(c->dump.owned[i], data, numel * sizeof(float));
                return;
            }
        }
    if (c->dump.n == c->dump.cap) {
        size_t cap = c->dump.cap ? 2 * c->dump.cap : 64;
        st_out *t = realloc(c->dump.t, cap * sizeof *t);
        if (t) c->dump.t = t;
        float **owned = t ? realloc(c->dump.owned, cap * sizeof *owned) : NULL;
        if (owned) c->dump.owned = owned;
        if (!t || !owned) {
            LOG_WARN("check-ref: out of memory for --dump; the dump will be incomplete");
            c->dumping = 0;
            return;
        }
        c->dump.cap = cap;
    }
    float *copy = malloc(numel * sizeof(float) + 1);
    char *nm = strdup(name);
    if (!copy || !nm) {
        free(copy), free(nm);
        LOG_WARN("check-ref: out of memory for --dump; the dump will be incomplete");
        c->dumping = 0;
        return;
    }
    memcpy(copy, data, numel * sizeof(float));
    st_out *o = &c->dump.t[c->dump.n];
    memset(o, 0, sizeof *o);
    o->name = nm;
    o->dtype = ST_F32;
    o->ndim = ndim;
    for (int i = 0; i < ndim; i++) o->shape[i] = shape[i];
    o->data = copy;
    c->dump.owned[c->dump.n++] = copy;
}

void report(check_ctx *c, const char *what, double err, double tol, const char *detail) {
    int ok = err <= tol && isfinite(err);
    printf("  %-34s max|err| %.3e  tol %.3e  %s%s%s\n", what, err, tol, ok ? "ok" : "FAIL", detail ? "  " : "",
           detail ? detail : "");
    if (ok) c->passed++;
    else c->failed++;
}

void skip(check_ctx *c, const char *what, const char *why) {
    printf("  %-34s skipped: %s\n", what, why);
    c->skipped++;
}

void report_fraction(check_ctx *c, const char *what, double frac, double need, double tol, size_t total) {
    int ok = frac >= need;
    printf("  %-34s %.3f%% of %zu entries within %.0e (need %.0f%%)  %s\n", what, 100 * frac, total, tol, 100 * need,
           ok ? "ok" : "FAIL");
    if (ok) c->passed++;
    else c->failed++;
}

/* Reads reference tensor `name` (expected numel) into a new host buffer; NULL if absent or mismatched. */
float *ref_tensor(check_ctx *c, const char *name, size_t numel) {
    const st_tensor *t = st_find(&c->ref, name);
    if (!t || t->numel != numel) return NULL;
    float *buf = malloc(numel * sizeof(float) + 1);
    if (buf) st_to_f32(t, buf);
    return buf;
}

double max_abs(const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)b[i]));
    return m;
}

double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* Compares a computed forward-type tensor with reference `name`. */
void compare_fwd(check_ctx *c, const char *name, const float *got, size_t n, int ndim, const int64_t *shape) {
    dump_add(c, name, got, ndim, shape);
    float *want = ref_tensor(c, name, n);
    if (!want) {
        skip(c, name, "not in the file (or another shape)");
        return;
    }
    report(c, name, max_diff(got, want, n), FWD_TOL * (1 + max_abs(want, n)), NULL);
    free(want);
}

/* ---- Setup from metadata ---- */

static int load_inputs(check_ctx *c, edm2_err *err) {
    const st_tensor *x = st_find(&c->ref, "in/x");
    if (!x || x->ndim != 4) return err_set(err, "%s: needs in/x [N, C, H, W]", c->ref.path);
    c->N = (int)x->shape[0];
    c->img_elems = x->numel;
    const edm2_network_info *info = &c->net.info;
    if (x->shape[1] != info->img_channels || x->shape[2] != info->img_resolution || x->shape[3] != info->img_resolution)
        return err_set(err, "%s: in/x has shape [%lld, %lld, %lld, %lld], the metadata describe %dx%dx%d images",
                       c->ref.path, (long long)x->shape[0], (long long)x->shape[1], (long long)x->shape[2],
                       (long long)x->shape[3], info->img_channels, info->img_resolution, info->img_resolution);
    c->x = ref_tensor(c, "in/x", c->img_elems);
    c->noise = ref_tensor(c, "in/noise", c->img_elems);
    c->sigma = ref_tensor(c, "in/sigma", (size_t)c->N);
    if (!c->x || !c->noise || !c->sigma) return err_set(err, "%s: needs in/x, in/noise and in/sigma [N]", c->ref.path);
    c->label_dim = info->label_dim;
    if (c->label_dim) {
        c->labels = ref_tensor(c, "in/labels", (size_t)c->N * c->label_dim);
        if (!c->labels) return err_set(err, "%s: label_dim %d needs in/labels [%d, %d]", c->ref.path, c->label_dim, c->N,
                                       c->label_dim);
    }
    return 0;
}

float *ref_arena(check_ctx *c, const char *prefix, edm2_err *err) {
    float *host = calloc(c->net.info.arena_floats + 1, sizeof(float));
    if (!host) {
        err_set(err, "out of memory");
        return NULL;
    }
    if (arena_load(&c->net.info, &c->ref, prefix, host, err)) {
        free(host);
        return NULL;
    }
    return host;
}

/* Uploads reference tensors `prefix*` into the network's parameter arena. */
static int load_params(check_ctx *c, const char *prefix, edm2_err *err) {
    float *host = ref_arena(c, prefix, err);
    if (!host) return -1;
    int rc = rt_upload(&c->rt, c->net.params, host, c->net.info.arena_floats, err);
    free(host);
    return rc;
}

static int batch_alloc(check_ctx *c, batch_bufs *b, edm2_err *err) {
    memset(b, 0, sizeof *b);
    runtime *rt = &c->rt;
    size_t E = c->img_elems, N = (size_t)c->N;
    if (!(b->x = rt_alloc(rt, E, err)) || !(b->sigma = rt_alloc(rt, N, err)) || !(b->noise = rt_alloc(rt, E, err)) ||
        !(b->D = rt_alloc(rt, E, err)) || !(b->logvar = rt_alloc(rt, N, err)) || !(b->loss = rt_alloc(rt, E, err)) ||
        !(b->grads = rt_alloc(rt, c->net.info.arena_floats, err)))
        return -1;
    if (c->label_dim && !(b->labels = rt_alloc(rt, N * c->label_dim, err))) return -1;
    if (rt_upload(rt, b->sigma, c->sigma, N, err) || rt_upload(rt, b->noise, c->noise, E, err)) return -1;
    if (c->label_dim && rt_upload(rt, b->labels, c->labels, N * c->label_dim, err)) return -1;
    return 0;
}

static void batch_free(check_ctx *c, batch_bufs *b) {
    float *all[] = {b->x, b->sigma, b->labels, b->noise, b->D, b->logvar, b->loss, b->grads};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) rt_free(&c->rt, all[i]);
}

/* ---- Groups ---- */

static int group_eval(check_ctx *c, batch_bufs *b, edm2_err *err) {
    if (!st_find(&c->ref, "eval/D")) {
        skip(c, "eval", "no eval/* group");
        return 0;
    }
    printf("eval: forward in evaluation mode of init/* on in/x + in/sigma * in/noise\n");
    if (load_params(c, "init/", err)) return -1;
    size_t E = c->img_elems, N = (size_t)c->N;
    float *xn = malloc(E * sizeof(float)), *D = malloc(E * sizeof(float)), *lv = malloc(N * sizeof(float));
    int rc = -1;
    if (!xn || !D || !lv) {
        err_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < E; i++) xn[i] = c->x[i] + c->noise[i] * c->sigma[i / (E / N)];
    if (rt_upload(&c->rt, b->x, xn, E, err)) goto done;
    edm2_forward_args fa;
    memset(&fa, 0, sizeof fa);
    fa.struct_size = sizeof fa;
    fa.params = c->net.params, fa.x = b->x, fa.sigma = b->sigma, fa.labels = b->labels, fa.N = c->N;
    fa.D = b->D, fa.logvar = b->logvar;
    if (c->net.vt->forward(c->net.net, &fa) != EDM2_OK) {
        err_plugin(err, "network forward failed");
        goto done;
    }
    if (rt_download(&c->rt, D, b->D, E, err) || rt_download(&c->rt, lv, b->logvar, N, err)) goto done;
    const st_tensor *xt = st_find(&c->ref, "in/x");
    compare_fwd(c, "eval/D", D, E, 4, xt->shape);
    int64_t nshape[1] = {c->N};
    compare_fwd(c, "eval/logvar", lv, N, 1, nshape);
    rc = 0;
done:
    free(xn), free(D), free(lv);
    return rc;
}

int run_loss(check_ctx *c, batch_bufs *b, const float *params, float *grads, float *loss, double *objective,
             edm2_err *err) {
    const edm2_network_info *info = &c->net.info;
    size_t E = c->img_elems, A = info->arena_floats;
    if (rt_upload(&c->rt, c->net.params, params, A, err) || rt_upload(&c->rt, b->x, c->x, E, err)) return -1;
    if (c->rt.bvt->fill(c->rt.b, b->grads, 0.0f, A) != EDM2_OK) return err_plugin(err, "backend fill failed");
    const edm2_loss_vtable *lvt = c->loss_rec->desc->vtable;
    cfg lcfg = {0};
    config_view view;
    if (meta_section(&c->ref, c->loss_rec->desc, NULL, &lcfg, "loss", err)) {
        cfg_free(&lcfg);
        return -1;
    }
    config_view_init(&view, &lcfg, "loss", c->loss_rec->desc->keys, c->loss_rec->desc->key_count);
    edm2_loss *L = NULL;
    edm2_status s = lvt->create(&c->rt.services, &view.api, &c->rt.ops, &L);
    cfg_free(&lcfg);
    if (s != EDM2_OK) return err_plugin(err, "loss %s", c->loss_rec->desc->id);
    edm2_loss_batch lb;
    memset(&lb, 0, sizeof lb);
    lb.struct_size = sizeof lb;
    lb.y = b->x, lb.labels = b->labels, lb.N = c->N, lb.batch_total = c->N;
    lb.sigma = b->sigma, lb.noise = b->noise, lb.loss_out = b->loss;
    s = lvt->compute(L, net_ref(&c->net), c->net.params, b->grads, &lb, objective);
    lvt->destroy(L);
    if (s != EDM2_OK) return err_plugin(err, "loss %s: compute failed", c->loss_rec->desc->id);
    if (rt_download(&c->rt, grads, b->grads, A, err)) return -1;
    return loss ? rt_download(&c->rt, loss, b->loss, E, err) : 0;
}

void compare_arena(check_ctx *c, const char *label, const float *got, const char *prefix, cmp_mode mode) {
    const edm2_network_info *info = &c->net.info;
    char name[512];
    double worst = 0, worst_tol = 0; /* CMP_REL: the tensor with the largest error relative to its tolerance */
    const char *worst_name = "";
    size_t total = 0, within = 0;
    int n = 0, missing = 0;
    for (size_t i = 0; i < info->param_count; i++) {
        const edm2_param_desc *d = &info->params[i];
        if (!(d->flags & EDM2_PARAM_TRAINED)) continue;
        snprintf(name, sizeof name, "%s%s", prefix, d->name);
        dump_add(c, name, got + d->offset, (int)d->ndim, d->shape);
        float *want = ref_tensor(c, name, d->numel);
        if (!want) {
            missing++;
            continue;
        }
        double e = max_diff(got + d->offset, want, d->numel);
        if (mode == CMP_REL) {
            double tol = GRAD_TOL * max_abs(want, d->numel);
            double ratio = tol > 0 ? e / tol : (e > 0 ? INFINITY : 0);
            if (n == 0 || ratio > (worst_tol > 0 ? worst / worst_tol : 0) || !isfinite(e))
                worst = e, worst_tol = tol, worst_name = d->name;
        } else if (!(e <= worst)) {
            worst = isnan(e) ? INFINITY : e;
        }
        for (size_t j = 0; mode == CMP_FRACTION && j < d->numel; j++)
            within += fabs((double)got[d->offset + j] - want[j]) <= E2E_TOL;
        total += d->numel;
        n++;
        free(want);
    }
    char what[128], detail[300];
    snprintf(what, sizeof what, "%s (%d tensors)", label, n);
    snprintf(detail, sizeof detail, "worst: %s%s", worst_name, missing ? " (some absent in the file)" : "");
    if (!n) skip(c, what, "not in the file");
    else if (mode == CMP_REL) report(c, what, worst, worst_tol, detail);
    else if (mode == CMP_ABS) report(c, what, worst, STEP_TOL, missing ? "(some absent in the file)" : NULL);
    else report_fraction(c, what, (double)within / (double)total, E2E_FRACTION, E2E_TOL, total);
}

static int group_step(check_ctx *c, batch_bufs *b, int k, edm2_err *err) {
    char name[512], prefix[64];
    snprintf(name, sizeof name, "step%d/objective", k);
    snprintf(prefix, sizeof prefix, "step%d/normed/", k);
    printf("step%d: training objective and gradients at step%d/normed\n", k, k);
    float *params = ref_arena(c, prefix, err);
    if (!params) return -1;
    size_t E = c->img_elems, A = c->net.info.arena_floats;
    float *grads = malloc((A + 1) * sizeof(float)), *loss = malloc(E * sizeof(float));
    double objective = 0;
    int rc = -1;
    if (!grads || !loss) {
        err_set(err, "out of memory");
        goto done;
    }
    if (run_loss(c, b, params, grads, loss, &objective, err)) goto done;
    float obj = (float)objective;
    int64_t one[1] = {1};
    compare_fwd(c, name, &obj, 1, 1, one);
    snprintf(name, sizeof name, "step%d/loss", k);
    compare_fwd(c, name, loss, E, 4, st_find(&c->ref, "in/x")->shape);
    snprintf(name, sizeof name, "step%d/grad/", k);
    snprintf(prefix, sizeof prefix, "step%d/grad", k);
    compare_arena(c, prefix, grads, name, CMP_REL);
    rc = 0;
done:
    free(params), free(grads), free(loss);
    return rc;
}

/* ---- The command ---- */

static void usage(void) {
    printf("usage: edm2host check-ref FILE.safetensors [--backend cpu|cuda] [--network ID] [--loss ID]\n"
           "                          [--threads N] [--dump OUT.safetensors]\n\n"
           "Rebuilds the network described by the file's __metadata__, recomputes every group the file\n"
           "holds (eval, stepK objective/loss/grad/params/EMAs, sample) and compares with the reference\n"
           "tolerances: forward max|err| <= 2e-5 (1 + max|ref|), gradients max|err| <= 1e-3 max|ref| per\n"
           "tensor. Absent groups are skipped with a note. Exit status 0 when every check passes.\n"
           "--dump writes every computed tensor under the reference's names.\n");
}

int cmd_check_ref(int argc, char **argv) {
    const char *file = NULL, *backend = "cpu", *network = "mp_unet", *loss = "edm2", *dump = NULL;
    int threads = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--network") && i + 1 < argc) network = argv[++i];
        else if (!strcmp(argv[i], "--loss") && i + 1 < argc) loss = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (arg_int("check-ref", "--threads", argv[++i], 0, 4096, &threads)) return 2;
        }
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else if (argv[i][0] != '-' && !file) file = argv[i];
        else {
            LOG_ERROR("check-ref: unexpected argument '%s' (see edm2host check-ref --help)", argv[i]);
            return 2;
        }
    }
    if (!file) {
        LOG_ERROR("check-ref: missing FILE.safetensors (see edm2host check-ref --help)");
        return 2;
    }
    check_ctx c;
    memset(&c, 0, sizeof c);
    c.dumping = dump != NULL;
    c.backend_id = backend;
    edm2_err err;
    int rc = 1;
    cfg ncfg = {0};
    batch_bufs b;
    memset(&b, 0, sizeof b);
    if (st_open(&c.ref, file, &err)) goto fail;
    registry_default_dirs(&c.reg, NULL);
    registry_scan(&c.reg);
    const plugin_rec *brec = registry_find_id(&c.reg, backend, EDM2_KIND_BACKEND);
    if (!brec) {
        err_set(&err, "--backend %s: no such backend plugin on the plugin path", backend);
        goto fail;
    }
    edm2_backend_id bid = brec->desc->backend;
    const plugin_rec *nrec = registry_find(&c.reg, EDM2_KIND_NETWORK, network, bid);
    c.loss_rec = registry_find(&c.reg, EDM2_KIND_LOSS, loss, bid);
    if (!nrec || !c.loss_rec) {
        err_set(&err, "no %s plugin '%s' for backend %s", nrec ? "loss" : "network", nrec ? loss : network, backend);
        goto fail;
    }
    if (runtime_open(&c.rt, brec, NULL, threads, &err)) goto fail;
    if (meta_section(&c.ref, nrec->desc, NULL, &ncfg, "network", &err)) goto fail;
    config_view nview;
    config_view_init(&nview, &ncfg, "network", nrec->desc->keys, nrec->desc->key_count);
    if (net_open(&c.net, &c.rt, nrec, &nview.api, &err)) goto fail;
    if (load_inputs(&c, &err)) goto fail;
    printf("check-ref %s: network %s (%dx%dx%d, label_dim %d), batch %d, backend %s\n", file, nrec->desc->id,
           c.net.info.img_channels, c.net.info.img_resolution, c.net.info.img_resolution, c.label_dim, c.N,
           c.rt.bvt->device_name(c.rt.b));
    if (batch_alloc(&c, &b, &err)) goto fail;
    if (group_eval(&c, &b, &err)) goto fail;
    for (int k = 1;; k++) {
        char name[64];
        snprintf(name, sizeof name, "step%d/objective", k);
        if (!st_find(&c.ref, name)) {
            if (k == 1) skip(&c, "step*", "no training-step groups");
            break;
        }
        if (group_step(&c, &b, k, &err)) goto fail;
    }
    if (group_steps(&c, &b, &err)) goto fail;
    if (group_sample(&c, &err)) goto fail;
    if (dump) {
        if (st_write(dump, c.dump.t, c.dump.n, NULL, NULL, 0, &err)) goto fail;
        printf("wrote %zu computed tensors to %s\n", c.dump.n, dump);
    }
    printf("result: %d passed, %d failed, %d skipped\n", c.passed, c.failed, c.skipped);
    rc = c.failed ? 1 : 0;
    goto done;
fail:
    LOG_ERROR("%s", err.msg);
    rc = 1;
done:
    batch_free(&c, &b);
    if (c.net.net) net_close(&c.net, &c.rt);
    if (c.rt.b) runtime_close(&c.rt);
    for (size_t i = 0; i < c.dump.n; i++) free((char *)c.dump.t[i].name), free(c.dump.owned[i]);
    free(c.dump.t), free(c.dump.owned);
    free(c.x), free(c.noise), free(c.sigma), free(c.labels);
    cfg_free(&ncfg);
    registry_free(&c.reg);
    st_close(&c.ref);
    return rc;
}
