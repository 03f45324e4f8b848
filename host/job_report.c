/* job_report.c: the `report` job, configs compared by their results: over the training runs of [report] runs
 * it writes OUTDIR/report.md with the config keys that differ between the runs side by side (from each
 * run's config.ini), each run's best Fréchet distance (FID, or FD_DINOv2: fd_dinov2) and best SWD and at which
 * sigma_rel (from a sweep's sweep.tsv,
 * [report] sweep, or else from the evaluations of the run's own snapshots in its metrics.jsonl),
 * its final loss, images seen and training speed (stats.jsonl), the loss curves as OUTDIR/loss.png, and each
 * run's sample grid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "jobs.h"
#include "log.h"
#include "plot.h"
#include "progress.h"
#include "run_stats.h"

#define MAX_RUNS 16

typedef struct run_info {
    char dir[1024], name[256];
    cfg c;
    int have_cfg;
    run_stats st;
    double best[2];      /* SWD, the Fréchet distance; NAN where never measured */
    char best_at[2][64]; /* the sigma_rel of the sweep, or the snapshot's EMA label */
    char fd[FD_NAME_MAX]; /* which Fréchet distance: fid, fd_dinov2, ... (empty: none) */
} run_info;

enum { SWD, FID };

/* The Fréchet distance of a metrics.jsonl record (the one of its "metric" list that is fid or fd_...): its name
 * into fd[FD_NAME_MAX] and its value; NAN when it has none. */
static double record_fd(const char *line, char *fd) {
    const char *m = strstr(line, "\"metric\": \"");
    for (const char *t = m ? m + 11 : NULL; t && *t && *t != '"'; t += strcspn(t, ",\"") + (t[strcspn(t, ",\"")] == ',')) {
        const size_t n = strcspn(t, ",\"");
        if (n >= FD_NAME_MAX || !((n == 3 && !strncmp(t, "fid", 3)) || (n > 3 && !strncmp(t, "fd_", 3)))) continue;
        char key[FD_NAME_MAX + 8];
        snprintf(key, sizeof key, "\"%.*s\": ", (int)n, t);
        const char *v = strstr(line, key);
        if (!v) return NAN;
        snprintf(fd, FD_NAME_MAX, "%.*s", (int)n, t);
        return strtod(v + strlen(key), NULL);
    }
    return NAN;
}

/* Keeps v (labelled `at`) when it is the smallest value of metric m so far. */
static void consider(run_info *r, int m, double v, const char *at) {
    if (isnan(v) || v >= r->best[m]) return;
    r->best[m] = v;
    snprintf(r->best_at[m], sizeof r->best_at[m], "%s", at);
}

/* The best (smallest) SWD and Fréchet distance of this run: from a sweep.tsv ("run guidance sigma_rel swd [fd]",
 * its header naming the Fréchet distance, guidance
 * 1), or else from the evaluations of its own snapshots (RUN/metrics.jsonl), labelled by the snapshot's EMA. */
static void read_best(run_info *r, const char *tsv) {
    r->best[SWD] = r->best[FID] = INFINITY;
    char line[8192], run[512], at[64], c5[FD_NAME_MAX] = "";
    FILE *f = *tsv ? fopen(tsv, "r") : NULL;
    double g, s, v[2];
    while (f && fgets(line, sizeof line, f)) {
        v[FID] = NAN;
        if (!strncmp(line, "run\t", 4) && sscanf(line, "%*s %*s %*s %*s %47s", c5) == 1) continue; /* the header */
        if (sscanf(line, "%511s %lf %lf %lf %lf", run, &g, &s, &v[SWD], &v[FID]) < 4 || strcmp(run, r->name) || g != 1)
            continue;
        snprintf(at, sizeof at, "%g", s);
        for (int m = 0; m < 2; m++) consider(r, m, v[m], at);
        if (!isnan(v[FID])) snprintf(r->fd, sizeof r->fd, "%s", *c5 ? c5 : "fid");
    }
    if (f) fclose(f);
    snprintf(line, sizeof line, "%.1000s/metrics.jsonl", r->dir);
    if ((isinf(r->best[SWD]) && isinf(r->best[FID])) && (f = fopen(line, "r"))) {
        while (fgets(line, sizeof line, f)) {
            const char *snap = strstr(line, "\"snapshot\": \"");
            if (!snap) continue;
            const char *end = strstr(snap + 13, ".safetensors"), *dash = end;
            while (dash && dash > snap && dash[-1] != '-') dash--;
            snprintf(at, sizeof at, "EMA %.*s", dash && end ? (int)(end - dash) : 1, dash && end ? dash : "?");
            const char *a = strstr(line, "\"swd\": ");
            if (a) consider(r, SWD, strtod(a + 7, NULL), at);
            char fd[FD_NAME_MAX];
            const double v = record_fd(line, fd);
            if (isnan(v) || (*r->fd && strcmp(fd, r->fd))) continue; /* (another feature network's: not comparable) */
            snprintf(r->fd, sizeof r->fd, "%s", fd);
            consider(r, FID, v, at);
        }
        fclose(f);
    }
    for (int m = 0; m < 2; m++)
        if (isinf(r->best[m])) r->best[m] = NAN;
}

static void free_runs(run_info *r, int n) {
    for (int i = 0; i < n; i++) {
        if (r[i].have_cfg) cfg_free(&r[i].c);
        run_stats_free(&r[i].st);
    }
}

/* Keys set in any run's config (section.key, first-seen order), except the run folder itself. */
static int differing_keys(FILE *md, run_info *r, int n) {
    int rows = 0;
    for (int i = 0; i < n; i++)
        for (size_t e = 0; r[i].have_cfg && e < r[i].c.n; e++) {
            const cfg_entry *x = &r[i].c.v[e];
            if (!strcmp(x->section, "job") && !strcmp(x->key, "run_dir")) continue;
            int seen = 0; /* listed already, from an earlier run or entry */
            for (int a = 0; a <= i && !seen; a++)
                for (size_t b = 0; r[a].have_cfg && b < (a == i ? e : r[a].c.n) && !seen; b++)
                    seen = !strcmp(r[a].c.v[b].section, x->section) && !strcmp(r[a].c.v[b].key, x->key);
            if (seen) continue;
            const char *v0 = cfg_value(&r[0].c, x->section, x->key, "(default)");
            int differ = 0;
            for (int a = 1; a < n && !differ; a++) differ = strcmp(cfg_value(&r[a].c, x->section, x->key, "(default)"), v0) != 0;
            if (!differ) continue;
            fprintf(md, "| %s.%s |", x->section, x->key);
            for (int a = 0; a < n; a++) fprintf(md, " %s |", r[a].have_cfg ? cfg_value(&r[a].c, x->section, x->key, "(default)") : "?");
            fprintf(md, "\n");
            rows++;
        }
    return rows;
}

int job_report(const run_config *rc, edm2_err *err) {
    config_view v;
    config_view_host(&v, rc->cfg, "report");
    const edm2_config *c = &v.api;
    const char *outdir = c->get(c->ctx, "outdir"), *tsv = c->get(c->ctx, "sweep");
    static run_info runs[MAX_RUNS];
    memset(runs, 0, sizeof runs);
    char buf[4096], *items[MAX_RUNS];
    int status = 1;
    snprintf(buf, sizeof buf, "%s", c->get(c->ctx, "runs"));
    const int n = split_list(buf, items, MAX_RUNS);
    for (int i = 0; i < n; i++) {
        snprintf(runs[i].dir, sizeof runs[i].dir, "%s", items[i]);
        path_basename(items[i], runs[i].name, sizeof runs[i].name);
    }
    if (n < 1) return JOB_FAIL(err, "[report] runs: expected one or more run folders, comma-separated");
    for (int i = 0; i < n; i++) /* (before the output folder is made) */
        if (!is_folder(runs[i].dir)) return JOB_FAIL(err, "[report] runs: '%s': not a folder", runs[i].dir);
    if (rc->dry_run) return 0; /* (check: the runs are there) */
    if (make_dirs(outdir, err)) return 1;
    for (int i = 0; i < n; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%.1000s/config.ini", runs[i].dir);
        edm2_err cerr;
        runs[i].have_cfg = cfg_load(&runs[i].c, path, &cerr) == 0;
        if (!runs[i].have_cfg && access(path, F_OK) == 0)
            LOG_WARN("%s (its keys show as '?')", cerr.msg);
        else if (!runs[i].have_cfg)
            LOG_WARN("%s: no config.ini (runs before this version): its keys show as '?'", runs[i].dir);
        if (run_stats_read(&runs[i].st, runs[i].dir, err)) goto done;
        read_best(&runs[i], tsv);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/report.md", outdir);
    atomic_file af;
    if (af_open(&af, path, err)) goto done;
    FILE *md = af.f;
    fprintf(md, "# Comparison of %d training runs\n\n## What differs\n\n| key |", n);
    for (int i = 0; i < n; i++) fprintf(md, " %s |", runs[i].name);
    fprintf(md, "\n|---|");
    for (int i = 0; i < n; i++) fprintf(md, "---|");
    fprintf(md, "\n");
    if (!differing_keys(md, runs, n)) {
        fprintf(md, "| (none) |");
        for (int i = 0; i < n; i++) fprintf(md, " |");
        fprintf(md, "\n");
    }
    const char *fd = "";
    for (int i = 0; i < n && !*fd; i++) fd = runs[i].fd; /* the Fréchet distance of the table: the first run's */
    for (int i = 0; i < n; i++)
        if (*runs[i].fd && strcmp(runs[i].fd, fd)) {
            LOG_WARN("report: %s measured %s, %s %s: its %s is left out", runs[i].name, runs[i].fd, runs[0].name, fd,
                     runs[i].fd);
            runs[i].best[FID] = NAN;
        }
    char FD[FD_NAME_MAX + 8], both[FD_NAME_MAX + 32];
    fd_display(*fd ? fd : "fid", FD, sizeof FD);
    snprintf(both, sizeof both, "%s and SWD ×10³", FD);
    int has[2] = {0, 0}; /* metrics measured for any run: only those get columns */
    for (int i = 0; i < n; i++)
        for (int m = 0; m < 2; m++) has[m] |= !isnan(runs[i].best[m]);
    if (!has[SWD] && !has[FID]) has[SWD] = 1;
    fprintf(md, "\n## Results\n\nBest %s (lower is better) over the sweep's σ_rel (%s), or else over the "
                "evaluations of the run's own snapshots (its metrics.jsonl); final training loss "
                "(mean of the last status interval), images seen, training time and speed.\n\n| run |",
            has[FID] && has[SWD] ? both : has[FID] ? FD : "SWD ×10³", *tsv ? tsv : "no sweep given");
    const char *name[2] = {"SWD", FD};
    for (int m = 1; m >= 0; m--)
        if (has[m]) fprintf(md, " best %s | at |", name[m]);
    fprintf(md, " final loss | kimg | time | images/s |\n|---|");
    for (int m = 0; m < 2; m++)
        if (has[m]) fprintf(md, "---|---|");
    fprintf(md, "---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const run_info *r = &runs[i];
        fprintf(md, "| %s |", r->name);
        for (int m = 1; m >= 0; m--) {
            if (!has[m]) continue;
            if (isnan(r->best[m])) fprintf(md, " – | – |");
            else fprintf(md, m == FID ? " %.4f | %s |" : " %.3f | %s |", r->best[m], r->best_at[m]);
        }
        char t[16];
        const run_stats *st = &r->st;
        fprintf(md, " %.4f | %.1f | %s | %.1f |\n", st->loss[st->n - 1], st->kimg[st->n - 1], fmt_duration(st->seconds, t),
                st->seconds > 0 ? st->timed_kimg * 1000 / st->seconds : 0.0);
    }
    int mixed = 0; /* runs with different loss plugins: their losses measure different things */
    for (int i = 1; i < n; i++)
        mixed |= runs[i].have_cfg && runs[0].have_cfg &&
                 strcmp(cfg_value(&runs[i].c, "loss", "plugin", "edm2"), cfg_value(&runs[0].c, "loss", "plugin", "edm2"));
    fprintf(md, "\n## Loss\n\n%s![training loss against kimg](loss.png)\n\n## Samples\n\n",
            mixed ? "The runs use different loss plugins, whose values are not comparable with each other (compare "
                    "the SWD or the Fréchet distance instead).\n\n"
                  : "");
    for (int i = 0; i < n; i++) {
        char src[1100], dst[4200];
        snprintf(src, sizeof src, "%.1000s/samples.png", runs[i].dir);
        unsigned char *data = NULL;
        size_t size = 0;
        edm2_err ierr;
        if (read_file(src, &data, &size, &ierr)) {
            fprintf(md, "%s: no samples.png\n\n", runs[i].name);
            continue;
        }
        snprintf(dst, sizeof dst, "%s/%s-samples.png", outdir, runs[i].name);
        atomic_file img;
        int ok = af_open(&img, dst, err) == 0;
        if (ok) ok = fwrite(data, 1, size, img.f) == size && af_commit(&img, err) == 0;
        free(data);
        if (!ok) {
            af_abort(&af);
            goto done;
        }
        fprintf(md, "**%s**\n\n![%s](%s-samples.png)\n\n", runs[i].name, runs[i].name, runs[i].name);
    }
    if (af_commit(&af, err)) goto done;
    plot_series s[MAX_RUNS];
    for (int i = 0; i < n; i++) s[i] = (plot_series){runs[i].name, runs[i].st.kimg, runs[i].st.loss, runs[i].st.n, -1};
    snprintf(path, sizeof path, "%s/loss.png", outdir);
    const plot_spec spec = {"TRAINING LOSS", "KIMG", "LOSS", 0};
    if (plot_png(path, &spec, s, n, err)) goto done;
    LOG_INFO("report: %s/report.md (with loss.png and the runs' grids)", outdir);
    status = 0;
done:
    free_runs(runs, n);
    return status;
}
