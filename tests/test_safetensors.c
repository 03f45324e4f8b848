/* test_safetensors.c: round trips in F32, F16 and BF16 with metadata; and clear errors (never crashes)
 * for truncated files, offsets beyond the file, bad JSON, duplicate names, overlapping or missing data,
 * unsupported dtypes, wrong byte counts; writes that never follow a planted symlink. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "safetensors.h"
#include "test_util.h"

static void test_round_trip(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    float a[6] = {1, -2.5f, 3.14159f, 1e-3f, 65504, -0.0f}, b[3] = {0.1f, 0.2f, 0.3f};
    st_out outs[3] = {{"a", ST_F32, 2, {2, 3}, a}, {"b16", ST_F16, 1, {3}, b}, {"bb", ST_BF16, 1, {3}, b}};
    const char *mk[] = {"img_resolution", "note"}, *mv[] = {"32", "quote \" and \\ ok"};
    edm2_err err;
    assert_int_equal(st_write(path, outs, 3, mk, mv, 2, &err), 0);
    st_file f;
    assert_int_equal(st_open(&f, path, &err), 0);
    assert_string_equal(st_meta(&f, "img_resolution"), "32");
    assert_string_equal(st_meta(&f, "note"), "quote \" and \\ ok");
    const st_tensor *t = st_find(&f, "a");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    float got[6];
    st_to_f32(t, got);
    assert_memory_equal(got, a, sizeof a);
    st_to_f32(st_find(&f, "b16"), got);
    for (int i = 0; i < 3; i++) assert_float_equal(got[i], b[i], 1e-3 * b[i]);
    st_to_f32(st_find(&f, "bb"), got);
    for (int i = 0; i < 3; i++) assert_float_equal(got[i], b[i], 1e-2 * b[i]);
    st_close(&f);
    /* No temporary file left behind. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", dir);
    assert_int_not_equal(system(cmd), 0);
    rm_rf(dir);
    free(dir);
}

static void test_half_conversions(void **state) {
    (void)state;
    float v[] = {0, 1, -1, 0.5f, 2048, 65504, 6.1035156e-05f, 5.9604645e-08f, 1e-9f, 70000};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        float back = f16_to_f32(f32_to_f16(v[i]));
        if (v[i] > 65504) assert_true(isinf(back));
        else if (fabsf(v[i]) < 3e-8f) assert_float_equal(back, 0, 0);
        else assert_float_equal(back, v[i], 1e-3 * fabsf(v[i]));
    }
}

static void write_raw(const char *path, const char *header, size_t data_bytes) {
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static void test_bad_files(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    struct {
        const char *header;
        size_t data;
        const char *expect;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "outside the 8 data bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 16, "12 data bytes for 4 elements"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[99999999999,99999999999]}}", 16, "outside"},
        {"{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "dtype I64 not supported"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a non-negative integer"},
        /* Shapes whose product overflows 64 bits, or exceeds the file. */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 4,
         "more elements than the file has bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,0],\"data_offsets\":[0,0]}}", 0, ""},
        /* Duplicate names, overlapping regions, holes, trailing bytes. */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[4,8]}}", 8, "duplicate object key"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[4,8]}}", 8, "overlaps another tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "a hole in the data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "4 data bytes after the last tensor"},
        {"{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name"},
        {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "bad header JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],", 4, "bad header JSON"},
        {"[1,2]", 0, "not a JSON object"},
        {"{\"__metadata__\":{\"k\":3}}", 0, "not a string"},
    };
    edm2_err err;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_raw(path, cases[i].header, cases[i].data);
        st_file f;
        if (!*cases[i].expect) { /* a valid file: an empty tensor with a huge dimension */
            assert_int_equal(st_open(&f, path, &err), 0);
            assert_int_equal(f.t[0].numel, 0);
            st_close(&f);
            continue;
        }
        assert_int_equal(st_open(&f, path, &err), -1);
        if (!strstr(err.msg, cases[i].expect)) fprintf(stderr, "case %zu: %s\n", i, err.msg);
        assert_non_null(strstr(err.msg, cases[i].expect));
        st_close(&f);
    }
    /* A header length beyond the file. */
    FILE *fp = fopen(path, "wb");
    unsigned char len[8] = {0xff, 0xff, 0, 0, 0, 0, 0, 0};
    fwrite(len, 1, 8, fp);
    fputs("{}", fp);
    fclose(fp);
    st_file f;
    assert_int_equal(st_open(&f, path, &err), -1);
    assert_non_null(strstr(err.msg, "does not fit the file"));
    st_close(&f);
    /* A Python pickle (an EDM2 reference network, say) and a zip file (PyTorch's .pth) are named as such. */
    const unsigned char pickle[] = {0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x8c, 0x0a, 'd', 'n', 'n', 'l'};
    const unsigned char zip[] = {'P', 'K', 3, 4, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const struct {
        const unsigned char *bytes;
        size_t n;
        const char *expect;
    } foreign[] = {{pickle, sizeof pickle, "a Python pickle, not safetensors (a network pickle of the EDM2 reference "
                                           "converts with scripts/convert_edm2_pkl.py)"},
                   {zip, sizeof zip, "a zip file (PyTorch's .pt/.pth?), not safetensors"}};
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
        fp = fopen(path, "wb");
        fwrite(foreign[i].bytes, 1, foreign[i].n, fp);
        fclose(fp);
        assert_int_equal(st_open(&f, path, &err), -1);
        assert_non_null(strstr(err.msg, foreign[i].expect));
        st_close(&f);
    }
    /* A valid file whose header of 640 bytes makes it begin as a pickle does (0x80 0x02). */
    char header[641];
    snprintf(header, sizeof header, "%-640s", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
    assert_int_equal(strlen(header), 640);
    write_raw(path, header, 4);
    assert_int_equal(st_open(&f, path, &err), 0);
    assert_int_equal(f.buf[0], 0x80);
    assert_int_equal(f.buf[1], 0x02);
    assert_non_null(st_find(&f, "a"));
    st_close(&f);
    rm_rf(dir);
    free(dir);
}

/* Writing never follows a symlink planted at a predictable temporary name (the old PATH.tmp.PID), and
 * gives the file ordinary permissions. */
static void test_write_exclusive(void **state) {
    (void)state;
    char *dir = make_temp_dir();
    char path[512], trap[600], victim[512];
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    free(write_text(dir, "victim.txt", "precious"));
    snprintf(trap, sizeof trap, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(symlink(victim, trap), 0);
    float v[3] = {1, 2, 3};
    st_out o = {"v", ST_F32, 1, {3}, v};
    edm2_err err;
    assert_int_equal(st_write(path, &o, 1, NULL, NULL, 0, &err), 0);
    unsigned char *text;
    size_t n;
    assert_int_equal(read_file(victim, &text, &n, &err), 0);
    assert_string_equal((char *)text, "precious");
    free(text);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0666 & ~mask);
    rm_rf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip), cmocka_unit_test(test_half_conversions),
                                       cmocka_unit_test(test_bad_files), cmocka_unit_test(test_write_exclusive)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
