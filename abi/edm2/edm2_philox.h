/* edm2_philox.h: the counter-based random generator of the ABI (Philox4x32-10, Salmon et al. 2011),
 * written once for C, C++ and CUDA, so that every backend, the host and third-party plugins (noise,
 * dropout, data order) draw identical numbers from the same (seed, stream, index). Part of the ABI since
 * 1.1: the mapping below never changes within a major version.
 *
 * Mapping of (seed, stream, index) to numbers, index = rng.offset + i:
 *   key = (seed lo, seed hi), counter = (index/4 lo, index/4 hi, stream lo, stream hi);
 *   uniform(index) = ((word[index%4] >> 8) + 0.5) * 2^-24, in (0, 1);
 *   normal(index): Box-Muller on the block's words (0,1) -> lanes 0,1 and (2,3) -> lanes 2,3,
 *   computed in double and rounded to float;
 *   below(index, n): an exact uniform integer in [0, n) from the words of block `index` (see edm2_philox_below).
 */
#ifndef EDM2_PHILOX_H
#define EDM2_PHILOX_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define EDM2_PHILOX_FN __host__ __device__ static inline
#else
#define EDM2_PHILOX_FN static inline
#endif

typedef struct edm2_philox_block {
    uint32_t w[4];
} edm2_philox_block;

EDM2_PHILOX_FN uint32_t edm2_philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* The bare Philox4x32-10 bijection (tested against the Random123 known-answer vectors). */
EDM2_PHILOX_FN edm2_philox_block edm2_philox4x32_10(edm2_philox_block ctr, uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = edm2_philox_mulhilo(0xD2511F53u, ctr.w[0], &hi0);
        uint32_t lo1 = edm2_philox_mulhilo(0xCD9E8D57u, ctr.w[2], &hi1);
        edm2_philox_block out;
        out.w[0] = hi1 ^ ctr.w[1] ^ k0;
        out.w[1] = lo1;
        out.w[2] = hi0 ^ ctr.w[3] ^ k1;
        out.w[3] = lo0;
        ctr = out;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return ctr;
}

EDM2_PHILOX_FN edm2_philox_block edm2_philox_block_at(uint64_t seed, uint64_t stream, uint64_t block) {
    edm2_philox_block c;
    c.w[0] = (uint32_t)block;
    c.w[1] = (uint32_t)(block >> 32);
    c.w[2] = (uint32_t)stream;
    c.w[3] = (uint32_t)(stream >> 32);
    return edm2_philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

EDM2_PHILOX_FN double edm2_philox_to_unit(uint32_t w) { return ((double)(w >> 8) + 0.5) * (1.0 / 16777216.0); }

/* Word k of a block, k < 4, picked by selects: an array indexed at run time would sit in a CUDA thread's local
 * memory (a stack frame) instead of its registers. */
EDM2_PHILOX_FN uint32_t edm2_philox_word(edm2_philox_block b, unsigned k) {
    return k < 2 ? (k ? b.w[1] : b.w[0]) : (k == 3 ? b.w[3] : b.w[2]);
}

EDM2_PHILOX_FN float edm2_philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    edm2_philox_block b = edm2_philox_block_at(seed, stream, index >> 2);
    return (float)edm2_philox_to_unit(edm2_philox_word(b, (unsigned)(index & 3)));
}

EDM2_PHILOX_FN float edm2_philox_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    edm2_philox_block b = edm2_philox_block_at(seed, stream, index >> 2);
    unsigned lane = (unsigned)(index & 3);
    unsigned pair = lane & 2u;
    double u1 = edm2_philox_to_unit(edm2_philox_word(b, pair)), u2 = edm2_philox_to_unit(edm2_philox_word(b, pair + 1));
    double r = sqrt(-2.0 * log(u1));
    double a = 6.283185307179586476925 * u2;
    return (float)((lane & 1u) ? r * sin(a) : r * cos(a));
}

/* out[k] = edm2_philox_normal(seed, stream, first + k) for k < n, bitwise the same, with each block and each
 * pair's Box-Muller radius computed once instead of for every number. */
EDM2_PHILOX_FN void edm2_philox_normals(uint64_t seed, uint64_t stream, uint64_t first, size_t n, float *out) {
    const uint64_t end = first + n;
    for (uint64_t i = first; i < end;) {
        edm2_philox_block b = edm2_philox_block_at(seed, stream, i >> 2);
        do {
            unsigned pair = (unsigned)(i & 2);
            double u1 = edm2_philox_to_unit(b.w[pair]), u2 = edm2_philox_to_unit(b.w[pair + 1]);
            double r = sqrt(-2.0 * log(u1));
            double a = 6.283185307179586476925 * u2;
            if (!(i & 1)) out[i++ - first] = (float)(r * cos(a));
            if (i < end && (i & 1)) out[i++ - first] = (float)(r * sin(a));
        } while (i < end && (i & 3));
    }
}

/* A uniform integer in [0, n), n >= 1, with no bias (Lemire 2019: multiply-shift, rejecting the low
 * products that would over-represent some results). Draws the 4 words of block `index` of `stream`, then
 * of streams stream + 2^48, stream + 2 * 2^48, ... until one is accepted; each word is rejected with
 * probability (2^32 mod n) / 2^32 < n / 2^32. */
EDM2_PHILOX_FN uint32_t edm2_philox_below(uint64_t seed, uint64_t stream, uint64_t index, uint32_t n) {
    if (n <= 1) return 0;
    const uint32_t threshold = (uint32_t)(0u - n) % n; /* 2^32 mod n */
    for (uint64_t attempt = 0;; attempt++) {
        edm2_philox_block b = edm2_philox_block_at(seed, stream + (attempt << 48), index);
        for (int k = 0; k < 4; k++) {
            uint64_t m = (uint64_t)b.w[k] * n;
            if ((uint32_t)m >= threshold) return (uint32_t)(m >> 32);
        }
    }
}

#endif /* EDM2_PHILOX_H */
