/* job_queue.c - the FIFO of queued jobs and the worker threads that take
 * jobs from it and run them (job_runner.c), ending each in its terminal
 * state (event_log.c).  See job_queue.h. */
#include "job_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_log.h"
#include "log.h"
#include "registry_internal.h"

void job_queue_push(struct jobs *js, struct job *j)
{
    j->qnext = NULL;
    j->queued_in_list = true;
    if (js->qtail)
        js->qtail->qnext = j;
    else
        js->qhead = j;
    js->qtail = j;
    js->n_queued++;
}

bool job_queue_remove(struct jobs *js, struct job *j)
{
    struct job **pp = &js->qhead, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp)
        return false;
    *pp = j->qnext;
    if (js->qtail == j)
        js->qtail = prev;
    j->qnext = NULL;
    j->queued_in_list = false;
    js->n_queued--;
    return true;
}

int job_queue_submit(struct jobs *js, struct job *j)
{
    pthread_mutex_lock(&js->mu);
    if (js->shutting_down) {
        pthread_mutex_unlock(&js->mu);
        return -ESHUTDOWN;
    }
    if (js->n_queued >= js->cfg.max_queued) {
        pthread_mutex_unlock(&js->mu);
        return -EAGAIN;
    }
    j->refs = 1;
    jobs_list_insert(js, j);
    job_queue_push(js, j);
    pthread_cond_signal(&js->cond);
    pthread_mutex_unlock(&js->mu);
    return 0;
}

struct worker_sink {
    struct jobs *js;
    struct job *job;
};

static void worker_event(void *ctx, const char *type, const char *data_json, bool persist)
{
    struct worker_sink *ws = ctx;
    job_event_add(ws->js, ws->job, type, data_json, persist);
}

static void run_one(struct jobs *js, struct job *j)
{
    pthread_mutex_lock(&j->mu);
    bool cancelled = j->cancel_requested;
    if (!cancelled) {
        j->state = JOB_STATE_RUNNING;
        if (j->started == 0)
            j->started = job_now();
        j->version++;
    }
    pthread_mutex_unlock(&j->mu);
    if (cancelled) {
        job_finish(js, j, JOB_STATE_CANCELLED, NULL);
        return;
    }
    job_record_save(j);
    log_info("job %s running", j->id);

    struct worker_sink ws = {.js = js, .job = j};
    struct runner_sink sink = {.ctx = &ws, .event = worker_event};
    struct diag d = {{0}, {0}};
    int r = runner_run(&j->spec, j->dir, &js->env, &sink, &j->stop, &d);

    pthread_mutex_lock(&j->mu);
    cancelled = j->cancel_requested;
    pthread_mutex_unlock(&j->mu);
    if (r == 0) {
        job_finish(js, j, JOB_STATE_SUCCEEDED, NULL);
    } else if (r == -ECANCELED && cancelled) {
        job_finish(js, j, JOB_STATE_CANCELLED, NULL);
    } else if (r == -ECANCELED) {
        log_info("job %s stopped for shutdown; it resumes at the next start", j->id);
    } else {
        char msg[1024];
        if (d.field[0] && !strstr(d.message, d.field))
            snprintf(msg, sizeof(msg), "%s: %s", d.field, d.message[0] ? d.message : strerror(-r));
        else
            snprintf(msg, sizeof(msg), "%s", d.message[0] ? d.message : strerror(-r));
        job_finish(js, j, JOB_STATE_FAILED, msg);
    }
}

static void *worker_main(void *arg)
{
    struct jobs *js = arg;
    for (;;) {
        pthread_mutex_lock(&js->mu);
        while (!js->shutting_down && !js->qhead)
            pthread_cond_wait(&js->cond, &js->mu);
        if (js->shutting_down) {
            pthread_mutex_unlock(&js->mu);
            return NULL;
        }
        struct job *j = js->qhead;
        job_queue_remove(js, j);
        j->refs++;
        js->n_running++;
        pthread_mutex_unlock(&js->mu);

        run_one(js, j);

        pthread_mutex_lock(&js->mu);
        js->n_running--;
        pthread_mutex_unlock(&js->mu);
        job_put(js, j);
    }
}

int jobs_start_workers(struct jobs *js, struct diag *d)
{
    js->workers = calloc((size_t)js->cfg.workers, sizeof(*js->workers));
    if (!js->workers)
        return diag_set(d, -ENOMEM, "", "out of memory");
    for (int i = 0; i < js->cfg.workers; i++) {
        int r = pthread_create(&js->workers[i], NULL, worker_main, js);
        if (r != 0)
            return diag_set(d, -r, "workers", "cannot start worker thread: %s", strerror(r));
        js->n_workers++;
    }
    return 0;
}

void jobs_shutdown(struct jobs *js)
{
    pthread_mutex_lock(&js->mu);
    js->shutting_down = true;
    for (struct job *j = js->list; j; j = j->next)
        atomic_store(&j->stop, 1);
    pthread_cond_broadcast(&js->cond);
    pthread_mutex_unlock(&js->mu);
    for (int i = 0; i < js->n_workers; i++)
        pthread_join(js->workers[i], NULL);
    js->n_workers = 0;
}
