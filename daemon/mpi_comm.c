/* mpi_comm.c - the MPI world and the collective over it (see mpi_comm.h).
 *
 * The sums are deterministic (collective.h): MPI_Allreduce is not used, as
 * its reduction order belongs to the implementation (OpenMPI picks the
 * algorithm by message size and rank count, and a different tree rounds
 * differently).  Instead:
 *   - small vectors (BN statistics, loss): MPI_Allgather of every rank's
 *     vector, then every rank adds them in rank order;
 *   - the gradient: a reduce-scatter done by hand - rank k owns the k-th
 *     contiguous chunk, MPI_Alltoallv sends every rank's chunk k to rank k,
 *     which adds them in rank order - then MPI_Allgatherv of the summed
 *     chunks.  Each rank sends and receives 2 (N - 1) / N of the gradient's
 *     bytes, as a ring allreduce does. */
#include "mpi_comm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collective.h"
#include "config.h"

#if HAVE_MPI
#include <mpi.h>

static struct {
    int initialised;
    int rank, size;
    MPI_Comm comm;
    void *tmp;          /* scratch of the sums, grown on demand */
    size_t tmp_bytes;
    int *counts, *displs;
    struct collective coll;
} W = {.size = 1};

static void *scratch(size_t bytes)
{
    if (bytes > W.tmp_bytes) {
        void *p = realloc(W.tmp, bytes);
        if (!p)
            return NULL;
        W.tmp = p;
        W.tmp_bytes = bytes;
    }
    return W.tmp;
}

static int sum_f64(void *ctx, double *buf, size_t n)
{
    (void)ctx;
    double t0 = MPI_Wtime();
    double *all = scratch(sizeof(double) * n * (size_t)W.size);
    if (!all)
        return -ENOMEM;
    MPI_Allgather(buf, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, W.comm);
    memcpy(buf, all, sizeof(double) * n);
    for (int r = 1; r < W.size; r++)
        for (size_t k = 0; k < n; k++)
            buf[k] += all[(size_t)r * n + k];
    W.coll.seconds += MPI_Wtime() - t0;
    W.coll.calls++;
    return 0;
}

static int sum_f32(void *ctx, float *buf, size_t n)
{
    (void)ctx;
    double t0 = MPI_Wtime();
    const int N = W.size;
    /* chunk k: [n k / N, n (k + 1) / N) */
    for (int k = 0; k < N; k++) {
        size_t a = n * (size_t)k / (size_t)N, b = n * (size_t)(k + 1) / (size_t)N;
        W.displs[k] = (int)a;
        W.counts[k] = (int)(b - a);
    }
    const int mine = W.counts[W.rank];
    float *in = scratch(sizeof(float) * (size_t)mine * (size_t)N + 64);
    if (!in)
        return -ENOMEM;
    /* receive: my chunk from every rank, rank r's at r * mine */
    int *rcounts = W.counts + N, *rdispls = W.displs + N;
    for (int r = 0; r < N; r++) {
        rcounts[r] = mine;
        rdispls[r] = r * mine;
    }
    MPI_Alltoallv(buf, W.counts, W.displs, MPI_FLOAT, in, rcounts, rdispls, MPI_FLOAT, W.comm);
    float *acc = buf + W.displs[W.rank];
    memcpy(acc, in, sizeof(float) * (size_t)mine);
    for (int r = 1; r < N; r++)
        for (int k = 0; k < mine; k++)
            acc[k] += in[(size_t)r * mine + k];
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, W.counts, W.displs, MPI_FLOAT,
                   W.comm);
    W.coll.seconds += MPI_Wtime() - t0;
    W.coll.calls++;
    return 0;
}

static int bcast(void *ctx, void *buf, size_t bytes)
{
    (void)ctx;
    double t0 = MPI_Wtime();
    /* in pieces of at most 1 GiB (MPI counts are int) */
    for (size_t off = 0; off < bytes;) {
        size_t len = bytes - off > (1u << 30) ? (1u << 30) : bytes - off;
        MPI_Bcast((char *)buf + off, (int)len, MPI_BYTE, 0, W.comm);
        off += len;
    }
    W.coll.seconds += MPI_Wtime() - t0;
    W.coll.calls++;
    return 0;
}

static int allgather(void *ctx, const void *mine, void *all, size_t bytes)
{
    (void)ctx;
    double t0 = MPI_Wtime();
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, W.comm);
    W.coll.seconds += MPI_Wtime() - t0;
    W.coll.calls++;
    return 0;
}

int mpi_comm_init(int *argc, char ***argv)
{
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK"))
        return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return -EIO;
    W.initialised = 1;
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        W.initialised = 0;
        return -ENOTSUP;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &W.comm);
    MPI_Comm_rank(W.comm, &W.rank);
    MPI_Comm_size(W.comm, &W.size);
    W.counts = calloc(2 * (size_t)W.size, sizeof(int));
    W.displs = calloc(2 * (size_t)W.size, sizeof(int));
    if (!W.counts || !W.displs)
        return -ENOMEM;
    W.coll = (struct collective){.rank = W.rank, .size = W.size, .sum_f64 = sum_f64,
                                 .sum_f32 = sum_f32, .bcast = bcast, .allgather = allgather};
    return 0;
}

void mpi_comm_finalize(void)
{
    if (!W.initialised)
        return;
    MPI_Comm_free(&W.comm);
    MPI_Finalize();
    W.initialised = 0;
    free(W.tmp);
    free(W.counts);
    free(W.displs);
}

int mpi_comm_rank(void) { return W.rank; }
int mpi_comm_size(void) { return W.size; }

struct collective *mpi_comm_world(void)
{
    return W.initialised && W.size > 1 ? &W.coll : NULL;
}

int mpi_comm_post(const void *msg, size_t len)
{
    if (!mpi_comm_world())
        return 0;
    unsigned long long n = len;
    MPI_Request rq;
    MPI_Ibcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, W.comm, &rq);
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
    if (len > 0)
        bcast(NULL, (void *)msg, len);
    return 0;
}

int mpi_comm_wait(char **ret, size_t *ret_len)
{
    unsigned long long n = 0;
    MPI_Request rq;
    MPI_Ibcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, W.comm, &rq);
    for (;;) {
        int done = 0;
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (done)
            break;
        struct timespec ts = {0, 2 * 1000 * 1000}; /* 2 ms */
        nanosleep(&ts, NULL);
    }
    *ret = NULL;
    *ret_len = 0;
    if (n == 0)
        return 0;
    char *buf = malloc(n + 1);
    if (!buf)
        return -ENOMEM; /* the world ends: the bcast below is not matched */
    bcast(NULL, buf, n);
    buf[n] = '\0';
    *ret = buf;
    *ret_len = n;
    return 0;
}

#else /* !HAVE_MPI */

int mpi_comm_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
void mpi_comm_finalize(void) {}
int mpi_comm_rank(void) { return 0; }
int mpi_comm_size(void) { return 1; }
struct collective *mpi_comm_world(void) { return NULL; }
int mpi_comm_post(const void *msg, size_t len)
{
    (void)msg;
    (void)len;
    return 0;
}
int mpi_comm_wait(char **ret, size_t *ret_len)
{
    *ret = NULL;
    *ret_len = 0;
    return 0;
}

#endif
