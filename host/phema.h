/* phema.h: post-hoc EMA reconstruction (docs/formulas.md §5): from snapshots of averages with known profiles
 * (times t_i, parameters p_i), the least-squares combination X = A^-1 B whose profile best matches each
 * requested output profile, columns normalised to sum to 1. Profile inner products come from the EMA
 * plugin in closed form when it has one, by numerical integration of its weight function otherwise. */
#ifndef EDM2_HOST_PHEMA_H
#define EDM2_HOST_PHEMA_H

#include "edm2/edm2.h"
#include "errors.h"

/* <profile(pa, ta), profile(pb, tb)>: closed form if the plugin offers it, else numerical. */
double profile_inner(const edm2_ema_vtable *vt, edm2_ema *e, double pa, double ta, double pb, double tb);
/* The same integral computed numerically from vt->weight (always). */
double profile_inner_numeric(const edm2_ema_vtable *vt, edm2_ema *e, double pa, double ta, double pb, double tb);
/* X[nin x nout] (row-major: X[i * nout + j]) for inputs (in_t, in_p) and outputs (out_t, out_p[j]). */
int phema_solve(const edm2_ema_vtable *vt, edm2_ema *e, const double *in_t, const double *in_p, int nin, double out_t,
                const double *out_p, int nout, double *X, edm2_err *err);

#endif
