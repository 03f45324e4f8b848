/* test_dataset.c: the dataset sources against bad and unusual input: more than 256 classes (tensors files
 * and dataset.json), labels out of range or not integral, paths and symlinks that leave the folder,
 * duplicate JSON keys, a long listing, IDX headers that lie, PNG headers announcing gigapixels; and the
 * shuffle's exact integer draws; posterior moments of latents (the mean for dataset_get, a fresh draw per
 * stream position for training) and images stored as float64; the loader's batches on one thread and on three. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "edm2/edm2_philox.h"
#include "data_sources.h"
#include "fileio.h"
#include "config.h"
#include "image_io.h"
#include "image_read.h"
#include "loader.h"
#include "safetensors.h"
#include "test_util.h"

/* A tensors file of n images [n, 1, 2, 2] with the given labels. */
static void write_tensors(const char *path, int n, const float *labels) {
    float *img = calloc((size_t)n * 4, sizeof(float));
    st_out o[2] = {{"images", ST_F16, 4, {n, 1, 2, 2}, img}, {"labels", ST_F32, 1, {n}, labels}};
    edm2_err err;
    assert_int_equal(st_write(path, o, labels ? 2 : 1, NULL, NULL, 0, &err), 0);
    free(img);
}

static void test_tensors_many_classes(void **state) {
    (void)state;
    char *dir = make_temp_dir(), path[600];
    snprintf(path, sizeof path, "%s/latents.safetensors", dir);
    const int n = 1200;
    float labels[1200];
    for (int i = 0; i < n; i++) labels[i] = (float)(i % 1000);
    write_tensors(path, n, labels);
    dataset d;
    memset(&d, 0, sizeof d);
    d.resolution = 2;
    edm2_err err;
    assert_int_equal(tensors_open(&d, path, 0, &err), 0);
    assert_int_equal(d.label_dim, 1000);
    float img[4], onehot[1000];
    assert_int_equal(dataset_get(&d, 999, img, onehot, 1000, &err), 0);
    assert_true(onehot[999] == 1.0f && onehot[231] == 0.0f);
    assert_int_equal(dataset_get(&d, 1256 - 1000, img, onehot, 1000, &err), 0);
    assert_true(onehot[256] == 1.0f);
    dataset_close(&d);
    /* Out of range, not integral, not a number. */
    const float bad[3] = {70000.0f, 2.5f, NAN};
    const char *expect[3] = {"labels[1] = 70000 is not a class index in 0..65535", "labels[1] = 2.5", "labels[1] = nan"};
    for (int k = 0; k < 3; k++) {
        float l[3] = {0, bad[k], 1};
        write_tensors(path, 3, l);
        memset(&d, 0, sizeof d);
        d.resolution = 2;
        assert_int_equal(tensors_open(&d, path, 0, &err), -1);
        if (!strstr(err.msg, expect[k])) fprintf(stderr, "%s\n", err.msg);
        assert_non_null(strstr(err.msg, expect[k]));
        dataset_close(&d);
    }
    rm_rf(dir);
    free(dir);
}

static int parse(dataset *d, const char *json, edm2_err *err) {
    memset(d, 0, sizeof *d);
    int listed;
    int rc = folder_parse_json(d, json, strlen(json), "dataset.json", &listed, err);
    if (!rc && !listed) rc = 1;
    return rc;
}

static void test_dataset_json(void **state) {
    (void)state;
    dataset d;
    edm2_err err;
    assert_int_equal(parse(&d, "{\"labels\": [[\"a/0.png\", 999], [\"a/1.png\", 3.0], [\"b.png\", 0]]}", &err), 0);
    assert_int_equal(d.count, 3);
    assert_int_equal(d.labels[0], 999);
    assert_int_equal(d.labels[1], 3);
    dataset_close(&d);
    assert_int_equal(parse(&d, "{\"labels\": [[\"a.png\", null], [\"b.png\", null]]}", &err), 0);
    assert_null(d.labels);
    dataset_close(&d);
    struct {
        const char *json, *expect;
    } bad[] = {
        {"{\"labels\": [[\"../x.png\", 1]]}", "'../x.png' is not a path inside the dataset folder"},
        {"{\"labels\": [[\"a/../../x.png\", 1]]}", "is not a path inside"},
        {"{\"labels\": [[\"/etc/passwd\", 1]]}", "is not a path inside"},
        {"{\"labels\": [[\"a//b.png\", 1]]}", "is not a path inside"},
        {"{\"labels\": [[\"\", 1]]}", "is not a path inside"},
        {"{\"labels\": [[\"a.png\", 65536]]}", "labels[0]: expected [\"file.png\", class index 0..65535 or null]"},
        {"{\"labels\": [[\"a.png\", -1]]}", "labels[0]: expected"},
        {"{\"labels\": [[\"a.png\", 1.5]]}", "labels[0]: expected"},
        {"{\"labels\": [[\"a.png\", \"cat\"]]}", "labels[0]: expected"},
        {"{\"labels\": [[\"a.png\", 1, 2]]}", "labels[0]: expected"},
        {"{\"labels\": [[\"a.png\", 1], [\"b.png\", null]]}", "labels[1]: some images have a class and some have none"},
        {"{\"labels\": [[\"a.png\", 1]], \"labels\": null}", "duplicate object key"},
        {"{\"labels\": []}", "the labels list is empty"},
        {"{\"labels\": 3}", "expected {\"labels\""},
        {"[1]", "expected {\"labels\""},
        {"{\"labels\": [[\"a.png\", 1]", "bad JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(&d, bad[i].json, &err), -1);
        if (!strstr(err.msg, bad[i].expect)) fprintf(stderr, "case %zu: %s\n", i, err.msg);
        assert_non_null(strstr(err.msg, bad[i].expect));
        assert_non_null(strstr(err.msg, "dataset.json: "));
        dataset_close(&d);
    }
    /* A long listing parses in linear time (a quadratic parser or list would take minutes here). */
    const int n = 300000;
    char *text = malloc((size_t)n * 40 + 64);
    size_t len = (size_t)sprintf(text, "{\"labels\": [");
    for (int i = 0; i < n; i++) len += (size_t)sprintf(text + len, "%s[\"%05d/img%08d.png\", %d]", i ? "," : "", i / 1000, i, i % 1000);
    sprintf(text + len, "]}");
    assert_int_equal(parse(&d, text, &err), 0);
    assert_int_equal(d.count, n);
    assert_int_equal(d.labels[n - 1], (n - 1) % 1000);
    dataset_close(&d);
    free(text);
}

/* A folder whose dataset.json names a symlink to a PNG outside the folder: refused when read. */
static void test_folder_symlink_outside(void **state) {
    (void)state;
    char *dir = make_temp_dir(), sub[600], p[700], q[700];
    snprintf(sub, sizeof sub, "%s/data", dir);
    edm2_err err;
    assert_int_equal(make_dirs(sub, &err), 0);
    uint8_t px[4 * 4 * 3] = {0};
    snprintf(p, sizeof p, "%s/secret.png", dir);
    assert_int_equal(png_write(p, px, 4, 4, 3, &err), 0);
    snprintf(q, sizeof q, "%s/inside.png", sub);
    assert_int_equal(png_write(q, px, 4, 4, 3, &err), 0);
    snprintf(q, sizeof q, "%s/link.png", sub);
    assert_int_equal(symlink(p, q), 0);
    free(write_text(sub, "dataset.json", "{\"labels\": [[\"link.png\", 0], [\"inside.png\", 1]]}"));
    dataset d;
    memset(&d, 0, sizeof d);
    d.resolution = 4, d.channels = 3;
    assert_int_equal(folder_open(&d, NULL, "[data] path", sub, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "link.png: leads outside the dataset folder"));
    dataset_close(&d);
    /* The image inside is fine; a wrong size is refused from the header. */
    free(write_text(sub, "dataset.json", "{\"labels\": [[\"inside.png\", 1]]}"));
    memset(&d, 0, sizeof d);
    d.resolution = 4, d.channels = 3;
    assert_int_equal(folder_open(&d, NULL, "[data] path", sub, NULL, 0, &err), 0);
    assert_int_equal(d.label_dim, 2);
    dataset_close(&d);
    memset(&d, 0, sizeof d);
    d.resolution = 8, d.channels = 3;
    assert_int_equal(folder_open(&d, NULL, "[data] path", sub, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "4x4 pixels, expected 8x8"));
    dataset_close(&d);
    rm_rf(dir);
    free(dir);
}

static void write_gz(const char *path, const uint8_t *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    gzclose(g);
}

static void be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v; }

/* IDX files whose headers lie: announced counts beyond the data or absurd, wrong magic, bad labels. */
static void test_idx_headers(void **state) {
    (void)state;
    char *dir = make_temp_dir(), ip[600], lp[600];
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", dir);
    static uint8_t im[16 + 4 * 784], lb[8 + 4];
    be32(im, 0x803), be32(im + 4, 4), be32(im + 8, 28), be32(im + 12, 28);
    be32(lb, 0x801), be32(lb + 4, 4);
    for (int i = 0; i < 4; i++) lb[8 + i] = (uint8_t)i;
    write_gz(ip, im, sizeof im);
    write_gz(lp, lb, sizeof lb);
    dataset d;
    edm2_err err;
    memset(&d, 0, sizeof d);
    d.resolution = 32;
    assert_int_equal(fashion_mnist_open(&d, dir, "train", 0, &err), 0);
    assert_int_equal(d.count, 4);
    dataset_close(&d);
    struct {
        uint32_t count, magic;
        uint8_t label;
        const char *expect;
    } cases[] = {
        {4000000000u, 0x803, 0, "header announces 4000000000 items"},
        {1000, 0x803, 0, "truncated: 3136 of the 784000 bytes its header announces"},
        {4, 0x804, 0, "not an IDX image file"},
        {4, 0x803, 12, "label 12 of image 0 is not in 0..9"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        be32(im, cases[k].magic), be32(im + 4, cases[k].count);
        lb[8] = cases[k].label;
        write_gz(ip, im, sizeof im);
        write_gz(lp, lb, sizeof lb);
        memset(&d, 0, sizeof d);
        d.resolution = 32;
        assert_int_equal(fashion_mnist_open(&d, dir, "train", 0, &err), -1);
        if (!strstr(err.msg, cases[k].expect)) fprintf(stderr, "case %zu: %s\n", k, err.msg);
        assert_non_null(strstr(err.msg, cases[k].expect));
        dataset_close(&d);
    }
    rm_rf(dir);
    free(dir);
}

/* A valid 1x1 PNG whose IHDR is patched to announce 100000 x 100000 pixels (CRC fixed). */
static void test_png_gigapixel_header(void **state) {
    (void)state;
    char *dir = make_temp_dir(), p[600];
    snprintf(p, sizeof p, "%s/x.png", dir);
    uint8_t px[3] = {1, 2, 3};
    edm2_err err;
    assert_int_equal(png_write(p, px, 1, 1, 3, &err), 0);
    unsigned char *buf;
    size_t n;
    assert_int_equal(read_file(p, &buf, &n, &err), 0);
    /* 8-byte signature, then length(4) "IHDR"(4) width(4) height(4) ... CRC over type + data (17 bytes). */
    assert_memory_equal(buf + 12, "IHDR", 4);
    be32(buf + 16, 100000), be32(buf + 20, 100000);
    be32(buf + 29, (uint32_t)crc32(0, buf + 12, 17));
    uint8_t *out;
    int w, h;
    assert_int_equal(png_decode(buf, n, "x.png", 3, 0, 0, &out, &w, &h, &err), -1);
    assert_non_null(strstr(err.msg, "100000x100000 pixels (at most 16384 a side)"));
    /* Within the side limit, but far more pixels than a file this small can hold. */
    be32(buf + 16, 16000), be32(buf + 20, 16000);
    be32(buf + 29, (uint32_t)crc32(0, buf + 12, 17));
    assert_int_equal(png_decode(buf, n, "x.png", 3, 0, 0, &out, &w, &h, &err), -1);
    assert_non_null(strstr(err.msg, "16000x16000 pixels announced in"));
    assert_int_equal(png_decode(buf, n / 2, "x.png", 3, 0, 0, &out, &w, &h, &err), -1);
    free(buf);
    rm_rf(dir);
    free(dir);
}

static void test_shuffle_integer_draws(void **state) {
    (void)state;
    /* Indices above 2^24 are reachable and not confined to multiples of n / 2^24 (a float draw is). */
    int off_grid = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        uint32_t j = edm2_philox_below(7, 1, i, 1u << 30);
        assert_true(j < (1u << 30));
        off_grid += j % 64 != 0;
    }
    assert_true(off_grid > 900);
    /* Uniform over a small range (chi-square with 4 degrees of freedom, far below its 0.1% point 18.5). */
    int count[5] = {0};
    const int draws = 50000;
    for (uint64_t i = 0; i < (uint64_t)draws; i++) count[edm2_philox_below(3, 2, i, 5)]++;
    double chi2 = 0;
    for (int k = 0; k < 5; k++) chi2 += (count[k] - draws / 5.0) * (count[k] - draws / 5.0) / (draws / 5.0);
    assert_true(chi2 < 18.5);
    /* A permutation, different per epoch, the same for the same (seed, epoch). */
    int a[1000], b[1000], c[1000], seen[1000] = {0};
    shuffle_permutation(a, 1000, 5, 0);
    shuffle_permutation(b, 1000, 5, 1);
    shuffle_permutation(c, 1000, 5, 0);
    for (int i = 0; i < 1000; i++) seen[a[i]]++;
    for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_equal(a, c, sizeof a);
}

/* Latent moments [n, 2C, R, R] (mean, std): dataset_get gives the mean; dataset_draw gives mean + std n, the
 * same n for the same (seed, position) whatever the image, another one at another position, centred on the mean. */
static void test_latent_moments(void **state) {
    (void)state;
    char *dir = make_temp_dir(), path[600];
    snprintf(path, sizeof path, "%s/moments.safetensors", dir);
    double img[2 * 4 * 2 * 2]; /* 2 images, C = 2: mean channels 0-1, std channels 2-3; stored as F64 */
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 16; k++) img[i * 16 + k] = k < 8 ? 0.25 * k - i : 0.5 + 0.5 * i;
    st_out o = {"images", ST_F64, 4, {2, 4, 2, 2}, img};
    const char *keys[] = {"edm2.latent_moments"}, *vals[] = {"1"};
    edm2_err err;
    assert_int_equal(st_write(path, &o, 1, keys, vals, 1, &err), 0);
    dataset d;
    memset(&d, 0, sizeof d);
    d.resolution = 2;
    assert_int_equal(tensors_open(&d, path, 0, &err), 0);
    assert_int_equal(d.channels, 2);
    assert_int_equal(d.moments, 1);
    float mean[8], a[8], b[8], c[8], avg[8] = {0};
    assert_int_equal(dataset_get(&d, 1, mean, NULL, 0, &err), 0);
    for (int k = 0; k < 8; k++) assert_float_equal(mean[k], 0.25 * k - 1, 0);
    assert_int_equal(dataset_draw(&d, 0, 7, 100, a, NULL, 0, &err), 0);
    assert_int_equal(dataset_draw(&d, 1, 7, 100, b, NULL, 0, &err), 0);
    assert_int_equal(dataset_draw(&d, 1, 7, 101, c, NULL, 0, &err), 0);
    for (int k = 0; k < 8; k++) {
        assert_float_equal((a[k] - 0.25 * k) / 0.5, (b[k] - mean[k]) / 1.0, 1e-5); /* the same noise */
        assert_true(c[k] != b[k]);
    }
    const int draws = 4000;
    for (int t = 0; t < draws; t++) {
        assert_int_equal(dataset_draw(&d, 1, 7, (uint64_t)t, c, NULL, 0, &err), 0);
        for (int k = 0; k < 8; k++) avg[k] += c[k] / draws;
    }
    for (int k = 0; k < 8; k++) assert_true(fabs(avg[k] - mean[k]) < 0.1); /* 4 sigma of the mean of 4000 draws */
    dataset_close(&d);
    rm_rf(dir);
    free(dir);
}

/* The encode job's sources: dataset.json when there is one (any image names, its classes), class subfolders
 * (sorted; a folder without images gets no class), else every PNG/JPEG unlabelled; none at all is an error. */
static void test_source_listing(void **state) {
    (void)state;
    char *dir = make_temp_dir(), p[700];
    edm2_err err;
    dataset d;
    memset(&d, 0, sizeof d);
    assert_int_equal(folder_list_sources(&d, dir, &err), -1);
    assert_non_null(strstr(err.msg, "no PNG or JPEG images"));
    dataset_close(&d);
    free(write_text(dir, "x.JPEG", "")), free(write_text(dir, "y.png", "")), free(write_text(dir, "notes.txt", ""));
    memset(&d, 0, sizeof d);
    assert_int_equal(folder_list_sources(&d, dir, &err), 0); /* plain folder: unlabelled, sorted, images only */
    assert_int_equal(d.count, 2);
    assert_null(d.labels);
    assert_string_equal(d.files[0], "x.JPEG");
    dataset_close(&d);
    snprintf(p, sizeof p, "%s/zebra", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/empty", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/ant", dir);
    mkdir(p, 0755);
    free(write_text(dir, "zebra/1.jpg", "")), free(write_text(dir, "ant/2.png", "")), free(write_text(dir, "ant/3.jpeg", ""));
    memset(&d, 0, sizeof d);
    assert_int_equal(folder_list_sources(&d, dir, &err), 0); /* class subfolders */
    assert_int_equal(d.count, 3);
    assert_non_null(d.labels);
    assert_string_equal(d.files[2], "zebra/1.jpg");
    assert_int_equal(d.labels[0], 0), assert_int_equal(d.labels[1], 0), assert_int_equal(d.labels[2], 1);
    assert_int_equal(d.label_dim, 2);
    dataset_close(&d);
    free(write_text(dir, "dataset.json", "{\"labels\": [[\"zebra/1.jpg\", 7]]}"));
    memset(&d, 0, sizeof d);
    assert_int_equal(folder_list_sources(&d, dir, &err), 0); /* dataset.json wins */
    assert_int_equal(d.count, 1);
    assert_int_equal(d.labels[0], 7);
    dataset_close(&d);
    rm_rf(dir);
    free(dir);
}

/* [data] source = images: PNGs of any size in class subfolders, each read as RGB and centre-cropped as the
 * dataset tool does (the encode job's pixels), encoded as every source's; a file that is no image, named. */
static void test_images_source(void **state) {
    (void)state;
    char *dir = make_temp_dir(), p[700];
    edm2_err err;
    const int sizes[2][3] = {{20, 12, 3}, {9, 15, 1}}; /* w, h, channels */
    const char *names[2] = {"ant/a.png", "bee/b.png"};
    uint8_t px[20 * 15 * 3];
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%.*s", dir, 3, names[k]);
        assert_int_equal(make_dirs(p, &err), 0);
        for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37 + k * 11);
        snprintf(p, sizeof p, "%s/%s", dir, names[k]);
        assert_int_equal(png_write(p, px, sizes[k][0], sizes[k][1], sizes[k][2], &err), 0);
    }
    cfg c = {0};
    assert_int_equal(cfg_put(&c, "data", "source", "images"), 0);
    assert_int_equal(cfg_put(&c, "data", "path", dir), 0);
    assert_int_equal(cfg_put(&c, "data", "resolution", "8"), 0);
    dataset d;
    if (dataset_open(&d, &c, &err)) fail_msg("%s", err.msg);
    assert_int_equal(d.count, 2), assert_int_equal(d.channels, 3), assert_int_equal(d.label_dim, 2);
    assert_non_null(strstr(d.desc, "centre-cropped to 8x8x3, 2 classes"));
    float img[3 * 8 * 8], want[3 * 8 * 8], onehot[2];
    uint8_t crop[8 * 8 * 3];
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[k]);
        assert_int_equal(image_read_crop(p, 8, crop, &err), 0);
        pixels_encode(want, crop, 3, 8, 8);
        assert_int_equal(dataset_get(&d, k, img, onehot, 2, &err), 0);
        assert_memory_equal(img, want, sizeof img);
        assert_float_equal(onehot[k], 1.0f, 0);
    }
    dataset_close(&d);
    /* The crop of a grey image is its grey replicated to RGB. */
    for (int q = 0; q < 8 * 8; q++) assert_true(crop[3 * q] == crop[3 * q + 1] && crop[3 * q] == crop[3 * q + 2]);
    /* A file that is no image is named when it is read (here the first, read at open). */
    free(write_text(dir, "ant/a.png", "not a png"));
    assert_int_equal(dataset_open(&d, &c, &err), -1);
    assert_non_null(strstr(err.msg, "a.png"));
    assert_int_equal(cfg_put(&c, "data", "path", ""), 0);
    assert_int_equal(dataset_open(&d, &c, &err), -1);
    assert_string_equal(err.msg, "[data] source = images needs 'path = FOLDER' (or 'path = ARCHIVE.zip')");
    cfg_free(&c);
    rm_rf(dir);
    free(dir);
}

/* The loader's batches are the same bits on one thread and on three (latent draws), and a batch with unreadable
 * images fails with the error of the first of them in the batch, whatever the threads. */
static void test_loader_threads(void **state) {
    (void)state;
    char *dir = make_temp_dir(), path[600];
    snprintf(path, sizeof path, "%s/moments.safetensors", dir);
    enum { N = 7, PER = 2 * 3 * 4 * 4 }; /* 3 channels of 4x4: means, then stds */
    float img[N * PER];
    for (int k = 0; k < N * PER; k++) img[k] = (k % PER) < PER / 2 ? 0.1f * (k % 17) - 0.8f : 0.2f + 0.01f * (k % 13);
    const float labels[N] = {0, 1, 2, 0, 1, 2, 0};
    st_out o[2] = {{"images", ST_F32, 4, {N, 6, 4, 4}, img}, {"labels", ST_F32, 1, {N}, labels}};
    const char *keys[] = {"edm2.latent_moments"}, *vals[] = {"1"};
    edm2_err err;
    assert_int_equal(st_write(path, o, 2, keys, vals, 1, &err), 0);
    dataset d;
    memset(&d, 0, sizeof d);
    d.resolution = 4;
    if (tensors_open(&d, path, 0, &err)) fail_msg("%s", err.msg);
    loader one, three;
    if (loader_open(&one, &d, 5, 5, 0, 5, 3, 2, NULL, 1, &err) || loader_open(&three, &d, 5, 5, 0, 5, 3, 2, NULL, 3, &err))
        fail_msg("%s", err.msg);
    for (int b = 0; b < 4; b++) {
        const float *ia, *la, *ib, *lb;
        assert_int_equal(loader_next(&one, &ia, &la, &err), 0);
        assert_int_equal(loader_next(&three, &ib, &lb, &err), 0);
        assert_memory_equal(ia, ib, 5 * 3 * 16 * sizeof(float));
        assert_memory_equal(la, lb, 5 * 3 * sizeof(float));
    }
    loader_close(&one), loader_close(&three);
    dataset_close(&d);
    /* A folder of 6 PNGs, images 2 and 4 unreadable. */
    uint8_t px[16] = {0};
    for (int k = 0; k < 6; k++) {
        snprintf(path, sizeof path, "%s/img%d.png", dir, k);
        assert_int_equal(png_write(path, px, 4, 4, 1, &err), 0);
    }
    cfg c = {0};
    assert_int_equal(cfg_put(&c, "data", "source", "folder"), 0);
    assert_int_equal(cfg_put(&c, "data", "path", dir), 0);
    assert_int_equal(cfg_put(&c, "data", "resolution", "4"), 0);
    assert_int_equal(cfg_put(&c, "data", "channels", "1"), 0);
    if (dataset_open(&d, &c, &err)) fail_msg("%s", err.msg);
    free(write_text(dir, "img2.png", "x")), free(write_text(dir, "img4.png", "x"));
    int perm[6], bad = -1;
    int64_t epoch = -1;
    for (int i = 0; i < 6 && bad < 0; i++) {
        const int idx = dataset_order(&d, 9, (uint64_t)i, perm, &epoch);
        if (idx == 2 || idx == 4) bad = idx;
    }
    for (int t = 1; t <= 3; t += 2) {
        const float *im, *lb;
        char want[32];
        snprintf(want, sizeof want, "img%d.png", bad);
        if (loader_open(&one, &d, 9, 6, 0, 6, 0, 0, NULL, t, &err)) fail_msg("%s", err.msg);
        assert_int_equal(loader_next(&one, &im, &lb, &err), -1);
        if (!strstr(err.msg, want)) fail_msg("%d threads: expected %s in: %s", t, want, err.msg);
        loader_close(&one);
    }
    dataset_close(&d);
    cfg_free(&c);
    rm_rf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensors_many_classes), cmocka_unit_test(test_dataset_json),
        cmocka_unit_test(test_folder_symlink_outside), cmocka_unit_test(test_idx_headers),
        cmocka_unit_test(test_png_gigapixel_header), cmocka_unit_test(test_shuffle_integer_draws),
        cmocka_unit_test(test_latent_moments), cmocka_unit_test(test_source_listing),
        cmocka_unit_test(test_images_source), cmocka_unit_test(test_loader_threads),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
