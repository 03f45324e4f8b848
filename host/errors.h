/* errors.h: the host's error value: one line of text, filled by the function that failed and printed
 * once by the command that gave up. */
#ifndef EDM2_HOST_ERRORS_H
#define EDM2_HOST_ERRORS_H

#include <stddef.h>

typedef struct edm2_err {
    char msg[1536];
} edm2_err;

/* Formats the message into *e (if e is non-NULL; control characters become '?', arguments may point into
 * e->msg) and returns -1, so callers write
 *     return err_set(err, "%s:%d: unknown key '%s'", file, line, key);                        */
int err_set(edm2_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
