/* job_queue.h - the FIFO of jobs waiting for a worker, and the workers
 * (jobs_start_workers and jobs_shutdown are in job_registry.h).
 *
 * The queue lives in struct jobs and is guarded by the registry lock. */
#ifndef TRAIND_JOB_QUEUE_H
#define TRAIND_JOB_QUEUE_H

#include <stdbool.h>

struct jobs;
struct job;

/* A new job: under the registry lock, refuse it when the daemon is stopping
 * (-ESHUTDOWN) or max_queued jobs wait already (-EAGAIN); else give it the
 * registry's reference, insert it into the list and the queue and wake a
 * worker.  Check and push happen under one lock hold, so concurrent
 * submissions cannot pass the limit together.  On failure j is untouched. */
int job_queue_submit(struct jobs *js, struct job *j);
/* (registry lock held) Append a job already in the list (recovery), with no
 * limit. */
void job_queue_push(struct jobs *js, struct job *j);
/* (registry lock held) Take j out of the queue; false when it was not in
 * it (a worker took it already). */
bool job_queue_remove(struct jobs *js, struct job *j);

#endif
