/* test_generate.c: the generate job on a tiny trained model: the same seed gives the same image whatever
 * the batch size (deterministic Heun and stochastic churn), guidance 1 never touches the guiding network,
 * guidance by a second snapshot, per-image PNGs named by seed and class, the grid, and clear errors; and the
 * evaluate job: SWD against reference statistics computed once, saved and reused, the same value whatever
 * the batch size, a record in metrics.jsonl, and refusals of mismatched statistics and unknown metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fid_weights.h"
#include "fileio.h"
#include "image_io.h"
#include "safetensors.h"
#include "test_util.h"

static char *g_run;

static int setup(void **state) {
    (void)state;
    g_run = make_temp_dir();
    char rd[600];
    snprintf(rd, sizeof rd, "job.run_dir=%s", g_run);
    run_result r;
    if (run_host(&r, "run", EDM2_SOURCE_DIR "/tests/configs/tiny_train.ini", "--set", rd, "--set",
                 "training.duration_kimg=2", NULL)) {
        fprintf(stderr, "%s", r.err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_rf(g_run);
    free(g_run);
    return 0;
}

/* Writes `text` as dir/name and runs it with extra "section.key=value" settings; returns the exit status. */
static int run_job(const char *dir, const char *name, const char *text, run_result *r, const char *const *sets) {
    char *cfg = write_text(dir, name, text);
    const char *argv[40] = {EDM2_BUILD_DIR "/edm2host", "run", cfg};
    int n = 3;
    for (const char *const *s = sets; s && *s && n < 36; s++) argv[n++] = "--set", argv[n++] = *s;
    argv[n] = NULL;
    int st = run_capture(r, argv, NULL);
    free(cfg);
    return st;
}

/* Runs generate into outdir with extra "section.key=value" settings; returns the exit status. */
static int generate(const char *outdir, run_result *r, const char *const *sets) {
    char text[2048];
    snprintf(text, sizeof text,
             "[job]\ntype = generate\n[sampler]\nplugin = heun\nnum_steps = 6\n[generate]\n"
             "net = %s/network-snapshot-0000002-0.100.safetensors\nseeds = 0-5\noutdir = %s\nraw = true\n",
             g_run, outdir);
    return run_job(outdir, "gen.ini", text, r, sets);
}

static float *read_raw(const char *outdir, size_t *n) {
    char p[700];
    snprintf(p, sizeof p, "%s/samples.safetensors", outdir);
    st_file f;
    edm2_err err;
    assert_int_equal(st_open(&f, p, &err), 0);
    const st_tensor *t = st_find(&f, "images");
    assert_non_null(t);
    float *v = malloc(t->numel * sizeof(float));
    st_to_f32(t, v);
    *n = t->numel;
    st_close(&f);
    return v;
}

static void same_images_any_batch(const char *const *extra) {
    char *a = make_temp_dir(), *b = make_temp_dir();
    run_result r;
    const char *s1[8] = {"generate.batch=6"}, *s2[8] = {"generate.batch=4"};
    for (int i = 0; extra && extra[i]; i++) s1[1 + i] = s2[1 + i] = extra[i];
    assert_int_equal(generate(a, &r, s1), 0);
    assert_int_equal(generate(b, &r, s2), 0);
    size_t na, nb;
    float *x = read_raw(a, &na), *y = read_raw(b, &nb);
    assert_int_equal(na, nb);
    assert_int_equal(na, 6 * 64);
    assert_memory_equal(x, y, na * sizeof(float));
    free(x), free(y);
    rm_rf(a), rm_rf(b);
    free(a), free(b);
}

static void test_seed_independent_of_batch(void **state) {
    (void)state;
    same_images_any_batch(NULL);
    const char *churn[] = {"sampler.S_churn=10", "sampler.S_min=0.05", "sampler.S_max=50", NULL};
    same_images_any_batch(churn);
    const char *euler[] = {"sampler.plugin=euler", NULL};
    same_images_any_batch(euler);
}

static void test_outputs_and_labels(void **state) {
    (void)state;
    char *d = make_temp_dir();
    run_result r;
    const char *sets[] = {"generate.labels=7", NULL};
    assert_int_equal(generate(d, &r, sets), 0);
    char p[700];
    snprintf(p, sizeof p, "%s/000003-class7.png", d);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/grid.png", d);
    assert_int_equal(access(p, F_OK), 0);
    assert_non_null(strstr(r.err, "images/s  elapsed ")); /* progress: rate, time so far, time left */
    assert_non_null(strstr(r.err, "  ETA 0.0s\n"));
    /* A [vae] section with a network of images (not latents): said, and not used. */
    const char *vae[] = {"generate.labels=7", "vae.plugin=sd_vae", "vae.weights=/nonexistent.safetensors", NULL};
    assert_int_equal(generate(d, &r, vae), 0);
    assert_non_null(strstr(r.err, "is a network of images, not of VAE latents (no edm2.latents in its metadata): "
                                  "[vae] is not used\n"));
    const char *bad[] = {"generate.labels=12", NULL};
    assert_int_equal(generate(d, &r, bad), 1);
    assert_non_null(strstr(r.err, "labels = '12': expected rows, random or a class in 0..9"));
    const char *seeds[] = {"generate.seeds=5-2", NULL};
    assert_int_equal(generate(d, &r, seeds), 1);
    assert_non_null(strstr(r.err, "bad range"));
    rm_rf(d);
    free(d);
}

/* [generate] precision replaces the snapshot's: bf16 on the CPU build computes in fp32 (bitwise the same
 * images, and it says so); a value the network refuses is named with the snapshot. */
static void test_precision_override(void **state) {
    (void)state;
    char *a = make_temp_dir(), *b = make_temp_dir();
    run_result r;
    assert_int_equal(generate(a, &r, NULL), 0);
    const char *bf16[] = {"generate.precision=bf16", NULL};
    assert_int_equal(generate(b, &r, bf16), 0);
    assert_non_null(strstr(r.err, "precision = bf16: the CPU build computes in fp32"));
    size_t na, nb;
    float *x = read_raw(a, &na), *y = read_raw(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na * sizeof(float));
    free(x), free(y);
    const char *bad[] = {"generate.precision=fp8", NULL};
    assert_int_equal(generate(b, &r, bad), 1);
    assert_non_null(strstr(r.err, "network-snapshot-0000002-0.100.safetensors with precision = fp8: "));
    assert_non_null(strstr(r.err, "precision = 'fp8': expected fp32, bf16 or fp16"));
    /* A training checkpoint given for a snapshot is named as such. */
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "generate.net=%s/training-state-0000002.safetensors", g_run);
    const char *state_file[] = {ckpt, NULL};
    assert_int_equal(generate(b, &r, state_file), 1);
    assert_non_null(strstr(r.err, "training-state-0000002.safetensors: a training checkpoint (parameters, optimizer state, "
                                  "EMAs), not a network snapshot"));
    rm_rf(a), rm_rf(b);
    free(a), free(b);
}

static void test_guidance(void **state) {
    (void)state;
    char *a = make_temp_dir(), *b = make_temp_dir();
    run_result r;
    /* w = 1 never loads (let alone evaluates) the guiding network. */
    const char *w1[] = {"generate.gnet=/nonexistent.safetensors", "generate.guidance=1", NULL};
    assert_int_equal(generate(a, &r, w1), 0);
    char gnet[700];
    snprintf(gnet, sizeof gnet, "generate.gnet=%s/network-snapshot-0000001-0.050.safetensors", g_run);
    const char *w2[] = {gnet, "generate.guidance=2", NULL};
    assert_int_equal(generate(b, &r, w2), 0);
    size_t na, nb;
    float *x = read_raw(a, &na), *y = read_raw(b, &nb);
    assert_memory_not_equal(x, y, na * sizeof(float));
    free(x), free(y);
    const char *nognet[] = {"generate.guidance=2", NULL};
    assert_int_equal(generate(a, &r, nognet), 1);
    assert_non_null(strstr(r.err, "needs 'gnet = SNAPSHOT'"));
    const char *missing[] = {"generate.gnet=/nonexistent.safetensors", "generate.guidance=2", NULL};
    assert_int_equal(generate(a, &r, missing), 1);
    assert_non_null(strstr(r.err, "error: --set generate.gnet: /nonexistent.safetensors: cannot open"));
    rm_rf(a), rm_rf(b);
    free(a), free(b);
}

/* A class-conditional guiding network sees the same labels as the main network: guided by itself,
 * D = g + w (net - g) = net, so the images equal the unguided ones (up to rounding). Evaluated without
 * labels, the guide would pull every image towards the unconditional prediction. */
static void test_guidance_conditional_guide(void **state) {
    (void)state;
    char *a = make_temp_dir(), *b = make_temp_dir();
    run_result r;
    assert_int_equal(generate(a, &r, NULL), 0);
    char gnet[700];
    snprintf(gnet, sizeof gnet, "generate.gnet=%s/network-snapshot-0000002-0.100.safetensors", g_run);
    const char *self[] = {gnet, "generate.guidance=3", NULL};
    assert_int_equal(generate(b, &r, self), 0);
    size_t na, nb;
    float *x = read_raw(a, &na), *y = read_raw(b, &nb);
    assert_int_equal(na, nb);
    float worst = 0;
    for (size_t i = 0; i < na; i++) worst = fmaxf(worst, fabsf(x[i] - y[i]));
    assert_true(worst < 1e-4f);
    free(x), free(y);
    rm_rf(a), rm_rf(b);
    free(a), free(b);
}

/* Runs evaluate on the 2-kimg EMA 0.100 snapshot with extra settings (its reference statistics go to a
 * folder that does not exist yet); returns the exit status. */
static int evaluate(const char *dir, run_result *r, const char *const *sets) {
    char text[2048];
    snprintf(text, sizeof text,
             "[job]\ntype = evaluate\n[sampler]\nplugin = heun\nnum_steps = 4\n[data]\nsource = fashion-mnist\n"
             "resolution = 8\nmax_images = 1000\n[evaluate]\nnet = %s/network-snapshot-0000002-0.100.safetensors\n"
             "seeds = 0-39\nbatch = 16\nswd_min_res = 8\nswd_patches = 16\nreference = %s/stats/ref.safetensors\n",
             g_run, dir);
    return run_job(dir, "eval.ini", text, r, sets);
}

/* The value of `key` ("swd", "fid") in the last line of the run's metrics.jsonl (NAN when absent), and how
 * many lines it has. */
static double last_metric(const char *key, int *lines) {
    char p[700], line[4096], k[32];
    snprintf(p, sizeof p, "%s/metrics.jsonl", g_run);
    snprintf(k, sizeof k, "\"%s\": ", key);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    double v = NAN;
    *lines = 0;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, k);
        v = at ? atof(at + strlen(k)) : NAN;
        (*lines)++;
    }
    fclose(f);
    return v;
}
#define last_swd(lines) last_metric("swd", lines)

static void test_evaluate(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    run_result r;
    assert_int_equal(evaluate(dir, &r, NULL), 0);
    assert_non_null(strstr(r.err, "saved SWD reference statistics"));
    assert_non_null(strstr(r.err, "images/s  elapsed "));
    int lines;
    const double first = last_swd(&lines);
    assert_int_equal(lines, 1);
    char ref[700];
    snprintf(ref, sizeof ref, "%s/stats/ref.safetensors", dir);
    assert_int_equal(run_host(&r, "inspect", ref, NULL), 0);
    assert_non_null(strstr(r.out, "ref.safetensors: SWD reference statistics of 40 images 1x8x8 (1 pyramid levels, 16 "
                                  "patches per image and level), from Fashion-MNIST train"));
    assert_true(first > 0 && isfinite(first));
    /* Again in other batches: the saved reference is reused and the value is the same. */
    const char *batch[] = {"evaluate.batch=7", NULL};
    assert_int_equal(evaluate(dir, &r, batch), 0);
    assert_non_null(strstr(r.err, "reference statistics"));
    assert_null(strstr(r.err, "saved SWD reference statistics"));
    assert_float_equal(last_swd(&lines), first, 0);
    assert_int_equal(lines, 2);
    /* Statistics made with other settings; FID without a feature network; an unknown metric. */
    const char *other[] = {"evaluate.swd_patches=8", NULL};
    assert_int_not_equal(evaluate(dir, &r, other), 0);
    assert_non_null(strstr(r.err, "made with swd.patches = 16, this evaluation uses 8"));
    const char *fid[] = {"evaluate.metrics=fid", NULL};
    assert_int_not_equal(evaluate(dir, &r, fid), 0);
    assert_non_null(strstr(r.err, "error: --set evaluate.metrics: [evaluate] metrics = fid: FID needs a [features] section"));
    const char *is[] = {"evaluate.metrics=swd,is", NULL};
    assert_int_not_equal(evaluate(dir, &r, is), 0);
    assert_non_null(strstr(r.err, "'is' is not a metric"));
    rm_rf(dir);
    free(dir);
}

/* FID with the real Inception-v3 graph on synthetic weights (fid_weights.h), beside SWD: reference statistics
 * computed once and saved, the same value again from the saved statistics in other batches, and statistics
 * refused when they came from other weights. */
static void test_evaluate_fid(void **state) {
    (void)state;
    char *dir = make_temp_dir(), w[600], w2[600], wset[700], fref[700];
    edm2_err err;
    snprintf(w, sizeof w, "%s/fid.safetensors", dir);
    snprintf(w2, sizeof w2, "%s/fid-other.safetensors", dir);
    assert_int_equal(write_fid_weights(w, NULL, NULL, &err), 0);
    assert_int_equal(write_fid_weights(w2, "Mixed_7c.branch_pool.conv.weight", "scale", &err), 0);
    snprintf(wset, sizeof wset, "features.weights=%s", w);
    snprintf(fref, sizeof fref, "evaluate.fid_reference=%s/stats/fid-ref.safetensors", dir);
    const char *sets[] = {"evaluate.metrics=swd,fid", "evaluate.seeds=0-5", "evaluate.ref_images=6",
                          "features.plugin=inception_v3", wset, fref, NULL};
    run_result r;
    if (evaluate(dir, &r, sets)) fprintf(stderr, "%s", r.err);
    assert_non_null(strstr(r.err, "saved FID reference statistics"));
    snprintf(fref, sizeof fref, "%s/stats/fid-ref.safetensors", dir);
    assert_int_equal(run_host(&r, "inspect", fref, NULL), 0);
    assert_non_null(strstr(r.out, "fid-ref.safetensors: FID reference statistics of 6 images (2048 features, weights "));
    snprintf(fref, sizeof fref, "evaluate.fid_reference=%s/stats/fid-ref.safetensors", dir);
    int lines;
    const double fid = last_metric("fid", &lines), swd = last_metric("swd", &lines);
    assert_true(isfinite(fid) && fid > 0 && isfinite(swd) && swd > 0);
    const char *again[] = {"evaluate.metrics=fid", "evaluate.seeds=0-5", "evaluate.batch=4", "features.plugin=inception_v3",
                           wset, fref, NULL};
    assert_int_equal(evaluate(dir, &r, again), 0);
    assert_null(strstr(r.err, "saved FID reference statistics"));
    assert_float_equal(last_metric("fid", &lines), fid, 0);
    assert_true(isnan(last_metric("swd", &lines)));
    snprintf(wset, sizeof wset, "features.weights=%s", w2);
    assert_int_not_equal(evaluate(dir, &r, again), 0);
    assert_non_null(strstr(r.err, "computed with other feature weights"));
    rm_rf(dir);
    free(dir);
}

/* evaluate images = FOLDER: the PNGs a generate job wrote (its grid.png left out), read as [data]'s images are;
 * against reference statistics of the same images (a [data] folder of the same seeds) the FID is 0 to rounding,
 * against other seeds' it is not; the record goes to the folder's metrics.jsonl. Net and images together, or
 * neither, and an image of another size are refused. */
static void test_evaluate_folder(void **state) {
    (void)state;
    char *dir = make_temp_dir(), w[600], ga[700], gb[700], gc[700], text[4096];
    edm2_err err;
    snprintf(w, sizeof w, "%s/fid.safetensors", dir);
    assert_int_equal(write_fid_weights(w, NULL, NULL, &err), 0);
    run_result r;
    const char *grid[] = {"generate.raw=false", NULL}, *nogrid[] = {"generate.raw=false", "generate.grid=false", NULL};
    const char *other[] = {"generate.raw=false", "generate.seeds=6-11", NULL};
    snprintf(ga, sizeof ga, "%s/a", dir), snprintf(gb, sizeof gb, "%s/b", dir), snprintf(gc, sizeof gc, "%s/c", dir);
    assert_int_equal(mkdir(ga, 0777) | mkdir(gb, 0777) | mkdir(gc, 0777), 0);
    assert_int_equal(generate(ga, &r, grid), 0);
    assert_int_equal(generate(gb, &r, nogrid), 0);
    assert_int_equal(generate(gc, &r, other), 0);
    double fid[2];
    for (int k = 0; k < 2; k++) { /* the images of seeds 0-5 (with their grid), then of 6-11, against b's */
        snprintf(text, sizeof text,
                 "[job]\ntype = evaluate\n[data]\nsource = folder\npath = %s\nchannels = 1\nresolution = 8\n"
                 "[features]\nplugin = inception_v3\nweights = %s\n[evaluate]\nimages = %s\nmetrics = fid\nbatch = 4\n",
                 gb, w, k ? gc : ga);
        if (run_job(dir, "eval.ini", text, &r, NULL)) fprintf(stderr, "%s", r.err);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.err, "6 images 1x8x8 on CPU"));
        char p[800], line[4096];
        snprintf(p, sizeof p, "%s/metrics.jsonl", k ? gc : ga);
        FILE *f = fopen(p, "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        fclose(f);
        assert_non_null(strstr(line, "\"folder\": \""));
        assert_non_null(strstr(line, "\"images\": 6, "));
        assert_null(strstr(line, "\"snapshot\""));
        const char *at = strstr(line, "\"fid\": ");
        assert_non_null(at);
        fid[k] = atof(at + 7);
    }
    assert_true(fabs(fid[0]) < 1e-6 * fid[1]);
    assert_true(fid[1] > 0 && isfinite(fid[1]));
    /* net and images, neither, an image of another size */
    snprintf(text, sizeof text,
             "[job]\ntype = evaluate\n[sampler]\nplugin = heun\n[data]\nsource = fashion-mnist\nresolution = 8\n"
             "[evaluate]\nnet = %s/network-snapshot-0000002-0.100.safetensors\nimages = %s\nswd_min_res = 8\n",
             g_run, ga);
    assert_int_not_equal(run_job(dir, "both.ini", text, &r, NULL), 0);
    assert_non_null(strstr(r.err, "[evaluate] needs net = SNAPSHOT (to generate the images measured) or images = FOLDER, "
                                  "not both"));
    const char *neither[] = {"evaluate.net=", "evaluate.images=", NULL};
    assert_int_not_equal(run_job(dir, "both.ini", text, &r, neither), 0);
    assert_non_null(strstr(r.err, "neither is set"));
    const char *wrong[] = {"evaluate.net=", "data.resolution=16", "evaluate.swd_min_res=16", NULL};
    assert_int_not_equal(run_job(dir, "both.ini", text, &r, wrong), 0);
    assert_non_null(strstr(r.err, "000000-class"));
    rm_rf(dir);
    free(dir);
}

/* FD_DINOv2 (metrics = fd_dinov2, [features] dinov2 with the small network of tests/data/dinov2_ref) beside
 * SWD: its reference statistics saved under that name and reused, the record's keys named after it; FID and
 * two Fréchet distances refused; a sweep's table, values and plot labelled with it, and a report reading it
 * from the sweep and from a run's metrics.jsonl. */
static void test_fd_dinov2(void **state) {
    (void)state;
    char *dir = make_temp_dir(), text[4096], stats[700], p[800];
    const char *feat = "[features]\nplugin = dinov2\nweights = " EDM2_TEST_DATA "/dinov2_ref.safetensors\ndim = 64\n"
                       "depth = 2\nheads = 4\n";
    snprintf(stats, sizeof stats, "%s/stats/fd.safetensors", dir);
    snprintf(text, sizeof text,
             "[job]\ntype = evaluate\n[sampler]\nplugin = heun\nnum_steps = 4\n[data]\nsource = fashion-mnist\n"
             "resolution = 8\nmax_images = 1000\n%s[evaluate]\nnet = %s/network-snapshot-0000002-0.100.safetensors\n"
             "seeds = 0-5\nbatch = 4\nswd_min_res = 8\nswd_patches = 16\nref_images = 6\nmetrics = swd,fd_dinov2\n"
             "fid_reference = %s\n",
             feat, g_run, stats);
    run_result r;
    if (run_job(dir, "eval.ini", text, &r, NULL)) fprintf(stderr, "%s", r.err);
    assert_non_null(strstr(r.err, "saved FD_dinov2 reference statistics"));
    assert_non_null(strstr(r.err, "FD_dinov2: "));
    int lines;
    const double fd = last_metric("fd_dinov2", &lines);
    assert_true(isfinite(fd) && fd > 0);
    snprintf(p, sizeof p, "%s/metrics.jsonl", g_run);
    char *jsonl = read_text(p), *last = jsonl + strlen(jsonl) - 1;
    while (last > jsonl && last[-1] != '\n') last--;
    assert_non_null(strstr(last, "\"metric\": \"swd,fd_dinov2\""));
    assert_non_null(strstr(last, "\"fd_dinov2_reference_images\": 6, \"features\": \"dinov2\""));
    assert_int_equal(run_host(&r, "inspect", stats, NULL), 0);
    assert_non_null(strstr(r.out, "fd.safetensors: FD_dinov2 reference statistics of 6 images (64 features, weights "));
    const char *again[] = {"evaluate.metrics=fd_dinov2", "evaluate.batch=5", NULL};
    assert_int_equal(run_job(dir, "eval.ini", text, &r, again), 0);
    assert_null(strstr(r.err, "saved FD_dinov2"));
    assert_float_equal(last_metric("fd_dinov2", &lines), fd, 0);
    const char *fid[] = {"evaluate.metrics=fid", NULL}, *two[] = {"evaluate.metrics=fid,fd_dinov2", NULL};
    const char *none[] = {"features.plugin=", NULL};
    assert_int_not_equal(run_job(dir, "eval.ini", text, &r, fid), 0);
    assert_non_null(strstr(r.err, "[evaluate] metrics = fid: the [features] network dinov2 measures fd_dinov2, not fid"));
    assert_int_not_equal(run_job(dir, "eval.ini", text, &r, two), 0);
    assert_non_null(strstr(r.err, "one Fréchet distance per run"));
    /* (a [features] section without a plugin: the config is refused before any metric is looked at) */
    assert_int_not_equal(run_job(dir, "eval.ini", text, &r, none), 0);
    /* the sweep and the report */
    char out[700];
    snprintf(out, sizeof out, "%s/sweep", dir);
    snprintf(text, sizeof text,
             "[job]\ntype = sweep\n[ema]\nplugin = power\n[sampler]\nplugin = heun\nnum_steps = 4\n[data]\n"
             "source = fashion-mnist\nresolution = 8\nmax_images = 1000\n%s[sweep]\nruns = %s\nstds = 0.05,0.1\n"
             "seeds = 0-5\nbatch = 6\nmetrics = fd_dinov2\nfid_reference = %s\noutdir = %s\n",
             feat, g_run, stats, out);
    if (run_job(dir, "sweep.ini", text, &r, NULL)) fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 0);
    snprintf(p, sizeof p, "%s/sweep.tsv", out);
    char *tsv = read_text(p);
    const char *header = "run\tguidance\tsigma_rel\tswd\tfd_dinov2\n";
    assert_true(!strncmp(tsv, header, strlen(header)));
    snprintf(p, sizeof p, "%s/sweep.md", out);
    char *md = read_text(p);
    assert_non_null(strstr(md, "FD_dinov2 (Fréchet distance of dinov2 features; lower is better) of each post-hoc"));
    free(tsv), free(md);
    snprintf(text, sizeof text, "[job]\ntype = report\n[report]\nruns = %s\nsweep = %s/sweep.tsv\noutdir = %s/report\n",
             g_run, out, dir);
    assert_int_equal(run_job(dir, "report.ini", text, &r, NULL), 0);
    snprintf(p, sizeof p, "%s/report/report.md", dir);
    md = read_text(p);
    assert_non_null(strstr(md, "Best FD_dinov2 (lower is better) over the sweep"));
    assert_non_null(strstr(md, " best FD_dinov2 | at |"));
    free(md);
    /* a run whose metrics.jsonl has only that record: the report finds its FD_dinov2 there */
    char run2[700];
    snprintf(run2, sizeof run2, "%s/run2", dir);
    assert_int_equal(mkdir(run2, 0777), 0);
    const char *copy[] = {"config.ini", "stats.jsonl"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", g_run, copy[k]);
        char *t = read_text(p);
        free(write_text(run2, copy[k], t));
        free(t);
    }
    free(write_text(run2, "metrics.jsonl", last));
    free(jsonl);
    snprintf(text, sizeof text, "[job]\ntype = report\n[report]\nruns = %s\noutdir = %s/report2\n", run2, dir);
    assert_int_equal(run_job(dir, "report.ini", text, &r, NULL), 0);
    snprintf(p, sizeof p, "%s/report2/report.md", dir);
    md = read_text(p);
    char want[64];
    snprintf(want, sizeof want, "| %.4f | EMA 0.100 |", fd);
    if (!strstr(md, want)) fprintf(stderr, "expected '%s' in:\n%s", want, md);
    assert_non_null(strstr(md, want));
    assert_non_null(strstr(md, "Best FD_dinov2 and SWD ×10³"));
    free(md);
    rm_rf(dir);
    free(dir);
}

/* The sweep over three sigma_rel of the tiny run: one reference for all evaluations, the table marks each
 * row's smallest value as the best, the values file agrees with it, and the plot is a readable PNG. */
static void test_sweep(void **state) {
    (void)state;
    char *dir = make_temp_dir(), text[2048];
    snprintf(text, sizeof text,
             "[job]\ntype = sweep\n[ema]\nplugin = power\n[sampler]\nplugin = heun\nnum_steps = 4\n[data]\n"
             "source = fashion-mnist\nresolution = 8\nmax_images = 1000\n[sweep]\nruns = %s\nstds = 0.05,0.08,0.1\n"
             "seeds = 0-23\nbatch = 12\nswd_min_res = 8\nswd_patches = 16\nref_images = 64\noutdir = %s\n",
             g_run, dir);
    run_result r;
    /* Refused with exit status 1 before anything is reconstructed: FID without a [features] network (named
     * at the line that asks for it, the config's 21st), and no runs. */
    char fid_text[2100], where[700], p[700];
    snprintf(fid_text, sizeof fid_text, "%smetrics = swd,fid\n", text);
    assert_int_equal(run_job(dir, "sweep.ini", fid_text, &r, NULL), 1);
    snprintf(where, sizeof where, "error: %s/sweep.ini:21: [sweep] metrics = swd,fid: FID needs a [features] section", dir);
    if (!strstr(r.err, where)) fprintf(stderr, "expected '%s' in:\n%s", where, r.err);
    assert_non_null(strstr(r.err, where));
    assert_null(strstr(r.err, "reconstructing"));
    const char *const no_runs[] = {"sweep.runs=,", NULL};
    assert_int_equal(run_job(dir, "sweep.ini", text, &r, no_runs), 1);
    assert_non_null(strstr(r.err, "[sweep] runs: expected one or more run folders"));
    char two[1500]; /* each run is looked at before the first is reconstructed */
    snprintf(two, sizeof two, "sweep.runs=%s,%s/nonexistent", g_run, dir);
    const char *const missing[] = {two, NULL};
    assert_int_equal(run_job(dir, "sweep.ini", text, &r, missing), 1);
    snprintf(where, sizeof where, "error: --set sweep.runs: [sweep] runs: '%s/nonexistent': not a folder\n", dir);
    assert_non_null(strstr(r.err, where));
    assert_null(strstr(r.err, "reconstructing"));
    snprintf(two, sizeof two, "sweep.runs=%s,%s/", g_run, g_run);
    assert_int_equal(run_job(dir, "sweep.ini", text, &r, missing), 1);
    assert_non_null(strstr(r.err, "have the same name: their results would share"));
    if (run_job(dir, "sweep.ini", text, &r, NULL)) fprintf(stderr, "%s", r.err);
    assert_non_null(strstr(r.err, "sweep.md, sweep.tsv and sweep.png"));
    const char *ref = strstr(r.err, "reference: 64 images"); /* made once for all three evaluations */
    assert_non_null(ref);
    assert_null(strstr(ref + 1, "reference: 64 images"));
    char line[512];
    snprintf(p, sizeof p, "%s/sweep.tsv", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    double v[3], s[3];
    int n = 0;
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (n < 3 && fgets(line, sizeof line, f)) assert_int_equal(sscanf(line, "%*s %*s %lf %lf", &s[n], &v[n]), 2), n++;
    fclose(f);
    assert_int_equal(n, 3);
    int best = 0;
    for (int i = 1; i < 3; i++)
        if (v[i] < v[best]) best = i;
    snprintf(p, sizeof p, "%s/sweep.md", dir);
    f = fopen(p, "r");
    assert_non_null(f);
    char md[8192];
    size_t got = fread(md, 1, sizeof md - 1, f);
    md[got] = 0;
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "**%.3f**", v[best]);
    assert_non_null(strstr(md, want));
    snprintf(want, sizeof want, " %g |\n", s[best]);
    assert_non_null(strstr(md, want)); /* the best sigma_rel column */
    snprintf(p, sizeof p, "%s/sweep.png", dir);
    uint8_t *px = NULL;
    int w, h;
    edm2_err err;
    assert_int_equal(png_read(p, 3, 0, 0, &px, &w, &h, &err), 0);
    assert_int_equal(w, 720);
    assert_int_equal(h, 440);
    free(px);
    rm_rf(dir);
    free(dir);
}

/* The report over the tiny run and a second one with another learning rate: that key (and only keys that
 * differ) in the table, both runs' results, the loss plot. */
static void test_report(void **state) {
    (void)state;
    char *dir = make_temp_dir(), *other = make_temp_dir(), text[2048], rd[600];
    run_result r;
    snprintf(rd, sizeof rd, "job.run_dir=%s", other);
    assert_int_equal(run_host(&r, "run", EDM2_SOURCE_DIR "/tests/configs/tiny_train.ini", "--set", rd, "--set",
                              "training.duration_kimg=2", "--set", "optimizer.ref_lr=0.005", NULL), 0);
    /* A run that is not a folder: one line, exit status 1, no output folder made. */
    char missing[700], out_missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-run", dir);
    snprintf(out_missing, sizeof out_missing, "%s/report-missing", dir);
    snprintf(text, sizeof text, "[job]\ntype = report\n[report]\nruns = %s,%s\noutdir = %s\n", g_run, missing, out_missing);
    assert_int_equal(run_job(dir, "report.ini", text, &r, NULL), 1);
    assert_int_equal(r.err_lines, 1);
    assert_non_null(strstr(r.err, "[report] runs: '"));
    assert_non_null(strstr(r.err, "/no-such-run': not a folder"));
    assert_int_not_equal(access(out_missing, F_OK), 0);
    snprintf(text, sizeof text, "[job]\ntype = report\n[report]\nruns = %s,%s\noutdir = %s\n", g_run, other, dir);
    assert_int_equal(run_job(dir, "report.ini", text, &r, NULL), 0);
    char p[700], md[16384];
    snprintf(p, sizeof p, "%s/report.md", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t got = fread(md, 1, sizeof md - 1, f);
    md[got] = 0;
    fclose(f);
    assert_non_null(strstr(md, "| optimizer.ref_lr | 0.01 | 0.005 |"));
    assert_null(strstr(md, "| network.model_channels |")); /* the same in both */
    assert_null(strstr(md, "job.run_dir"));
    assert_non_null(strstr(md, "| 2.0 |")); /* kimg of the results rows */
    assert_non_null(strstr(md, " final loss | kimg | time | images/s |\n"));
    const char *row = strstr(md, "| 2.0 | "); /* its training time (sum of the status intervals), then the speed */
    double sec = -1, rate = -1;
    int min = 0;
    if (sscanf(row, "| 2.0 | %dm%lfs | %lf |", &min, &sec, &rate) != 3) /* (slow: under a sanitizer) */
        assert_int_equal(sscanf(row, "| 2.0 | %lfs | %lf |", &sec, &rate), 2), min = 0;
    sec += 60 * min;
    const double ulp = sec < 10 ? 0.051 : 1.01; /* the time is given to 0.1 s, or 1 s from 10 s on */
    assert_true(sec > ulp && rate > 0);
    assert_true(rate >= 2000 / (sec + ulp) && rate <= 2000 / (sec - ulp));
    snprintf(p, sizeof p, "%s/loss.png", dir);
    assert_int_equal(access(p, F_OK), 0);
    rm_rf(dir), rm_rf(other);
    free(dir), free(other);
}

/* The bytes of dir/name (freed by the caller), their count in *n. */
static unsigned char *bytes_of(const char *dir, const char *name, size_t *n) {
    char p[1500];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unsigned char *b = NULL;
    edm2_err err;
    assert_int_equal(read_file(p, &b, n, &err), 0);
    return b;
}

/* resume: only the images not written yet are made, and the folder ends as an uninterrupted run leaves it
 * (the same PNGs, the same grid); subdirs: PNGs in folders of 1000 seeds. */
static void test_resume_and_subdirs(void **state) {
    (void)state;
    char *a = make_temp_dir(), *b = make_temp_dir(), p[700];
    run_result r;
    const char *once[] = {"generate.raw=false", "generate.seeds=0-9", "generate.batch=4", NULL};
    assert_int_equal(generate(a, &r, once), 0);
    const char *names[] = {"000003-class0.png", "000008-class0.png", "grid.png"};
    unsigned char *before[3];
    size_t nb[3];
    for (int k = 0; k < 3; k++) {
        before[k] = bytes_of(a, names[k], &nb[k]);
        snprintf(p, sizeof p, "%s/%s", a, names[k]);
        assert_int_equal(unlink(p), 0);
    }
    const char *again[] = {"generate.raw=false", "generate.seeds=0-9", "generate.batch=4", "generate.resume=true", NULL};
    assert_int_equal(generate(a, &r, again), 0);
    snprintf(p, sizeof p, "resume: 8 of the 10 images are in %s already; generating the other 2\n", a);
    assert_non_null(strstr(r.err, p));
    for (int k = 0; k < 3; k++) {
        size_t n;
        unsigned char *after = bytes_of(a, names[k], &n);
        assert_int_equal(n, nb[k]);
        assert_memory_equal(after, before[k], n);
        free(after), free(before[k]);
    }
    /* SIGINT: the batch at hand written, exit status 130; resume makes the rest, the same grid as in one go. */
    char text[2048];
    snprintf(text, sizeof text,
             "[job]\ntype = generate\n[sampler]\nplugin = heun\nnum_steps = 6\n[generate]\n"
             "net = %s/network-snapshot-0000002-0.100.safetensors\nseeds = 0-9\nbatch = 1\noutdir = %s/int\n",
             g_run, a);
    char *cfg = write_text(a, "int.ini", text);
    snprintf(p, sizeof p, "%s/int/000000-class0.png", a);
    const int st = run_interrupted(cfg, p);
    assert_true(st == 130 || st == 0); /* (0: done before the signal) */
    snprintf(p, sizeof p, "%s/int", a);
    if (st == 130) {
        const char *const finish[] = {"generate.resume=true", NULL};
        assert_int_equal(run_job(a, "int.ini", text, &r, finish), 0);
    }
    size_t ng;
    unsigned char *grid_int = bytes_of(p, "grid.png", &ng), *grid_once;
    const char *const once_more[] = {"generate.raw=false", "generate.seeds=0-9", "generate.batch=4", NULL};
    assert_int_equal(generate(b, &r, once_more), 0);
    size_t no;
    grid_once = bytes_of(b, "grid.png", &no);
    assert_int_equal(ng, no);
    assert_memory_equal(grid_int, grid_once, no);
    free(grid_int), free(grid_once), free(cfg);
    rm_rf(b);
    assert_int_equal(mkdir(b, 0700), 0);
    /* The folder says how its images were made (config.ini), and resume refuses to mix in others. */
    char *text_ini = read_text(strcat(strcpy(p, a), "/config.ini"));
    assert_non_null(strstr(text_ini, "; The config that generated the images of this folder"));
    assert_non_null(strstr(text_ini, "\n[sampler]\nplugin = heun\nnum_steps = 6\n"));
    free(text_ini);
    const char *other[] = {"generate.raw=false", "generate.seeds=0-9", "generate.resume=true", "sampler.num_steps=4", NULL};
    assert_int_equal(generate(a, &r, other), 1);
    assert_int_equal(r.err_lines, 1);
    assert_non_null(strstr(r.err, "[generate] resume = true: the images there were made otherwise ([sampler] num_steps = "
                                  "'6' there, '4' here): set another outdir, or resume = false"));
    assert_int_equal(unlink(p), 0); /* images of unknown making: taken as they are, with a warning */
    assert_int_equal(generate(a, &r, again), 0);
    assert_non_null(strstr(r.err, "config.ini is not there (or not edm2host's): the images of its folder are taken as "
                                  "made with these values"));
    free(write_text(a, "config.ini", "[job]\ntype = generate\n")); /* a config of the user's there: left alone */
    assert_int_equal(generate(a, &r, again), 0);
    assert_non_null(strstr(r.err, "config.ini is not a record of edm2host's: left as it is"));
    text_ini = read_text(p);
    assert_string_equal(text_ini, "[job]\ntype = generate\n");
    free(text_ini);
    const char *raw[] = {"generate.resume=true", NULL}; /* (the helper's config asks for raw floats) */
    assert_int_equal(generate(a, &r, raw), 1);
    assert_non_null(strstr(r.err, "[generate] resume = true: raw = true keeps every image's floats"));
    const char *sub[] = {"generate.raw=false", "generate.seeds=998-1001", "generate.subdirs=true", "generate.labels=7", NULL};
    assert_int_equal(generate(b, &r, sub), 0);
    const char *files[] = {"000000/000998-class7.png", "000000/000999-class7.png", "001000/001000-class7.png",
                           "001000/001001-class7.png", "grid.png"};
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "%s/%s", b, files[k]);
        assert_int_equal(access(p, F_OK), 0);
    }
    assert_int_equal(run_host(&r, "inspect", b, NULL), 0); /* a folder of generated images, subfolders counted */
    snprintf(p, sizeof p, "%s: 4 generated images from %s/network-snapshot-0000002-0.100.safetensors with heun "
             "(guidance 1)\n", b, g_run);
    assert_string_equal(r.out, p);
    rm_rf(a), rm_rf(b);
    free(a), free(b);
}

/* inspect: what a file of a run is, from its metadata; its tensors and metadata on request. */
static void test_inspect(void **state) {
    (void)state;
    char p[700];
    run_result r;
    snprintf(p, sizeof p, "%s/network-snapshot-0000002-0.100.safetensors", g_run);
    assert_int_equal(run_host(&r, "inspect", p, NULL), 0);
    assert_non_null(strstr(r.out, "network-snapshot-0000002-0.100.safetensors: network snapshot at kimg 2.000, EMA power 0.100\n"));
    assert_non_null(strstr(r.out, "  network: img_resolution = 8, img_channels = 1, label_dim = 10, model_channels = 8, "));
    assert_non_null(strstr(r.out, " (plugin mp_unet)\n  tensors: 63, "));
    snprintf(p, sizeof p, "%s/training-state-0000002.safetensors", g_run);
    assert_int_equal(run_host(&r, "inspect", p, "--tensors", "--meta", NULL), 0);
    assert_non_null(strstr(r.out, "training-state-0000002.safetensors: training checkpoint at kimg 2.000 (optimizer step "
                                  "250), batch 8, seed 3\n  network: img_resolution = 8, "));
    assert_non_null(strstr(r.out, "  tensors: 5, "));
    assert_non_null(strstr(r.out, "    optimizer/exp_avg_sq "));
    assert_non_null(strstr(r.out, "    edm2.fingerprint = mp_unet:img_resolution=8;"));
    /* A run's folder: where it stands. */
    assert_int_equal(run_host(&r, "inspect", g_run, NULL), 0);
    snprintf(p, sizeof p, "%s: training run at kimg 2.000 of 2.000 (finished)\n  loss ", g_run);
    assert_non_null(strstr(r.out, p));
    snprintf(p, sizeof p, " of training, ");
    assert_non_null(strstr(r.out, p));
    snprintf(p, sizeof p, "  checkpoints: 2, the newest %s/training-state-0000002.safetensors\n"
             "  network snapshots: 4 from kimg 1 to 2, EMA 0.050, 0.100\n", g_run);
    assert_non_null(strstr(r.out, p));
    assert_int_equal(run_host(&r, "inspect", EDM2_SOURCE_DIR "/configs", NULL), 1);
    assert_non_null(strstr(r.err, "configs: neither a training run (stats.jsonl, checkpoints) nor a folder of"));
    snprintf(p, sizeof p, "%s/log.txt", g_run);
    assert_int_equal(run_host(&r, "inspect", p, NULL), 1);
    assert_int_equal(r.err_lines, 1);
    assert_non_null(strstr(r.err, "log.txt: header length"));
    assert_int_equal(run_host(&r, "inspect", NULL), 2);
    assert_int_equal(run_host(&r, "inspect", p, "--all", NULL), 2);
    /* A file's strings with control characters: printed with '?', each on its line. */
    char *d = make_temp_dir();
    snprintf(p, sizeof p, "%s/odd.safetensors", d);
    const float one = 1;
    const st_out o = {"x\ny", ST_F32, 1, {1}, &one};
    const char *keys[] = {"edm2.network", "edm2.nimg"}, *vals[] = {"a\nb\033[31m", "5"};
    edm2_err err;
    assert_int_equal(st_write(p, &o, 1, keys, vals, 2, &err), 0);
    assert_int_equal(run_host(&r, "inspect", p, "--tensors", "--meta", NULL), 0);
    assert_non_null(strstr(r.out, "odd.safetensors: network snapshot at kimg 0.005\n  tensors: 1, "));
    assert_non_null(strstr(r.out, "\n    x?y "));
    assert_non_null(strstr(r.out, "\n    edm2.network = a?b?[31m\n    edm2.nimg = 5\n"));
    /* Feature weights as the converters write them. */
    const char *fkeys[] = {"edm2.features", "edm2.source"}, *fvals[] = {"dinov2", "dinov2_vitl14_pretrain.pth"};
    assert_int_equal(st_write(p, &o, 1, fkeys, fvals, 2, &err), 0);
    assert_int_equal(run_host(&r, "inspect", p, NULL), 0);
    assert_non_null(strstr(r.out, "odd.safetensors: weights of the features plugin dinov2 ([features] plugin = dinov2), "
                                  "converted from dinov2_vitl14_pretrain.pth\n"));
    rm_rf(d);
    free(d);
}

/* `check` runs a job up to its dry point: its inputs opened and checked as the run would, nothing written. */
static void test_check_opens_inputs(void **state) {
    (void)state;
    char *d = make_temp_dir(), text[2048], out[700], *cfg;
    run_result r;
    snprintf(out, sizeof out, "%s/out", d);
    snprintf(text, sizeof text,
             "[job]\ntype = generate\n[sampler]\nplugin = heun\n[generate]\n"
             "net = %s/network-snapshot-0000002-0.100.safetensors\nseeds = 0-5\noutdir = %s\n",
             g_run, out);
    cfg = write_text(d, "gen.ini", text);
    assert_int_equal(run_host(&r, "check", cfg, NULL), 0);
    assert_non_null(strstr(r.out, "ok (job generate, backend cpu); its inputs open\n"));
    assert_int_equal(r.err_lines, 0);
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_equal(run_host(&r, "check", cfg, "--set", "generate.gnet=/nonexistent.safetensors", "--set",
                              "generate.guidance=2", NULL),
                     1);
    assert_non_null(strstr(r.err, "error: --set generate.gnet: /nonexistent.safetensors: cannot open"));
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "generate.net=%s/training-state-0000002.safetensors", g_run);
    assert_int_equal(run_host(&r, "check", cfg, "--set", ckpt, NULL), 1);
    assert_non_null(strstr(r.err, "a training checkpoint (parameters, optimizer state, EMAs), not a network snapshot"));
    free(cfg);
    /* phema: a folder without snapshots, named at its line; the run's snapshots; nothing written */
    snprintf(text, sizeof text, "[job]\ntype = phema\n[ema]\nplugin = power\n[phema]\nsnapshots = %s\nstds = 0.05\n"
             "outdir = %s\n", d, out);
    cfg = write_text(d, "phema.ini", text);
    assert_int_equal(run_host(&r, "check", cfg, NULL), 1);
    char want[1500];
    snprintf(want, sizeof want, "error: %s:6: [phema] snapshots = '%s': no snapshots of EMA profile 'power' there\n", cfg, d);
    assert_string_equal(r.err, want);
    char snaps[700];
    snprintf(snaps, sizeof snaps, "phema.snapshots=%s", g_run);
    assert_int_equal(run_host(&r, "check", cfg, "--set", snaps, NULL), 0);
    assert_non_null(strstr(r.out, "ok (job phema, backend cpu); its inputs open\n"));
    assert_int_not_equal(access(out, F_OK), 0);
    free(cfg);
    /* evaluate: SWD of 8x8 images at its default swd_min_res */
    snprintf(text, sizeof text,
             "[job]\ntype = evaluate\n[sampler]\nplugin = heun\n[data]\nsource = fashion-mnist\nresolution = 8\n"
             "[evaluate]\nnet = %s/network-snapshot-0000002-0.100.safetensors\nseeds = 0-5\n",
             g_run);
    cfg = write_text(d, "eval.ini", text);
    assert_int_equal(run_host(&r, "check", cfg, NULL), 1);
    assert_non_null(strstr(r.err, "error: [evaluate] swd_min_res = 16: expected more than the patch size 7 and at most "
                                  "the images' 8 pixels a side\n"));
    assert_int_equal(run_host(&r, "check", cfg, "--set", "evaluate.swd_min_res=8", NULL), 0);
    free(cfg);
    /* sweep: a run without snapshots is refused before the first run is reconstructed, by check and by run */
    snprintf(text, sizeof text,
             "[job]\ntype = sweep\n[ema]\nplugin = power\n[sampler]\nplugin = heun\n[data]\nsource = fashion-mnist\n"
             "resolution = 8\n[sweep]\nruns = %s,%s\nstds = 0.05\nswd_min_res = 8\noutdir = %s\n",
             g_run, d, out);
    snprintf(want, sizeof want, "[sweep] runs: '%s': no snapshots of EMA profile 'power' there\n", d);
    cfg = write_text(d, "sweep.ini", text);
    assert_int_equal(run_host(&r, "check", cfg, NULL), 1);
    assert_non_null(strstr(r.err, want));
    assert_int_equal(run_host(&r, "run", cfg, NULL), 1);
    assert_non_null(strstr(r.err, want));
    assert_null(strstr(r.err, "reconstructing"));
    assert_int_not_equal(access(out, F_OK), 0);
    free(cfg);
    rm_rf(d);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_independent_of_batch),
        cmocka_unit_test(test_outputs_and_labels), cmocka_unit_test(test_precision_override),
        cmocka_unit_test(test_guidance),
        cmocka_unit_test(test_guidance_conditional_guide),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_evaluate_fid),
        cmocka_unit_test(test_evaluate_folder),
        cmocka_unit_test(test_fd_dinov2),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_check_opens_inputs),
        cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_resume_and_subdirs),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
