/* tasks.h - slow request work (a data set import, an evaluation, a
 * prediction) on a thread of its own, so that libmicrohttpd's single
 * polling thread keeps serving everyone else.
 *
 * api_task_start suspends the connection and runs fn(arg) on a new
 * detached thread; when fn returns, the task sets *done and resumes the
 * connection, and libmicrohttpd calls the access handler again, which sees
 * *done and answers from what fn left in arg.  api_tasks_wait blocks until
 * no task is running: the server calls it before MHD_stop_daemon (a
 * suspended connection must be resumed before the daemon stops).
 *
 * Ownership: arg stays the caller's (it lives in the request); the task
 * only writes through it until it sets *done. */
#ifndef TRAIND_API_TASKS_H
#define TRAIND_API_TASKS_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct api_tasks {
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int running; /* guarded by mu */
};

void api_tasks_init(struct api_tasks *t);
void api_tasks_wait(struct api_tasks *t);
void api_tasks_destroy(struct api_tasks *t);

/* 0, or a negative errno when the thread cannot start (the connection is
 * then not suspended and the caller answers at once). */
int api_task_start(struct api_tasks *t, struct MHD_Connection *conn, void (*fn)(void *arg),
                   void *arg, atomic_bool *done);

#endif
