/* test_convert.c: the convert job (host/job_convert.c), the dataset tool's convert step, on the sources of
 * tests/data/archives/ (PNGs of several sizes and a JPEG in class folders, as a folder and as a .zip): the tool's
 * layout (00000/img0000000i.png, dataset.json with the classes) and the same files from the folder and the
 * archive; read back by [data] source = folder, bitwise the images source = images crops from the sources;
 * continued after images went missing or were cut short (only those written again, the files as before) and
 * after SIGINT (exit status 130, no dataset.json until the end); an unreadable image reported and left out;
 * `check` writing nothing; a dest of other settings or with other files, and a source without readable images,
 * refused with one line. A dest ending in .zip: an archive holding the folder's files byte for byte (read back by
 * [data]; its settings in its comment, shown by inspect), left as it is by a second run; an unfinished DEST.partial
 * continued after it was cut short in an entry or while finishing (the archive then bitwise an uninterrupted run's)
 * and after SIGINT; other settings, another file named DEST and a stray DEST.partial refused with one line. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dataset.h"
#include "fileio.h"
#include "image_io.h"
#include "test_util.h"
#include "zip_archive.h"

static char *g_dir;

static const char *source_path(const char *name) {
    static char p[4200];
    snprintf(p, sizeof p, "%s/archives/%s", EDM2_TEST_DATA, name);
    return p;
}

/* Writes a convert config of source -> g_dir/dest at `res` (and extra lines); returns its path (malloc'ed). */
static char *config(const char *source, const char *dest, int res, const char *extra) {
    char text[9000];
    snprintf(text, sizeof text,
             "[job]\ntype = convert\n[convert]\nsource = %.4000s\ndest = %.2000s/%.100s\nresolution = %d\n%.500s", source,
             g_dir, dest, res, extra);
    return write_text(g_dir, "convert.ini", text);
}

static int convert(const char *source, const char *dest, int res, const char *extra, run_result *r) {
    char *cfg = config(source, dest, res, extra);
    const int st = run_host(r, "run", cfg, NULL);
    free(cfg);
    return st;
}

static unsigned char *file_bytes(const char *path, size_t *n) {
    unsigned char *b;
    edm2_err err;
    if (read_file(path, &b, n, &err)) fail_msg("%s", err.msg);
    return b;
}

/* The conversion of source to dest at `res` is refused with one line holding `expected`; r holds its output. */
static void refused(const char *source, const char *dest, int res, const char *expected, run_result *r) {
    assert_int_equal(convert(source, dest, res, "", r), 1);
    assert_int_equal(r->err_lines, 1);
    if (!strstr(r->err, expected)) fail_msg("expected '%s' in: %s", expected, r->err);
}

static char *dest_file(const char *dest, const char *name) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s/%s", g_dir, dest, name);
    return strdup(p);
}

static int open_data(dataset *d, const char *source, const char *path, edm2_err *err) {
    cfg c = {0};
    assert_int_equal(cfg_put(&c, "data", "source", source), 0);
    assert_int_equal(cfg_put(&c, "data", "path", path), 0);
    assert_int_equal(cfg_put(&c, "data", "resolution", "16"), 0);
    const int rc = dataset_open(d, &c, err);
    cfg_free(&c);
    return rc;
}

/* `edm2host check` of a conversion to dest: passes, and `probe` (a path under g_dir) is not there after it. */
static void check_writes_nothing(const char *source, const char *dest, const char *probe) {
    run_result r;
    char *cfg = config(source, dest, 16, "");
    if (run_host(&r, "check", cfg, NULL)) fail_msg("%s", r.err);
    free(cfg);
    char *p = dest_file("", probe);
    assert_int_not_equal(access(p, F_OK), 0);
    free(p);
}

/* The conversion at `path` (a folder or an archive) read back as training data: bitwise the crops that
 * source = images makes of the sources, same classes. */
static void same_as_sources(const char *path) {
    dataset conv, src;
    edm2_err err;
    if (open_data(&conv, "folder", path, &err) || open_data(&src, "images", source_path("sources"), &err))
        fail_msg("%s", err.msg);
    assert_int_equal(conv.count, 6), assert_int_equal(conv.label_dim, 3);
    float a[3 * 16 * 16], b[3 * 16 * 16], ha[3], hb[3];
    for (int i = 0; i < 6; i++) {
        assert_int_equal(dataset_get(&conv, i, a, ha, 3, &err) | dataset_get(&src, i, b, hb, 3, &err), 0);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(ha, hb, sizeof ha);
    }
    dataset_close(&conv), dataset_close(&src);
}

static void test_convert_layout(void **state) {
    (void)state;
    run_result r;
    check_writes_nothing(source_path("sources.zip"), "checked", "checked");
    if (convert(source_path("sources"), "from-folder", 16, "", &r)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.err, "converted 6 images into "));
    assert_non_null(strstr(r.err, ": 6 written, 0 kept from an earlier run, 0 unreadable"));
    if (convert(source_path("sources.zip"), "from-zip", 16, "", &r)) fail_msg("%s", r.err);
    char *json = dest_file("from-folder", "dataset.json"), *text = read_text(json);
    assert_string_equal(text, "{\"labels\": [[\"00000/img00000000.png\", 0], [\"00000/img00000001.png\", 0], "
                              "[\"00000/img00000002.png\", 0], [\"00000/img00000003.png\", 1], "
                              "[\"00000/img00000004.png\", 2], [\"00000/img00000005.png\", 2]]}\n");
    char *json2 = dest_file("from-zip", "dataset.json"), *text2 = read_text(json2);
    assert_string_equal(text, text2);
    free(json), free(text), free(json2), free(text2);
    for (int i = 0; i < 6; i++) { /* the archive's PNGs are the folder's, byte for byte */
        char name[64];
        snprintf(name, sizeof name, "00000/img%08d.png", i);
        char *a = dest_file("from-folder", name), *b = dest_file("from-zip", name);
        size_t na, nb;
        unsigned char *ta = file_bytes(a, &na), *tb = file_bytes(b, &nb);
        assert_int_equal(na, nb);
        assert_memory_equal(ta, tb, na);
        free(a), free(b), free(ta), free(tb);
    }
    char *root = dest_file("from-zip", "");
    same_as_sources(root);
    free(root);
}

/* Continued: missing and cut-short images written again (and only those), the files as the first run wrote them;
 * other settings and a folder with other files refused. */
static void test_convert_continue(void **state) {
    (void)state;
    run_result r;
    if (convert(source_path("sources"), "again", 16, "", &r)) fail_msg("%s", r.err);
    char *p1 = dest_file("again", "00000/img00000001.png"), *p4 = dest_file("again", "00000/img00000004.png");
    char *p5 = dest_file("again", "00000/img00000005.png"), *json = dest_file("again", "dataset.json");
    unsigned char *before, *after;
    size_t nb, na;
    edm2_err err;
    assert_int_equal(read_file(p5, &before, &nb, &err), 0);
    assert_int_equal(unlink(p1) | unlink(p4) | unlink(json) | truncate(p5, (off_t)nb / 2), 0);
    if (convert(source_path("sources"), "again", 16, "", &r)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.err, "continuing the conversion there"));
    assert_non_null(strstr(r.err, ": 3 written, 3 kept from an earlier run"));
    assert_int_equal(read_file(p5, &after, &na, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(before, after, nb);
    assert_int_equal(access(json, F_OK), 0);
    free(p1), free(p4), free(p5), free(json), free(before), free(after);
    refused(source_path("sources"), "again", 20, "holds a conversion of other settings", &r);
    char *other = dest_file("other", "");
    assert_int_equal(make_dirs(other, &err), 0);
    free(write_text(other, "notes.txt", "mine"));
    refused(source_path("sources"), "other", 16, "holds other files: choose a new or empty folder", &r);
    free(other);
}

/* An unreadable image is reported and left out of dataset.json; none readable: refused. */
static void test_convert_unreadable(void **state) {
    (void)state;
    char src[4200];
    snprintf(src, sizeof src, "%s/broken-src/a", g_dir);
    edm2_err err;
    assert_int_equal(make_dirs(src, &err), 0);
    free(write_text(src, "1.png", "not a png"));
    unsigned char *png;
    size_t n;
    uint8_t px[20 * 20 * 3] = {0};
    assert_int_equal(png_encode(px, 20, 20, 3, &png, &n, &err), 0);
    char *p = write_text(src, "2.png", "");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite(png, 1, n, f), fclose(f);
    free(p), free(png);
    snprintf(src, sizeof src, "%s/broken-src", g_dir);
    run_result r;
    if (convert(src, "broken", 16, "", &r)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.err, "skipped: "));
    assert_non_null(strstr(r.err, "a/1.png"));
    assert_non_null(strstr(r.err, ": 1 written, 0 kept from an earlier run, 1 unreadable (left out)"));
    char *json = dest_file("broken", "dataset.json"), *text = read_text(json);
    assert_string_equal(text, "{\"labels\": [[\"00000/img00000001.png\", 0]]}\n");
    free(json), free(text);
    assert_int_equal(convert(src, "broken-first", 16, "max_images = 1\n", &r), 1);
    assert_non_null(strstr(r.err, "[convert] source: none of the 1 images could be read"));
}

/* Entry `name` of archive `path` equals file `file`, byte for byte. */
static void same_entry(const char *path, const char *name, const char *file) {
    zip_archive z;
    edm2_err err;
    if (zip_open(&z, path, &err)) fail_msg("%s", err.msg);
    const zip_entry *e = zip_find(&z, name);
    assert_non_null(e);
    assert_int_equal(e->method, 0); /* stored, as the dataset tool stores its PNGs */
    const unsigned char *data;
    unsigned char *owned, *want;
    size_t n, nw;
    if (zip_read(&z, e, &data, &n, &owned, &err) || read_file(file, &want, &nw, &err)) fail_msg("%s", err.msg);
    assert_int_equal(n, nw);
    assert_memory_equal(data, want, n);
    free(want);
    zip_close(&z);
}

/* A dest ending in .zip: the folder's files as stored entries, dataset.json last, read back by [data]; a second
 * run leaves it as it is; refusals. */
static void test_convert_archive(void **state) {
    (void)state;
    run_result r;
    check_writes_nothing(source_path("sources"), "checked.zip", "checked.zip.partial");
    char *zip = dest_file("", "out.zip");
    if (convert(source_path("sources"), "folder", 16, "", &r)) fail_msg("%s", r.err);
    if (convert(source_path("sources.zip"), "out.zip", 16, "", &r)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.err, "stored in an archive"));
    assert_non_null(strstr(r.err, ": 6 written, 0 kept from an earlier run, 0 unreadable"));
    for (int i = 0; i < 7; i++) {
        char name[64];
        if (i < 6) snprintf(name, sizeof name, "00000/img%08d.png", i);
        else snprintf(name, sizeof name, "dataset.json");
        char *file = dest_file("folder", name);
        same_entry(zip, name, file);
        free(file);
    }
    zip_archive z;
    edm2_err err;
    if (zip_open(&z, zip, &err)) fail_msg("%s", err.msg);
    assert_int_equal(z.count, 7);
    zip_close(&z);
    same_as_sources(zip);
    if (run_host(&r, "inspect", zip, NULL)) fail_msg("%s", r.err); /* the settings, as the archive's comment */
    assert_non_null(strstr(r.out, "  comment: {\"tool\": \"edm2host convert\", \"source\": \""));
    assert_non_null(strstr(r.out, "\", \"resolution\": 16, \"images\": 6}\n"));
    size_t n1, n2;
    unsigned char *before = file_bytes(zip, &n1);
    if (convert(source_path("sources.zip"), "out.zip", 16, "", &r)) fail_msg("%s", r.err);
    assert_non_null(strstr(r.err, "holds this conversion already"));
    unsigned char *after = file_bytes(zip, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, n1);
    free(before), free(after);
    refused(source_path("sources.zip"), "out.zip", 20, "holds a conversion of other settings", &r);
    free(write_text(g_dir, "other.zip", "not an archive"));
    refused(source_path("sources.zip"), "other.zip", 16, "other.zip' is there and is not an archive (", &r);
    free(write_text(g_dir, "stray.zip.partial", "mine"));
    refused(source_path("sources.zip"), "stray.zip", 16, "stray.zip.partial is there without ", &r);
    free(zip);
}

/* An unfinished archive continued: cut short inside image 4, or while finishing (after dataset.json was added):
 * the whole images kept, and the archive in the end bitwise an uninterrupted run's. */
static void test_convert_archive_continue(void **state) {
    (void)state;
    run_result r;
    if (convert(source_path("sources"), "whole.zip", 16, "", &r)) fail_msg("%s", r.err);
    char *whole = dest_file("", "whole.zip"), *zip = dest_file("", "cut.zip");
    char *partial = dest_file("", "cut.zip.partial"), *json = dest_file("", "cut.zip.partial.json");
    size_t n;
    unsigned char *bytes = file_bytes(whole, &n);
    zip_archive z;
    edm2_err err;
    if (zip_open(&z, whole, &err)) fail_msg("%s", err.msg);
    char settings[9000];
    snprintf(settings, sizeof settings, "%.*s", (int)z.comment_len, z.comment);
    const uint64_t in_image4 = zip_find(&z, "00000/img00000004.png")->offset + 50;
    const zip_entry *listing = zip_find(&z, "dataset.json"); /* cut 10 bytes into the central directory */
    const uint64_t after_json = listing->offset + 30 + strlen("dataset.json") + listing->usize + 10;
    zip_close(&z);
    const uint64_t cuts[2] = {in_image4, after_json};
    const char *kept[2] = {"(4 images kept, from image 4 on)", "(6 images kept, from image 6 on)"};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(partial, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(bytes, 1, (size_t)cuts[k], f), (size_t)cuts[k]);
        fclose(f);
        free(write_text(g_dir, "cut.zip.partial.json", settings));
        if (convert(source_path("sources"), "cut.zip", 16, "", &r)) fail_msg("%s", r.err);
        assert_non_null(strstr(r.err, kept[k]));
        size_t m;
        unsigned char *again = file_bytes(zip, &m);
        assert_int_equal(m, n);
        assert_memory_equal(again, bytes, n);
        free(again);
        assert_int_not_equal(access(partial, F_OK), 0), assert_int_not_equal(access(json, F_OK), 0);
        unlink(zip);
    }
    free(write_text(g_dir, "cut.zip.partial.json", "{\"other\": 1}\n")); /* an unfinished run of other settings */
    free(write_text(g_dir, "cut.zip.partial", ""));
    refused(source_path("sources"), "cut.zip", 16, "holds an unfinished conversion of other settings", &r);
    free(bytes), free(whole), free(zip), free(partial), free(json);
}

/* SIGINT: the round at hand finished, exit status 130, no dataset.json (no archive: its DEST.partial kept); the same
 * command continues to the end; into a folder and into an archive. */
static void test_convert_interrupted(void **state) {
    (void)state;
    char src[4200], link[4300];
    snprintf(src, sizeof src, "%s/many", g_dir);
    static uint8_t px[256 * 256 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7 % 251);
    edm2_err err;
    assert_int_equal(make_dirs(src, &err), 0);
    char *first = write_text(src, "img.png", "");
    assert_int_equal(png_write(first, px, 256, 256, 3, &err), 0);
    for (int i = 0; i < 2100; i++) { /* the same image 2101 times: three rounds of the job */
        snprintf(link, sizeof link, "%s/link%04d.png", src, i);
        assert_int_equal(symlink("img.png", link), 0);
    }
    free(first);
    for (int archive = 0; archive < 2; archive++) {
        const char *dest = archive ? "many.zip" : "many-out";
        char *cfg = config(src, dest, 64, "[job]\nthreads = 1\n");
        char *wait_for = archive ? dest_file("", "many.zip.partial") : dest_file(dest, "00000/img00000000.png");
        char *done = archive ? dest_file("", dest) : dest_file(dest, "dataset.json");
        const int st = run_interrupted(cfg, wait_for);
        if (st == 0) {
            print_message("note: the conversion ended before the signal arrived\n");
        } else {
            assert_int_equal(st, 130);
            assert_int_not_equal(access(done, F_OK), 0);
            if (archive) assert_int_equal(access(wait_for, F_OK), 0);
        }
        run_result r;
        if (run_host(&r, "run", cfg, NULL)) fail_msg("%s", r.err);
        assert_non_null(strstr(r.err, "converted 2101 images into "));
        if (st == 130) assert_non_null(strstr(r.err, " kept from an earlier run"));
        if (st == 130 && archive) assert_non_null(strstr(r.err, "(1024 images kept, from image 1024 on)"));
        assert_int_equal(access(done, F_OK), 0);
        free(cfg), free(wait_for), free(done);
    }
}

static int setup(void **state) {
    (void)state;
    g_dir = make_temp_dir();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_rf(g_dir);
    free(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_convert_layout), cmocka_unit_test(test_convert_continue),
                                       cmocka_unit_test(test_convert_unreadable),
                                       cmocka_unit_test(test_convert_archive),
                                       cmocka_unit_test(test_convert_archive_continue),
                                       cmocka_unit_test(test_convert_interrupted)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
