/* threadpool.c - persistent compute threads with a spin-then-futex wait (see threadpool.h).
 *
 * Three counters drive everything, each a futex word:
 *   run_gen  - bumped by pool_run to start a job; workers wait for a change;
 *   done     - workers that finished the current job; the caller waits for
 *              nthreads - 1;
 *   bar_gen  - bumped by the last thread to arrive at a barrier.
 * A waiter spins on its word for a while (work arrives within microseconds
 * inside a step), then registers in `sleepers` and sleeps in FUTEX_WAIT; a
 * waker bumps the word and calls FUTEX_WAKE only when someone sleeps (both
 * sides use sequentially consistent atomics, so a waiter that registered
 * before re-checking the word is always seen). */
#include "threadpool.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define POOL_SPIN_RUN 200000   /* polls before a worker sleeps between jobs */
#define POOL_SPIN_WAIT 20000   /* polls before sleeping in a barrier / join */

struct pool {
    int nthreads;
    pthread_t *threads;     /* (nthreads - 1) */
    pool_fn fn;
    void *ctx;
    _Atomic uint32_t run_gen;
    _Atomic uint32_t done;
    _Atomic uint32_t bar_count;
    _Atomic uint32_t bar_gen;
    _Atomic int sleepers;
    _Atomic int stop;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Wait until *addr != old. */
static void wait_change(struct pool *p, _Atomic uint32_t *addr, uint32_t old, long spins)
{
    for (long i = 0; i < spins; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != old)
            return;
        cpu_relax();
    }
    while (atomic_load(addr) == old) {
        atomic_fetch_add(&p->sleepers, 1);
        if (atomic_load(addr) == old)
            futex_wait(addr, old);
        atomic_fetch_sub(&p->sleepers, 1);
    }
}

static void bump_and_wake(struct pool *p, _Atomic uint32_t *addr)
{
    atomic_fetch_add(addr, 1);
    if (atomic_load(&p->sleepers) > 0)
        futex_wake_all(addr);
}

struct worker_arg {
    struct pool *p;
    int tid;
};

static void *worker_main(void *arg)
{
    struct pool *p = ((struct worker_arg *)arg)->p;
    int tid = ((struct worker_arg *)arg)->tid;
    free(arg);
    uint32_t gen = 0; /* run_gen's initial value: a job posted before this thread runs is not missed */
    for (;;) {
        wait_change(p, &p->run_gen, gen, POOL_SPIN_RUN);
        gen = atomic_load(&p->run_gen);
        if (atomic_load(&p->stop))
            break;
        p->fn(p->ctx, tid, p->nthreads);
        bump_and_wake(p, &p->done);
    }
    return NULL;
}

int pool_create(struct pool **ret, int nthreads)
{
    if (nthreads < 1)
        return -EINVAL;
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->nthreads = nthreads;
    if (nthreads > 1) {
        p->threads = calloc((size_t)nthreads - 1, sizeof(*p->threads));
        if (!p->threads) {
            free(p);
            return -ENOMEM;
        }
    }
    /* compute threads never take signals: they start with all blocked */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int t = 1; t < nthreads; t++) {
        struct worker_arg *a = malloc(sizeof(*a));
        int err = ENOMEM;
        if (a) {
            a->p = p;
            a->tid = t;
            err = pthread_create(&p->threads[t - 1], NULL, worker_main, a);
        }
        if (err) {
            free(a);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            p->nthreads = t; /* stop the ones that started */
            pool_free(p);
            return -err;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    *ret = p;
    return 0;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    bump_and_wake(p, &p->run_gen);
    for (int t = 1; t < p->nthreads; t++)
        pthread_join(p->threads[t - 1], NULL);
    free(p->threads);
    free(p);
}

int pool_threads(const struct pool *p)
{
    return p->nthreads;
}

void pool_run(struct pool *p, pool_fn fn, void *ctx)
{
    if (p->nthreads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->done, 0);
    bump_and_wake(p, &p->run_gen);
    fn(ctx, 0, p->nthreads);
    uint32_t want = (uint32_t)p->nthreads - 1;
    for (;;) {
        uint32_t d = atomic_load(&p->done);
        if (d == want)
            break;
        wait_change(p, &p->done, d, POOL_SPIN_WAIT);
    }
}

void pool_barrier(struct pool *p)
{
    if (p->nthreads == 1)
        return;
    uint32_t gen = atomic_load(&p->bar_gen);
    if (atomic_fetch_add(&p->bar_count, 1) + 1 == (uint32_t)p->nthreads) {
        atomic_store(&p->bar_count, 0);
        bump_and_wake(p, &p->bar_gen);
        return;
    }
    wait_change(p, &p->bar_gen, gen, POOL_SPIN_WAIT);
}
