/* zip_writer.h: a ZIP archive written entry by entry (PKWARE's APPNOTE.TXT 6.3), as zip_archive.h and Python's
 * zipfile (the EDM dataset tools' reader) read it. Entries are stored (not compressed, as the dataset tools store
 * their PNGs), and each local header gives the entry's CRC-32 and sizes (no data descriptors), so a file cut short
 * by a crash or a kill reads back up to its last whole entry; ZIP64 records where a size, an offset or the entry
 * count needs them. Timestamps are fixed (1980-01-01 00:00), so the same entries make the same bytes. The archive
 * grows as PATH.partial and becomes PATH by a rename once its central directory is written: PATH is never
 * half-written, and an unfinished PATH.partial is continued with zip_writer_open(..., resume = 1). */
#ifndef EDM2_HOST_ZIP_WRITER_H
#define EDM2_HOST_ZIP_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "errors.h"

typedef struct zip_written {
    char *name;
    uint32_t crc;
    uint64_t size, offset; /* the entry's bytes; its local header's offset */
} zip_written;

typedef struct zip_writer {
    char path[4096], partial[4200];
    FILE *f;
    uint64_t end;          /* bytes in PATH.partial: where the next local header goes */
    zip_written *entries;  /* [count], in the order written */
    size_t count, cap;
    /* A size or an offset of at least this, or at least this many entries (and 65535 always), takes ZIP64
     * records: 0xFFFFFFFF, as the format needs; a test lowers it to exercise them on small archives. */
    uint64_t zip64_from;
} zip_writer;

/* Opens PATH.partial for writing: a new, empty one; or with resume, the one there with its whole entries (each
 * local header read back and its CRC-32 checked, up to the first that is not whole: the file is truncated there),
 * listed in w->entries. Returns 0, or -1 with a one-line error naming the file (nothing to close then). */
int zip_writer_open(zip_writer *w, const char *path, int resume, edm2_err *err);
/* Keeps only the first `keep` entries (the file truncated after them). */
int zip_writer_truncate(zip_writer *w, size_t keep, edm2_err *err);
/* Appends entry `name` holding data[size] (stored). */
int zip_writer_add(zip_writer *w, const char *name, const void *data, size_t size, edm2_err *err);
/* Flushes and fsyncs what was added: a crash after it keeps those entries. */
int zip_writer_sync(zip_writer *w, edm2_err *err);
/* Writes the central directory and the end records (with `comment`, at most 65535 bytes, or NULL), fsyncs, and
 * renames PATH.partial to PATH (its folder fsynced). Closes the file either way; zip_writer_close still frees. */
int zip_writer_finish(zip_writer *w, const char *comment, edm2_err *err);
/* Frees; PATH.partial stays as it is (to be continued). */
void zip_writer_close(zip_writer *w);

#endif
