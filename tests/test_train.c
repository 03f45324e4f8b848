/* test_train.c: the train job through edm2host: resume exactness (N steps straight versus N/2, stop,
 * resume: bitwise-identical parameters, Adam moments and EMAs), SIGINT writing a checkpoint and
 * resuming exactly, SIGKILL at random moments never leaving an incomplete snapshot or checkpoint, and
 * clear errors for mismatched data or a changed network on resume. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend_fixture.h"
#include "fileio.h"
#include "image_io.h"
#include "progress.h"
#include "safetensors.h"
#include "st_rewrite.h"
#include "test_util.h"

#define CFG EDM2_SOURCE_DIR "/tests/configs/tiny_train.ini"

static const char *g_backend = "backend.plugin=cpu"; /* the backend train() runs on */
static const char *g_dropout = "network.dropout=0";

static int train(const char *dir, double kimg, run_result *r) {
    char rd[600], dur[64];
    snprintf(rd, sizeof rd, "job.run_dir=%s", dir);
    snprintf(dur, sizeof dur, "training.duration_kimg=%g", kimg);
    return run_host(r, "run", CFG, "--set", rd, "--set", dur, "--set", g_backend, "--set", g_dropout, NULL);
}

/* Starts a training run in the background; returns its pid. */
static pid_t train_async(const char *dir, double kimg) {
    static char rd[600], dur[64];
    snprintf(rd, sizeof rd, "job.run_dir=%s", dir);
    snprintf(dur, sizeof dur, "training.duration_kimg=%g", kimg);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execl(EDM2_BUILD_DIR "/edm2host", "edm2host", "run", CFG, "--set", rd, "--set", dur, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Every tensor of a equals (bitwise) the one of the same name in b. */
static void assert_same_tensors(const char *a, const char *b) {
    st_file fa, fb;
    edm2_err err;
    assert_int_equal(st_open(&fa, a, &err), 0);
    assert_int_equal(st_open(&fb, b, &err), 0);
    assert_int_equal(fa.n, fb.n);
    for (size_t i = 0; i < fa.n; i++) {
        const st_tensor *tb = st_find(&fb, fa.t[i].name);
        assert_non_null(tb);
        assert_int_equal(fa.t[i].numel, tb->numel);
        if (memcmp(fa.t[i].data, tb->data, fa.t[i].numel * 4)) fprintf(stderr, "%s differs\n", fa.t[i].name);
        assert_memory_equal(fa.t[i].data, tb->data, fa.t[i].numel * 4);
    }
    const char *keys[] = {"edm2.nimg", "edm2.optimizer_step"};
    for (int k = 0; k < 2; k++) {
        const char *va = st_meta(&fa, keys[k]), *vb = st_meta(&fb, keys[k]);
        assert_true((va == NULL) == (vb == NULL));
        if (va) assert_string_equal(va, vb);
    }
    st_close(&fa);
    st_close(&fb);
}

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void test_resume_is_exact(void **state) {
    (void)state;
    char *a = make_temp_dir(), *b = make_temp_dir();
    run_result r;
    assert_int_equal(train(a, 2, &r), 0);
    assert_int_equal(train(b, 1, &r), 0);
    assert_int_equal(train(b, 2, &r), 0);
    assert_non_null(strstr(r.err, "resuming from"));
    assert_non_null(strstr(r.err, "config changed since this run's last start: [training] duration_kimg = 1 -> 2\n"));
    /* The status line (kimg 2 of 2) gives the session's time and what is left. */
    assert_non_null(strstr(r.err, "  ETA 0.0s  mem "));
    assert_non_null(strstr(r.err, "  time "));
    char *ca = path_in(a, "training-state-0000002.safetensors"), *cb = path_in(b, "training-state-0000002.safetensors");
    assert_same_tensors(ca, cb);
    /* Run again at its duration: nothing to train, said so, and its checkpoint is not written again. */
    struct stat before, after;
    assert_int_equal(stat(cb, &before), 0);
    assert_int_equal(train(b, 2, &r), 0);
    assert_non_null(strstr(r.err, "already trained to kimg 2.000 (duration_kimg 2.000): nothing to train"));
    assert_int_equal(stat(cb, &after), 0);
    assert_true(before.st_ino == after.st_ino && before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
                before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
    char *sa = path_in(a, "network-snapshot-0000002-0.050.safetensors");
    char *sb = path_in(b, "network-snapshot-0000002-0.050.safetensors");
    assert_same_tensors(sa, sb);
    /* The snapshot alone describes the network. */
    st_file f;
    edm2_err err;
    assert_int_equal(st_open(&f, sa, &err), 0);
    assert_string_equal(st_meta(&f, "edm2.network"), "mp_unet");
    assert_string_equal(st_meta(&f, "img_resolution"), "8");
    assert_string_equal(st_meta(&f, "edm2.nimg"), "2000");
    assert_non_null(st_find(&f, "unet.enc.8x8_conv.weight"));
    st_close(&f);
    free(ca), free(cb), free(sa), free(sb);
    rm_rf(b);
    free(b);
    /* SIGINT: a checkpoint is written, the exit status says so, and resuming gives the same result. */
    char *c = make_temp_dir();
    pid_t pid = train_async(c, 2);
    char *first = path_in(c, "training-state-0000001.safetensors");
    for (int i = 0; i < 600 && access(first, F_OK) != 0; i++) usleep(10000);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 130) {
        assert_int_equal(train(c, 2, &r), 0);
        assert_non_null(strstr(r.err, "resuming from"));
    } else {
        assert_int_equal(WEXITSTATUS(st), 0); /* finished before the signal arrived */
    }
    char *ca2 = path_in(a, "training-state-0000002.safetensors");
    char *cc = path_in(c, "training-state-0000002.safetensors");
    assert_same_tensors(ca2, cc);
    free(ca2), free(cc), free(first);
    rm_rf(a), rm_rf(c);
    free(a), free(c);
}

static int back_to_cpu(void **state) {
    (void)state;
    g_backend = "backend.plugin=cpu", g_dropout = "network.dropout=0";
    return 0;
}

/* Whether the CUDA backend runs on this machine (built, and a device there); else why not. */
static int cuda_usable(char *why, size_t len) {
    plugin_registry reg;
    memset(&reg, 0, sizeof reg);
    runtime rt;
    int usable = open_backend(&reg, &rt, "edm2_backend_cuda.so", "cuda", why, len) == 0;
    if (usable) runtime_close(&rt);
    registry_free(&reg);
    return usable;
}

/* On the GPU (skipped without one): the same seed gives bitwise the same run, and 2 kimg, stop, resume to 4
 * gives bitwise the run of 4 kimg straight (parameters, Adam moments, EMAs, snapshots), with dropout on. */
static void test_cuda_deterministic_and_resume(void **state) {
    (void)state;
    run_result r;
    char why[512];
    if (!cuda_usable(why, sizeof why)) {
        printf("SKIP: training on the GPU: %s\n", why);
        skip();
    }
    g_backend = "backend.plugin=cuda";
    char *a = make_temp_dir(), *b = make_temp_dir(), *c = make_temp_dir();
    g_dropout = "network.dropout=0.1";
    assert_int_equal(train(a, 4, &r), 0);
    assert_non_null(strstr(r.err, "CUDA"));
    assert_int_equal(train(b, 4, &r), 0);
    assert_int_equal(train(c, 2, &r), 0);
    assert_int_equal(train(c, 4, &r), 0);
    assert_non_null(strstr(r.err, "resuming from"));
    const char *files[] = {"training-state-0000004.safetensors", "network-snapshot-0000004-0.050.safetensors",
                           "network-snapshot-0000004-0.100.safetensors", "network-snapshot-0000002-0.100.safetensors"};
    for (int i = 0; i < 4; i++) {
        char *fa = path_in(a, files[i]), *fb = path_in(b, files[i]), *fc = path_in(c, files[i]);
        assert_same_tensors(fa, fb);
        assert_same_tensors(fa, fc);
        free(fa), free(fb), free(fc);
    }
    rm_rf(a), rm_rf(b), rm_rf(c);
    free(a), free(b), free(c);
}

static void test_kill_leaves_complete_files(void **state) {
    (void)state;
    char *d = make_temp_dir();
    srand((unsigned)time(NULL));
    int newest = 0; /* the newest checkpoint's kimg */
    for (int round = 0; round < 6; round++) {
        pid_t pid = train_async(d, 12);
        usleep(200000 + (useconds_t)(rand() % 1500000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* Every file under a final name opens and is complete. */
        char cmd[700];
        snprintf(cmd, sizeof cmd, "ls %s | grep 'safetensors$' > %s/list.txt", d, d);
        if (system(cmd) != 0) continue;
        char *list = path_in(d, "list.txt");
        FILE *f = fopen(list, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            char *p = path_in(d, line);
            st_file sf;
            edm2_err err;
            int rc = st_open(&sf, p, &err);
            if (rc) fprintf(stderr, "incomplete after SIGKILL: %s\n", err.msg);
            assert_int_equal(rc, 0);
            assert_true(sf.n > 0);
            st_close(&sf);
            free(p);
            int kimg;
            if (sscanf(line, "training-state-%d.safetensors", &kimg) == 1 && kimg > newest) newest = kimg;
        }
        if (f) fclose(f);
        free(list);
    }
    /* Resuming finishes a run (one kimg past the newest checkpoint) and removes the temporaries the kills left. */
    run_result r;
    assert_int_equal(train(d, newest + 1, &r), 0);
    assert_true(newest == 0 || strstr(r.err, "resuming from"));
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q '\\.tmp\\.'", d);
    assert_int_not_equal(system(cmd), 0);
    rm_rf(d);
    free(d);
}

/* `edm2host CMD` of the tiny config in run_dir `rd` with one or two more settings (set2 may be NULL): refused
 * with exit status 1 and one error line that holds `expect`. */
static void refused(const char *cmd, const char *rd, const char *set1, const char *set2, const char *expect) {
    run_result r;
    if (set2) run_host(&r, cmd, CFG, "--set", rd, "--set", set1, "--set", set2, NULL);
    else run_host(&r, cmd, CFG, "--set", rd, "--set", set1, NULL);
    if (r.status != 1 || r.err_lines != 1 || !strstr(r.err, expect))
        fprintf(stderr, "%s --set %s: status %d, expected '%s' in:\n%s", cmd, set1, r.status, expect, r.err);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.err_lines, 1);
    assert_non_null(strstr(r.err, expect));
}

static void test_bad_setups(void **state) {
    (void)state;
    char *d = make_temp_dir();
    char rd[600];
    snprintf(rd, sizeof rd, "job.run_dir=%s", d);
    run_result r;
    refused("run", rd, "data.resolution=16", NULL, "the data are 1x16x16 images");
    char *log = path_in(d, "log.txt"), *log_text = read_text(log); /* the run's log has the error that ended it */
    assert_non_null(strstr(log_text, " error: the data are 1x16x16 images"));
    free(log), free(log_text);
    refused("run", rd, "data.source=folder", "data.path=/nonexistent",
            "error: --set data.path: [data] path = '/nonexistent': no such folder or .zip archive");
    refused("run", rd, "training.batch=6", NULL, "multiple of batch_gpu");
    char *file = path_in(d, "a-file"), rd_file[700]; /* a run_dir that is a file */
    free(write_text(d, "a-file", "x"));
    snprintf(rd_file, sizeof rd_file, "job.run_dir=%s", file);
    refused("run", rd_file, "training.duration_kimg=1", NULL, "a-file: not a folder (a file of that name is there)");
    free(file);
    refused("run", rd, "data.source=tensors", "data.path=/nonexistent.safetensors",
            "error: --set data.path: [data] path = '/nonexistent.safetensors': no such file (latents are made");
    /* `check` says where a train job would start: afresh, or from the newest checkpoint; and what data it
     * reads, opened and checked against the network as the run does. */
    assert_int_equal(run_host(&r, "check", CFG, "--set", rd, NULL), 0);
    assert_non_null(strstr(r.out, "ok (job train, backend cpu); starts afresh; data: Fashion-MNIST train ("));
    assert_non_null(strstr(r.out, "): 1000 images, 8x8 gray, 10 classes\n"));
    refused("check", rd, "data.resolution=16", NULL,
            "error: the data are 1x16x16 images ([data] resolution/channels), the network takes 1x8x8");
    refused("check", rd, "data.source=tensors", "data.path=/tmp",
            "error: --set data.path: [data] path = '/tmp' is a folder: source = tensors reads");
    refused("check", rd, "network.label_dim=5", NULL, "[network] label_dim = 5, but the data have 10 classes");
    if (access(EDM2_BUILD_DIR "/plugins/edm2_backend_cuda.so", F_OK) == 0) { /* (built with CUDA) */
        /* The data are opened also where the network cannot be made (a CUDA config without a GPU). */
        run_host(&r, "check", CFG, "--set", rd, "--set", "backend.plugin=cuda", "--set", "data.source=tensors", "--set",
                 "data.path=/nonexistent.safetensors", NULL);
        assert_int_equal(r.status, 1); /* (after a warning where no GPU is there) */
        assert_non_null(strstr(r.err, "error: --set data.path: [data] path = '/nonexistent.safetensors': no such file"));
        assert_int_equal(run_host(&r, "check", CFG, "--set", rd, "--set", "backend.plugin=cuda", NULL), 0);
        assert_non_null(strstr(r.out, "; data: Fashion-MNIST train ("));
    }
    /* Resuming with another network is refused, naming the checkpoint and only the values that differ; `check`
     * refuses it the same way. */
    assert_int_equal(train(d, 1, &r), 0);
    assert_int_equal(run_host(&r, "check", CFG, "--set", rd, "--set", g_dropout, NULL), 0);
    char want[700];
    snprintf(want, sizeof want, "; resumes from %s/training-state-0000001.safetensors at kimg 1.", d);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, ", with changes: [training] duration_kimg = 1 -> (default); [backend] plugin = cpu -> (default)"
                                  "; data: "));
    assert_int_equal(run_host(&r, "check", CFG, "--set", rd, "--set", "network.dropout=0.00", NULL), 0); /* same number */
    assert_non_null(strstr(r.out, want));
    run_host(&r, "check", CFG, "--set", rd, "--set", "network.model_channels=16", NULL);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.err_lines, 1);
    assert_non_null(strstr(r.err, "training-state-0000001.safetensors: was written for another network ([network] "
                                  "model_channels = 8 there, 16 here)"));
    run_host(&r, "run", CFG, "--set", rd, "--set", "network.model_channels=16", "--set", "network.dropout=0.1", "--set",
             "training.duration_kimg=2", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "training-state-0000001.safetensors: was written for another network ([network] "
                                  "model_channels = 8 there, 16 here; dropout = 0 there, 0.1 here). Resume with"));
    char *ini = path_in(d, "config.ini"), *text = read_text(ini); /* the run's record is as it was */
    assert_non_null(strstr(text, "model_channels = 8\n"));
    assert_null(strstr(text, "model_channels = 16"));
    free(ini), free(text);
    rm_rf(d);
    free(d);
}

/* An image folder in the EDM dataset tool's layout, and a tensors file, both train. */
static void test_other_data_sources(void **state) {
    (void)state;
    char *d = make_temp_dir();
    char sub[600], p[700], text[8192];
    snprintf(sub, sizeof sub, "%s/imgs/00000", d);
    edm2_err err;
    assert_int_equal(make_dirs(sub, &err), 0);
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof text - n, "{\"labels\": [");
    uint8_t px[8 * 8 * 3];
    for (int i = 0; i < 24; i++) {
        for (int k = 0; k < 8 * 8 * 3; k++) px[k] = (uint8_t)((k * 7 + i * 13) % 256);
        snprintf(p, sizeof p, "%s/img%08d.png", sub, i);
        assert_int_equal(png_write(p, px, 8, 8, 3, &err), 0);
        n += (size_t)snprintf(text + n, sizeof text - n, "%s[\"00000/img%08d.png\", %d]", i ? ", " : "", i, i % 10);
    }
    snprintf(text + n, sizeof text - n, "]}");
    snprintf(p, sizeof p, "%s/imgs", d);
    char *json = write_text(p, "dataset.json", text);
    char rd[800], dp[800];
    snprintf(rd, sizeof rd, "job.run_dir=%s/run1", d);
    snprintf(dp, sizeof dp, "data.path=%s/imgs", d);
    run_result r;
    int st = run_host(&r, "run", CFG, "--set", rd, "--set", "data.source=folder", "--set", dp, "--set", "data.channels=3",
                      "--set", "network.img_channels=3", "--set", "training.duration_kimg=1", NULL);
    if (st) fprintf(stderr, "%s", r.err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(r.err, "image folder"));
    /* A broken dataset.json names the file and what was expected. */
    free(write_text(p, "dataset.json", "{\"labels\": [[\"00000/img00000000.png\", \"cat\"]]}"));
    snprintf(rd, sizeof rd, "job.run_dir=%s/run2", d);
    run_host(&r, "run", CFG, "--set", rd, "--set", "data.source=folder", "--set", dp, "--set", "data.channels=3",
             "--set", "network.img_channels=3", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "dataset.json: labels[0]: expected [\"file.png\", class index 0..65535 or null]"));
    /* A tensors file: images [N, 1, 8, 8] in data scale and labels [N]. */
    float imgs[16 * 64], labels[16];
    for (int i = 0; i < 16 * 64; i++) imgs[i] = (float)((i % 17) - 8) / 8.0f;
    for (int i = 0; i < 16; i++) labels[i] = (float)(i % 10);
    st_out outs[2] = {{"images", ST_F16, 4, {16, 1, 8, 8}, imgs}, {"labels", ST_F32, 1, {16}, labels}};
    snprintf(p, sizeof p, "%s/data.safetensors", d);
    assert_int_equal(st_write(p, outs, 2, NULL, NULL, 0, &err), 0);
    snprintf(rd, sizeof rd, "job.run_dir=%s/run3", d);
    snprintf(dp, sizeof dp, "data.path=%s", p);
    st = run_host(&r, "run", CFG, "--set", rd, "--set", "data.source=tensors", "--set", dp, "--set",
                  "training.duration_kimg=1", NULL);
    if (st) fprintf(stderr, "%s", r.err);
    assert_int_equal(st, 0);
    free(json);
    rm_rf(d);
    free(d);
}

/* Two 1-kimg runs, each with one more setting (NULL: none) and environment entry (NULL: none); their
 * checkpoints must be bitwise the same. ra, rb: the runs' outputs. */
static void same_checkpoints(const char *set_a, const char *env_a, const char *set_b, const char *env_b,
                             run_result *ra, run_result *rb) {
    const char *sets[2] = {set_a, set_b}, *envs[2] = {env_a, env_b};
    run_result *rs[2] = {ra, rb};
    char *dirs[2], *ckpt[2];
    for (int k = 0; k < 2; k++) {
        char rd[600];
        dirs[k] = make_temp_dir();
        snprintf(rd, sizeof rd, "job.run_dir=%s", dirs[k]);
        const char *argv[] = {EDM2_BUILD_DIR "/edm2host", "run", CFG, "--set", rd, "--set", "training.duration_kimg=1",
                              sets[k] ? "--set" : NULL, sets[k], NULL};
        const char *env[] = {envs[k], NULL};
        assert_int_equal(run_capture(rs[k], argv, env), 0);
        ckpt[k] = path_in(dirs[k], "training-state-0000001.safetensors");
    }
    assert_same_tensors(ckpt[0], ckpt[1]);
    for (int k = 0; k < 2; k++) rm_rf(dirs[k]), free(dirs[k]), free(ckpt[k]);
}

/* The thread count never changes the result, so lowering it while other programs use the cores keeps
 * training reproducible: 1 and 2 threads give bitwise-identical checkpoints. */
static void test_threads_do_not_change_results(void **state) {
    (void)state;
    run_result r;
    same_checkpoints("job.threads=1", NULL, "job.threads=2", NULL, &r, &r);
}

/* The losses of each step in a run's stats.jsonl (status every step) into loss[0..n). */
static void step_losses(const char *dir, double *loss, int n) {
    char *path = path_in(dir, "stats.jsonl"), *text = read_text(path), *at = text;
    assert_non_null(text);
    for (int k = 0; k < n; k++) {
        assert_non_null(at = strstr(at, "\"loss\": "));
        loss[k] = strtod(at += 8, NULL);
    }
    free(text), free(path);
}

/* Each image's noise level, noise and dropout masks depend on its place in the batch, not on the passes the
 * batch is split into (the loss's and the network's draws, edm2_loss.h and edm2_network.h): passes of 2, 4
 * and 8 images (with dropout) give the same losses, step after step, up to the order of the sums. */
static void test_pass_size_keeps_the_draws(void **state) {
    (void)state;
    const char *sizes[3] = {"training.batch_gpu=8", "training.batch_gpu=4", "training.batch_gpu=2"};
    double loss[3][3];
    for (int k = 0; k < 3; k++) {
        char *d = make_temp_dir(), rd[600];
        snprintf(rd, sizeof rd, "job.run_dir=%s", d);
        run_result r;
        assert_int_equal(run_host(&r, "run", CFG, "--set", rd, "--set", "training.duration_kimg=0.024", "--set",
                                  "training.status_kimg=0.008", "--set", "network.dropout=0.25", "--set", sizes[k], NULL),
                         0);
        step_losses(d, loss[k], 3);
        rm_rf(d), free(d);
    }
    for (int k = 1; k < 3; k++)
        for (int step = 0; step < 3; step++) {
            if (fabs(loss[k][step] - loss[0][step]) > 2e-5 * fabs(loss[0][step]))
                fprintf(stderr, "step %d: loss %.6g in passes (%s) against %.6g in one\n", step + 1, loss[k][step],
                        sizes[k], loss[0][step]);
            assert_true(fabs(loss[k][step] - loss[0][step]) <= 2e-5 * fabs(loss[0][step]));
        }
}

/* EDM2_GROUP_OF_ONE=1 runs the data-parallel path with one process (two passes into their own gradient
 * arenas, added by the backend's reduce_sum; the parameters broadcast at start): bitwise the plain run. On
 * the cuda backend the same check puts NCCL's all-reduce in the path (scripts/gpu-check.sh). */
static void test_group_of_one(void **state) {
    (void)state;
    static run_result ra, rb;
    same_checkpoints(NULL, NULL, NULL, "EDM2_GROUP_OF_ONE=1", &ra, &rb);
    assert_null(strstr(ra.err, "group of one"));
    assert_non_null(strstr(rb.err, "data-parallel path in a group of one process"));
}

/* A damaged or foreign checkpoint is refused before use, in one line naming the file and the field; the
 * checkpoint itself is left as it was. */
static void test_damaged_checkpoint(void **state) {
    (void)state;
    char *d = make_temp_dir();
    run_result r;
    assert_int_equal(train(d, 1, &r), 0);
    char *ck = path_in(d, "training-state-0000001.safetensors"), *good = path_in(d, "good.safetensors.keep");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", ck, good);
    assert_int_equal(system(cmd), 0);
    struct {
        st_change ch;
        const char *expect;
    } cases[] = {
        {{"edm2.nimg", "-1008", NULL, NULL, 0}, "metadata edm2.nimg = '-1008': expected an integer in 0.."},
        {{"edm2.nimg", "1001", NULL, NULL, 0}, "edm2.nimg = 1001 is not a multiple of edm2.batch = 8"},
        {{"edm2.nimg", "1e3", NULL, NULL, 0}, "metadata edm2.nimg = '1e3': expected an integer"},
        {{"edm2.optimizer_step", "100000", NULL, NULL, 0}, "edm2.optimizer_step = 100000 exceeds the 125 steps"},
        {{"edm2.batch", "0", NULL, NULL, 0}, "metadata edm2.batch = '0': expected an integer in 1.."},
        {{"edm2.checkpoint", NULL, NULL, NULL, 0}, "not a training checkpoint"},
        {{NULL, NULL, NULL, "params", NAN}, "'params' holds nan at index 0 (a damaged checkpoint)"},
        {{NULL, NULL, NULL, "optimizer/exp_avg", INFINITY}, "'optimizer/exp_avg' holds inf"},
        {{NULL, NULL, "ema/0.100", NULL, 0}, "holds 4 tensors, this run keeps 5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(st_rewrite(good, ck, &cases[i].ch, 1), 0);
        unsigned char *before, *after;
        size_t nb, na;
        edm2_err err;
        assert_int_equal(read_file(ck, &before, &nb, &err), 0);
        assert_int_equal(train(d, 2, &r), 1);
        if (!strstr(r.err, cases[i].expect)) fprintf(stderr, "case %zu: %s", i, r.err);
        assert_non_null(strstr(r.err, cases[i].expect));
        assert_non_null(strstr(r.err, ck));
        assert_int_equal(r.err_lines, 1);
        assert_int_equal(read_file(ck, &after, &na, &err), 0);
        assert_int_equal(na, nb);
        assert_memory_equal(before, after, nb);
        free(before), free(after);
    }
    free(ck), free(good);
    rm_rf(d);
    free(d);
}

/* The durations of the progress lines. */
static void test_durations(void **state) {
    (void)state;
    char b[16];
    assert_string_equal(fmt_duration(0, b), "0.0s");
    assert_string_equal(fmt_duration(4.26, b), "4.3s");
    assert_string_equal(fmt_duration(59.9, b), "59s");
    assert_string_equal(fmt_duration(60, b), "1m00s");
    assert_string_equal(fmt_duration(3599, b), "59m59s");
    assert_string_equal(fmt_duration(3 * 3600 + 7 * 60 + 59, b), "3h07m");
    assert_string_equal(fmt_duration(2 * 86400 + 4 * 3600 + 3599, b), "2d04h");
    assert_string_equal(fmt_duration(-1, b), "?");
    assert_string_equal(fmt_duration(NAN, b), "?");
    assert_string_equal(fmt_duration(INFINITY, b), "?");
    assert_string_equal(fmt_duration(1e12, b), "?");
}

/* The last step may pass duration_kimg (0.5 kimg in steps of 8 images: 504 images): nothing is left then.
 * A config.ini of the user's in the run folder is left alone. */
static void test_last_status_line(void **state) {
    (void)state;
    char *d = make_temp_dir();
    run_result r;
    free(write_text(d, "config.ini", "[job]\ntype = train\n")); /* a config of the user's in the run folder */
    assert_int_equal(train(d, 0.5, &r), 0);
    assert_non_null(strstr(r.err, "kimg     0.504  loss "));
    assert_non_null(strstr(r.err, "  ETA 0.0s  mem "));
    assert_non_null(strstr(r.err, "config.ini is not a record of edm2host's: left as it is"));
    assert_null(strstr(r.err, "config changed"));
    char *ini = path_in(d, "config.ini"), *text = read_text(ini);
    assert_string_equal(text, "[job]\ntype = train\n");
    free(ini), free(text);
    rm_rf(d);
    free(d);
}

/* [backend] plugin = auto: the CUDA backend where it runs here, else the CPU's; the run's config.ini records
 * the one chosen (so that a resume compares what ran), `check` of the same config says how it was chosen and
 * finds no change to resume with, and the cuda backend's key where the CPU was chosen is refused saying why.
 * (tests/cuda_emu/train_emu.sh: auto chooses the emulated GPU, and keeps to the CPU for a CPU-only plugin.) */
static void test_auto_backend(void **state) {
    (void)state;
    char why[512], rd[600];
    const char *id = cuda_usable(why, sizeof why) ? "cuda" : "cpu";
    char *d = make_temp_dir();
    g_backend = "backend.plugin=auto";
    run_result r;
    assert_int_equal(train(d, 0.05, &r), 0);
    char *ini = path_in(d, "config.ini"), *text = read_text(ini), expect[64];
    snprintf(expect, sizeof expect, "[backend]\nplugin = %s\n", id);
    if (!strstr(text, expect)) fprintf(stderr, "expected '%s' in %s:\n%s", expect, ini, text);
    assert_non_null(strstr(text, expect));
    snprintf(rd, sizeof rd, "job.run_dir=%s", d);
    assert_int_equal(run_host(&r, "check", CFG, "--set", rd, "--set", "training.duration_kimg=0.05", "--set", g_backend,
                              "--set", g_dropout, NULL),
                     0);
    snprintf(expect, sizeof expect, "backend %s, chosen by plugin = auto: ", id);
    if (!strstr(r.out, expect) || !strstr(r.out, "resumes from") || strstr(r.out, "with changes"))
        fprintf(stderr, "expected '%s', a resume and no changes:\n%s%s", expect, r.out, r.err);
    assert_non_null(strstr(r.out, expect));
    assert_non_null(strstr(r.out, "resumes from"));
    assert_null(strstr(r.out, "with changes"));
    /* The cuda backend's device key where auto chose the CPU: refused with the reason (where the CUDA plugin
     * was built; else it is just an unknown key). */
    int st = run_host(&r, "check", CFG, "--set", g_backend, "--set", "backend.device=0", NULL);
    if (!strcmp(id, "cuda")) assert_int_equal(st, 0);
    else {
        assert_int_equal(st, 1);
        assert_int_equal(r.err_lines, 1);
        assert_non_null(strstr(r.err, access(EDM2_BUILD_DIR "/plugins/edm2_backend_cuda.so", F_OK)
                                          ? "unknown key 'device'"
                                          : "[backend] device is not a key of the cpu backend, which plugin = auto "
                                            "chose here (cuda: "));
    }
    free(ini), free(text);
    rm_rf(d);
    free(d);
}

/* What the plugins say when created (the network's precision line) is said once: the trial instances that
 * check a config at the start of a run keep quiet. */
static void test_start_lines_once(void **state) {
    (void)state;
    char *d = make_temp_dir(), rd[600];
    snprintf(rd, sizeof rd, "job.run_dir=%s", d);
    run_result r;
    assert_int_equal(run_host(&r, "run", CFG, "--set", rd, "--set", "training.duration_kimg=0.05", "--set",
                              "network.precision=bf16", NULL),
                     0);
    const char *first = strstr(r.err, "precision = bf16");
    if (!first || strstr(first + 1, "precision = bf16")) fprintf(stderr, "expected the precision line once:\n%s", r.err);
    assert_non_null(first);
    assert_null(strstr(first + 1, "precision = bf16"));
    rm_rf(d);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_last_status_line),
        cmocka_unit_test(test_resume_is_exact),
        cmocka_unit_test_teardown(test_cuda_deterministic_and_resume, back_to_cpu),
        cmocka_unit_test_teardown(test_auto_backend, back_to_cpu),
        cmocka_unit_test(test_start_lines_once),
        cmocka_unit_test(test_kill_leaves_complete_files),
        cmocka_unit_test(test_bad_setups),
        cmocka_unit_test(test_other_data_sources),
        cmocka_unit_test(test_damaged_checkpoint),
        cmocka_unit_test(test_threads_do_not_change_results),
        cmocka_unit_test(test_group_of_one),
        cmocka_unit_test(test_pass_size_keeps_the_draws),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
