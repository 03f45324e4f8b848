/* test_zip_writer.c: the ZIP writer (host/zip_writer.c) read back by the reader (zip_archive.c): entries of several
 * sizes (none, one byte, 300 kB, a UTF-8 name) and the comment, bitwise, and PATH only once finished; the same
 * entries giving the same bytes; ZIP64 records (every size and offset in them, and 70000 entries, more than the
 * 65535 the plain records count); and an unfinished PATH.partial continued: its whole entries kept (a cut-short
 * entry, one whose bytes no longer match their CRC-32, or the start of a central directory end them), the rest
 * truncated and written on. Python's zipfile reads the ZIP64 archive too where python3 is installed. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "test_util.h"
#include "zip_archive.h"
#include "zip_writer.h"

static char *g_dir;

static char *path_in(const char *name) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    return strdup(p);
}

/* Entry i's bytes: a pattern of i's own (sizes[i] bytes). */
static const size_t sizes[] = {0, 1, 300000, 17, 4096};
static const char *names[] = {"empty", "a/one", "a/b/large.bin", "caf\xc3\xa9.txt", "z"};
static unsigned char *bytes_of(int i) {
    unsigned char *b = malloc(sizes[i] + 1);
    for (size_t k = 0; k < sizes[i]; k++) b[k] = (unsigned char)(k * 31 + (size_t)i * 7 + k / 251);
    return b;
}

static void add_entries(zip_writer *w, int from, int to) {
    edm2_err err;
    for (int i = from; i < to; i++) {
        unsigned char *b = bytes_of(i);
        if (zip_writer_add(w, names[i], b, sizes[i], &err)) fail_msg("%s", err.msg);
        free(b);
    }
}

/* PATH holds entries [0, n) and `comment`, each bitwise. */
static void check_archive(const char *path, int n, const char *comment) {
    zip_archive z;
    edm2_err err;
    if (zip_open(&z, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(z.count, (size_t)n);
    assert_int_equal(z.comment_len, strlen(comment));
    assert_memory_equal(z.comment, comment, z.comment_len);
    for (int i = 0; i < n; i++) {
        const zip_entry *e = zip_find(&z, names[i]);
        assert_non_null(e);
        const unsigned char *data;
        unsigned char *owned, *want = bytes_of(i);
        size_t size;
        if (zip_read(&z, e, &data, &size, &owned, &err)) fail_msg("%s", err.msg);
        assert_int_equal(size, sizes[i]);
        assert_int_equal(e->method, 0);
        if (size) assert_memory_equal(data, want, size);
        assert_null(owned);
        free(want);
    }
    zip_close(&z);
}

static void write_whole(const char *path, uint64_t zip64_from, const char *comment) {
    zip_writer w;
    edm2_err err;
    if (zip_writer_open(&w, path, 0, &err)) fail_msg("%s", err.msg);
    w.zip64_from = zip64_from;
    add_entries(&w, 0, 5);
    assert_int_not_equal(access(path, F_OK), 0); /* not there until finished */
    if (zip_writer_finish(&w, comment, &err)) fail_msg("%s", err.msg);
    zip_writer_close(&w);
}

static void test_round_trip(void **state) {
    (void)state;
    char *a = path_in("a.zip"), *b = path_in("b.zip"), *partial = path_in("a.zip.partial");
    write_whole(a, 0xFFFFFFFFu, "the settings");
    check_archive(a, 5, "the settings");
    assert_int_not_equal(access(partial, F_OK), 0);
    write_whole(b, 0xFFFFFFFFu, "the settings");
    unsigned char *ta, *tb;
    size_t na, nb;
    edm2_err err;
    assert_int_equal(read_file(a, &ta, &na, &err) | read_file(b, &tb, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na); /* the same entries, the same bytes */
    free(ta), free(tb), free(a), free(b), free(partial);
}

/* Python's zipfile (where python3 is installed) reads `path`: its entry count and the CRC-32 of every entry. */
static void python_reads(const char *path, int n) {
    if (system("python3 -c 'import zipfile' >/dev/null 2>&1") != 0) {
        print_message("note: python3 not installed: the archive not read by Python's zipfile\n");
        return;
    }
    char cmd[4600];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); "
             "sys.exit(z.testzip() is not None or len(z.namelist()) != %d)' '%s'", n, path);
    assert_int_equal(system(cmd), 0);
}

static void test_zip64(void **state) {
    (void)state;
    char *a = path_in("all64.zip");
    write_whole(a, 1, ""); /* every size, offset and the count in ZIP64 records */
    check_archive(a, 5, "");
    python_reads(a, 5);
    free(a);
    char *many = path_in("many.zip");
    zip_writer w;
    edm2_err err;
    if (zip_writer_open(&w, many, 0, &err)) fail_msg("%s", err.msg);
    char name[32];
    for (int i = 0; i < 70000; i++) {
        snprintf(name, sizeof name, "%05d/%d", i / 1000, i);
        if (zip_writer_add(&w, name, name, strlen(name), &err)) fail_msg("%s", err.msg);
    }
    if (zip_writer_finish(&w, "c", &err)) fail_msg("%s", err.msg);
    zip_writer_close(&w);
    zip_archive z;
    if (zip_open(&z, many, &err)) fail_msg("%s", err.msg);
    assert_int_equal(z.count, 70000);
    const zip_entry *e = zip_find(&z, "00069/69999");
    assert_non_null(e);
    const unsigned char *data;
    unsigned char *owned;
    size_t size;
    if (zip_read(&z, e, &data, &size, &owned, &err)) fail_msg("%s", err.msg);
    assert_int_equal(size, 11);
    assert_memory_equal(data, "00069/69999", 11);
    zip_close(&z);
    python_reads(many, 70000);
    free(many);
}

/* Writes entries [0, 5) to PATH.partial and leaves it unfinished; returns the offset of each entry's header. */
static void unfinished(const char *path, uint64_t offsets[5]) {
    zip_writer w;
    edm2_err err;
    if (zip_writer_open(&w, path, 0, &err)) fail_msg("%s", err.msg);
    add_entries(&w, 0, 5);
    if (zip_writer_sync(&w, &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < 5; i++) offsets[i] = w.entries[i].offset;
    zip_writer_close(&w);
}

/* Continues PATH.partial: `kept` entries taken back; the rest written again and the archive finished. */
static void continue_from(const char *path, size_t kept) {
    zip_writer w;
    edm2_err err;
    if (zip_writer_open(&w, path, 1, &err)) fail_msg("%s", err.msg);
    assert_int_equal(w.count, kept);
    for (size_t i = 0; i < kept; i++) assert_string_equal(w.entries[i].name, names[i]);
    add_entries(&w, (int)kept, 5);
    if (zip_writer_finish(&w, "done", &err)) fail_msg("%s", err.msg);
    zip_writer_close(&w);
    check_archive(path, 5, "done");
}

static void test_continue(void **state) {
    (void)state;
    char *path = path_in("c.zip"), *partial = path_in("c.zip.partial");
    uint64_t at[5];
    unfinished(path, at);
    assert_int_equal(truncate(partial, (off_t)(at[3] + 40)), 0); /* entry 3 cut short */
    continue_from(path, 3);
    unlink(path);
    unfinished(path, at);
    FILE *f = fopen(partial, "r+b"); /* a byte of entry 2's data changed */
    assert_non_null(f);
    const long byte = (long)(at[2] + 30 + strlen(names[2]) + 1000);
    assert_int_equal(fseek(f, byte, SEEK_SET), 0);
    const int c = fgetc(f);
    assert_int_equal(fseek(f, byte, SEEK_SET), 0);
    fputc(c ^ 0xFF, f), fclose(f);
    continue_from(path, 2);
    unlink(path);
    zip_writer w; /* a finish that stopped after a few central records: the whole entries kept */
    edm2_err err;
    write_whole(path, 0xFFFFFFFFu, "");
    assert_int_equal(rename(path, partial), 0);
    assert_int_equal(truncate(partial, (off_t)(at[4] + 30 + 1 + 4096 + 60)), 0);
    continue_from(path, 5);
    if (zip_writer_open(&w, path, 1, &err)) fail_msg("%s", err.msg); /* no PATH.partial: a new one */
    assert_int_equal(w.count, 0);
    zip_writer_close(&w);
    free(path), free(partial);
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip), cmocka_unit_test(test_zip64),
                                       cmocka_unit_test(test_continue)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
