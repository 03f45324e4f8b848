/* process_group.c: the checks and shares of a job run by several processes (process_group.h). */
#include "process_group.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "comm.h"
#include "stop_signal.h"

int group_threads(int configured) {
    if (configured > 0 || comm_local_size() < 2) return configured;
    const int t = (int)sysconf(_SC_NPROCESSORS_ONLN) / comm_local_size();
    return t < 1 ? 1 : t;
}

int group_same_config(const cfg *c, uint64_t value, uint64_t *values, edm2_err *err) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a over every entry */
    for (size_t i = 0; i < c->n; i++) {
        const cfg_entry *e = &c->v[i];
        const char *parts[3] = {e->section, e->key, e->value};
        for (int k = 0; k < 3; k++) {
            for (const char *p = parts[k]; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
            h = (h ^ 0xffu) * 1099511628211ull; /* (a separator: "ab"+"c" is not "a"+"bc") */
        }
    }
    const int world = comm_world();
    uint64_t mine[2] = {h, value}, *all = calloc((size_t)world * 2, sizeof *all);
    if (!all) return err_set(err, "out of memory");
    int rc = comm_allgather(mine, all, sizeof mine, err);
    for (int q = 0; !rc && q < world; q++) {
        if (all[2 * q] != all[0])
            rc = err_set(err, "process %d runs another config than process 0 (the same config and --set on every "
                              "process)", q);
        values[q] = all[2 * q + 1];
    }
    free(all);
    return rc;
}

int group_same_start(const cfg *c, uint64_t count, const char *what, const char *why, edm2_err *err) {
    const int world = comm_world();
    uint64_t *all = calloc((size_t)world, sizeof *all);
    if (!all) return err_set(err, "out of memory");
    int status = group_same_config(c, count, all, err);
    for (int q = 1; !status && q < world; q++)
        if (all[q] != all[0])
            status = err_set(err, "process %d finds %llu %s, process 0 %llu (%s)", q, (unsigned long long)all[q], what,
                             (unsigned long long)all[0], why);
    free(all);
    return status;
}

int group_rounds(int count, int batch) { return ((count + batch - 1) / batch + comm_world() - 1) / comm_world(); }

int group_batch(int r, int count, int batch, int *first) {
    *first = (r * comm_world() + comm_rank()) * batch;
    return *first >= count ? 0 : count - *first < batch ? count - *first : batch;
}

int group_done(int r, int count, int batch) {
    const long long done = (long long)r * comm_world() * batch;
    return done < count ? (int)done : count;
}

int group_stop_signal(int *sig, edm2_err *err) {
    const int mine = stop_signal(), world = comm_world();
    *sig = mine;
    if (world == 1) return 0;
    int *flags = calloc((size_t)world, sizeof *flags);
    if (!flags) return err_set(err, "out of memory");
    const int rc = comm_allgather(&mine, flags, sizeof mine, err);
    for (int q = 0; !rc && q < world; q++)
        if (flags[q] > *sig) *sig = flags[q];
    free(flags);
    return rc;
}
