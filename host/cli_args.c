/* cli_args.c: checked integer values of command-line options (cli_args.h). */
#include "cli_args.h"

#include <errno.h>
#include <stdlib.h>

#include "log.h"

int arg_int(const char *prog, const char *opt, const char *s, long lo, long hi, int *out) {
    char *end = NULL;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        LOG_ERROR("%s: %s '%s': expected an integer from %ld to %ld", prog, opt, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}
