/* event_log.h - a job's persisted history: events.ndjson (append-only,
 * the source of history, best values and the checkpoint table on restart)
 * and job.json (the record, written atomically).
 *
 * Locks: appends and record writes hold the job's file_mu (never its mu
 * across an fsync, so readers never wait on the disk). */
#ifndef TRAIND_EVENT_LOG_H
#define TRAIND_EVENT_LOG_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "job_record.h"

#define JOB_RECORD_FILE "job.json"
#define JOB_EVENTS_FILE "events.ndjson"
#define JOB_RECORD_MAX_BYTES (16u << 20)
#define JOB_EVENTS_MAX_BYTES (1u << 30)
/* The high-water mark of handed-out sequence numbers: a decimal number N,
 * written atomically before any seq > the previous N becomes visible, so a
 * daemon restarted after kill -9 numbers on from N + 1 and never reuses a
 * number a client saw (progress events are numbered but not persisted). */
#define JOB_SEQ_FILE "seq.reserved"
#define JOB_SEQ_RESERVE 1024

struct jobs;

/* (file_mu held) Append one line (len bytes, no newline) to events.ndjson,
 * fsync'ed when sync.  Logs and returns -errno on failure. */
int event_log_append(struct job *j, const char *line, size_t len, bool sync);
/* Make sure the job's next sequence number is covered by seq.reserved
 * (takes mu and file_mu); a new job calls it before it is accepted, so a
 * full disk is found at submit.  0 or -errno. */
int event_log_reserve_seq(struct job *j);
/* (file_mu held) Write job.json atomically from record (consumed). */
int event_log_write_record(struct job *j, cJSON *record);
/* job.json from the job's current state (takes mu, then file_mu). */
int job_record_save(struct job *j);
/* Add an event: into memory (visible to readers at once), then, when
 * persist, to events.ndjson.  Progress events are never persisted (the
 * runner sends at most 4 a second: RUNNER_PROGRESS_INTERVAL). */
void job_event_add(struct jobs *js, struct job *j, const char *type, const char *data_json,
                   bool persist);
/* Move j to a terminal state: the "state" event and job.json reach the disk
 * first, then the state is visible, so a client that saw "succeeded" may
 * DELETE at once.  error: NULL or "" unless failed. */
void job_finish(struct jobs *js, struct job *j, enum job_state state, const char *error);

#endif
