/* check_ref.h: shared state and helpers of the `check-ref` command, whose groups live in
 * cmd_check_ref.c (forward and gradients), check_ref_steps.c (optimizer and EMA steps) and
 * check_ref_sample.c (sampling). */
#ifndef EDM2_HOST_CHECK_REF_H
#define EDM2_HOST_CHECK_REF_H

#include "arena.h"
#include "config.h"
#include "runtime.h"
#include "safetensors.h"

#define FWD_TOL 2e-5  /* max|a-b| <= FWD_TOL (1 + max|b|) */
#define GRAD_TOL 1e-3 /* max|a-b| <= GRAD_TOL max|b|, per tensor */
#define STEP_TOL 1e-6 /* Adam and EMA fed the reference's inputs: absolute */
#define E2E_TOL 1e-5  /* end to end: at least E2E_FRACTION of the entries within this */
#define E2E_FRACTION 0.99

typedef struct dump_list {
    st_out *t;
    float **owned;
    size_t n, cap;
} dump_list;

typedef struct check_ctx {
    st_file ref;
    plugin_registry reg;
    runtime rt;
    net_instance net;
    const plugin_rec *loss_rec;
    int N, label_dim;
    size_t img_elems; /* per batch */
    float *x, *noise, *sigma, *labels; /* host copies of the in/ tensors */
    const char *backend_id;
    int passed, failed, skipped;
    dump_list dump;
    int dumping;
} check_ctx;


/* Backend buffers for one batch: x, sigma, labels, noise, and the outputs. */
typedef struct batch_bufs {
    float *x, *sigma, *labels, *noise, *D, *logvar, *loss, *grads;
} batch_bufs;

void dump_add(check_ctx *c, const char *name, const float *data, int ndim, const int64_t *shape);
void report(check_ctx *c, const char *what, double err, double tol, const char *detail);
/* For end-to-end checks: passes when at least `need` of the `total` entries are within `tol`. */
void report_fraction(check_ctx *c, const char *what, double frac, double need, double tol, size_t total);
void skip(check_ctx *c, const char *what, const char *why);
/* Reference tensor `name` with `numel` elements as a new host buffer; NULL if absent or mismatched. */
float *ref_tensor(check_ctx *c, const char *name, size_t numel);
double max_abs(const float *b, size_t n);
double max_diff(const float *a, const float *b, size_t n);
void compare_fwd(check_ctx *c, const char *name, const float *got, size_t n, int ndim, const int64_t *shape);
/* Reads reference tensors `prefix + name` into a host arena (calloc'ed, arena_floats). */
float *ref_arena(check_ctx *c, const char *prefix, edm2_err *err);

/* Uploads params (host arena), runs the loss on in/x with in/sigma and in/noise, downloads the gradients
 * (and the per-element loss when `loss` is non-NULL). */
int run_loss(check_ctx *c, batch_bufs *b, const float *params, float *grads, float *loss, double *objective,
             edm2_err *err);
/* Compares the trained entries of a host arena `got` with tensors prefix + name: CMP_REL per tensor relative
 * to its scale (gradients), CMP_ABS absolute (fed steps), CMP_FRACTION share of entries within E2E_TOL. */
typedef enum { CMP_REL, CMP_ABS, CMP_FRACTION } cmp_mode;
void compare_arena(check_ctx *c, const char *label, const float *got, const char *prefix, cmp_mode mode);

int group_steps(check_ctx *c, batch_bufs *b, edm2_err *err);
int group_sample(check_ctx *c, edm2_err *err);

#endif
