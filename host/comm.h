/* comm.h: the process group of a data-parallel run. When edm2host is started by an MPI launcher (mpirun,
 * or srun under Slurm) and built with MPI, every process is one rank of MPI_COMM_WORLD; otherwise the group
 * is this one process. Collectives over host memory, each with a deadline: a process that died or hangs
 * makes the others fail with a one-line error instead of waiting forever (then comm_abort ends them all). */
#ifndef EDM2_HOST_COMM_H
#define EDM2_HOST_COMM_H

#include <stddef.h>

#include "errors.h"

/* Called first in main: joins the MPI group when launched by an MPI launcher. 0, or -1 with a reason. */
int comm_init(int *argc, char ***argv, edm2_err *err);
void comm_finalize(void);
int comm_rank(void);
int comm_world(void);
int comm_local_size(void); /* processes on this node */
/* Seconds a collective may wait for the other processes (default 600). */
void comm_set_timeout(double seconds);
/* buf (bytes) from process `root` to all. */
int comm_broadcast(void *buf, size_t bytes, int root, edm2_err *err);
/* recv[world * bytes_each] = every process's send[bytes_each], in rank order. */
int comm_allgather(const void *send, void *recv, size_t bytes_each, edm2_err *err);
int comm_barrier(edm2_err *err);
/* The group in the host services plugins get (ABI 1.2 fields): rank, sizes, and the collectives above. */
struct edm2_host;
void comm_fill_host(struct edm2_host *h);
/* Ends every process of the group with exit status `code` (after a fatal error on this one). */
void comm_abort(int code);

#endif
