/* job_sweep.c: the `sweep` job, the paper's EMA-length study (its figures of FID against sigma_rel): for
 * each training run named in [sweep] runs, reconstructs every sigma_rel of [sweep] stds post hoc (the phema
 * job), evaluates each reconstruction (the evaluate job: SWD and/or a Fréchet distance, FID or FD_DINOv2, each
 * against one reference), for
 * each guidance weight when several are given (the guidance x EMA grid), and writes OUTDIR/sweep.md (a table,
 * the best sigma_rel per curve marked), OUTDIR/sweep.tsv (every value) and OUTDIR/sweep.png (the metric against
 * sigma_rel, one curve per run and guidance, the best ringed). Table and plot use the Fréchet distance when
 * it was measured, else SWD. The processes of an MPI launch evaluate together (job_evaluate.c); the first
 * reconstructs and writes. */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "config.h"
#include "fileio.h"
#include "jobs.h"
#include "log.h"
#include "plot.h"

#define MAX_RUNS 16
#define MAX_STDS 64
#define MAX_GUIDANCE 16

/* The label phema names a reconstruction with (phema-KKKKKKK-LABEL.safetensors). */
static void std_label(char *buf, size_t len, double s) {
    snprintf(buf, len, "%.3f", s);
    if (fabs(strtod(buf, NULL) - s) > 1e-12) snprintf(buf, len, "%g", s);
}

/* The newest phema-*-LABEL.safetensors in dir (names sort by kimg). */
static int find_reconstruction(const char *dir, const char *label, char *out, size_t len, edm2_err *err) {
    char suffix[64], best[512] = "";
    snprintf(suffix, sizeof suffix, "-%s.safetensors", label);
    DIR *d = opendir(dir);
    if (!d) return err_set(err, "%s: cannot list", dir);
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name), m = strlen(suffix);
        if (n > m && !strncmp(e->d_name, "phema-", 6) && !strcmp(e->d_name + n - m, suffix) && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    }
    closedir(d);
    if (!*best) return err_set(err, "%s: the reconstruction for %s is missing", dir, label);
    if ((size_t)snprintf(out, len, "%s/%s", dir, best) >= len) return err_set(err, "%s/%s: path too long", dir, best);
    return 0;
}

/* The [phema] section of the sweep's config (`sub`) for one run: its snapshots, the sigma_rel `list`, the
 * output folder OUTDIR/NAME (into dir[len]) and at_kimg. */
static int phema_settings(cfg *sub, const edm2_config *c, const char *run, const char *name, const char *list, char *dir,
                          size_t len, edm2_err *err) {
    if ((size_t)snprintf(dir, len, "%s/%s", c->get(c->ctx, "outdir"), name) >= len)
        return err_set(err, "[sweep] outdir: path too long");
    if (cfg_put(sub, "phema", "snapshots", run) || cfg_put(sub, "phema", "stds", list) || cfg_put(sub, "phema", "outdir", dir) ||
        cfg_put(sub, "phema", "at_kimg", c->get(c->ctx, "at_kimg")))
        return err_set(err, "out of memory");
    return 0;
}

/* The evaluation keys of [sweep] that pass through to [evaluate]. */
static const char *const k_forward[] = {"seeds",       "labels",      "batch",       "metrics", "reference", "fid_reference",
                                        "ref_images", "swd_patches", "swd_min_res", "gnet",    "precision"};

int job_sweep(const run_config *rc, edm2_err *err) {
    config_view sv;
    config_view_host(&sv, rc->cfg, "sweep");
    const edm2_config *c = &sv.api;
    double stds[MAX_STDS], guid[MAX_GUIDANCE];
    const int ns = edm2_cfg_floats(c, "stds", stds, MAX_STDS), ng = edm2_cfg_floats(c, "guidance", guid, MAX_GUIDANCE);
    const char *outdir = c->get(c->ctx, "outdir");
    char runs_buf[4096], *runs[MAX_RUNS], names[MAX_RUNS][256];
    snprintf(runs_buf, sizeof runs_buf, "%s", c->get(c->ctx, "runs"));
    const int nr = split_list(runs_buf, runs, MAX_RUNS);
    for (int r = 0; r < nr; r++) path_basename(runs[r], names[r], sizeof names[r]);
    if (nr < 1) return JOB_FAIL(err, "[sweep] runs: expected one or more run folders, comma-separated");
    if (ns < 1 || ns > MAX_STDS) return JOB_FAIL(err, "[sweep] stds: expected 1 to %d values", MAX_STDS);
    if (ng < 1 || ng > MAX_GUIDANCE) return JOB_FAIL(err, "[sweep] guidance: expected 1 to %d values", MAX_GUIDANCE);
    /* (checked now, not after the reconstructions and evaluations of the runs before) */
    for (int r = 0; r < nr; r++) {
        if (!is_folder(runs[r])) return JOB_FAIL(err, "[sweep] runs: '%s': not a folder", runs[r]);
        for (int q = 0; q < r; q++)
            if (!strcmp(names[q], names[r]))
                return JOB_FAIL(err, "[sweep] runs: '%s' and '%s' have the same name: their results would share %s/%s",
                                runs[q], runs[r], outdir, names[r]);
    }
    int want_swd; /* (a missing feature network must not wait for the reconstructions either) */
    char fd[FD_NAME_MAX], FD[FD_NAME_MAX + 8], FD_upper[FD_NAME_MAX + 8];
    if (evaluate_metrics(rc, "sweep", &want_swd, fd, err)) return 1;
    fd_display(*fd ? fd : "fid", FD, sizeof FD);
    for (size_t i = 0; i < sizeof FD; i++) FD_upper[i] = (char)toupper((unsigned char)FD[i]); /* (the plot's letters) */
    static eval_result res[MAX_RUNS][MAX_GUIDANCE][MAX_STDS];
    static double val[MAX_RUNS][MAX_GUIDANCE][MAX_STDS]; /* the metric of the table and plot */
    cfg sub;
    if (cfg_copy(&sub, rc->cfg)) return JOB_FAIL(err, "out of memory");
    run_config rc2 = *rc;
    rc2.cfg = &sub;
    eval_refs refs; /* one reference for every evaluation of the sweep */
    memset(&refs, 0, sizeof refs);
    int status = -1;
    for (size_t k = 0; k < sizeof k_forward / sizeof *k_forward; k++)
        if (cfg_put(&sub, "evaluate", k_forward[k], c->get(c->ctx, k_forward[k]))) {
            err_set(err, "out of memory");
            goto done;
        }
    char list[2048] = "", dir[4200], label[32], net[4200], num[64];
    for (int j = 0; j < ns; j++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.17g", j ? "," : "", stds[j]);
    /* Every run's snapshots looked at (the phema job up to its dry point) before the first is reconstructed. */
    rc2.dry_run = 1;
    for (int r = 0; r < nr; r++)
        if (phema_settings(&sub, c, runs[r], names[r], list, dir, sizeof dir, err) || job_phema(&rc2, err)) {
            /* (about its snapshots, as the sweep's key: "[phema] snapshots = 'RUN': why" -> "[sweep] runs: 'RUN':
             * why"; else "sweep of RUN: why") */
            char head[4200];
            snprintf(head, sizeof head, "[phema] snapshots = '%s': ", runs[r]);
            edm2_err inner = *err;
            if (!strncmp(inner.msg, head, strlen(head)))
                err_set(err, "[sweep] runs: '%s': %s", runs[r], inner.msg + strlen(head));
            else err_set(err, "sweep of %s: %s", runs[r], inner.msg);
            goto done;
        }
    rc2.dry_run = 0;
    if (rc->dry_run) { /* (check: that is all it looks at) */
        status = 0;
        goto done;
    }
    /* With several processes the first reconstructs and writes; every one evaluates (evaluate_snapshot shares
     * the images out), and the first writes the results. */
    const int lead = comm_rank() == 0;
    config_view jv;
    config_view_host(&jv, rc->cfg, "job");
    comm_set_timeout(edm2_cfg_float(&jv.api, "comm_timeout_s", 600));
    if (lead && make_dirs(outdir, err)) goto done;
    for (int r = 0; r < nr; r++) {
        if (phema_settings(&sub, c, runs[r], names[r], list, dir, sizeof dir, err)) goto done;
        LOG_INFO("sweep: %s: reconstructing %d sigma_rel post hoc into %s", runs[r], ns, dir);
        if ((lead && job_phema(&rc2, err)) || comm_barrier(err)) goto done; /* (the others wait for the files) */
        for (int j = 0; j < ns; j++) {
            std_label(label, sizeof label, stds[j]);
            if (find_reconstruction(dir, label, net, sizeof net, err)) goto done;
            for (int g = 0; g < ng; g++) {
                snprintf(num, sizeof num, "%.17g", guid[g]);
                if (cfg_put(&sub, "evaluate", "net", net) || cfg_put(&sub, "evaluate", "guidance", num)) {
                    err_set(err, "out of memory");
                    goto done;
                }
                eval_result *v = &res[r][g][j];
                if (evaluate_snapshot(&rc2, &refs, v, err)) goto done;
                if (!lead) continue;
                val[r][g][j] = isnan(v->fid) ? v->swd : v->fid;
                LOG_INFO("sweep: %s sigma_rel %s guidance %g: SWD %.3f %s %.4f", names[r], label, guid[g], v->swd, FD,
                         v->fid);
            }
        }
    }
    if (!lead) {
        status = 0;
        goto done;
    }
    /* The table, the values, the plot. */
    char path[4200];
    atomic_file amd, atsv;
    memset(&amd, 0, sizeof amd), memset(&atsv, 0, sizeof atsv);
    snprintf(path, sizeof path, "%s/sweep.md", outdir);
    if (af_open(&amd, path, err)) goto done;
    snprintf(path, sizeof path, "%s/sweep.tsv", outdir);
    if (af_open(&atsv, path, err)) {
        af_abort(&amd);
        goto done;
    }
    FILE *md = amd.f, *tsv = atsv.f;
    const int fid = !isnan(res[0][0][0].fid);
    char what[160];
    if (!fid) snprintf(what, sizeof what, "SWD ×10³ (sliced Wasserstein distance on Laplacian-pyramid patches; lower is better)");
    else if (!strcmp(fd, "fid")) snprintf(what, sizeof what, "FID (Fréchet Inception Distance; lower is better)");
    else snprintf(what, sizeof what, "%s (Fréchet distance of %s features; lower is better)", FD, fd + 3);
    fprintf(md, "# EMA-length sweep\n\n%s of each post-hoc reconstruction; **bold** = the best σ_rel of the row.\n\n"
                "| run | guidance |",
            what);
    fprintf(tsv, "run\tguidance\tsigma_rel\tswd\t%s\n", *fd ? fd : "fid");
    for (int j = 0; j < ns; j++) fprintf(md, " %g |", stds[j]);
    fprintf(md, " best σ_rel |\n|---|---|");
    for (int j = 0; j < ns; j++) fprintf(md, "---|");
    fprintf(md, "---|\n");
    plot_series series[MAX_RUNS * MAX_GUIDANCE];
    char labels[MAX_RUNS * MAX_GUIDANCE][64];
    int nseries = 0;
    for (int r = 0; r < nr; r++)
        for (int g = 0; g < ng; g++) {
            int best = 0;
            for (int j = 1; j < ns; j++)
                if (val[r][g][j] < val[r][g][best]) best = j;
            fprintf(md, "| %s | %g |", names[r], guid[g]);
            for (int j = 0; j < ns; j++) {
                fprintf(md, j == best ? " **%.3f** |" : " %.3f |", val[r][g][j]);
                fprintf(tsv, "%s\t%g\t%g\t%.6g\t%.6g\n", names[r], guid[g], stds[j], res[r][g][j].swd, res[r][g][j].fid);
            }
            fprintf(md, " %g |\n", stds[best]);
            if (ng > 1) snprintf(labels[nseries], sizeof labels[nseries], "%.12s W%g", names[r], guid[g]);
            else snprintf(labels[nseries], sizeof labels[nseries], "%.20s", names[r]);
            series[nseries] = (plot_series){labels[nseries], stds, val[r][g], ns, best};
            nseries++;
        }
    fprintf(md, "\n![%s against sigma_rel](sweep.png)\n", fid ? FD : "SWD");
    if (af_commit(&amd, err)) {
        af_abort(&atsv);
        goto done;
    }
    if (af_commit(&atsv, err)) goto done;
    snprintf(path, sizeof path, "%s/sweep.png", outdir);
    const plot_spec spec = {"EMA LENGTH SWEEP", "SIGMA_REL", fid ? FD_upper : "SWD X1E3", 1};
    if (plot_png(path, &spec, series, nseries, err)) goto done;
    LOG_INFO("sweep: %s/sweep.md, sweep.tsv and sweep.png", outdir);
    status = 0;
done:
    cfg_free(&sub);
    eval_refs_free(&refs);
    return status ? 1 : 0;
}
