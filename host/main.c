/* main.c: edm2host's entry point: global options and dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "comm.h"
#include "log.h"
#include "validate.h"

#ifndef EDM2_VERSION
#define EDM2_VERSION "0.0.0"
#endif

typedef struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command k_commands[] = {
    {"run", cmd_run, "run the job a config names:  run CONFIG.ini [--set section.key=value ...]"},
    {"check", cmd_check, "validate a config without running it:  check CONFIG.ini [--set ...]"},
    {"check-ref", cmd_check_ref, "compare with a PyTorch reference file:  check-ref FILE.safetensors [--backend ID]"},
    {"inspect", cmd_inspect, "what a .safetensors file is and holds:  inspect FILE [--tensors] [--meta]"},
    {"plugins", cmd_plugins, "list plugins, or describe one:  plugins [--describe ID] [--file X.so]"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: edm2host [-v|-q] COMMAND [ARGS]\n\n"
               "Trains and samples EDM2 diffusion models with plugins chosen by INI configs.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof *k_commands; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    size_t nj;
    const job_def *jobs = job_list(&nj);
    fprintf(f, "\njob types ([job] type = ...):\n");
    for (size_t i = 0; i < nj; i++) fprintf(f, "  %-10s %s\n", jobs[i].type, jobs[i].help);
    fprintf(f, "\noptions:\n  -h, --help     this help (COMMAND --help for a command's)\n"
               "  --version      print the version and plugin ABI\n"
               "  -v, --verbose  debug messages\n  -q, --quiet    warnings and errors only\n\n"
               "plugin search path: [plugins] path of the config, $EDM2_PLUGIN_PATH, the build tree,\n"
               "the install prefix (PREFIX/lib/edm2/plugins)\n\n"
               "several processes or GPUs: mpirun -n K edm2host run CONFIG.ini (or srun) for train, generate,\n"
               "evaluate, sweep and encode\n"
               "the EDM2 reference's network pickles (NVIDIA's released models): convert them once with\n"
               "scripts/convert_edm2_pkl.py MODEL.pkl\n");
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
#ifdef EDM2_HAVE_MPI
            const char *mpi = "with MPI";
#else
            const char *mpi = "without MPI";
#endif
            printf("edm2host %s (plugin ABI %d.%d, %s)\n", EDM2_VERSION, EDM2_ABI_MAJOR, EDM2_ABI_MINOR, mpi);
            return 0;
        } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
            log_set_level(EDM2_LOG_DEBUG);
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            log_set_level(EDM2_LOG_WARN);
        } else {
            fprintf(stderr, "error: unknown option '%s' (see edm2host --help)\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (size_t c = 0; c < sizeof k_commands / sizeof *k_commands; c++)
        if (!strcmp(argv[i], k_commands[c].name)) {
            edm2_err err;
            if (comm_init(&argc, &argv, &err)) { /* joins the process group when started by mpirun/srun */
                fprintf(stderr, "error: %s\n", err.msg);
                return 1;
            }
            if (comm_rank() > 0) log_set_level(EDM2_LOG_WARN); /* the group's first process reports progress */
            int rc = k_commands[c].fn(argc - i - 1, argv + i + 1);
            log_flush(); /* a plugin's error that no host message reported */
            if (rc && rc < 128 && comm_world() > 1) {
                log_flush();
                comm_abort(rc); /* a process that failed alone must not leave the others waiting */
            }
            comm_finalize();
            return rc;
        }
    fprintf(stderr, "error: unknown command '%s' (see edm2host --help)\n", argv[i]);
    return 2;
}
