/* inspect_folder.c: `edm2host inspect FOLDER`: where a training run stands (kimg of its duration, last loss,
 * training time and speed, its checkpoints, snapshots, post-hoc reconstructions and evaluations), or what a
 * folder of generated images holds (how many, from which snapshot with which sampler). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config.h"
#include "inspect.h"
#include "progress.h"
#include "run_stats.h"

#define MAX_LABELS 8

/* What a folder holds, by file name. */
typedef struct folder_files {
    int checkpoints, snapshots, reconstructions, pngs;
    long kimg_lo, kimg_hi;       /* of the snapshots */
    char labels[MAX_LABELS][16]; /* the snapshots' EMA labels, the first MAX_LABELS */
    int nlabels;
} folder_files;

/* "network-snapshot-KKKKKKK-LABEL.safetensors": its kimg and label. */
static void add_snapshot(folder_files *ff, const char *name) {
    const char *p = name + strlen("network-snapshot-"), *dot;
    char *end, label[16];
    const long kimg = strtol(p, &end, 10);
    if (end == p || *end != '-' || !(dot = strstr(end, ".safetensors"))) return;
    snprintf(label, sizeof label, "%.*s", (int)(dot - end - 1), end + 1);
    if (!ff->snapshots++ || kimg < ff->kimg_lo) ff->kimg_lo = kimg;
    if (ff->snapshots == 1 || kimg > ff->kimg_hi) ff->kimg_hi = kimg;
    for (int i = 0; i < ff->nlabels; i++)
        if (!strcmp(ff->labels[i], label)) return;
    if (ff->nlabels < MAX_LABELS) memcpy(ff->labels[ff->nlabels++], label, sizeof label);
}

static int ends_with(const char *s, const char *tail) {
    const size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

static void list_files(const char *dir, folder_files *ff, int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (strstr(n, ".tmp.")) continue; /* (a write in progress, or left by a kill) */
        if (!strncmp(n, "training-state-", 15) && ends_with(n, ".safetensors")) ff->checkpoints++;
        else if (!strncmp(n, "network-snapshot-", 17) && ends_with(n, ".safetensors")) add_snapshot(ff, n);
        else if (!strncmp(n, "phema-", 6) && ends_with(n, ".safetensors")) ff->reconstructions++;
        else if (ends_with(n, ".png") && strcmp(n, "grid.png") && strcmp(n, "samples.png")) ff->pngs++;
        else if (depth == 0 && strlen(n) == 6 && strspn(n, "0123456789") == 6) { /* generate's subdirs */
            char sub[4200];
            snprintf(sub, sizeof sub, "%s/%s", dir, n);
            list_files(sub, ff, 1);
        }
    }
    closedir(d);
}

static int cmp_label(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0, c, last = '\n';
    if (!f) return 0;
    while ((c = fgetc(f)) != EOF) n += c == '\n', last = c;
    fclose(f);
    return n + (last != '\n');
}

int inspect_folder(const char *dir, FILE *out, edm2_err *err) {
    folder_files ff;
    memset(&ff, 0, sizeof ff);
    list_files(dir, &ff, 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.ini", dir);
    cfg c = {0};
    edm2_err why;
    const int have_cfg = !cfg_foreign(path) && cfg_load(&c, path, &why) == 0;
    run_stats st;
    memset(&st, 0, sizeof st);
    if (run_stats_read(&st, dir, &why) == 0 || ff.checkpoints) { /* a training run */
        const double total = have_cfg ? strtod(cfg_value(&c, "training", "duration_kimg", "0"), NULL) : 0;
        const double kimg = st.n ? st.kimg[st.n - 1] : 0;
        fprintf(out, "%s: training run at kimg %.3f", dir, kimg);
        if (total > 0) fprintf(out, " of %.3f (%s)", total, kimg >= total ? "finished" : "to be continued");
        fprintf(out, "\n");
        if (st.n) {
            char t[16];
            fprintf(out, "  loss %.4f (the last status interval's), %s of training, %.1f images/s\n", st.loss[st.n - 1],
                    fmt_duration(st.seconds, t), st.seconds > 0 ? st.timed_kimg * 1000 / st.seconds : 0.0);
        }
        if (ff.checkpoints && ckpt_find_latest(dir, path, sizeof path, &why) == 0 && path[0])
            fprintf(out, "  checkpoints: %d, the newest %s\n", ff.checkpoints, path);
        else fprintf(out, "  checkpoints: none\n");
    } else if (ff.pngs || (have_cfg && !strcmp(cfg_value(&c, "job", "type", ""), "generate"))) {
        fprintf(out, "%s: %d generated images", dir, ff.pngs);
        if (have_cfg)
            fprintf(out, " from %s with %s (guidance %s)", cfg_value(&c, "generate", "net", "?"),
                    cfg_value(&c, "sampler", "plugin", "?"), cfg_value(&c, "generate", "guidance", "1"));
        fprintf(out, "\n");
    } else if (!ff.snapshots && !ff.reconstructions) {
        cfg_free(&c);
        run_stats_free(&st);
        return err_set(err, "%s: neither a training run (stats.jsonl, checkpoints) nor a folder of snapshots or generated "
                            "images",
                       dir);
    } else {
        fprintf(out, "%s: a folder of snapshots\n", dir);
    }
    if (ff.snapshots) {
        qsort(ff.labels, (size_t)ff.nlabels, sizeof ff.labels[0], cmp_label);
        fprintf(out, "  network snapshots: %d from kimg %ld to %ld, EMA", ff.snapshots, ff.kimg_lo, ff.kimg_hi);
        for (int i = 0; i < ff.nlabels; i++) fprintf(out, "%s %s", i ? "," : "", ff.labels[i]);
        fprintf(out, "%s\n", ff.nlabels == MAX_LABELS ? ", ..." : "");
    }
    if (ff.reconstructions) fprintf(out, "  post-hoc reconstructions: %d\n", ff.reconstructions);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    const int evals = count_lines(path);
    if (evals) fprintf(out, "  evaluations: %d (metrics.jsonl)\n", evals);
    cfg_free(&c);
    run_stats_free(&st);
    return 0;
}
