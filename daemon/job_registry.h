/* job_registry.h - the daemon's jobs: open a state dir (recovery.c reloads
 * it), start the workers (job_queue.c), give the HTTP server its backend
 * (backend.c), shut down.  Where the rest lives:
 *   job_record.c   one job's state derived from its events, its JSON views
 *   event_log.c    events.ndjson appends (fsync policy) and job.json
 *   job_queue.c    the FIFO queue (max_queued) and the worker threads
 *   job_runner.c   one job's training (shared with `traind run`)
 *   recovery.c     reading the state dir back at start
 *   confine.c      file access that never leaves a job's folder
 *   backend.c      the api_backend functions
 *
 * State dir layout: <state_dir>/jobs/<id>/{job.json, events.ndjson,
 * checkpoints/, resume.h5, initial_weights}; uploaded weights files (warm
 * starts) in <state_dir>/weights/<name>.
 *
 * Locks: the registry lock (list, queue, refs) is taken before any job's
 * lock, never after. */
#ifndef TRAIND_JOB_REGISTRY_H
#define TRAIND_JOB_REGISTRY_H

#define JOBS_WEIGHTS_DIR "weights" /* below state_dir: uploaded weights files */

#include <stdbool.h>

#include "backend.h"
#include "diag.h"
#include "job_runner.h"

struct jobs_config {
    const char *state_dir;
    int workers;
    int threads;                          /* compute threads per job */
    const struct runner_dataset *datasets;
    int n_datasets;
    unsigned max_queued;
    struct datasets *registry;            /* uploaded data sets (NULL: configured ones only) */
    unsigned max_predict_images;          /* per predict request */
    struct collective *coll;              /* NULL, or the MPI world (mpi_comm.h) */
};

struct jobs;

/* Open the state dir (created if missing, checked writable), remove temp
 * leftovers, reload every job.  Queued and interrupted (running) jobs are
 * queued again, interrupted ones first.  -errno with d naming the path. */
int jobs_open(struct jobs **ret, const struct jobs_config *cfg, struct diag *d);
/* Who to tell when a job has new events (the HTTP server's streams). */
void jobs_set_notify(struct jobs *js, void (*notify)(void *ctx, const char *id), void *ctx);
int jobs_start_workers(struct jobs *js, struct diag *d);
/* Refuse new jobs, stop running ones after their current batch (they stay
 * "running" on disk and resume at the next start), join the workers. */
void jobs_shutdown(struct jobs *js);
void jobs_free(struct jobs *js);
/* Fill be with functions over js. */
void jobs_backend(struct jobs *js, struct api_backend *be);

#endif
