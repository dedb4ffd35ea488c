/* recovery.h - reading a state dir back at start (exported so that tests
 * and a fuzz target can drive each step on files they wrote).
 *
 * Every function logs what it skips and why (a job folder that cannot be
 * read is skipped, never fatal); none of them writes except to cut a torn
 * last line off events.ndjson and to remove temp leftovers. */
#ifndef TRAIND_RECOVERY_H
#define TRAIND_RECOVERY_H

#include "diag.h"
#include "job_record.h"

struct jobs;

/* Replay <j->dir>/events.ndjson into j (created if missing) and keep its fd
 * open for appends in j->events_fd.  A torn or malformed tail is cut off
 * (truncate + fsync).  0 or -errno. */
int recovery_load_events(struct job *j);
/* Load <jobs_dir>/<id>: job.json (spec re-validated), then its events.
 * NULL (logged) when the folder is not a usable job. */
struct job *recovery_load_job(const char *jobs_dir, const char *id);
/* (at start, before workers) Remove temp leftovers below jobs_dir, load
 * every job folder into the registry in id order and queue the queued and
 * interrupted ones, interrupted first.  -errno with d when jobs_dir cannot
 * be read. */
int recovery_load_all(struct jobs *js, struct diag *d);

#endif
