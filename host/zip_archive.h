/* zip_archive.h: read-only access to a ZIP archive (PKWARE's APPNOTE.TXT 6.3), as the EDM and EDM2 dataset
 * tools write their datasets (Python's zipfile, entries stored): the central directory, ZIP64 included; entries
 * stored or deflated, each checked against its CRC-32 when read. The file is mapped read-only; a stored entry is
 * read in place. Encrypted entries, other compression methods and archives split over several files are refused
 * with a one-line error naming the archive (and the entry). */
#ifndef EDM2_HOST_ZIP_ARCHIVE_H
#define EDM2_HOST_ZIP_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define ZIP_MAX_ENTRY_BYTES ((uint64_t)1 << 32) /* one entry's uncompressed size, at most */

typedef struct zip_entry {
    const char *name; /* NUL-terminated (a copy in zip_archive.names) */
    uint16_t method;  /* 0 stored, 8 deflated */
    uint16_t flags;   /* general purpose bit flag */
    uint32_t crc;     /* CRC-32 of the uncompressed bytes */
    uint64_t csize, usize, offset; /* compressed and uncompressed size; offset of the local header */
} zip_entry;

typedef struct zip_archive {
    char path[4096];
    unsigned char *map;
    size_t size;
    zip_entry *entries; /* [count], sorted by name (names are unique) */
    size_t count;
    char *names;
    const char *comment; /* the archive's comment, in the mapping: [comment_len] bytes, not NUL-terminated */
    size_t comment_len;
} zip_archive;

/* Opens and maps `path` and reads its central directory. Returns 0, or -1 with a one-line error naming the
 * file (nothing to close then). */
int zip_open(zip_archive *z, const char *path, edm2_err *err);
void zip_close(zip_archive *z);
/* The entry named `name` (a path inside the archive, '/'-separated), or NULL. */
const zip_entry *zip_find(const zip_archive *z, const char *name);
/* 0 when entry e can be read here (stored or deflated, not encrypted), else -1 with the reason. */
int zip_check(const zip_archive *z, const zip_entry *e, edm2_err *err);
/* Entry e's uncompressed bytes (CRC-32 checked): *data points into the mapping for a stored entry (*owned = NULL)
 * or to *owned, a malloc'ed buffer the caller frees, for a deflated one. */
int zip_read(const zip_archive *z, const zip_entry *e, const unsigned char **data, size_t *size, unsigned char **owned,
             edm2_err *err);

#endif
