/* fuzz_dataset_json.c: dataset.json (through the strict JSON reader): any text ends in a listing whose
 * every path stays inside the folder and whose labels are class indices, or in a one-line error. */
#include "data_sources.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dataset d;
    memset(&d, 0, sizeof d);
    edm2_err err;
    int listed;
    if (folder_parse_json(&d, (const char *)data, size, "dataset.json", &listed, &err)) {
        fuzz_one_line(&err);
    } else if (listed) {
        if (d.count < 1) abort();
        for (int i = 0; i < d.count; i++) {
            if (path_stays_inside(d.files[i]) || d.files[i][0] == '/') abort();
            if (d.labels && (d.labels[i] < 0 || d.labels[i] >= DATA_MAX_CLASSES)) abort();
        }
    }
    dataset_close(&d);
    return 0;
}
