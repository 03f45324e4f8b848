/* train_progress.c: what a training run shows while it runs: a progress bar with the rate and ETA on a
 * terminal, a status line per status interval (loss, learning rate, speed, memory, gradient entries the
 * optimizer zeroed for being non-finite) in the log, and the
 * same as one JSON record per line in RUN_DIR/stats.jsonl; and a line when the thread count changes because
 * other programs use the cores. */
#include <math.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "trainer.h"

void trainer_progress(trainer *t, double t_start, int64_t start_nimg) {
    double now = now_s();
    if (now - t->last_progress < 0.25 && t->nimg < t->total) return;
    t->last_progress = now;
    double frac = fmin(1.0, (double)t->nimg / (double)t->total), rate = (t->nimg - start_nimg) / fmax(now - t_start, 1e-9);
    double eta = rate > 0 ? fmax(0.0, (double)(t->total - t->nimg)) / rate : 0;
    int width = 30, fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    char e[16];
    fprintf(stderr, "\r[%s] %5.1f%%  kimg %.1f/%.1f  %.0f img/s  ETA %s\033[K", bar, 100 * frac, t->nimg / 1000.0,
            t->total / 1000.0, rate, fmt_duration(eta, e));
    fflush(stderr);
}

void trainer_status(trainer *t, double loss_mean, double lr, int64_t int_start, double t_int, double t_start,
                    double now) {
    double dt = now - t_int, imgs = (double)(t->nimg - int_start);
    char el[16], eta[16];
    fmt_duration(now - t_start, el);
    fmt_duration(fmax(0.0, (double)(t->total - t->nimg)) * dt / imgs, eta); /* (the last step may pass total) */
    size_t cur = 0, peak = 0;
    t->rt.bvt->memory_stats(t->rt.b, &cur, &peak);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (isatty(2)) fprintf(stderr, "\r\033[K");
    char nf[64] = "";
    if (t->nonfinite) snprintf(nf, sizeof nf, "  non-finite grads zeroed %zu", t->nonfinite);
    LOG_INFO("kimg %9.3f  loss %.4f  lr %.3e  sec/kimg %7.2f  img/s %7.1f  time %s  ETA %s  mem %.0f MiB (peak %.0f, "
             "RSS %.0f)%s",
             t->nimg / 1000.0, loss_mean, lr, dt / (imgs / 1000.0), imgs / dt, el, eta, cur / 1048576.0,
             peak / 1048576.0, ru.ru_maxrss / 1024.0, nf);
    fprintf(t->stats,
            "{\"kimg\": %.3f, \"nimg\": %lld, \"loss\": %.6g, \"lr\": %.6g, \"sec_per_kimg\": %.4g, "
            "\"img_per_s\": %.4g, \"mem_mib\": %.1f, \"mem_peak_mib\": %.1f, \"maxrss_mib\": %.1f, "
            "\"nonfinite_grads\": %zu, \"time\": %lld}\n",
            t->nimg / 1000.0, (long long)t->nimg, loss_mean, lr, dt / (imgs / 1000.0), imgs / dt, cur / 1048576.0,
            peak / 1048576.0, ru.ru_maxrss / 1024.0, t->nonfinite, (long long)time(NULL));
    fflush(t->stats);
    t->nonfinite = 0;
}

void trainer_share_cpu(trainer *t) {
    int changed;
    t->rt.services.threads = cpu_share_update(&t->share, &changed);
    if (!changed) return;
    if (isatty(2)) fprintf(stderr, "\r\033[K");
    cpu_share_log_change(&t->share);
}

