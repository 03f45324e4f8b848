/* cmd_config.c: `edm2host run` and `edm2host check`: the commands that take a config file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "comm.h"
#include "dataset.h"
#include "jobs.h"
#include "log.h"
#include "plugin_check.h"
#include "setup.h"

int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

/* Parses "CONFIG.ini [--set a.b=c ...]"; returns 0 or 2 (usage). */
static int parse_config_args(const char *cmd, int argc, char **argv, const char **path, char ***sets, int *nsets) {
    *path = NULL;
    *nsets = 0;
    *sets = calloc((size_t)argc + 1, sizeof **sets);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--set")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "error: %s: --set needs section.key=value\n", cmd);
                return 2;
            }
            (*sets)[(*nsets)++] = argv[++i];
        } else if (!strncmp(argv[i], "--set=", 6)) {
            (*sets)[(*nsets)++] = argv[i] + 6;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "error: %s: unknown option '%s' (see edm2host %s --help)\n", cmd, argv[i], cmd);
            return 2;
        } else if (!*path) {
            *path = argv[i];
        } else {
            fprintf(stderr, "error: %s: one config file expected, got '%s' and '%s'\n", cmd, *path, argv[i]);
            return 2;
        }
    }
    if (!*path) {
        fprintf(stderr, "error: %s: missing CONFIG.ini (see edm2host %s --help)\n", cmd, cmd);
        return 2;
    }
    return 0;
}

static void config_usage(const char *cmd, const char *what) {
    printf("usage: edm2host %s CONFIG.ini [--set section.key=value ...]\n\n%s\n\n"
           "--set overrides one value of the config (repeatable), e.g. --set network.model_channels=32\n",
           cmd, what);
}

/* A job's (or check's) error, after where the value it is about was set: when it starts "[SECTION] KEY", or
 * "VALUE: ..." with the value of a key (a file that cannot be read), the job's own section's first. */
static void log_job_error(const run_config *rc, const edm2_err *err) {
    const cfg_entry *about = cfg_about(rc->cfg, NULL, err->msg);
    const char *colon = strstr(err->msg, ": ");
    if (!about && colon && colon - err->msg < 4096) {
        char value[4096];
        snprintf(value, sizeof value, "%.*s", (int)(colon - err->msg), err->msg);
        about = cfg_with_value(rc->cfg, rc->job->type, value);
    }
    if (about) LOG_ERROR("%s: %s", cfg_where(about).s, err->msg);
    else if (err->msg[0]) LOG_ERROR("%s", err->msg);
}

static int with_config(const char *cmd, int argc, char **argv, int run) {
    const char *path;
    char **sets;
    int nsets;
    int rc = parse_config_args(cmd, argc, argv, &path, &sets, &nsets);
    if (rc) {
        free(sets);
        return rc;
    }
    setup s;
    edm2_err err;
    if (setup_from_config(&s, path, sets, nsets, &err)) {
        LOG_ERROR("%s", err.msg);
        setup_free(&s);
        free(sets);
        return 1;
    }
    for (size_t i = 0; i < s.reg.nproblems; i++) LOG_WARN("%s", s.reg.problems[i]);
    int runnable = 1;
    for (int k = 0; k < EDM2_KIND_COUNT_ && !run; k++) {
        const plugin_rec *p = s.rc.plugin[k];
        char why[256] = "";
        if (p && p->desc->probe && p->desc->probe(why, sizeof why) != EDM2_OK) {
            LOG_WARN("[%s] %s: cannot run on this machine (%s); its values and the other plugins' were not tried",
                     kind_name((edm2_kind)k), p->desc->id, why);
            runnable = 0;
        }
    }
    /* Every plugin instantiated once, so values that cannot work fail now, not hours into the job. */
    err.msg[0] = 0;
    edm2_network_info net;
    memset(&net, 0, sizeof net);
    const edm2_log_level level = log_get_level();
    if (run && level < EDM2_LOG_WARN) log_set_level(EDM2_LOG_WARN); /* (the job's own instances say it all again) */
    rc = runnable && config_instantiate(&s.rc, &net, &err) ? 1 : 0;
    log_set_level(level);
    if (rc) {
        LOG_ERROR("%s", err.msg);
    } else if (!run) {
        /* A train job: where it would start, or the refusal a resume would meet; its data, opened and
         * checked against the network (only opened where a plugin cannot run here: the network is unknown
         * then). Another job: run up to its dry point, its inputs opened and checked (quietly: errors and
         * warnings only). */
        char resume[1600] = "", data[700] = "", ckpt[4200] = "", changes[1024];
        int64_t nimg = 0;
        const int train = s.rc.job->run == job_train, known = runnable && net.struct_size;
        dataset d;
        run_config dry = s.rc;
        dry.dry_run = 1;
        if (level < EDM2_LOG_WARN) log_set_level(EDM2_LOG_WARN);
        if (train && train_resume_point(&s.rc, ckpt, sizeof ckpt, &nimg, &err)) {
            LOG_ERROR("%s", err.msg);
            rc = 1;
        } else if ((train && known && train_open_data(&s.rc, &net, &d, &err)) ||
                   (train && !known && dataset_open(&d, s.rc.cfg, &err)) || (!train && runnable && s.rc.job->run(&dry, &err))) {
            log_job_error(&s.rc, &err);
            rc = 1;
        } else {
            if (train && ckpt[0])
                snprintf(resume, sizeof resume, "; resumes from %.200s at kimg %.3f%s%.1100s", ckpt, nimg / 1000.0,
                         train_config_changes(&s.rc, changes, sizeof changes) ? ", with changes: " : "", changes);
            else if (train) snprintf(resume, sizeof resume, "; starts afresh");
            if (train) {
                snprintf(data, sizeof data, "; data: %.600s%s", d.desc, known ? "" : " (not compared with the network)");
                dataset_close(&d);
            }
            printf("%s: ok (job %s, backend %s%s%.480s)%s%s%s\n", path, s.rc.job->type, backend_name(s.rc.backend),
                   s.backend_note[0] ? ", " : "", s.backend_note, resume, data, !train && runnable ? "; its inputs open" : "");
        }
        log_set_level(level);
    } else {
        /* Training, generation, evaluation, the sweep and encoding split their work over the processes of an MPI
         * launch; the other jobs would write the same files from every process. */
        if (comm_world() > 1 && s.rc.job->run != job_train && s.rc.job->run != job_generate &&
            s.rc.job->run != job_evaluate && s.rc.job->run != job_sweep && s.rc.job->run != job_encode)
            rc = 1, err_set(&err, "the %s job runs in one process (train, generate, evaluate, sweep and encode run on "
                                  "several): start it without mpirun/srun", s.rc.job->type);
        else
            rc = s.rc.job->run(&s.rc, &err);
        if (rc) log_job_error(&s.rc, &err);
        log_open_file(NULL); /* a run's log.txt, which has its error too */
    }
    setup_free(&s);
    free(sets);
    return rc;
}

int cmd_check(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        config_usage("check", "Validates a config: every section and key known, well typed and in range, every\n"
                              "plugin found and willing to take its values (each is created once); runs nothing.\n"
                              "For a train job it also says whether the run resumes (from which checkpoint) or\n"
                              "starts afresh, refuses a checkpoint that the config could not resume from, and\n"
                              "opens the data, checked against the network (shape, classes) as the run does.\n"
                              "The other jobs run up to where they would compute or write anything: their\n"
                              "snapshots, weights and folders are opened and checked as the run would.\n"
                              "Exit status 0 when valid, 1 with a one-line error otherwise.");
        return 0;
    }
    return with_config("check", argc, argv, 0);
}

int cmd_run(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        config_usage("run", "Runs the job named by [job] type (see edm2host --help for the job types).");
        return 0;
    }
    return with_config("run", argc, argv, 1);
}
