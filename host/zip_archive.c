/* zip_archive.c: the ZIP reader (zip_archive.h). Layout (APPNOTE.TXT 6.3, little-endian): local header +
 * data per entry, then the central directory (one 46-byte record + name + extra + comment per entry), then
 * for ZIP64 archives the ZIP64 end record and its locator, then the end record (22 bytes + comment). Sizes and
 * offsets that do not fit 32 bits are 0xFFFFFFFF in the records and given in the entry's ZIP64 extra field. */
#include "zip_archive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fileio.h"
#include "zip_format.h"

#define MAX_COMMENT 65535
#define DEFLATE_MAX_RATIO 1032u   /* deflate expands at most 1032:1, so a larger stated size is damage */


/* The end record: the last signature whose comment reaches exactly to the end of the file, else the last one
 * whose comment fits (as Python's zipfile finds it). */
static long long find_end(const zip_archive *z) {
    if (z->size < ZIP_END_BYTES) return -1;
    const size_t last = z->size - ZIP_END_BYTES, first = last > MAX_COMMENT ? last - MAX_COMMENT : 0;
    long long fits = -1;
    for (size_t p = last + 1; p-- > first;) {
        if (zip_u32(z->map + p) != ZIP_SIG_END) continue;
        const size_t comment = zip_u16(z->map + p + 20);
        if (p + ZIP_END_BYTES + comment == z->size) return (long long)p;
        if (fits < 0 && p + ZIP_END_BYTES + comment <= z->size) fits = (long long)p;
    }
    return fits;
}

static int split_archive(const zip_archive *z, edm2_err *err) {
    return err_set(err, "%s: an archive split over several files (not supported; join it with zip -s 0)", z->path);
}

/* The central directory's place and entry count, from the end record or the ZIP64 end record. */
static int read_end(zip_archive *z, uint64_t *cd_off, uint64_t *cd_size, uint64_t *count, edm2_err *err) {
    const long long end = find_end(z);
    if (end < 0) return err_set(err, "%s: not a ZIP archive (no end of central directory record)", z->path);
    const unsigned char *e = z->map + end;
    if (zip_u16(e + 4) != 0 || zip_u16(e + 6) != 0 || zip_u16(e + 8) != zip_u16(e + 10))
        return split_archive(z, err);
    *count = zip_u16(e + 10), *cd_size = zip_u32(e + 12), *cd_off = zip_u32(e + 16);
    z->comment = (const char *)e + ZIP_END_BYTES;
    z->comment_len = z->size - (size_t)end - ZIP_END_BYTES < zip_u16(e + 20) ? z->size - (size_t)end - ZIP_END_BYTES : zip_u16(e + 20);
    uint64_t cd_end = (uint64_t)end;
    if (end >= ZIP_LOCATOR64_BYTES && zip_u32(e - ZIP_LOCATOR64_BYTES) == ZIP_SIG_LOCATOR64) {
        const unsigned char *loc = e - ZIP_LOCATOR64_BYTES;
        const uint64_t at = zip_u64(loc + 8);
        if (zip_u32(loc + 4) != 0 || zip_u32(loc + 16) > 1)
            return split_archive(z, err);
        if (at > (uint64_t)end - ZIP_LOCATOR64_BYTES || (uint64_t)end - ZIP_LOCATOR64_BYTES - at < ZIP_END64_BYTES ||
            zip_u32(z->map + at) != ZIP_SIG_END64)
            return err_set(err, "%s: the ZIP64 end of central directory record is missing or damaged", z->path);
        const unsigned char *r = z->map + at;
        if (zip_u32(r + 16) != 0 || zip_u32(r + 20) != 0 || zip_u64(r + 24) != zip_u64(r + 32))
            return split_archive(z, err);
        *count = zip_u64(r + 32), *cd_size = zip_u64(r + 40), *cd_off = zip_u64(r + 48);
        cd_end = at;
    } else if (*count == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu) {
        return err_set(err, "%s: the end record asks for a ZIP64 record that is not there", z->path);
    }
    if (*cd_off > cd_end || *cd_size > cd_end - *cd_off)
        return err_set(err, "%s: the central directory (%llu bytes at %llu) lies outside the file (cut short?)", z->path,
                       (unsigned long long)*cd_size, (unsigned long long)*cd_off);
    if (*count > *cd_size / ZIP_CENTRAL_BYTES)
        return err_set(err, "%s: %llu entries cannot fit a central directory of %llu bytes", z->path,
                       (unsigned long long)*count, (unsigned long long)*cd_size);
    return 0;
}

/* The ZIP64 extra field (id 1) of a central record: the 64-bit values of the fields that are 0xFFFFFFFF, in
 * the order uncompressed size, compressed size, local header offset. */
static int read_zip64_extra(zip_entry *e, const unsigned char *x, size_t len, int need_u, int need_c, int need_o) {
    for (size_t p = 0; p + 4 <= len;) {
        const size_t id = zip_u16(x + p), n = zip_u16(x + p + 2);
        if (p + 4 + n > len) return -1;
        if (id == 1) {
            const size_t want = 8 * (size_t)(need_u + need_c + need_o);
            if (n < want) return -1;
            const unsigned char *v = x + p + 4;
            if (need_u) e->usize = zip_u64(v), v += 8;
            if (need_c) e->csize = zip_u64(v), v += 8;
            if (need_o) e->offset = zip_u64(v);
            return 0;
        }
        p += 4 + n;
    }
    return need_u || need_c || need_o ? -1 : 0;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const zip_entry *)a)->name, ((const zip_entry *)b)->name);
}

static int read_central(zip_archive *z, uint64_t cd_off, uint64_t cd_size, uint64_t count, edm2_err *err) {
    if (!(z->entries = calloc(count ? count : 1, sizeof *z->entries)) || !(z->names = malloc(cd_size + 1)))
        return err_set(err, "%s: out of memory for %llu entries", z->path, (unsigned long long)count);
    const unsigned char *cd = z->map + cd_off;
    size_t p = 0, name_at = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (p + ZIP_CENTRAL_BYTES > cd_size || zip_u32(cd + p) != ZIP_SIG_CENTRAL)
            return err_set(err, "%s: central directory record %llu is damaged", z->path, (unsigned long long)i);
        const unsigned char *r = cd + p;
        const size_t nlen = zip_u16(r + 28), xlen = zip_u16(r + 30), clen = zip_u16(r + 32);
        if (p + ZIP_CENTRAL_BYTES + nlen + xlen + clen > cd_size)
            return err_set(err, "%s: central directory record %llu runs past the directory", z->path, (unsigned long long)i);
        zip_entry *e = &z->entries[i];
        e->flags = zip_u16(r + 8), e->method = zip_u16(r + 10), e->crc = zip_u32(r + 16);
        e->csize = zip_u32(r + 20), e->usize = zip_u32(r + 24), e->offset = zip_u32(r + 42);
        const unsigned char *name = r + ZIP_CENTRAL_BYTES;
        if (memchr(name, 0, nlen))
            return err_set(err, "%s: central directory record %llu: a name with a NUL byte", z->path, (unsigned long long)i);
        memcpy(z->names + name_at, name, nlen);
        z->names[name_at + nlen] = 0;
        e->name = z->names + name_at;
        name_at += nlen + 1;
        if (read_zip64_extra(e, name + nlen, xlen, e->usize == 0xFFFFFFFFu, e->csize == 0xFFFFFFFFu,
                             e->offset == 0xFFFFFFFFu) ||
            (zip_u16(r + 34) != 0 && zip_u16(r + 34) != 0xFFFF))
            return err_set(err, "%s: entry '%.200s': damaged ZIP64 extra field or on another disk", z->path, e->name);
        p += ZIP_CENTRAL_BYTES + nlen + xlen + clen;
    }
    z->count = (size_t)count;
    if (count > 1) qsort(z->entries, z->count, sizeof *z->entries, cmp_entry);
    for (size_t i = 1; i < z->count; i++)
        if (!strcmp(z->entries[i - 1].name, z->entries[i].name))
            return err_set(err, "%s: two entries named '%.200s'", z->path, z->entries[i].name);
    return 0;
}

int zip_open(zip_archive *z, const char *path, edm2_err *err) {
    memset(z, 0, sizeof *z);
    snprintf(z->path, sizeof z->path, "%s", path);
    if (map_file(path, &z->map, &z->size, err)) return -1;
    uint64_t cd_off = 0, cd_size = 0, count = 0;
    if (read_end(z, &cd_off, &cd_size, &count, err) || read_central(z, cd_off, cd_size, count, err)) {
        zip_close(z);
        return -1;
    }
    return 0;
}

void zip_close(zip_archive *z) {
    if (z->map) unmap_file(z->map, z->size);
    free(z->entries);
    free(z->names);
    memset(z, 0, sizeof *z);
}

const zip_entry *zip_find(const zip_archive *z, const char *name) {
    zip_entry key = {.name = name};
    return z->count ? bsearch(&key, z->entries, z->count, sizeof key, cmp_entry) : NULL;
}

int zip_check(const zip_archive *z, const zip_entry *e, edm2_err *err) {
    if (e->flags & 1) return err_set(err, "%s: entry '%.200s' is encrypted (not supported)", z->path, e->name);
    if (e->method != 0 && e->method != 8)
        return err_set(err, "%s: entry '%.200s': compression method %u (only stored and deflated are read)", z->path,
                       e->name, e->method);
    if (e->usize > ZIP_MAX_ENTRY_BYTES || (e->method == 0 && e->csize != e->usize) ||
        (e->method == 8 && e->usize > e->csize * DEFLATE_MAX_RATIO + 64))
        return err_set(err, "%s: entry '%.200s': sizes %llu/%llu (damaged, or larger than %llu bytes)", z->path, e->name,
                       (unsigned long long)e->csize, (unsigned long long)e->usize,
                       (unsigned long long)ZIP_MAX_ENTRY_BYTES);
    return 0;
}

/* Raw deflate data src[csize] into dst[usize] (exactly usize bytes, ending the stream). */
static int inflate_exact(const unsigned char *src, size_t csize, unsigned char *dst, size_t usize) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return -1;
    size_t in = 0, out = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (s.avail_in == 0 && in < csize) {
            s.next_in = (Bytef *)(uintptr_t)(src + in);
            s.avail_in = (uInt)(csize - in < ZIP_ZLIB_CHUNK ? csize - in : ZIP_ZLIB_CHUNK);
            in += s.avail_in;
        }
        if (s.avail_out == 0 && out < usize) {
            s.next_out = dst + out;
            s.avail_out = (uInt)(usize - out < ZIP_ZLIB_CHUNK ? usize - out : ZIP_ZLIB_CHUNK);
            out += s.avail_out;
        }
        const uLong before_in = s.total_in, before_out = s.total_out;
        rc = inflate(&s, Z_NO_FLUSH);
        if (rc == Z_BUF_ERROR && s.total_in == before_in && s.total_out == before_out) break; /* no progress */
        if (rc == Z_BUF_ERROR) rc = Z_OK;
    }
    const int ok = rc == Z_STREAM_END && s.total_out == usize;
    inflateEnd(&s);
    return ok ? 0 : -1;
}

int zip_read(const zip_archive *z, const zip_entry *e, const unsigned char **data, size_t *size, unsigned char **owned,
             edm2_err *err) {
    *data = NULL, *size = 0, *owned = NULL;
    if (zip_check(z, e, err)) return -1;
    if (e->offset > z->size || z->size - e->offset < ZIP_LOCAL_BYTES || zip_u32(z->map + e->offset) != ZIP_SIG_LOCAL)
        return err_set(err, "%s: entry '%.200s': no local header at offset %llu (damaged or cut short)", z->path, e->name,
                       (unsigned long long)e->offset);
    const unsigned char *h = z->map + e->offset;
    const uint64_t at = e->offset + ZIP_LOCAL_BYTES + zip_u16(h + 26) + zip_u16(h + 28);
    if (at > z->size || e->csize > z->size - at)
        return err_set(err, "%s: entry '%.200s': its %llu bytes run past the end of the file (cut short?)", z->path,
                       e->name, (unsigned long long)e->csize);
    const unsigned char *src = z->map + at;
    if (e->method == 0) {
        *data = src;
    } else {
        if (!(*owned = malloc(e->usize ? (size_t)e->usize : 1)))
            return err_set(err, "%s: entry '%.200s': out of memory", z->path, e->name);
        if (inflate_exact(src, (size_t)e->csize, *owned, (size_t)e->usize)) {
            free(*owned), *owned = NULL;
            return err_set(err, "%s: entry '%.200s': corrupt deflate data", z->path, e->name);
        }
        *data = *owned;
    }
    if (zip_crc32(*data, (size_t)e->usize) != e->crc) {
        free(*owned), *owned = NULL, *data = NULL;
        return err_set(err, "%s: entry '%.200s': CRC-32 mismatch (the archive is damaged)", z->path, e->name);
    }
    *size = (size_t)e->usize;
    return 0;
}
