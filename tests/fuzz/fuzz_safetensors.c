/* fuzz_safetensors.c: the safetensors reader (header length, JSON header, dtypes, shapes, offsets,
 * metadata) on arbitrary bytes; accepted files must have every tensor's data inside the buffer, and
 * `edm2host inspect` describes each (to /dev/null). */
#include <stdio.h>

#include "fuzz_util.h"
#include "inspect.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    edm2_err err;
    if (st_parse(&f, "fuzz.safetensors", data, size, &err)) {
        fuzz_one_line(&err);
    } else {
        for (size_t i = 0; i < f.n; i++) {
            const st_tensor *t = &f.t[i];
            size_t bytes = t->numel * st_dtype_bytes(t->dtype);
            if (t->data < data || t->data + bytes > data + size) abort();
            if (st_find(&f, t->name) != t) abort();
            if (t->numel <= 4096) {
                float out[4096];
                st_to_f32(t, out);
            }
        }
        for (size_t i = 0; i < f.nmeta; i++)
            if (!st_meta(&f, f.meta_keys[i])) abort();
        static FILE *sink;
        if (!sink && !(sink = fopen("/dev/null", "w"))) abort();
        inspect_print(&f, 1, 1, sink);
    }
    st_close(&f);
    return 0;
}
