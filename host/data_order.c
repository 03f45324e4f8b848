/* data_order.c: the order in which training images are drawn: every epoch a fresh permutation of the
 * dataset, Fisher-Yates with exact integer draws from the Philox stream (seed, epoch), so the data order
 * is a pure function of the seed and the number of images seen (exact resume), every permutation is
 * equally likely, and datasets of any size (beyond 2^24 images) are shuffled completely. */
#include <stdint.h>

#include "edm2/edm2_philox.h"
#include "dataset.h"

#define STREAM_SHUFFLE 0x5348554646ull /* "SHUFF" */

void shuffle_permutation(int *perm, int n, uint64_t seed, uint64_t epoch) {
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)edm2_philox_below(seed, STREAM_SHUFFLE + epoch, (uint64_t)i, (uint32_t)i + 1u);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int dataset_order(const dataset *d, uint64_t seed, uint64_t pos, int *perm, int64_t *perm_epoch) {
    int64_t epoch = (int64_t)(pos / (uint64_t)d->count);
    if (*perm_epoch != epoch) {
        shuffle_permutation(perm, d->count, seed, (uint64_t)epoch);
        *perm_epoch = epoch;
    }
    return perm[pos % (uint64_t)d->count];
}
