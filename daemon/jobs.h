/* jobs.h - the job registry: submission, the FIFO queue, worker threads that
 * run jobs (runner_run), event logs (memory + jobs/<id>/events.ndjson),
 * job.json persistence, recovery at start and orderly shutdown.  Also
 * provides the api_backend (backend.h) that the HTTP server calls.
 *
 * State dir layout: <state_dir>/jobs/<id>/{job.json, events.ndjson,
 * checkpoints/, resume.h5}.  job.json is written atomically; events.ndjson
 * is append-only (fsync after epoch_end, checkpoint and state events) and is
 * the source of history, best values and the checkpoint table on restart.
 *
 * Locks: the registry lock (list, queue, refs) is taken before any job's
 * lock, never after. */
#ifndef TRAIND_JOBS_H
#define TRAIND_JOBS_H

#include <stdbool.h>

#include "backend.h"
#include "diag.h"
#include "runner.h"

struct jobs_config {
    const char *state_dir;
    int workers;
    int threads;                          /* compute threads per job */
    const struct runner_dataset *datasets;
    int n_datasets;
    unsigned max_queued;
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
