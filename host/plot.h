/* plot.h: line plots as PNG (libpng through image_io), with our own minimal axes: linear or logarithmic x,
 * "nice" ticks with numeric labels, one coloured curve per series with point markers, a ring around each
 * series' marked (best) point, and a legend. Text is drawn with a built-in 3x5 pixel font (digits, capitals
 * and common punctuation; lower case is drawn as capitals). Chosen over a plotting library (PLplot, gnuplot)
 * to add no dependency and no fonts to find at run time: the plots are for reading trends and the best
 * point; the numbers go in the tables beside them. */
#ifndef EDM2_HOST_PLOT_H
#define EDM2_HOST_PLOT_H

#include "errors.h"

typedef struct plot_series {
    const char *name;
    const double *x, *y;
    int n;
    int mark; /* index of the point to ring (the best), or -1 */
} plot_series;

typedef struct plot_spec {
    const char *title, *xlabel, *ylabel;
    int logx; /* x on a log scale (all x > 0) */
} plot_spec;

/* Writes a 720x440 RGB PNG; non-finite points are skipped. 0, or -1 with a reason. */
int plot_png(const char *path, const plot_spec *spec, const plot_series *s, int ns, edm2_err *err);

#endif
