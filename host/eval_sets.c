/* eval_sets.c: an evaluation's measurements, added batch by batch in one process or gathered from several
 * (eval_sets.h). */
#include "eval_sets.h"

#include <stdlib.h>
#include <string.h>

#include "comm.h"

int eval_sets_init(eval_sets *e, swd_set *swd, fid_accum *fd, feat_instance *fi, const swd_params *p, int batch, int C,
                   int R, edm2_err *err) {
    memset(e, 0, sizeof *e);
    e->swd = swd, e->fd = fd, e->fi = fi, e->p = p, e->batch = batch, e->C = C, e->R = R;
    e->world = comm_world();
    if (fd && !(e->feat = malloc((size_t)fi->info.dim * batch * sizeof *e->feat))) return err_set(err, "out of memory");
    if (e->world == 1) return 0;
    size_t each = fd ? (size_t)fi->info.dim * batch : 0; /* floats per process and round */
    if (swd) {
        if (swd_set_init(&e->part, p, C, R, err) || swd_set_reserve(&e->part, (size_t)batch * p->patches, err)) return -1;
        const size_t desc = (size_t)batch * p->patches * e->part.dim;
        if (desc > each) each = desc;
    }
    e->gathered = malloc(each * e->world * sizeof *e->gathered + 1); /* (+ 1: nothing measured) */
    e->counts = malloc((size_t)e->world * sizeof *e->counts);
    return e->gathered && e->counts ? 0 : err_set(err, "out of memory");
}

int eval_sets_add(eval_sets *e, const float *x, int m, uint64_t first, edm2_err *err) {
    const int dim = e->fd ? e->fi->info.dim : 0;
    if (e->fd && m > 0 && feat_extract(e->fi, x, m, e->C, e->R, e->feat, err)) return -1;
    if (e->world == 1) {
        if (e->swd && swd_set_add(e->swd, e->p, x, m, first, err)) return -1;
        return e->fd ? fid_accum_add(e->fd, e->feat, (size_t)m, err) : 0;
    }
    const int lead = comm_rank() == 0;
    if (comm_allgather(&m, e->counts, sizeof m, err)) return -1;
    if (e->fd) {
        if (comm_allgather(e->feat, e->gathered, (size_t)dim * e->batch * sizeof(float), err)) return -1;
        for (int q = 0; lead && q < e->world; q++)
            if (fid_accum_add(e->fd, e->gathered + (size_t)q * dim * e->batch, (size_t)e->counts[q], err)) return -1;
    }
    if (!e->swd) return 0;
    e->part.count = 0;
    if (m > 0 && swd_set_add(&e->part, e->p, x, m, first, err)) return -1;
    size_t total = 0; /* descriptors of the round, every process's */
    for (int q = 0; q < e->world; q++) total += (size_t)e->counts[q] * e->p->patches;
    if (lead && swd_set_reserve(e->swd, total, err)) return -1;
    const size_t each = (size_t)e->batch * e->p->patches * e->part.dim; /* floats per process and level */
    for (int l = 0; l < e->part.levels; l++) {
        if (comm_allgather(e->part.desc[l], e->gathered, each * sizeof(float), err)) return -1;
        float *to = lead ? e->swd->desc[l] + e->swd->count * e->swd->dim : NULL;
        for (int q = 0; lead && q < e->world; q++) {
            const size_t n = (size_t)e->counts[q] * e->p->patches * e->part.dim;
            memcpy(to, e->gathered + each * q, n * sizeof(float));
            to += n;
        }
    }
    if (lead) e->swd->count += total;
    return 0;
}

void eval_sets_free(eval_sets *e) {
    swd_set_free(&e->part);
    free(e->feat), free(e->gathered), free(e->counts);
    memset(e, 0, sizeof *e);
}
