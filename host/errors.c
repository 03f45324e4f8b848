/* errors.c: formatting of edm2_err. Messages often quote outside input (a key, a path, a JSON parser's
 * view of a token), so control characters are replaced: an error is always exactly one line. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

int err_set(edm2_err *e, const char *fmt, ...) {
    if (e) {
        char tmp[sizeof e->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap); /* the arguments may point into e->msg */
        va_end(ap);
        size_t i = 0;
        for (; tmp[i]; i++) {
            unsigned char c = (unsigned char)tmp[i];
            e->msg[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
        e->msg[i] = 0;
    }
    return -1;
}
