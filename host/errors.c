/* errors.c: formatting of edm2_err. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

int err_set(edm2_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}
