/* fileio.c: atomic writes via rename, whole-file reads, mkdir -p. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int af_open(atomic_file *af, const char *path, edm2_err *err) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return err_set(err, "%s: path too long", path);
    strcpy(af->path, path);
    /* Created exclusively under an unpredictable name (never follows a symlink planted in the folder),
     * then given the permissions a plain fopen would have. */
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        int e = errno;
        af->tmp[0] = 0;
        return err_set(err, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || !(af->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(af->tmp);
        af->tmp[0] = 0;
        return err_set(err, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

/* fsync of the folder holding `path`, so that a rename into it survives a crash. */
int sync_parent(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int af_commit(atomic_file *af, edm2_err *err) {
    int bad = fflush(af->f) != 0 || ferror(af->f);
    if (!bad) bad = fsync(fileno(af->f)) != 0;
    int e = errno;
    if (fclose(af->f) != 0) bad = 1;
    af->f = NULL;
    if (bad) {
        unlink(af->tmp);
        return err_set(err, "%s: write failed: %s", af->path, strerror(e));
    }
    if (rename(af->tmp, af->path) != 0) {
        e = errno;
        unlink(af->tmp);
        return err_set(err, "%s: cannot rename into place: %s", af->path, strerror(e));
    }
    if (sync_parent(af->path) != 0)
        return err_set(err, "%s: written, but its folder could not be synced: %s", af->path, strerror(errno));
    return 0;
}

void af_abort(atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    if (af->tmp[0]) unlink(af->tmp);
}

int read_file(const char *path, unsigned char **data, size_t *size, edm2_err *err) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return err_set(err, "%s: not a regular file", path);
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return err_set(err, "%s: out of memory (%lld bytes)", path, (long long)st.st_size);
    }
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        free(buf);
        return err_set(err, "%s: read error", path);
    }
    buf[got] = 0;
    *data = buf;
    *size = got;
    return 0;
}

int map_file(const char *path, unsigned char **data, size_t *size, edm2_err *err) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return err_set(err, "%s: cannot map: %s", path, strerror(errno));
    *data = p;
    *size = (size_t)st.st_size;
    return 0;
}

void unmap_file(unsigned char *data, size_t size) {
    if (data) munmap(data, size);
}

int is_folder(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int make_dirs(const char *path, edm2_err *err) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return err_set(err, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return err_set(err, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return err_set(err, "%s: cannot create: %s", buf, strerror(errno));
    if (!is_folder(buf)) return err_set(err, "%s: not a folder (a file of that name is there)", buf);
    return 0;
}
