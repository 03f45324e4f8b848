/* fuzz_archive.c: the dataset tool's archives on arbitrary bytes. First byte even: the rest is a .npy array
 * (npy_parse: accepted arrays lie inside the buffer, their size as the header says). Odd: the rest is a ZIP file
 * (zip_archive.c: every entry found by its name, each read or refused with a one-line error, a read entry of its
 * stated size), described by `edm2host inspect` (inspect_archive.c), then opened as [data] source = folder at
 * resolution 4 (data_zip.c, data_npy.c) and its images read and drawn; and the same bytes as an unfinished
 * archive continued by the writer (zip_writer.c: the whole entries it takes back lie in order inside the file,
 * and once finished the archive opens with exactly those entries, each read back). */
#include "config.h"
#include "data_sources.h"
#include "fuzz_util.h"
#include "inspect.h"
#include "npy.h"
#include "zip_archive.h"
#include "zip_writer.h"

#define MAX_READS 64

static void fuzz_npy(const uint8_t *data, size_t size) {
    npy_array a;
    edm2_err err;
    if (npy_parse(data, size, "fuzz.npy", &a, &err)) {
        fuzz_one_line(&err);
        return;
    }
    if (a.data < data || a.data + a.numel * st_dtype_bytes(a.dtype) != data + size) abort();
}

static void fuzz_dataset(const char *path) {
    cfg c = {0};
    if (cfg_put(&c, "data", "source", "folder") || cfg_put(&c, "data", "path", path) ||
        cfg_put(&c, "data", "resolution", "4"))
        abort();
    dataset d;
    edm2_err err;
    if (dataset_open(&d, &c, &err)) {
        fuzz_one_line(&err);
    } else {
        float img[DATA_MAX_CHANNELS * 16], onehot[8];
        for (int i = 0; i < d.count && i < MAX_READS; i++) {
            if (dataset_get(&d, i, img, onehot, 8, &err)) fuzz_one_line(&err);
            if (d.moments && dataset_draw(&d, i, 1, (uint64_t)i, img, NULL, 0, &err)) fuzz_one_line(&err);
        }
        dataset_close(&d);
    }
    cfg_free(&c);
}

static void fuzz_continue(const uint8_t *data, size_t size) {
    char path[128], partial[160];
    fuzz_write("continued.zip.partial", data, size, partial, sizeof partial);
    snprintf(path, sizeof path, "%s/continued.zip", fuzz_dir());
    zip_writer w;
    edm2_err err;
    if (zip_writer_open(&w, path, 1, &err)) {
        fuzz_one_line(&err);
        return;
    }
    const size_t kept = w.count;
    for (size_t i = 0; i < kept; i++)
        if (w.entries[i].offset + 30 + w.entries[i].size > w.end ||
            (i && w.entries[i].offset <= w.entries[i - 1].offset))
            abort();
    if (w.end > size || zip_writer_add(&w, "added", "x", 1, &err) || zip_writer_finish(&w, "c", &err)) abort();
    zip_writer_close(&w);
    zip_archive z;
    if (zip_open(&z, path, &err)) {
        if (!strstr(err.msg, "two entries named")) abort(); /* (taken back: names as the file gave them) */
        return;
    }
    if (z.count != kept + 1) abort();
    for (size_t i = 0; i < z.count; i++) {
        const unsigned char *bytes;
        unsigned char *owned;
        size_t n;
        if (zip_read(&z, &z.entries[i], &bytes, &n, &owned, &err)) abort();
    }
    zip_close(&z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (!(data[0] & 1)) {
        fuzz_npy(data + 1, size - 1);
        return 0;
    }
    fuzz_continue(data + 1, size - 1);
    char path[128];
    fuzz_write("fuzz.zip", data + 1, size - 1, path, sizeof path);
    zip_archive z;
    edm2_err err;
    if (zip_open(&z, path, &err)) {
        fuzz_one_line(&err);
        return 0;
    }
    for (size_t i = 0; i < z.count && i < MAX_READS; i++) {
        const zip_entry *e = &z.entries[i];
        if (zip_find(&z, e->name) != e) abort();
        const unsigned char *bytes;
        unsigned char *owned;
        size_t n;
        if (zip_read(&z, e, &bytes, &n, &owned, &err)) fuzz_one_line(&err);
        else if (n != e->usize || (!owned && (bytes < z.map || bytes + n > z.map + z.size))) abort();
        free(owned);
    }
    zip_close(&z);
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w"))) abort();
    if (inspect_archive(path, sink, &err) < 0) fuzz_one_line(&err);
    fuzz_dataset(path);
    return 0;
}
