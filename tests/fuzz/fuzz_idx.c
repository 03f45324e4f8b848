/* fuzz_idx.c: Fashion-MNIST's IDX files (gzip-compressed or plain) on arbitrary bytes: the input is split
 * into the image file and the label file ("\n--8<--\n"); the first byte picks the resolution. Lying
 * headers and gzip bombs must end in a one-line error without a large allocation. */
#include "data_sources.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int res[4] = {28, 32, 16, 8};
    const uint8_t *part[2];
    size_t len[2];
    int n = fuzz_split(data + 1, size - 1, part, len, 2);
    char ip[128], lp[128];
    fuzz_write("train-images-idx3-ubyte.gz", part[0], len[0], ip, sizeof ip);
    fuzz_write("train-labels-idx1-ubyte.gz", n > 1 ? part[1] : part[0], n > 1 ? len[1] : len[0], lp, sizeof lp);
    dataset d;
    memset(&d, 0, sizeof d);
    d.resolution = res[data[0] & 3];
    edm2_err err;
    if (fashion_mnist_open(&d, fuzz_dir(), "train", data[0] & 4 ? 3 : 0, &err)) {
        fuzz_one_line(&err);
    } else {
        if (d.count < 1 || d.label_dim != 10) abort();
        for (int i = 0; i < d.count; i++)
            if (d.labels[i] < 0 || d.labels[i] > 9) abort();
    }
    dataset_close(&d);
    return 0;
}
