/* event_log.c - where a job's events are persisted: appends to
 * jobs/<id>/events.ndjson with the fsync policy (after epoch_end,
 * checkpoint and state events), atomic rewrites of job.json, and the
 * terminal state that reaches the disk before anyone sees it.  See
 * event_log.h. */
#include "event_log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "registry_internal.h"

/* Append one line to events.ndjson (file_mu held by the caller). */
int event_log_append(struct job *j, const char *line, size_t len, bool sync)
{
    if (j->events_fd < 0)
        return -EBADF;
    char *buf = malloc(len + 1);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, line, len);
    buf[len] = '\n';
    int r = fsutil_write_all(j->events_fd, buf, len + 1);
    free(buf);
    if (r == 0 && sync && fsync(j->events_fd) < 0)
        r = -errno;
    if (r < 0)
        log_error("job %s: append to %s: %s", j->id, JOB_EVENTS_FILE, strerror(-r));
    return r;
}

/* Write job.json atomically from record (file_mu held by the caller). */
int event_log_write_record(struct job *j, cJSON *record)
{
    char *text = json_print_and_delete(record);
    if (!text)
        return -ENOMEM;
    struct diag d = {{0}, {0}};
    int r = fsutil_write_file_atomic(j->dir, JOB_RECORD_FILE, text, strlen(text), NULL, NULL, &d);
    free(text);
    if (r < 0)
        log_error("job %s: write %s: %s", j->id, JOB_RECORD_FILE, d.message);
    return r;
}

int job_record_save(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    cJSON *rec = job_record_json(j);
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&j->file_mu);
    int r = event_log_write_record(j, rec);
    pthread_mutex_unlock(&j->file_mu);
    return r;
}

/* --- sequence numbers ------------------------------------------------------- */

/* Write seq.reserved = upto unless it already covers it (file_mu taken). */
static int seq_reserve_write(struct job *j, uint64_t upto)
{
    int r = 0;
    pthread_mutex_lock(&j->file_mu);
    if (upto > j->seq_reserved_disk) {
        char text[32];
        int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", upto);
        struct diag d = {{0}, {0}};
        r = fsutil_write_file_atomic(j->dir, JOB_SEQ_FILE, text, (size_t)n, NULL, NULL, &d);
        if (r == 0)
            j->seq_reserved_disk = upto;
        else
            log_error("job %s: write %s: %s", j->id, JOB_SEQ_FILE, d.message);
    }
    pthread_mutex_unlock(&j->file_mu);
    return r;
}

int event_log_reserve_seq(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    uint64_t want = j->last_seq + JOB_SEQ_RESERVE;
    bool needed = j->last_seq + 1 > j->seq_reserved;
    pthread_mutex_unlock(&j->mu);
    if (!needed)
        return 0;
    int r = seq_reserve_write(j, want);
    pthread_mutex_lock(&j->mu);
    if (r == 0 && want > j->seq_reserved)
        j->seq_reserved = want;
    pthread_mutex_unlock(&j->mu);
    return r;
}

/* (mu held; may drop and retake it) The next sequence number, covered by
 * seq.reserved on disk before it is returned.  When the reservation cannot
 * be written (disk full) the number is handed out all the same: events
 * keep flowing, and the failure was logged. */
static uint64_t seq_next(struct job *j)
{
    while (j->last_seq + 1 > j->seq_reserved) {
        uint64_t want = j->last_seq + JOB_SEQ_RESERVE;
        pthread_mutex_unlock(&j->mu);
        int r = seq_reserve_write(j, want);
        pthread_mutex_lock(&j->mu);
        if (r < 0)
            break;
        if (want > j->seq_reserved)
            j->seq_reserved = want;
    }
    return j->last_seq + 1;
}

/* --- events ------------------------------------------------------------------ */

static bool sync_type(const char *type)
{
    return strcmp(type, "epoch_end") == 0 || strcmp(type, "checkpoint") == 0 ||
           strcmp(type, "state") == 0;
}

/* Add an event: memory (visible to readers at once), then events.ndjson. */
void job_event_add(struct jobs *js, struct job *j, const char *type, const char *data_json,
                   bool persist)
{
    double now = job_now();
    bool progress = strcmp(type, "progress") == 0;
    pthread_mutex_lock(&j->mu);
    uint64_t seq = seq_next(j);
    size_t len;
    char *line = job_event_render(seq, now, type, data_json, &len);
    cJSON *obj = line ? cJSON_Parse(line) : NULL;
    if (!cJSON_IsObject(obj)) {
        pthread_mutex_unlock(&j->mu);
        free(line);
        cJSON_Delete(obj);
        log_warn("job %s: dropped a '%s' event that is not a JSON object", j->id, type);
        return;
    }
    job_apply_event(j, type, obj);
    cJSON_Delete(obj);
    char *copy = persist ? strdup(line) : NULL;
    if ((persist && !copy) || job_keep_event(j, seq, type, line, len) < 0) {
        pthread_mutex_unlock(&j->mu);
        free(copy);
        log_error("job %s: out of memory for a '%s' event", j->id, type);
        return;
    }
    pthread_mutex_unlock(&j->mu);
    jobs_notify_job(js, j);

    if (strcmp(type, "epoch_end") == 0)
        atomic_fetch_add(&js->epochs_total, 1);
    if (strcmp(type, "checkpoint") == 0 && data_json &&
        (strstr(data_json, "\"improved\"") || strstr(data_json, "\"saved\"")))
        atomic_fetch_add(&js->checkpoints_total, 1);

    if (persist && !progress) {
        pthread_mutex_lock(&j->file_mu);
        event_log_append(j, copy, len, sync_type(type));
        pthread_mutex_unlock(&j->file_mu);
    }
    free(copy);
}

/* A terminal state: the event and job.json reach the disk before anyone
 * sees the new state, so a client that saw "succeeded" may DELETE at once. */
void job_finish(struct jobs *js, struct job *j, enum job_state state, const char *error)
{
    bool ok = true;
    double now = job_now();
    cJSON *data = cJSON_CreateObject();
    ok &= cJSON_AddStringToObject(data, "state", job_state_name(state)) != NULL;
    if (error && error[0])
        ok &= cJSON_AddStringToObject(data, "error", error) != NULL;
    char *data_json = json_print_and_delete(cjson_checked(data, ok));

    pthread_mutex_lock(&j->mu);
    uint64_t seq = seq_next(j);
    size_t len = 0;
    char *line = data_json ? job_event_render(seq, now, "state", data_json, &len) : NULL;
    cJSON *rec = job_record_json(j);
    pthread_mutex_unlock(&j->mu);
    free(data_json);
    if (!line) {
        cJSON_Delete(rec);
        log_error("job %s: out of memory", j->id);
        return;
    }
    char ts[32];
    job_format_time(now, ts);
    cJSON_ReplaceItemInObject(rec, "state", cJSON_CreateString(job_state_name(state)));
    cJSON_ReplaceItemInObject(rec, "finished", cJSON_CreateString(ts));
    if (error && error[0])
        cJSON_ReplaceItemInObject(rec, "error", cJSON_CreateString(error));

    pthread_mutex_lock(&j->file_mu);
    event_log_append(j, line, len, true);
    event_log_write_record(j, rec);
    pthread_mutex_unlock(&j->file_mu);

    cJSON *obj = cJSON_Parse(line);
    pthread_mutex_lock(&j->mu);
    job_apply_event(j, "state", obj);
    j->state = state;
    j->version++;
    if (job_keep_event(j, seq, "state", line, len) < 0)
        log_error("job %s: out of memory", j->id);
    pthread_mutex_unlock(&j->mu);
    cJSON_Delete(obj);
    jobs_notify_job(js, j);
    log_info("job %s %s%s%s", j->id, job_state_name(state), error && error[0] ? ": " : "",
             error ? error : "");
}
