/* test_latents.c: the latent pipeline end to end on the CPU with a small random-weight VAE (vae_weights.h):
 * a folder of PNGs of several sizes in class subfolders (one unreadable file among them) -> `encode` (centre
 * crop, VAE, the posterior's mean and std; resumable: stopped after 5 images and continued, bitwise the same
 * file as one uninterrupted run; also one sampled posterior) -> a tensors file of latents with labels and the
 * scaling in its metadata ->
 * `train` on it (the snapshots carry the latent metadata) -> `generate` with [vae]: PNGs of decoded
 * images; without [vae]: the latents, with a warning; `evaluate` (SWD and FID, synthetic Inception
 * weights) of the decoded images against a folder of pixel images, and refused without [vae]; encoding from a ZIP
 * archive of the sources, bitwise the encoding of the unpacked folder. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fid_weights.h"
#include "fileio.h"
#include "image_io.h"
#include "safetensors.h"
#include "test_util.h"
#include "vae_weights.h"

static char *g_dir;

/* The small VAE (tests/configs/small_vae.ini, extended first) and its weights written by the test. */
#define SMALL_VAE "extends = " EDM2_SOURCE_DIR "/tests/configs/small_vae.ini\n"
static const char *const k_vae = "[vae]\nweights = %s/vae.safetensors\n";

/* Runs (or with cmd "check", checks) the encode job with extra [encode] lines; returns the exit status. */
static int encode_cmd(const char *cmd, const char *extra, run_result *r) {
    char text[2048], vae[512];
    snprintf(vae, sizeof vae, k_vae, g_dir);
    snprintf(text, sizeof text,
             SMALL_VAE "[job]\ntype = encode\nseed = 5\n%s[encode]\nsource = %s/src\ndest = %s/%s.safetensors\n%s"
             "batch = 3\ncheckpoint_images = 2\n%s",
             vae, g_dir, g_dir, strstr(extra, "stop_after") ? "resumed" : strstr(extra, "sample") ? "sampled" : "latents",
             strstr(extra, "resolution") ? "" : "resolution = 16\n", extra);
    char *cfg = write_text(g_dir, "encode.ini", text);
    int st = run_host(r, cmd, cfg, NULL);
    free(cfg);
    return st;
}

static int encode(const char *extra, run_result *r) { return encode_cmd("run", extra, r); }

static void test_encode_train_generate(void **state) {
    (void)state;
    run_result r;
    char p[700];
    snprintf(p, sizeof p, "%s/latents.safetensors", g_dir);
    /* check: the images are listed and the VAE opened; nothing is written */
    if (encode_cmd("check", "", &r)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.out, "ok (job encode, backend cpu); its inputs open\n"));
    assert_int_not_equal(access(p, F_OK), 0);
    assert_int_equal(encode_cmd("check", "resolution = 15\n", &r), 1);
    assert_non_null(strstr(r.err, "resolution = 15: not a multiple"));
    if (encode("", &r)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.err, "skipped: "));
    assert_non_null(strstr(r.err, "b/broken.png"));
    st_file f;
    edm2_err err;
    assert_int_equal(st_open(&f, p, &err), 0);
    const st_tensor *im = st_find(&f, "images"), *lb = st_find(&f, "labels");
    assert_non_null(im);
    assert_non_null(lb);
    assert_int_equal(im->shape[0], 9); /* 10 files, one unreadable */
    assert_int_equal(im->shape[1], 8); /* the posterior's mean and std */
    assert_int_equal(im->shape[2], 8);
    assert_string_equal(st_meta(&f, "edm2.latents"), "sd_vae");
    assert_string_equal(st_meta(&f, "edm2.latent_moments"), "1");
    assert_int_equal(run_host(&r, "inspect", p, NULL), 0);
    assert_non_null(strstr(r.out, "latents.safetensors: latents dataset of 9 images, 4x8x8 (posterior mean and std: "
                                  "training draws), 2 classes, VAE sd_vae, from "));
    assert_non_null(st_meta(&f, "edm2.latent_scale"));
    float labels[9];
    st_to_f32(lb, labels);
    assert_true(labels[0] == 0 && labels[4] == 0 && labels[5] == 1 && labels[8] == 1); /* a/ then b/ */
    /* Bad settings: one line each. */
    assert_int_not_equal(encode("latents = median\n", &r), 0);
    assert_non_null(strstr(r.err, "[encode] latents = 'median'"));
    assert_int_not_equal(encode("resolution = 15\n", &r), 0);
    assert_non_null(strstr(r.err, "resolution = 15: not a multiple"));
    /* Stopped after 5 images, then continued: the same file. */
    assert_int_equal(encode("stop_after = 5\n", &r), 0);
    assert_non_null(strstr(r.err, "stopped after 5 images"));
    snprintf(p, sizeof p, "%s/resumed.safetensors", g_dir);
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0); /* not written yet */
    assert_int_not_equal(encode("stop_after = 0\nlatents = mean\n", &r), 0); /* other settings: refused */
    assert_non_null(strstr(r.err, "a partial encoding with other settings"));
    assert_int_equal(encode("stop_after = 0\n", &r), 0);
    assert_non_null(strstr(r.err, "continuing the partial encoding"));
    st_file g;
    assert_int_equal(st_open(&g, p, &err), 0);
    assert_int_equal(g.size, f.size);
    assert_memory_equal(g.buf, f.buf, f.size);
    st_close(&g);
    /* One draw of the posterior instead: 4 channels, mean + std n. */
    assert_int_equal(encode("latents = sample\n", &r), 0);
    snprintf(p, sizeof p, "%s/sampled.safetensors", g_dir);
    assert_int_equal(st_open(&g, p, &err), 0);
    assert_int_equal(st_find(&g, "images")->shape[1], 4);
    assert_string_equal(st_meta(&g, "edm2.latent_moments"), "0");
    st_close(&g);
    /* SIGINT: the state saved after the image at hand, exit status 130; the same command continues to the
     * same file. */
    {
        char text[2048], vae[512];
        snprintf(vae, sizeof vae, k_vae, g_dir);
        snprintf(text, sizeof text,
                 SMALL_VAE "[job]\ntype = encode\nseed = 5\n%s[encode]\nsource = %s/src\ndest = %s/interrupted.safetensors\n"
                 "resolution = 16\nbatch = 1\ncheckpoint_images = 1\n",
                 vae, g_dir, g_dir);
        char *cfg = write_text(g_dir, "encode-int.ini", text);
        snprintf(p, sizeof p, "%s/interrupted.safetensors.partial.json", g_dir);
        const int st = run_interrupted(cfg, p);
        snprintf(p, sizeof p, "%s/interrupted.safetensors", g_dir);
        if (st == 130) {
            assert_int_not_equal(access(p, F_OK), 0);
            assert_int_equal(run_host(&r, "run", cfg, NULL), 0);
            assert_non_null(strstr(r.err, "continuing the partial encoding"));
        } else {
            assert_int_equal(st, 0); /* finished before the signal arrived */
        }
        free(cfg);
        assert_int_equal(st_open(&g, p, &err), 0);
        assert_int_equal(g.size, f.size);
        assert_memory_equal(g.buf, f.buf, f.size);
        st_close(&g);
    }
    st_close(&f);

    /* Train a tiny network on the latents; its sample grid decoded by the VAE. */
    char rd[700], dp[700], vw[700];
    snprintf(rd, sizeof rd, "job.run_dir=%s/run", g_dir);
    snprintf(dp, sizeof dp, "data.path=%s/latents.safetensors", g_dir);
    snprintf(vw, sizeof vw, "vae.weights=%s/vae.safetensors", g_dir);
    if (run_host(&r, "run", EDM2_SOURCE_DIR "/tests/configs/tiny_train.ini", "--set", rd, "--set", "data.source=tensors",
                 "--set", dp, "--set", "network.img_channels=4", "--set", "network.label_dim=2", "--set",
                 "training.duration_kimg=0.064", "--set", "training.snapshot_kimg=0", "--set", "training.checkpoint_kimg=0",
                 "--set", "training.sample_grid=true", "--set", "vae.plugin=sd_vae", "--set", vw, "--set",
                 "vae.block_out_channels=16,32", "--set", "vae.layers_per_block=1", "--set", "vae.norm_num_groups=8", NULL))
        fail_msg("%s", r.err);
    {
        uint8_t *px;
        int w, h;
        snprintf(p, sizeof p, "%s/run/samples.png", g_dir);
        assert_int_equal(png_read(p, 3, 0, 0, &px, &w, &h, &err), 0);
        assert_true(w >= 10 * 16 && h >= 2 * 16 && h < 3 * 16); /* two rows of decoded 16x16 images */
        free(px);
    }
    { /* the status records count the gradient entries the optimizer zeroed (none here) */
        unsigned char *text;
        size_t len;
        snprintf(p, sizeof p, "%s/run/stats.jsonl", g_dir);
        assert_int_equal(read_file(p, &text, &len, &err), 0);
        assert_non_null(strstr((const char *)text, "\"nonfinite_grads\": 0,"));
        free(text);
    }
    snprintf(p, sizeof p, "%s/run/network-snapshot-0000000-0.100.safetensors", g_dir);
    assert_int_equal(st_open(&f, p, &err), 0);
    assert_string_equal(st_meta(&f, "edm2.latents"), "sd_vae");
    st_close(&f);

    /* Generate: decoded images with [vae], latents without. */
    char text[2048], vae[512];
    snprintf(vae, sizeof vae, k_vae, g_dir);
    snprintf(text, sizeof text,
             SMALL_VAE "[job]\ntype = generate\n[sampler]\nplugin = heun\nnum_steps = 4\n%s[generate]\nnet = %s\nseeds = 0-3\n"
             "outdir = %s/out\ngrid_columns = 2\n",
             vae, p, g_dir);
    char *cfg = write_text(g_dir, "gen.ini", text);
    if (run_host(&r, "run", cfg, NULL)) fail_msg("%s", r.err);
    free(cfg);
    assert_non_null(strstr(r.err, "decoded by the VAE"));
    uint8_t *px;
    int w, h;
    snprintf(p, sizeof p, "%s/out/000002-class1.png", g_dir);
    assert_int_equal(png_read(p, 3, 0, 0, &px, &w, &h, &err), 0);
    assert_int_equal(w, 16);
    assert_int_equal(h, 16);
    free(px);
    snprintf(text, sizeof text,
             "[job]\ntype = generate\n[sampler]\nplugin = heun\nnum_steps = 4\n[generate]\n"
             "net = %s/run/network-snapshot-0000000-0.100.safetensors\nseeds = 0-1\noutdir = %s/raw\n",
             g_dir, g_dir);
    cfg = write_text(g_dir, "gen-raw.ini", text);
    assert_int_equal(run_host(&r, "run", cfg, NULL), 0);
    free(cfg);
    assert_non_null(strstr(r.err, "without a [vae] section"));

    /* Evaluate the decoded images against 16x16 pixel images. */
    snprintf(p, sizeof p, "%s/pix", g_dir);
    mkdir(p, 0755);
    for (int i = 0; i < 8; i++) {
        uint8_t img[16 * 16 * 3];
        for (int k = 0; k < 16 * 16 * 3; k++) img[k] = (uint8_t)((k * 13 + i * 29) % 256);
        snprintf(p, sizeof p, "%s/pix/%d.png", g_dir, i);
        assert_int_equal(png_write(p, img, 16, 16, 3, &err), 0);
    }
    snprintf(p, sizeof p, "%s/fid.safetensors", g_dir);
    assert_int_equal(write_fid_weights(p, NULL, NULL, &err), 0);
    snprintf(text, sizeof text,
             SMALL_VAE "[job]\ntype = evaluate\n[sampler]\nplugin = heun\nnum_steps = 4\n%s[features]\nplugin = inception_v3\n"
             "weights = %s\n[data]\nsource = folder\npath = %s/pix\nresolution = 16\nchannels = 3\n[evaluate]\n"
             "net = %s/run/network-snapshot-0000000-0.100.safetensors\nseeds = 0-7\nbatch = 4\nmetrics = swd,fid\n"
             "swd_min_res = 8\nswd_patches = 16\n",
             vae, p, g_dir, g_dir);
    cfg = write_text(g_dir, "eval.ini", text);
    if (run_host(&r, "run", cfg, NULL)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.err, "FID: "));
    assert_non_null(strstr(r.err, "SWD x1e3: "));
    /* without [vae] (neither the small VAE extended nor its section): refused */
    char *cut = strstr(text, "[vae]"), *end = strstr(text, "[features]");
    memmove(cut, end, strlen(end) + 1);
    memmove(text, strstr(text, "[job]"), strlen(strstr(text, "[job]")) + 1);
    free(write_text(g_dir, "eval.ini", text));
    assert_int_not_equal(run_host(&r, "run", cfg, NULL), 0);
    assert_non_null(strstr(r.err, "needs a [vae] section"));
    free(cfg);
}

/* Encoding the dataset tool's sources from a ZIP archive (tests/data/archives/sources.zip: PNGs of several sizes and a
 * JPEG in class folders, deflated) writes the latents and labels of the same files unpacked in a folder, bitwise. */
static void test_encode_archive(void **state) {
    (void)state;
    st_file f[2];
    edm2_err err;
    const char *from[2] = {"sources", "sources.zip"};
    for (int k = 0; k < 2; k++) {
        char text[2048], vae[512], dest[700];
        snprintf(vae, sizeof vae, k_vae, g_dir);
        snprintf(dest, sizeof dest, "%s/from-%d.safetensors", g_dir, k);
        snprintf(text, sizeof text,
                 SMALL_VAE "[job]\ntype = encode\n%s[encode]\nsource = %s/archives/%s\ndest = %s\nresolution = 16\n"
                 "batch = 4\n", vae, EDM2_TEST_DATA, from[k], dest);
        char *cfg = write_text(g_dir, "encode-archive.ini", text);
        run_result r;
        if (run_host(&r, "run", cfg, NULL)) fail_msg("%s", r.err);
        free(cfg);
        if (st_open(&f[k], dest, &err)) fail_msg("%s", err.msg);
    }
    for (int t = 0; t < 2; t++) {
        const char *name = t ? "labels" : "images";
        const st_tensor *a = st_find(&f[0], name), *b = st_find(&f[1], name);
        assert_non_null(a), assert_non_null(b);
        assert_int_equal(a->shape[0], 6), assert_int_equal(b->shape[0], 6);
        assert_int_equal(a->numel, b->numel), assert_int_equal(a->dtype, b->dtype);
        assert_memory_equal(a->data, b->data, a->numel * st_dtype_bytes(a->dtype));
    }
    for (int k = 0; k < 2; k++) st_close(&f[k]);
}

static int setup(void **state) {
    (void)state;
    g_dir = make_temp_dir();
    char p[700];
    edm2_err err;
    const vae_hparams hp = {2, {16, 32}, 1, 8, 4};
    snprintf(p, sizeof p, "%s/vae.safetensors", g_dir);
    if (write_vae_weights(p, &hp, NULL, NULL, &err)) return -1;
    /* a/: 5 images, b/: 4 images and one that is not a PNG; several sizes and aspect ratios */
    const int sizes[9][2] = {{20, 24}, {24, 20}, {16, 16}, {33, 17}, {40, 40}, {18, 30}, {16, 21}, {64, 48}, {17, 17}};
    snprintf(p, sizeof p, "%s/src", g_dir);
    mkdir(p, 0755);
    for (int i = 0; i < 9; i++) {
        const char *cls = i < 5 ? "a" : "b";
        snprintf(p, sizeof p, "%s/src/%s", g_dir, cls);
        mkdir(p, 0755);
        const int w = sizes[i][0], h = sizes[i][1];
        uint8_t *px = malloc((size_t)w * h * 3);
        for (int k = 0; k < w * h * 3; k++) px[k] = (uint8_t)((k * 37 + i * 91) % 251);
        snprintf(p, sizeof p, "%s/src/%s/img%d.png", g_dir, cls, i);
        if (png_write(p, px, w, h, 3, &err)) return -1;
        free(px);
    }
    snprintf(p, sizeof p, "%s/src", g_dir);
    free(write_text(p, "b/broken.png", "not a PNG at all"));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_rf(g_dir);
    free(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_encode_train_generate), cmocka_unit_test(test_encode_archive)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
