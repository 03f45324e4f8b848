/* run_stats.c: RUN/stats.jsonl read back (see run_stats.h). */
#include "run_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int run_stats_read(run_stats *s, const char *dir, edm2_err *err) {
    memset(s, 0, sizeof *s);
    char path[1100], line[1024];
    snprintf(path, sizeof path, "%.1000s/stats.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return err_set(err, "%s: cannot read (is %s a training run folder?)", path, dir);
    s->kimg = malloc(RUN_STATS_MAX * sizeof *s->kimg), s->loss = malloc(RUN_STATS_MAX * sizeof *s->loss);
    if (!s->kimg || !s->loss) {
        fclose(f);
        return err_set(err, "out of memory");
    }
    while (s->n < RUN_STATS_MAX && fgets(line, sizeof line, f)) {
        const char *k = strstr(line, "\"kimg\": "), *l = strstr(line, "\"loss\": "), *t = strstr(line, "\"sec_per_kimg\": ");
        if (!k || !l) continue;
        s->kimg[s->n] = strtod(k + 8, NULL), s->loss[s->n] = strtod(l + 8, NULL);
        const double dk = s->kimg[s->n] - (s->n ? s->kimg[s->n - 1] : 0);
        if (t && dk > 0) s->seconds += dk * strtod(t + 16, NULL), s->timed_kimg += dk;
        s->n++;
    }
    fclose(f);
    return s->n ? 0 : err_set(err, "%s: no records", path);
}

void run_stats_free(run_stats *s) {
    free(s->kimg), free(s->loss);
    memset(s, 0, sizeof *s);
}
