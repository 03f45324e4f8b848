/* plot.c: line plots as PNG with minimal axes and a built-in 3x5 pixel font (plot.h). */
#include "plot.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_io.h"

#define W 720
#define H 440
#define LEFT 70
#define RIGHT 200
#define TOP 36
#define BOTTOM 50
#define SCALE 2 /* font pixels */

/* 3x5 glyphs, one octal digit per row (4 = left pixel). */
static const char *const k_glyph_chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_+:/()=,%*<> ";
static const uint8_t k_glyphs[][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7},
    {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}, /* 0-9 */
    {2, 5, 7, 5, 5}, {6, 5, 6, 5, 6}, {3, 4, 4, 4, 3}, {6, 5, 5, 5, 6}, {7, 4, 6, 4, 7}, {7, 4, 6, 4, 4},
    {3, 4, 5, 5, 3}, {5, 5, 7, 5, 5}, {7, 2, 2, 2, 7}, {1, 1, 1, 5, 2}, {5, 5, 6, 5, 5}, {4, 4, 4, 4, 7},
    {5, 7, 7, 5, 5}, {6, 5, 5, 5, 5}, {2, 5, 5, 5, 2}, {6, 5, 6, 4, 4}, {2, 5, 5, 6, 3}, {6, 5, 6, 5, 5},
    {3, 4, 2, 1, 6}, {7, 2, 2, 2, 2}, {5, 5, 5, 5, 7}, {5, 5, 5, 5, 2}, {5, 5, 7, 7, 5}, {5, 5, 2, 5, 5},
    {5, 5, 2, 2, 2}, {7, 1, 2, 4, 7}, /* A-Z */
    {0, 0, 0, 0, 2}, {0, 0, 7, 0, 0}, {0, 0, 0, 0, 7}, {0, 2, 7, 2, 0}, {0, 2, 0, 2, 0}, {1, 1, 2, 4, 4},
    {1, 2, 2, 2, 1}, {4, 2, 2, 2, 4}, {0, 7, 0, 7, 0}, {0, 0, 0, 2, 4}, {5, 1, 2, 4, 5}, {0, 5, 2, 5, 0},
    {1, 2, 4, 2, 1}, {4, 2, 1, 2, 4}, {0, 0, 0, 0, 0}};
static const uint8_t k_unknown[5] = {7, 1, 2, 0, 2};

static const uint8_t k_palette[][3] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44}, {255, 127, 14},
                                       {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {23, 190, 207}};

typedef struct canvas {
    uint8_t *px; /* [H, W, 3] */
} canvas;

static void dot(canvas *c, int x, int y, const uint8_t *rgb) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    memcpy(c->px + ((size_t)y * W + x) * 3, rgb, 3);
}

static void rect(canvas *c, int x0, int y0, int x1, int y1, const uint8_t *rgb) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) dot(c, x, y, rgb);
}

/* A line `w` pixels wide (Bresenham with a square brush). */
static void line(canvas *c, int x0, int y0, int x1, int y1, int w, const uint8_t *rgb) {
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1, dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        rect(c, x0 - w / 2, y0 - w / 2, x0 + (w - 1) / 2, y0 + (w - 1) / 2, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

static int text_width(const char *s) { return (int)strlen(s) * 4 * SCALE; }

/* Text with its top-left corner at (x, y). */
static void text(canvas *c, int x, int y, const char *s, const uint8_t *rgb) {
    for (; *s; s++, x += 4 * SCALE) {
        const char *at = strchr(k_glyph_chars, toupper((unsigned char)*s));
        const uint8_t *g = at && *at ? k_glyphs[at - k_glyph_chars] : k_unknown;
        for (int r = 0; r < 5; r++)
            for (int b = 0; b < 3; b++)
                if (g[r] & (4 >> b)) rect(c, x + b * SCALE, y + r * SCALE, x + b * SCALE + SCALE - 1, y + r * SCALE + SCALE - 1, rgb);
    }
}

/* Up to 8 "nice" ticks (1, 2, 5 x 10^k steps) covering [lo, hi]; returns how many. */
static int nice_ticks(double lo, double hi, double *t) {
    double span = hi - lo, step = pow(10, floor(log10(span / 5)));
    if (span / step > 20) step *= 5;
    else if (span / step > 10) step *= 2;
    int n = 0;
    for (double v = ceil(lo / step) * step; v <= hi + 1e-9 * span && n < 12; v += step) t[n++] = fabs(v) < 1e-12 * span ? 0 : v;
    return n;
}

static void fmt_num(char *buf, size_t len, double v) {
    if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3)) snprintf(buf, len, "%.1e", v);
    else snprintf(buf, len, "%.6g", v);
}

int plot_png(const char *path, const plot_spec *spec, const plot_series *s, int ns, edm2_err *err) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y) || (spec->logx && !(x > 0))) continue;
            if (spec->logx) x = log10(x);
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (!(xlo <= xhi)) return err_set(err, "%s: nothing to plot", path);
    if (xhi - xlo < 1e-12) xlo -= 0.5, xhi += 0.5;
    if (yhi - ylo < 1e-12) ylo -= 0.5, yhi += 0.5;
    const double ypad = 0.05 * (yhi - ylo);
    ylo -= ypad, yhi += ypad;
    canvas c = {malloc((size_t)W * H * 3)};
    if (!c.px) return err_set(err, "out of memory");
    memset(c.px, 255, (size_t)W * H * 3);
    const uint8_t black[3] = {0, 0, 0}, grey[3] = {225, 225, 225};
    const int x0 = LEFT, x1 = W - RIGHT, y0 = H - BOTTOM, y1 = TOP;
#define PX(v) (x0 + (int)lround(((spec->logx ? log10(v) : (v)) - xlo) / (xhi - xlo) * (x1 - x0)))
#define PY(v) (y0 - (int)lround(((v) - ylo) / (yhi - ylo) * (y0 - y1)))
    double t[12];
    char buf[64];
    int nt = nice_ticks(ylo, yhi, t);
    for (int i = 0; i < nt; i++) {
        int y = PY(t[i]);
        line(&c, x0, y, x1, y, 1, grey);
        fmt_num(buf, sizeof buf, t[i]);
        text(&c, x0 - 6 - text_width(buf), y - 5, buf, black);
    }
    if (spec->logx) { /* ticks at the data's x values (a sweep's grid), thinned to fit */
        int last = -1000;
        for (int k = 0; k < ns; k++)
            for (int i = 0; i < s[k].n; i++) {
                int x = PX(s[k].x[i]);
                fmt_num(buf, sizeof buf, s[k].x[i]);
                if (x - last < text_width(buf) + 8) continue;
                line(&c, x, y0, x, y1, 1, grey);
                text(&c, x - text_width(buf) / 2, y0 + 8, buf, black);
                last = x;
            }
    } else {
        nt = nice_ticks(xlo, xhi, t);
        for (int i = 0; i < nt; i++) {
            int x = PX(t[i]);
            line(&c, x, y0, x, y1, 1, grey);
            fmt_num(buf, sizeof buf, t[i]);
            text(&c, x - text_width(buf) / 2, y0 + 8, buf, black);
        }
    }
    line(&c, x0, y0, x1, y0, 2, black);
    line(&c, x0, y0, x0, y1, 2, black);
    if (spec->title) text(&c, x0, 10, spec->title, black);
    if (spec->xlabel) text(&c, (x0 + x1 - text_width(spec->xlabel)) / 2, H - 20, spec->xlabel, black);
    if (spec->ylabel) text(&c, 8, 10 + 14, spec->ylabel, black);
    for (int k = 0; k < ns; k++) {
        const uint8_t *col = k_palette[k % 8];
        int px = -1, py = -1;
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y) || (spec->logx && !(x > 0))) continue;
            int cx = PX(x), cy = PY(y);
            if (px >= 0) line(&c, px, py, cx, cy, 2, col);
            rect(&c, cx - 3, cy - 3, cx + 3, cy + 3, col);
            if (i == s[k].mark) { /* a ring around the best point */
                for (int a = 0; a < 64; a++) {
                    double th = a * 2 * M_PI / 64;
                    rect(&c, cx + (int)lround(9 * cos(th)) - 1, cy + (int)lround(9 * sin(th)) - 1,
                         cx + (int)lround(9 * cos(th)), cy + (int)lround(9 * sin(th)), black);
                }
            }
            px = cx, py = cy;
        }
        int ly = TOP + 10 + k * 18;
        rect(&c, x1 + 14, ly, x1 + 30, ly + 8, col);
        snprintf(buf, sizeof buf, "%.20s", s[k].name ? s[k].name : "");
        text(&c, x1 + 36, ly - 1, buf, black);
    }
#undef PX
#undef PY
    int rc = png_write(path, c.px, W, H, 3, err);
    free(c.px);
    return rc;
}
