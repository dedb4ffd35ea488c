/* recovery.c - where recovery happens: at start, every jobs/<id>/ is read
 * back (job.json, then events.ndjson replayed, a torn last line cut off),
 * temp leftovers are removed, and queued and interrupted jobs are queued
 * again, interrupted ones first.  See recovery.h. */
#include "recovery.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "event_log.h"
#include "fsutil.h"
#include "job_id.h"
#include "job_queue.h"
#include "log.h"
#include "registry_internal.h"
#include "template.h"

static void report_temp_leftover(void *ctx, const char *relpath, int err)
{
    const char *where = ctx;
    if (err < 0)
        log_warn("%s/%s: cannot remove temp leftover: %s", where, relpath, strerror(-err));
    else
        log_info("removed temp leftover %s/%s", where, relpath);
}

static int read_text(const char *dir, const char *name, size_t max, char **ret, size_t *ret_len,
                     struct diag *d)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return diag_set(d, -ENAMETOOLONG, path, "path too long");
    void *data;
    int r = fsutil_read_file(path, max, &data, ret_len, d);
    if (r < 0)
        return r;
    *ret = data;
    return 0;
}

/* seq.reserved: numbers up to it may have been handed out before a crash, so
 * the job numbers on past it.  A missing file (a job from an older daemon)
 * or an unreadable one leaves last_seq as the events have set it. */
static void recovery_load_seq_reserved(struct job *j)
{
    char *text = NULL;
    size_t len = 0;
    struct diag d = {{0}, {0}};
    int r = read_text(j->dir, JOB_SEQ_FILE, 64, &text, &len, &d);
    if (r < 0) {
        if (r != -ENOENT)
            log_warn("job %s: %s: %s", j->id, JOB_SEQ_FILE, d.message);
        return;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    bool ok = errno == 0 && end != text && (*end == '\n' || *end == '\0') && text[0] != '-';
    free(text);
    if (!ok) {
        log_warn("job %s: %s: not a number, ignored", j->id, JOB_SEQ_FILE);
        return;
    }
    j->seq_reserved = j->seq_reserved_disk = (uint64_t)v;
    if ((uint64_t)v > j->last_seq)
        j->last_seq = (uint64_t)v;
}

/* Replay events.ndjson; a torn last line (crash mid-write) is cut off. */
int recovery_load_events(struct job *j)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", j->dir, JOB_EVENTS_FILE) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char *text = NULL;
    size_t len = 0;
    struct diag d = {{0}, {0}};
    int r = read_text(j->dir, JOB_EVENTS_FILE, JOB_EVENTS_MAX_BYTES, &text, &len, &d);
    if (r < 0) {
        close(fd);
        return r;
    }
    size_t good = 0, pos = 0;
    while (pos < len) {
        char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl)
            break;
        *nl = '\0';
        cJSON *obj = cJSON_Parse(text + pos);
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(obj, "seq");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
        if (!cJSON_IsNumber(seq) || !cJSON_IsString(type) || seq->valuedouble <= (double)j->last_seq) {
            cJSON_Delete(obj);
            break;
        }
        job_apply_event(j, type->valuestring, obj);
        size_t line_len = (size_t)(nl - (text + pos));
        char *copy = malloc(line_len + 1);
        if (copy) {
            memcpy(copy, text + pos, line_len + 1);
            job_keep_event(j, (uint64_t)seq->valuedouble, type->valuestring, copy, line_len);
        }
        cJSON_Delete(obj);
        pos = (size_t)(nl - text) + 1;
        good = pos;
    }
    free(text);
    if (good < len) {
        log_warn("job %s: %s: dropping %zu bytes after the last complete event", j->id,
                 JOB_EVENTS_FILE, len - good);
        if (ftruncate(fd, (off_t)good) < 0 || fsync(fd) < 0) {
            r = -errno;
            close(fd);
            return r;
        }
    }
    j->events_fd = fd;
    recovery_load_seq_reserved(j);
    return 0;
}

static double record_time(const cJSON *rec, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
    if (!cJSON_IsString(v))
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    if (sscanf(v->valuestring, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + ms / 1000.0;
}

struct job *recovery_load_job(const char *jobs_dir, const char *id)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s/%s", jobs_dir, id);
    if (n < 0 || (size_t)n >= sizeof(dir))
        return NULL;
    char *text = NULL;
    size_t len;
    struct diag d = {{0}, {0}};
    if (read_text(dir, JOB_RECORD_FILE, JOB_RECORD_MAX_BYTES, &text, &len, &d) < 0) {
        log_warn("job %s: skipped: %s", id, d.message);
        return NULL;
    }
    cJSON *rec = cJSON_Parse(text);
    free(text);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(rec, "spec");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(rec, "state");
    char *spec_text = cJSON_IsObject(spec) ? cJSON_PrintUnformatted(spec) : NULL;
    struct job *j = job_new(id, dir);
    enum job_state st;
    if (!j || !spec_text || !cJSON_IsString(state) || job_state_parse(state->valuestring, &st) < 0 ||
        job_spec_parse(&j->spec, spec_text, strlen(spec_text), &d) < 0) {
        log_warn("job %s: skipped: %s is not a valid job record%s%s", id, JOB_RECORD_FILE,
                 d.message[0] ? ": " : "", d.message);
        free(spec_text);
        cJSON_Delete(rec);
        job_free(j);
        return NULL;
    }
    j->spec_json = job_spec_to_json(&j->spec);
    free(spec_text);
    j->state = st;
    j->created = record_time(rec, "created");
    j->started = record_time(rec, "started");
    j->finished = record_time(rec, "finished");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(rec, "error");
    if (cJSON_IsString(err))
        snprintf(j->error, sizeof(j->error), "%s", err->valuestring);
    cJSON_Delete(rec);

    int r = recovery_load_events(j);
    if (r < 0) {
        log_warn("job %s: skipped: %s: %s", id, JOB_EVENTS_FILE, strerror(-r));
        job_free(j);
        return NULL;
    }
    return j;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int recovery_load_all(struct jobs *js, struct diag *d)
{
    int dfd = open(js->jobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return diag_set(d, -errno, js->jobs_dir, "%s: %s", js->jobs_dir, strerror(errno));
    /* jobs/<id>/checkpoints/ and the template's folders below it */
    fsutil_remove_temp_files(dfd, 2 + TEMPLATE_MAX_COMPONENTS, report_temp_leftover,
                             (void *)js->jobs_dir);
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return diag_set(d, -errno, js->jobs_dir, "%s: %s", js->jobs_dir, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        if (!api_id_valid(de->d_name)) {
            log_warn("%s/%s: not a job folder, ignored", js->jobs_dir, de->d_name);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn)
                break;
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (names[n])
            n++;
    }
    closedir(dir);
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);

    /* Interrupted jobs first, then queued ones, each in id (= submit) order. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (!names[i])
                continue;
            struct job *j = recovery_load_job(js->jobs_dir, names[i]);
            if (!j) {
                free(names[i]);
                names[i] = NULL;
                continue;
            }
            bool interrupted = j->state == JOB_STATE_RUNNING;
            if (pass == 0 && !interrupted) {
                job_free(j);
                continue;
            }
            free(names[i]);
            names[i] = NULL;
            j->refs = 1;
            jobs_list_insert(js, j);
            if (j->state == JOB_STATE_RUNNING || j->state == JOB_STATE_QUEUED) {
                if (interrupted)
                    log_info("job %s was interrupted; it continues from its resume state", j->id);
                job_queue_push(js, j);
            }
        }
    }
    free(names);
    return 0;
}
