/* fileio.h: files written atomically (to an exclusively created temporary file, fsync'ed, renamed, the
 * folder fsync'ed), so a crash or a kill never leaves a truncated snapshot, checkpoint or image behind;
 * and whole-file reads. */
#ifndef EDM2_HOST_FILEIO_H
#define EDM2_HOST_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "errors.h"

typedef struct atomic_file {
    FILE *f;
    char path[4096];
    char tmp[4200];
} atomic_file;

/* Creates PATH.tmp.XXXXXX (exclusively, random suffix) for writing. */
int af_open(atomic_file *af, const char *path, edm2_err *err);
/* Flushes, fsyncs, closes, renames into place and fsyncs the folder. On failure removes the temporary
 * file. */
int af_commit(atomic_file *af, edm2_err *err);
/* Closes and removes the temporary file (after a failed write). */
void af_abort(atomic_file *af);

/* fsync of the folder holding `path` (after a rename into it, so that the rename survives a crash). */
int sync_parent(const char *path);

/* Reads a whole file into a malloc'ed buffer (NUL-terminated for convenience). */
int read_file(const char *path, unsigned char **data, size_t *size, edm2_err *err);
/* Maps a whole file read-only (large snapshots and datasets stay in the page cache). */
int map_file(const char *path, unsigned char **data, size_t *size, edm2_err *err);
void unmap_file(unsigned char *data, size_t size);
/* mkdir -p. */
int make_dirs(const char *path, edm2_err *err);
/* 1 when path is there and a folder (or a link to one). */
int is_folder(const char *path);

#endif
