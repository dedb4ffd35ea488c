/* registry_internal.h - what the daemon's job files share behind the
 * public job_registry.h: the registry itself (struct jobs) and its
 * reference counting.  Included only by daemon/job_*.c, event_log.c,
 * recovery.c and backend.c.
 *
 * Locks: the registry lock `mu` (list, queue, refs, counts) is taken before
 * any job's lock, never after. */
#ifndef TRAIND_REGISTRY_INTERNAL_H
#define TRAIND_REGISTRY_INTERNAL_H

#include <cjson/cJSON.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "backend_data.h"
#include "cjson_add.h"
#include "job_record.h"
#include "job_registry.h"
#include "job_runner.h"

struct jobs {
    struct jobs_config cfg;
    char state_dir[PATH_MAX];
    char jobs_dir[PATH_MAX];
    struct runner_env env;

    pthread_mutex_t mu;            /* registry lock: list, queue, refs, counts */
    pthread_cond_t cond;
    struct job *list;              /* all jobs, ascending id */
    struct job *qhead, *qtail;     /* FIFO of jobs waiting for a worker */
    unsigned n_queued;
    int n_running;
    bool shutting_down;

    pthread_t *workers;
    int n_workers;

    void (*notify)(void *ctx, const char *id);
    void *notify_ctx;

    atomic_uint_fast64_t epochs_total;
    atomic_uint_fast64_t checkpoints_total;

    struct backend_data data;      /* data set and model-use routes (cfg.registry set) */
};

/* Tell the notify hook (the HTTP server's streams) that j has news. */
void jobs_notify_job(struct jobs *js, const struct job *j);
/* Find a job and take a reference (NULL when absent or not an id). */
struct job *job_get(struct jobs *js, const char *id);
/* Drop a reference; the last one frees the job. */
void job_put(struct jobs *js, struct job *j);
/* (registry lock held) Insert keeping ascending id order. */
void jobs_list_insert(struct jobs *js, struct job *j);

/* Print o unformatted and delete it (NULL when o is NULL or out of memory). */
static inline char *json_print_and_delete(cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

#endif
