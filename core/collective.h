/* collective.h - the operations a training step needs from the other
 * processes of a data-parallel job, as an interface: core/ calls it and stays
 * free of any transport (the MPI implementation is daemon/mpi_comm.c).
 *
 * A NULL collective, or one with size 1, is a single process: model.c and
 * fit.c then run exactly as without this file.
 *
 * Every operation is collective: all ranks call it in the same order with the
 * same sizes, and it returns on every rank with the same result.  The sums
 * are deterministic: every rank's contribution is added in rank order
 * (rank 0 first), element by element, so the result does not depend on the
 * transport's reduction order and is the same on every rank.
 *
 * Ownership: the collective belongs to its creator; core/ only calls it.  It
 * is used by one thread at a time (a job's thread, or compute thread 0 inside
 * a step while the other compute threads wait at a barrier). */
#ifndef TRAIND_COLLECTIVE_H
#define TRAIND_COLLECTIVE_H

#include <stddef.h>
#include <stdint.h>

struct collective {
    int rank;                 /* this process, 0 .. size - 1 */
    int size;                 /* processes in the job */
    void *ctx;                /* the implementation's state */
    /* buf (n) := sum over ranks of buf (n), in rank order. */
    int (*sum_f64)(void *ctx, double *buf, size_t n);
    int (*sum_f32)(void *ctx, float *buf, size_t n);
    /* buf (bytes) := rank 0's buf. */
    int (*bcast)(void *ctx, void *buf, size_t bytes);
    /* all (size, bytes) := every rank's mine (bytes), in rank order. */
    int (*allgather)(void *ctx, const void *mine, void *all, size_t bytes);
    /* Time spent inside the operations above and their count (updated by
     * the implementation; read by the caller between steps). */
    double seconds;
    uint64_t calls;
};

/* True when c spans more than one process. */
static inline int collective_active(const struct collective *c)
{
    return c && c->size > 1;
}

/* Rank 0's value of v (v itself without a collective). */
int collective_agree_int(struct collective *c, int v);

/* FNV-1a over bytes, chained from h (start with COLLECTIVE_FNV_BASIS): the
 * per-epoch fingerprint of the weights that every rank compares. */
#define COLLECTIVE_FNV_BASIS 0xcbf29ce484222325ULL
uint64_t collective_fnv1a(uint64_t h, const void *bytes, size_t len);

/* Compares v across ranks: 0 when every rank has rank 0's value, else the
 * lowest rank that differs (> 0); negative errno when the exchange failed. */
int collective_first_mismatch(struct collective *c, uint64_t v);

#endif
