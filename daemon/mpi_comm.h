/* mpi_comm.h - this process's place in an MPI world (built with -Dmpi and
 * started by mpirun), and the collective (core/collective.h) over it.
 *
 * Rank 0 is the daemon; every other rank runs daemon/mpi_worker.c's loop.
 * Rank 0 posts each distributed job to the workers as one message
 * (mpi_comm_post); a worker waits for it with mpi_comm_wait, sleeping between
 * polls so that an idle worker does not spin on a core.
 *
 * Faults: MPI's default error handler (MPI_ERRORS_ARE_FATAL) is kept, so a
 * rank that dies ends every rank of the world (mpirun then exits non-zero);
 * the job continues from its resume.h5 at the next start.
 *
 * Without MPI (built with -Dmpi=disabled, or not started by mpirun) every
 * function is a no-op: mpi_comm_world() is NULL, the rank 0 and the size 1.
 * Not thread-safe: the calls come from one thread at a time (the job's
 * thread, or the main thread before workers start and after they stop). */
#ifndef TRAIND_MPI_COMM_H
#define TRAIND_MPI_COMM_H

#include <stddef.h>

struct collective;

/* MPI_Init when built with MPI and started by mpirun (OMPI_COMM_WORLD_SIZE
 * or PMIX_RANK in the environment).  0 or a negative errno. */
int mpi_comm_init(int *argc, char ***argv);
/* MPI_Finalize when initialised. */
void mpi_comm_finalize(void);
int mpi_comm_rank(void);
int mpi_comm_size(void);
/* The world as a collective, or NULL when there is one process. */
struct collective *mpi_comm_world(void);

/* Rank 0: send msg (len bytes; len 0 = "stop", the workers leave their loop)
 * to every other rank. */
int mpi_comm_post(const void *msg, size_t len);
/* Other ranks: wait for rank 0's next message: *ret (malloc'ed, NUL-ended,
 * caller frees; NULL for "stop") and *ret_len. */
int mpi_comm_wait(char **ret, size_t *ret_len);

#endif
