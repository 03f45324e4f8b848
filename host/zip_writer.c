/* zip_writer.c: the ZIP writer (zip_writer.h). Layout (APPNOTE.TXT 6.3, little-endian): per entry a 30-byte
 * local header (+ name, + a ZIP64 extra field with both sizes when they need 64 bits) and the stored bytes; then
 * one 46-byte central record per entry (+ name, + a ZIP64 extra field with the sizes and the offset that need 64
 * bits); then, where the directory needs them, the 56-byte ZIP64 end record and its 20-byte locator; then the
 * 22-byte end record and the comment. */
#include "zip_writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "fileio.h"
#include "zip_format.h"

#define VERSION 20       /* 2.0: stored entries */
#define VERSION_ZIP64 45 /* 4.5: ZIP64 records */
#define MADE_BY_UNIX 3   /* the external attributes are Unix modes */
#define DOS_DATE 0x21    /* 1980-01-01 (the earliest DOS date), 00:00 */
#define FLAG_UTF8 0x800  /* the name is UTF-8 */
#define ZIP16_MAX 0xFFFFu
#define ZIP32_MAX 0xFFFFFFFFu

static void put16(unsigned char *p, uint64_t v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint64_t v) { put16(p, v), put16(p + 2, v >> 16); }
static void put64(unsigned char *p, uint64_t v) { put32(p, v), put32(p + 4, v >> 32); }

static int utf8_flag(const char *name) {
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p >= 0x80) return FLAG_UTF8;
    return 0;
}

static int write_failed(const zip_writer *w, edm2_err *err) {
    return err_set(err, "%s: write failed: %s", w->partial, strerror(errno ? errno : EIO));
}

static int put_bytes(zip_writer *w, const void *p, size_t n, edm2_err *err) {
    errno = 0;
    if (n && fwrite(p, 1, n, w->f) != n) return write_failed(w, err);
    w->end += n;
    return 0;
}

static int record(zip_writer *w, const char *name, uint32_t crc, uint64_t size, uint64_t offset, edm2_err *err) {
    if (w->count == w->cap) {
        const size_t cap = w->cap ? 2 * w->cap : 1024;
        zip_written *e = realloc(w->entries, cap * sizeof *e);
        if (!e) return err_set(err, "%s: out of memory for %zu entries", w->partial, cap);
        w->entries = e, w->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return err_set(err, "%s: out of memory", w->partial);
    w->entries[w->count++] = (zip_written){copy, crc, size, offset};
    return 0;
}

/* The whole entries at the start of map[size] into w->entries; *keep: the bytes they take. A local header that is
 * not one this writer makes (another method, a data descriptor, encryption), or cut short, or whose bytes fail
 * their CRC-32, ends them. */
static int read_back(zip_writer *w, const unsigned char *map, uint64_t size, uint64_t *keep, edm2_err *err) {
    uint64_t p = 0;
    while (size - p >= ZIP_LOCAL_BYTES && zip_u32(map + p) == ZIP_SIG_LOCAL) {
        const unsigned char *h = map + p;
        const uint64_t nlen = zip_u16(h + 26), xlen = zip_u16(h + 28);
        if ((zip_u16(h + 6) & ~FLAG_UTF8) || zip_u16(h + 8) != 0 || size - p - ZIP_LOCAL_BYTES < nlen + xlen) break;
        uint64_t csize = zip_u32(h + 18), usize = zip_u32(h + 22);
        if (csize == ZIP32_MAX || usize == ZIP32_MAX) { /* the ZIP64 extra field: both sizes */
            const unsigned char *x = h + ZIP_LOCAL_BYTES + nlen;
            if (xlen < 20 || zip_u16(x) != 1 || zip_u16(x + 2) < 16) break;
            usize = zip_u64(x + 4), csize = zip_u64(x + 12);
        }
        const uint64_t at = p + ZIP_LOCAL_BYTES + nlen + xlen;
        if (csize != usize || csize > size - at || memchr(h + ZIP_LOCAL_BYTES, 0, nlen)) break;
        if (zip_crc32(map + at, (size_t)csize) != zip_u32(h + 14)) break;
        char name[65536];
        memcpy(name, h + ZIP_LOCAL_BYTES, nlen);
        name[nlen] = 0;
        if (record(w, name, zip_u32(h + 14), csize, p, err)) return -1;
        p = at + csize;
    }
    *keep = p;
    return 0;
}

int zip_writer_open(zip_writer *w, const char *path, int resume, edm2_err *err) {
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->partial, sizeof w->partial, "%.4090s.partial", path);
    w->zip64_from = ZIP32_MAX;
    if (resume && access(w->partial, F_OK) == 0) {
        unsigned char *map;
        size_t size;
        uint64_t keep = 0;
        if (map_file(w->partial, &map, &size, err)) return -1;
        const int rc = read_back(w, map, size, &keep, err);
        unmap_file(map, size);
        if (rc || !(w->f = fopen(w->partial, "r+b")) || ftruncate(fileno(w->f), (off_t)keep) != 0 ||
            fseeko(w->f, (off_t)keep, SEEK_SET) != 0) {
            if (!rc) err_set(err, "%s: cannot continue it: %s", w->partial, strerror(errno));
            zip_writer_close(w);
            return -1;
        }
        w->end = keep;
        return 0;
    }
    if (!(w->f = fopen(w->partial, "wb"))) {
        err_set(err, "%s: cannot create: %s", w->partial, strerror(errno));
        zip_writer_close(w);
        return -1;
    }
    return 0;
}

int zip_writer_truncate(zip_writer *w, size_t keep, edm2_err *err) {
    if (keep >= w->count) return 0;
    const uint64_t end = w->entries[keep].offset;
    if (fflush(w->f) != 0 || ftruncate(fileno(w->f), (off_t)end) != 0 || fseeko(w->f, (off_t)end, SEEK_SET) != 0)
        return err_set(err, "%s: cannot truncate: %s", w->partial, strerror(errno));
    for (size_t i = keep; i < w->count; i++) free(w->entries[i].name);
    w->count = keep, w->end = end;
    return 0;
}

int zip_writer_add(zip_writer *w, const char *name, const void *data, size_t size, edm2_err *err) {
    const size_t nlen = strlen(name);
    if (nlen == 0 || nlen > ZIP16_MAX) return err_set(err, "%s: an entry name of %zu bytes", w->partial, nlen);
    const int big = size >= w->zip64_from;
    const uint32_t crc = zip_crc32(data, size);
    unsigned char h[ZIP_LOCAL_BYTES], x[20];
    put32(h, ZIP_SIG_LOCAL), put16(h + 4, big ? VERSION_ZIP64 : VERSION), put16(h + 6, (uint64_t)utf8_flag(name));
    put16(h + 8, 0), put16(h + 10, 0), put16(h + 12, DOS_DATE), put32(h + 14, crc);
    put32(h + 18, big ? ZIP32_MAX : size), put32(h + 22, big ? ZIP32_MAX : size);
    put16(h + 26, nlen), put16(h + 28, big ? sizeof x : 0);
    put16(x, 1), put16(x + 2, 16), put64(x + 4, size), put64(x + 12, size);
    const uint64_t offset = w->end;
    if (put_bytes(w, h, sizeof h, err) || put_bytes(w, name, nlen, err) || (big && put_bytes(w, x, sizeof x, err)) ||
        put_bytes(w, data, size, err))
        return -1;
    return record(w, name, crc, size, offset, err);
}

int zip_writer_sync(zip_writer *w, edm2_err *err) {
    errno = 0;
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) return write_failed(w, err);
    return 0;
}

/* Entry e's central directory record. */
static int put_central(zip_writer *w, const zip_written *e, edm2_err *err) {
    const int big = e->size >= w->zip64_from, far = e->offset >= w->zip64_from;
    const size_t nlen = strlen(e->name), xlen = big || far ? 4 + 16 * (size_t)big + 8 * (size_t)far : 0;
    const int version = xlen ? VERSION_ZIP64 : VERSION;
    unsigned char r[ZIP_CENTRAL_BYTES], x[28];
    put32(r, ZIP_SIG_CENTRAL), put16(r + 4, MADE_BY_UNIX << 8 | version), put16(r + 6, (uint64_t)version);
    put16(r + 8, (uint64_t)utf8_flag(e->name)), put16(r + 10, 0), put16(r + 12, 0), put16(r + 14, DOS_DATE);
    put32(r + 16, e->crc), put32(r + 20, big ? ZIP32_MAX : e->size), put32(r + 24, big ? ZIP32_MAX : e->size);
    put16(r + 28, nlen), put16(r + 30, xlen), put16(r + 32, 0), put16(r + 34, 0), put16(r + 36, 0);
    put32(r + 38, (uint64_t)0100644 << 16); /* a regular file, rw-r--r-- */
    put32(r + 42, far ? ZIP32_MAX : e->offset);
    unsigned char *v = x + 4;
    put16(x, 1), put16(x + 2, xlen - 4);
    if (big) put64(v, e->size), put64(v + 8, e->size), v += 16;
    if (far) put64(v, e->offset);
    return put_bytes(w, r, sizeof r, err) || put_bytes(w, e->name, nlen, err) || put_bytes(w, x, xlen, err) ? -1 : 0;
}

/* The end records after a central directory of cd_size bytes at cd_off. */
static int put_end(zip_writer *w, uint64_t cd_off, uint64_t cd_size, const char *comment, edm2_err *err) {
    const size_t clen = comment ? strlen(comment) : 0;
    if (clen > ZIP16_MAX) return err_set(err, "%s: an archive comment of %zu bytes", w->partial, clen);
    const uint64_t n = w->count, end64 = w->end;
    const int zip64 = n >= ZIP16_MAX || n >= w->zip64_from || cd_off >= w->zip64_from || cd_size >= w->zip64_from;
    if (zip64) {
        unsigned char r[ZIP_END64_BYTES], loc[20];
        put32(r, ZIP_SIG_END64), put64(r + 4, ZIP_END64_BYTES - 12), put16(r + 12, MADE_BY_UNIX << 8 | VERSION_ZIP64);
        put16(r + 14, VERSION_ZIP64), put32(r + 16, 0), put32(r + 20, 0), put64(r + 24, n), put64(r + 32, n);
        put64(r + 40, cd_size), put64(r + 48, cd_off);
        put32(loc, ZIP_SIG_LOCATOR64), put32(loc + 4, 0), put64(loc + 8, end64), put32(loc + 16, 1);
        if (put_bytes(w, r, sizeof r, err) || put_bytes(w, loc, sizeof loc, err)) return -1;
    }
    unsigned char e[22];
    const uint64_t n16 = zip64 ? ZIP16_MAX : n;
    put32(e, ZIP_SIG_END), put16(e + 4, 0), put16(e + 6, 0), put16(e + 8, n16), put16(e + 10, n16);
    put32(e + 12, zip64 ? ZIP32_MAX : cd_size), put32(e + 16, zip64 ? ZIP32_MAX : cd_off), put16(e + 20, clen);
    return put_bytes(w, e, sizeof e, err) || put_bytes(w, comment, clen, err) ? -1 : 0;
}

int zip_writer_finish(zip_writer *w, const char *comment, edm2_err *err) {
    const uint64_t cd_off = w->end;
    int rc = 0;
    for (size_t i = 0; i < w->count && !rc; i++) rc = put_central(w, &w->entries[i], err);
    rc = rc || put_end(w, cd_off, w->end - cd_off, comment, err) || zip_writer_sync(w, err) ? -1 : 0;
    if (fclose(w->f) != 0 && !rc) rc = write_failed(w, err);
    w->f = NULL;
    if (rc) return -1;
    if (rename(w->partial, w->path) != 0)
        return err_set(err, "%s: cannot rename into place: %s", w->path, strerror(errno));
    if (sync_parent(w->path) != 0)
        return err_set(err, "%s: written, but its folder could not be synced: %s", w->path, strerror(errno));
    return 0;
}

void zip_writer_close(zip_writer *w) {
    if (w->f) fclose(w->f);
    for (size_t i = 0; i < w->count; i++) free(w->entries[i].name);
    free(w->entries);
    memset(w, 0, sizeof *w);
}
