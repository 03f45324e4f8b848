/* test_archives.c: the EDM2 dataset tool's ZIP archives as [data] source = folder (host/data_zip.c, zip_archive.c,
 * npy.c), on the archives of tests/data/archives/ (Python's zipfile, make_dataset_archives.py): PNGs stored,
 * deflated and in ZIP64 form read bitwise as the same files unpacked in a folder; .npy posterior moments scaled as
 * the reference scales them and drawn as the encode job's moments are, from an archive or a folder (a training run
 * on the archive bitwise the run on the encode job's file of the same moments); and damaged or
 * unusual archives made here (CRC mismatch, cut short, a listed file missing, PNG and .npy mixed, encrypted,
 * another compression method, two entries of one name), each refused with a one-line error naming the archive and
 * the entry; the dataset tool's own sources (PNG and JPEG of any size in class folders) in an archive, listed and
 * read as from the unpacked folder; `edm2host inspect` of archives and arrays. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "config.h"
#include "data_sources.h"
#include "fileio.h"
#include "npy.h"
#include "safetensors.h"
#include "test_util.h"
#include "zip_archive.h"

static const char *data_path(const char *name) {
    static char p[4200];
    snprintf(p, sizeof p, "%s/archives/%s", EDM2_TEST_DATA, name);
    return p;
}

static int open_data(dataset *d, const char *path, const char *res, const char *extra_key, const char *extra_val,
                     edm2_err *err) {
    cfg c = {0};
    assert_int_equal(cfg_put(&c, "data", "source", "folder"), 0);
    assert_int_equal(cfg_put(&c, "data", "path", path), 0);
    assert_int_equal(cfg_put(&c, "data", "resolution", res), 0);
    if (extra_key) assert_int_equal(cfg_put(&c, "data", extra_key, extra_val), 0);
    int rc = dataset_open(d, &c, err);
    cfg_free(&c);
    return rc;
}

/* PNGs in a stored, a deflated and a ZIP64 archive: the folder's images and classes, bitwise. */
static void test_png_archives(void **state) {
    (void)state;
    edm2_err err;
    dataset f, z;
    if (open_data(&f, data_path("png"), "8", NULL, NULL, &err)) fail_msg("%s", err.msg);
    const char *names[] = {"png.zip", "png-deflated.zip", "png-zip64.zip"};
    float a[3 * 64], b[3 * 64], ha[3], hb[3];
    for (int n = 0; n < 3; n++) {
        if (open_data(&z, data_path(names[n]), "8", NULL, NULL, &err)) fail_msg("%s: %s", names[n], err.msg);
        assert_int_equal(z.count, 6), assert_int_equal(z.channels, 3), assert_int_equal(z.label_dim, 3);
        assert_int_equal(z.moments, 0);
        assert_non_null(strstr(z.desc, "archive")), assert_non_null(strstr(z.desc, "6 images, 3x8x8, 3 classes"));
        for (int i = 0; i < 6; i++) {
            assert_int_equal(dataset_get(&f, i, a, ha, 3, &err), 0);
            assert_int_equal(dataset_get(&z, i, b, hb, 3, &err), 0);
            assert_memory_equal(a, b, sizeof a);
            assert_memory_equal(ha, hb, sizeof ha);
            assert_float_equal(hb[i % 3], 1.0f, 0);
        }
        dataset_close(&z);
    }
    dataset_close(&f);
    /* max_images keeps the first; a resolution the PNGs do not have is named with the entry. */
    if (open_data(&z, data_path("png.zip"), "8", "max_images", "2", &err)) fail_msg("%s", err.msg);
    assert_int_equal(z.count, 2), assert_int_equal(z.label_dim, 2);
    dataset_close(&z);
    assert_int_equal(open_data(&z, data_path("png.zip"), "16", NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "png.zip:00000/img00000000.png"));
}

/* The raw moments of npy-raw.safetensors [5, 8, 4, 4] into raw[5 * 128], and scaled by the reference's default
 * scaling (scale = 0.5 / latent_std, bias = -latent_mean scale, float32) into scaled[5 * 128]. */
static void npy_moments(float *raw, float *scaled) {
    edm2_err err;
    st_file f;
    if (st_open(&f, data_path("npy-raw.safetensors"), &err)) fail_msg("%s", err.msg);
    const st_tensor *m = st_find(&f, "moments");
    assert_non_null(m);
    assert_int_equal(m->numel, 5 * 128);
    st_to_f32(m, raw);
    st_close(&f);
    const float mean[4] = {5.81f, 3.25f, 0.12f, -2.15f}, std[4] = {4.17f, 4.62f, 3.71f, 3.28f};
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 4; c++)
            for (int p = 0; p < 16; p++) {
                const float s = 0.5f / std[c], b = 0.0f - mean[c] * s;
                const int k = i * 128 + c * 16 + p;
                scaled[k] = raw[k] * s + b;
                scaled[k + 64] = raw[k + 64] * s;
            }
}

/* The scaled moments as the encode job writes them (images [5, 8, 4, 4], labels 0..4, the scaling of z). */
static void write_moments(const char *path, const float *scaled, const dataset *z) {
    const float labels[5] = {0, 1, 2, 3, 4};
    st_out o[2] = {{"images", ST_F32, 4, {5, 8, 4, 4}, scaled}, {"labels", ST_F32, 1, {5}, labels}};
    const char *keys[] = {"edm2.latent_moments", "edm2.latents", "edm2.latent_scale", "edm2.latent_bias"};
    const char *vals[] = {"1", z->latents, z->latent_scale, z->latent_bias};
    edm2_err err;
    assert_int_equal(st_write(path, o, 2, keys, vals, 4, &err), 0);
}

/* .npy moments: the mean scaled by the reference's default scaling (scale = 0.5 / latent_std, bias = -latent_mean
 * scale, in float32), the std by the scale; training draws as from a tensors file holding the scaled moments. */
static void test_npy_archive(void **state) {
    (void)state;
    edm2_err err;
    float raw_f[5 * 128], scaled[5 * 128];
    npy_moments(raw_f, scaled);
    dataset z, t;
    if (open_data(&z, data_path("npy.zip"), "4", NULL, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(z.count, 5), assert_int_equal(z.channels, 4), assert_int_equal(z.label_dim, 5);
    assert_int_equal(z.moments, 1);
    assert_string_equal(z.latents, "sd_vae");
    char want_scale[64];
    snprintf(want_scale, sizeof want_scale, "%.9g,", 0.5f / 4.17f);
    assert_memory_equal(z.latent_scale, want_scale, strlen(want_scale));
    /* The same moments, scaled, in the encode job's tensors file. */
    char *dir = make_temp_dir(), tp[600];
    snprintf(tp, sizeof tp, "%s/moments.safetensors", dir);
    write_moments(tp, scaled, &z);
    memset(&t, 0, sizeof t);
    t.resolution = 4;
    if (tensors_open(&t, tp, 0, &err)) fail_msg("%s", err.msg);
    float a[64], b[64], onehot[5];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(dataset_get(&z, i, a, onehot, 5, &err), 0);
        assert_memory_equal(a, scaled + i * 128, sizeof a);
        assert_float_equal(onehot[i], 1.0f, 0);
        for (uint64_t pos = 0; pos < 3; pos++) {
            assert_int_equal(dataset_draw(&z, i, 11, pos * 5 + (uint64_t)i, a, onehot, 5, &err), 0);
            assert_int_equal(dataset_draw(&t, i, 11, pos * 5 + (uint64_t)i, b, NULL, 0, &err), 0);
            assert_memory_equal(a, b, sizeof a);
            assert_float_equal(onehot[i], 1.0f, 0);
        }
    }
    /* The same files unpacked into a folder: the same images and draws. */
    dataset f;
    if (open_data(&f, data_path("npy"), "4", NULL, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(f.count, 5), assert_int_equal(f.npy, 1), assert_int_equal(f.label_dim, 5);
    assert_non_null(strstr(f.desc, "5 latent images (posterior means and stds"));
    assert_string_equal(f.latent_bias, z.latent_bias);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(dataset_draw(&z, i, 3, 40 + (uint64_t)i, a, NULL, 0, &err), 0);
        assert_int_equal(dataset_draw(&f, i, 3, 40 + (uint64_t)i, b, onehot, 5, &err), 0);
        assert_memory_equal(a, b, sizeof a);
        assert_float_equal(onehot[i], 1.0f, 0);
    }
    dataset_close(&f);
    dataset_close(&t);
    dataset_close(&z);
    /* Another scaling from [data]; a resolution the arrays do not have. */
    if (open_data(&z, data_path("npy.zip"), "4", "final_std", "1", &err)) fail_msg("%s", err.msg);
    assert_int_equal(dataset_get(&z, 0, a, NULL, 0, &err), 0);
    assert_float_equal(a[0], raw_f[0] * (1.0f / 4.17f) + (0.0f - 5.81f * (1.0f / 4.17f)), 1e-6);
    dataset_close(&z);
    assert_int_equal(open_data(&z, data_path("npy.zip"), "8", NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "npy.zip:00000/img-mean-std-00000000.npy: 4x4 latents, [data] resolution = 8"));
    rm_rf(dir);
    free(dir);
}

/* Training on npy.zip: the same network, bitwise, as on the encode job's file of the same moments; its snapshot
 * marked as SD VAE latents with the archive's scaling. */
static void test_train_on_archive(void **state) {
    (void)state;
    char *dir = make_temp_dir(), tp[600], rd[700], dp[4300], snap[2][800];
    float raw[5 * 128], scaled[5 * 128];
    npy_moments(raw, scaled);
    dataset z;
    edm2_err err;
    if (open_data(&z, data_path("npy.zip"), "4", NULL, NULL, &err)) fail_msg("%s", err.msg);
    snprintf(tp, sizeof tp, "%s/moments.safetensors", dir);
    write_moments(tp, scaled, &z);
    dataset_close(&z);
    for (int k = 0; k < 2; k++) {
        run_result r;
        snprintf(rd, sizeof rd, "job.run_dir=%s/run%d", dir, k);
        snprintf(dp, sizeof dp, "data.path=%s", k ? tp : data_path("npy.zip"));
        if (run_host(&r, "run", EDM2_SOURCE_DIR "/tests/configs/tiny_train.ini", "--set", rd, "--set",
                     k ? "data.source=tensors" : "data.source=folder", "--set", dp, "--set", "data.resolution=4",
                     "--set", "network.img_resolution=4", "--set", "network.img_channels=4", "--set",
                     "network.label_dim=5", "--set", "training.duration_kimg=0.024", "--set", "training.snapshot_kimg=0",
                     "--set", "training.checkpoint_kimg=0", NULL))
            fail_msg("%s", r.err);
        if (!k) assert_non_null(strstr(r.err, "npy.zip: 5 latent images (posterior means and stds"));
        snprintf(snap[k], sizeof snap[k], "%s/run%d/network-snapshot-0000000-0.100.safetensors", dir, k);
    }
    st_file a, b;
    if (st_open(&a, snap[0], &err) || st_open(&b, snap[1], &err)) fail_msg("%s", err.msg);
    assert_string_equal(st_meta(&a, "edm2.latents"), "sd_vae");
    assert_string_equal(st_meta(&a, "edm2.latent_scale"), st_meta(&b, "edm2.latent_scale"));
    assert_string_equal(st_meta(&a, "edm2.latent_bias"), st_meta(&b, "edm2.latent_bias"));
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        const st_tensor *u = &a.t[i], *v = st_find(&b, u->name);
        assert_non_null(v);
        assert_int_equal(u->numel, v->numel);
        assert_memory_equal(u->data, v->data, u->numel * st_dtype_bytes(u->dtype));
    }
    st_close(&a), st_close(&b);
    rm_rf(dir);
    free(dir);
}

/* A stored ZIP of n entries written here (local headers, central directory, end record), with the given general
 * purpose flags and method for every entry. */
static void write_zip(const char *path, int n, const char *const *names, const char *const *datas, uint16_t flags,
                      uint16_t method) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char cd[8192];
    size_t cdn = 0, offsets[16], at = 0;
    for (int i = 0; i < n; i++) {
        const uint32_t len = (uint32_t)strlen(datas[i]), crc = (uint32_t)crc32(0, (const Bytef *)datas[i], len);
        const uint16_t nl = (uint16_t)strlen(names[i]);
        unsigned char h[30] = {'P', 'K', 3, 4, 20, 0, (unsigned char)flags, (unsigned char)(flags >> 8),
                               (unsigned char)method, (unsigned char)(method >> 8)};
        memcpy(h + 14, &crc, 4), memcpy(h + 18, &len, 4), memcpy(h + 22, &len, 4), memcpy(h + 26, &nl, 2);
        offsets[i] = at;
        fwrite(h, 1, 30, f), fwrite(names[i], 1, nl, f), fwrite(datas[i], 1, len, f);
        at += 30 + nl + len;
        unsigned char c[46] = {'P', 'K', 1, 2, 20, 0, 20, 0, (unsigned char)flags, (unsigned char)(flags >> 8),
                               (unsigned char)method, (unsigned char)(method >> 8)};
        const uint32_t off = (uint32_t)offsets[i];
        memcpy(c + 16, &crc, 4), memcpy(c + 20, &len, 4), memcpy(c + 24, &len, 4), memcpy(c + 28, &nl, 2);
        memcpy(c + 42, &off, 4);
        memcpy(cd + cdn, c, 46), memcpy(cd + cdn + 46, names[i], nl);
        cdn += 46 + nl;
    }
    fwrite(cd, 1, cdn, f);
    unsigned char e[22] = {'P', 'K', 5, 6, 0, 0, 0, 0, (unsigned char)n, 0, (unsigned char)n, 0};
    const uint32_t size = (uint32_t)cdn, off = (uint32_t)at;
    memcpy(e + 12, &size, 4), memcpy(e + 16, &off, 4);
    fwrite(e, 1, 22, f);
    fclose(f);
}

/* dataset_open's error for the archive `names`/`datas`, which must contain `want`. */
static void expect_refused(const char *dir, int n, const char *const *names, const char *const *datas, uint16_t flags,
                           uint16_t method, const char *want) {
    char p[600];
    snprintf(p, sizeof p, "%s/bad.zip", dir);
    write_zip(p, n, names, datas, flags, method);
    dataset d;
    edm2_err err;
    assert_int_equal(open_data(&d, p, "8", NULL, NULL, &err), -1);
    if (!strstr(err.msg, want) || !strstr(err.msg, "bad.zip") || strchr(err.msg, '\n'))
        fail_msg("expected '%s' in: %s", want, err.msg);
}

static void test_refused(void **state) {
    (void)state;
    char *dir = make_temp_dir(), p[600];
    unsigned char *bytes;
    size_t n;
    edm2_err err;
    dataset d;
    /* png.zip with one byte of its first image changed; cut short; not an archive at all. */
    if (read_file(data_path("png.zip"), &bytes, &n, &err)) fail_msg("%s", err.msg);
    snprintf(p, sizeof p, "%s/bad.zip", dir);
    unsigned char *png = bytes;
    while (png + 4 <= bytes + n && memcmp(png, "\x89PNG", 4)) png++;
    assert_true(png + 64 <= bytes + n);
    png[40] ^= 1;
    FILE *f = fopen(p, "wb");
    fwrite(bytes, 1, n, f), fclose(f);
    assert_int_equal(open_data(&d, p, "8", NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "bad.zip: entry '00000/img00000000.png': CRC-32 mismatch"));
    png[40] ^= 1;
    f = fopen(p, "wb");
    fwrite(bytes, 1, n - 30, f), fclose(f);
    assert_int_equal(open_data(&d, p, "8", NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "bad.zip"));
    f = fopen(p, "wb");
    fwrite(bytes + 100, 1, 200, f), fclose(f);
    assert_int_equal(open_data(&d, p, "8", NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "neither a folder nor a readable ZIP archive"));
    free(bytes);
    const char *json = "{\"labels\": [[\"a.png\", 0], [\"b.png\", 1]]}";
    const char *names[] = {"dataset.json", "a.png", "b.npy", "a.png"}, *datas[] = {json, "x", "y", "z"};
    expect_refused(dir, 2, names, datas, 0, 0, "dataset.json lists 'b.png', which is not in the archive");
    const char *mixed[] = {"a.png", "b.npy"}, *mixed_data[] = {"x", "y"};
    const char *mixed_json = "{\"labels\": [[\"a.png\", 0], [\"b.npy\", 1]]}", *with_json[] = {mixed_json, "x", "y"};
    expect_refused(dir, 3, names, with_json, 0, 0, "'a.png' and 'b.npy': PNG and .npy images do not mix");
    expect_refused(dir, 2, mixed, mixed_data, 1, 0, "entry 'a.png' is encrypted");
    expect_refused(dir, 2, mixed, mixed_data, 0, 12, "entry 'a.png': compression method 12");
    expect_refused(dir, 4, names, datas, 0, 0, "two entries named 'a.png'");
    const char *none[] = {"notes.txt", "__MACOSX/a.png", "x/._b.png"}, *none_data[] = {"x", "y", "z"};
    expect_refused(dir, 3, none, none_data, 0, 0, "no .png or .npy images in the archive"); /* hidden: skipped */
    expect_refused(dir, 1, mixed, mixed_data, 0, 0, "bad.zip:a.png"); /* not a PNG */
    const char *npy[] = {"a.npy"}, *npy_data[] = {"{'descr': '<f4'}"};
    expect_refused(dir, 1, npy, npy_data, 0, 0, "bad.zip:a.npy: not a .npy array");
    rm_rf(dir);
    free(dir);
}

/* The dataset tool's own sources in an archive (an ImageNet folder zipped): the folder's listing (class folders, each
 * in the folder scan's order; hidden files, __MACOSX/, a folder without images and an image beside the class folders
 * left out), the same classes, and each image read and centre-cropped bitwise as from the unpacked folder (a JPEG
 * among them); [data] source = images on the archive; an archive of .npy arrays refused as sources, naming the entry. */
static void test_source_archive(void **state) {
    (void)state;
    static const char *const want[] = {"a/1.png", "a/z/w.png", "a/z.png", "a b/2.PNG", "b/4.png", "b/sub/3.jpeg"};
    static const int32_t want_class[] = {0, 0, 0, 1, 2, 2};
    edm2_err err;
    dataset f, z;
    memset(&f, 0, sizeof f), memset(&z, 0, sizeof z);
    if (folder_list_sources(&f, data_path("sources"), &err)) fail_msg("%s", err.msg);
    if (folder_list_sources(&z, data_path("sources.zip"), &err)) fail_msg("%s", err.msg);
    assert_non_null(z.zip), assert_non_null(strstr(z.root, "/archives/sources.zip"));
    assert_int_equal(f.count, 6), assert_int_equal(z.count, 6);
    assert_int_equal(f.label_dim, 3), assert_int_equal(z.label_dim, 3);
    uint8_t a[16 * 16 * 3], b[16 * 16 * 3];
    for (int i = 0; i < 6; i++) {
        assert_string_equal(f.files[i], want[i]), assert_string_equal(z.files[i], want[i]);
        assert_int_equal(f.labels[i], want_class[i]), assert_int_equal(z.labels[i], want_class[i]);
        if (dataset_source_crop(&f, i, 16, a, &err) || dataset_source_crop(&z, i, 16, b, &err)) fail_msg("%s", err.msg);
        assert_memory_equal(a, b, sizeof a);
    }
    dataset_close(&f), dataset_close(&z);
    cfg c = {0};
    assert_int_equal(cfg_put(&c, "data", "source", "images"), 0);
    assert_int_equal(cfg_put(&c, "data", "path", data_path("sources.zip")), 0);
    assert_int_equal(cfg_put(&c, "data", "resolution", "16"), 0);
    if (dataset_open(&z, &c, &err)) fail_msg("%s", err.msg);
    assert_non_null(strstr(z.desc, "sources.zip: 6, centre-cropped to 16x16x3, 3 classes"));
    float img[3 * 16 * 16], hot[3];
    assert_int_equal(dataset_get(&z, 5, img, hot, 3, &err), 0);
    assert_float_equal(hot[2], 1.0f, 0);
    dataset_close(&z);
    assert_int_equal(cfg_put(&c, "data", "path", data_path("npy.zip")), 0);
    assert_int_equal(dataset_open(&z, &c, &err), -1);
    assert_non_null(strstr(err.msg, "npy.zip:00000/img-mean-std-00000000.npy: neither PNG nor JPEG"));
    assert_int_equal(cfg_put(&c, "data", "path", EDM2_TEST_DATA "/resize_ref.jpg"), 0);
    assert_int_equal(dataset_open(&z, &c, &err), -1);
    assert_non_null(strstr(err.msg, "resize_ref.jpg': neither a folder nor a readable ZIP archive"));
    assert_null(strchr(err.msg, '\n'));
    cfg_free(&c);
}

/* `edm2host inspect` of an archive and of a .npy array: the images, their size, the classes, the [data] settings. */
static void test_inspect(void **state) {
    (void)state;
    run_result r;
    if (run_host(&r, "inspect", data_path("png-zip64.zip"), NULL)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.out, "png-zip64.zip: ZIP archive of 7 entries (0 deflated)"));
    assert_non_null(strstr(r.out, "  images: 6 PNGs, 8x8, 3 channels ([data] source = folder, resolution = 8, channels = 3)\n"
                                  "  labels: 3 classes (dataset.json)\n"));
    if (run_host(&r, "inspect", data_path("npy.zip"), NULL)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.out, "  images: 5 .npy arrays [8, 4, 4] float32 (posterior means and stds of 4 latent "
                                  "channels: [data] source = folder, resolution = 4)\n  labels: 5 classes"));
    if (run_host(&r, "inspect", data_path("sources.zip"), NULL)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.out, "  sources: 6 PNG or JPEG images in 3 class folders ([encode] source, [data] source = "
                                  "images)\n"));
    if (run_host(&r, "inspect", data_path("npy/00000/img-mean-std-00000003.npy"), NULL)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.out, "img-mean-std-00000003.npy: NumPy array [8, 4, 4] float32\n"));
    char *dir = make_temp_dir(), p[600];
    snprintf(p, sizeof p, "%s/bad.zip", dir);
    const char *names[] = {"notes.txt", "__MACOSX/._a.png"}, *datas[] = {"x", "y"}; /* (hidden: no image) */
    write_zip(p, 2, names, datas, 0, 0);
    assert_int_equal(run_host(&r, "inspect", p, NULL), 0);
    assert_non_null(strstr(r.out, "no .png or .npy images: not a dataset of the EDM dataset tool"));
    const char *json[] = {"dataset.json"}, *bad_json[] = {"{\"labels\": 3}"};
    write_zip(p, 1, json, bad_json, 0, 0);
    assert_int_equal(run_host(&r, "inspect", p, NULL), 1);
    assert_int_equal(r.err_lines, 1);
    assert_non_null(strstr(r.err, "bad.zip:dataset.json: expected {\"labels\""));
    rm_rf(dir);
    free(dir);
}

/* The .npy header: numpy's versions and dict layouts; dtypes and orders that are not read, named. */
static void test_npy_header(void **state) {
    (void)state;
    edm2_err err;
    npy_array a;
    unsigned char buf[256];
    const char *ok[] = {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }",
                        "{\"shape\":(2,1),\"descr\":\"<f4\",\"fortran_order\":False}"};
    for (int k = 0; k < 2; k++) {
        const size_t h = strlen(ok[k]);
        memcpy(buf, "\x93NUMPY\x01\x00", 8), buf[8] = (unsigned char)h, buf[9] = 0;
        memcpy(buf + 10, ok[k], h);
        const float v[2] = {1.5f, -2.0f};
        memcpy(buf + 10 + h, v, 8);
        if (npy_parse(buf, 18 + h, "t.npy", &a, &err)) fail_msg("%s", err.msg);
        assert_int_equal(a.ndim, 2), assert_int_equal(a.shape[0], 2), assert_int_equal(a.numel, 2);
        assert_int_equal(a.dtype, ST_F32);
        assert_memory_equal(a.data, v, 8);
    }
    const struct {
        const char *header, *want;
    } bad[] = {{"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "dtype '>f4'"},
               {"{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", "Fortran order"},
               {"{'descr': '<f4', 'shape': (2,), }", "not {'descr'"},
               {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "not {'descr'"},
               {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "data of 8 bytes, its header announces 12"}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        const size_t h = strlen(bad[k].header);
        memcpy(buf + 10, bad[k].header, h);
        buf[8] = (unsigned char)h;
        memset(buf + 10 + h, 0, 8);
        assert_int_equal(npy_parse(buf, 18 + h, "t.npy", &a, &err), -1);
        if (!strstr(err.msg, bad[k].want) || strncmp(err.msg, "t.npy: ", 7)) fail_msg("%s", err.msg);
    }
    buf[6] = 4;
    assert_int_equal(npy_parse(buf, 40, "t.npy", &a, &err), -1);
    assert_non_null(strstr(err.msg, "version 4.0"));
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_png_archives), cmocka_unit_test(test_npy_archive),
                                       cmocka_unit_test(test_train_on_archive), cmocka_unit_test(test_refused),
                                       cmocka_unit_test(test_source_archive),
                                       cmocka_unit_test(test_inspect), cmocka_unit_test(test_npy_header)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
