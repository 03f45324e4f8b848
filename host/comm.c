/* comm.c: the process group (comm.h) on MPI, or a group of one without it. Collectives are MPI's
 * non-blocking ones, polled until done or the deadline passes. */
#include "comm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef EDM2_HAVE_MPI
#include <mpi.h>
#endif

#include "edm2/edm2_plugin.h"
#include "log.h"
#include "progress.h"

static struct {
    int mpi, rank, world, local_rank, local_size;
    double timeout_s;
} g_comm = {0, 0, 1, 0, 1, 600.0};

/* The group size an MPI launcher announces (Open MPI; PMI-1/2 and PMIx, as srun uses them), or NULL. */
static const char *launcher_world(void) {
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v) v = getenv("PMI_SIZE");
    if (!v && getenv("PMIX_RANK")) v = "several";
    return v && *v ? v : NULL;
}

int comm_init(int *argc, char ***argv, edm2_err *err) {
    const char *w = launcher_world();
    if (!w) return 0;
#ifdef EDM2_HAVE_MPI
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set(err, "MPI_Init failed (launched by an MPI launcher with %s processes)", w);
    g_comm.mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_comm.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_comm.world);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_comm.rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &g_comm.local_rank);
    MPI_Comm_size(local, &g_comm.local_size);
    MPI_Comm_free(&local);
    return 0;
#else
    (void)argc, (void)argv;
    if (atoi(w) != 1)
        return err_set(err, "started as one of %s MPI processes, but this edm2host was built without MPI (install "
                            "libopenmpi-dev and rebuild)", w);
    return 0;
#endif
}

void comm_finalize(void) {
#ifdef EDM2_HAVE_MPI
    if (g_comm.mpi) MPI_Finalize();
    g_comm.mpi = 0;
#endif
}

int comm_rank(void) { return g_comm.rank; }
int comm_world(void) { return g_comm.world; }
int comm_local_size(void) { return g_comm.local_size; }
void comm_set_timeout(double seconds) { g_comm.timeout_s = seconds > 0 ? seconds : 600.0; }

void comm_abort(int code) {
#ifdef EDM2_HAVE_MPI
    if (g_comm.mpi && g_comm.world > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    (void)code;
}

#ifdef EDM2_HAVE_MPI
/* Polls a non-blocking collective until done or the deadline. */
static int wait_for(MPI_Request *req, const char *what, edm2_err *err) {
    const double deadline = now_s() + g_comm.timeout_s;
    for (int done = 0;;) {
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return err_set(err, "rank %d: MPI %s failed", g_comm.rank, what);
        if (done) return 0;
        if (now_s() > deadline)
            return err_set(err, "rank %d: no answer from the other processes within %.0f s in %s (a process died or "
                                "hangs; [job] comm_timeout_s sets the limit)",
                           g_comm.rank, g_comm.timeout_s, what);
        usleep(100);
    }
}

#define PIECE ((size_t)1 << 30) /* bytes per MPI call: counts are ints */
#endif

int comm_broadcast(void *buf, size_t bytes, int root, edm2_err *err) {
#ifdef EDM2_HAVE_MPI
    for (size_t off = 0; g_comm.world > 1 && off < bytes; off += PIECE) {
        size_t n = bytes - off < PIECE ? bytes - off : PIECE;
        MPI_Request req;
        MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD, &req);
        if (wait_for(&req, "broadcast", err)) return -1;
    }
#else
    (void)buf, (void)bytes, (void)root, (void)err;
#endif
    return 0;
}

int comm_allgather(const void *send, void *recv, size_t bytes_each, edm2_err *err) {
    if (g_comm.world == 1) {
        memmove(recv, send, bytes_each);
        return 0;
    }
#ifdef EDM2_HAVE_MPI
    if (bytes_each > PIECE) return err_set(err, "allgather of %zu bytes per process (at most %zu)", bytes_each, PIECE);
    MPI_Request req;
    MPI_Iallgather(send, (int)bytes_each, MPI_BYTE, recv, (int)bytes_each, MPI_BYTE, MPI_COMM_WORLD, &req);
    return wait_for(&req, "allgather", err);
#else
    (void)err;
    return 0;
#endif
}

int comm_barrier(edm2_err *err) {
#ifdef EDM2_HAVE_MPI
    if (g_comm.world > 1) {
        MPI_Request req;
        MPI_Ibarrier(MPI_COMM_WORLD, &req);
        return wait_for(&req, "barrier", err);
    }
#endif
    (void)err;
    return 0;
}

/* ---- The collectives as host services (an error is held for the host's one-line report; the plugin
 * returns the status) ---- */

static edm2_status host_broadcast(void *ctx, void *buf, size_t bytes, int root) {
    (void)ctx;
    edm2_err err;
    if (!comm_broadcast(buf, bytes, root, &err)) return EDM2_OK;
    log_hold_error(err.msg);
    return EDM2_ERR_INTERNAL;
}

static edm2_status host_allgather(void *ctx, const void *send, void *recv, size_t bytes_each) {
    (void)ctx;
    edm2_err err;
    if (!comm_allgather(send, recv, bytes_each, &err)) return EDM2_OK;
    log_hold_error(err.msg);
    return EDM2_ERR_INTERNAL;
}

static edm2_status host_barrier(void *ctx) {
    (void)ctx;
    edm2_err err;
    if (!comm_barrier(&err)) return EDM2_OK;
    log_hold_error(err.msg);
    return EDM2_ERR_INTERNAL;
}

void comm_fill_host(edm2_host *h) {
    h->rank = g_comm.rank, h->world_size = g_comm.world, h->local_rank = g_comm.local_rank;
    if (g_comm.world > 1) h->comm_broadcast = host_broadcast, h->comm_allgather = host_allgather, h->comm_barrier = host_barrier;
}
