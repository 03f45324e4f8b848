/* cli_args.h: values of command-line options (edm2host's commands, edm2-bench, edm2-vae-bench): an integer
 * taken whole and in range, or a one-line error naming the option and what was expected. */
#ifndef EDM2_HOST_CLI_ARGS_H
#define EDM2_HOST_CLI_ARGS_H

/* *out = the integer s, when all of s is one in [lo, hi]; else logs "PROG: OPT 'S': expected an integer
 * from LO to HI" and returns -1 (the caller exits with status 2). */
int arg_int(const char *prog, const char *opt, const char *s, long lo, long hi, int *out);

#endif
