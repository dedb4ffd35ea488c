/* tasks.c - request work on threads of its own (see tasks.h). */
#include "tasks.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

struct task {
    struct api_tasks *t;
    struct MHD_Connection *conn;
    void (*fn)(void *arg);
    void *arg;
    atomic_bool *done;
};

void api_tasks_init(struct api_tasks *t)
{
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->idle, NULL);
    t->running = 0;
}

void api_tasks_wait(struct api_tasks *t)
{
    pthread_mutex_lock(&t->mu);
    while (t->running > 0)
        pthread_cond_wait(&t->idle, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

void api_tasks_destroy(struct api_tasks *t)
{
    api_tasks_wait(t);
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->mu);
}

static void *task_main(void *p)
{
    struct task *k = p;
    k->fn(k->arg);
    struct api_tasks *t = k->t;
    atomic_store(k->done, true);
    /* resume under the lock: api_tasks_wait returns only after every
     * connection is resumed */
    pthread_mutex_lock(&t->mu);
    MHD_resume_connection(k->conn);
    if (--t->running == 0)
        pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->mu);
    free(k);
    return NULL;
}

int api_task_start(struct api_tasks *t, struct MHD_Connection *conn, void (*fn)(void *arg),
                   void *arg, atomic_bool *done)
{
    struct task *k = malloc(sizeof(*k));
    if (!k)
        return -ENOMEM;
    *k = (struct task){.t = t, .conn = conn, .fn = fn, .arg = arg, .done = done};
    atomic_store(done, false);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* signals stay with the daemon's main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_mutex_lock(&t->mu);
    MHD_suspend_connection(conn);
    pthread_t th;
    int e = pthread_create(&th, &attr, task_main, k);
    if (e == 0)
        t->running++;
    else
        MHD_resume_connection(conn);
    pthread_mutex_unlock(&t->mu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        free(k);
        return -e;
    }
    return 0;
}
