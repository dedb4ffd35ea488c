/* threadpool.h - the engine's persistent compute threads.
 *
 * pool_run(p, fn, ctx) executes fn(ctx, tid, nthreads) once on each of the
 * pool's nthreads threads (tid 0 is the calling thread) and returns when all
 * have finished.  The pool's own threads block all signals.  Inside fn, pool_barrier(p) waits until every thread has
 * reached it.  Waiting spins briefly and then sleeps on a futex, so an idle
 * pool costs no CPU.
 *
 * Ownership: pool_create() starts nthreads - 1 threads; pool_free() stops and
 * joins them; pool_free(NULL) is a no-op.  One caller at a time may use
 * pool_run(). */
#ifndef TRAIND_THREADPOOL_H
#define TRAIND_THREADPOOL_H

typedef void (*pool_fn)(void *ctx, int tid, int nthreads);

struct pool;

/* 0 or -errno (-EINVAL for nthreads < 1, or pthread_create's error). */
int pool_create(struct pool **ret, int nthreads);
void pool_free(struct pool *p);
int pool_threads(const struct pool *p);
void pool_run(struct pool *p, pool_fn fn, void *ctx);
/* Only from inside fn, by all nthreads threads. */
void pool_barrier(struct pool *p);

#endif
