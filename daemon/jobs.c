/* jobs.c - registry, FIFO queue, worker threads, event logs, persistence,
 * recovery and the api_backend over them; see jobs.h. */
#include "jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fsutil.h"
#include "job.h"
#include "log.h"
#include "model.h"
#include "route.h"
#include "template.h"

#define RECORD_FILE "job.json"
#define EVENTS_FILE "events.ndjson"
#define RECORD_MAX_BYTES (16u << 20)
#define EVENTS_MAX_BYTES (1u << 30)
#define PROGRESS_MIN_INTERVAL 0.25 /* at most 4 progress events per second */

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
};

/* --- small helpers -------------------------------------------------------- */

static void notify(struct jobs *js, const struct job *j)
{
    if (js->notify)
        js->notify(js->notify_ctx, j->id);
}

static char *print_and_delete(cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* Remove dirfd/name and everything below it, never following symlinks. */
static int remove_tree_at(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        int e = -errno;
        close(fd);
        return e;
    }
    int ret = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = remove_tree_at(dirfd(dir), de->d_name);
        if (r < 0 && ret == 0)
            ret = r;
    }
    closedir(dir);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && ret == 0)
        ret = -errno;
    return ret;
}

static void report_temp_leftover(void *ctx, const char *relpath, int err)
{
    const char *where = ctx;
    if (err < 0)
        log_warn("%s/%s: cannot remove temp leftover: %s", where, relpath, strerror(-err));
    else
        log_info("removed temp leftover %s/%s", where, relpath);
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Append one line to events.ndjson (file_mu held by the caller). */
static int events_append(struct job *j, const char *line, size_t len, bool sync)
{
    if (j->events_fd < 0)
        return -EBADF;
    char *buf = malloc(len + 1);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, line, len);
    buf[len] = '\n';
    int r = write_all(j->events_fd, buf, len + 1);
    free(buf);
    if (r == 0 && sync && fsync(j->events_fd) < 0)
        r = -errno;
    if (r < 0)
        log_error("job %s: append to %s: %s", j->id, EVENTS_FILE, strerror(-r));
    return r;
}

/* Write job.json atomically from record (file_mu held by the caller). */
static int record_write(struct job *j, cJSON *record)
{
    char *text = print_and_delete(record);
    if (!text)
        return -ENOMEM;
    struct diag d = {{0}, {0}};
    int r = fsutil_write_file_atomic(j->dir, RECORD_FILE, text, strlen(text), NULL, &d);
    free(text);
    if (r < 0)
        log_error("job %s: write %s: %s", j->id, RECORD_FILE, d.message);
    return r;
}

static int record_save(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    cJSON *rec = job_record_json(j);
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&j->file_mu);
    int r = record_write(j, rec);
    pthread_mutex_unlock(&j->file_mu);
    return r;
}

/* --- events ------------------------------------------------------------------ */

static bool sync_type(const char *type)
{
    return strcmp(type, "epoch_end") == 0 || strcmp(type, "checkpoint") == 0 ||
           strcmp(type, "state") == 0;
}

/* Add an event: memory (visible to readers at once), then events.ndjson. */
static void event_add(struct jobs *js, struct job *j, const char *type, const char *data_json,
                      bool persist)
{
    double now = job_now();
    bool progress = strcmp(type, "progress") == 0;
    pthread_mutex_lock(&j->mu);
    if (progress && now - j->last_progress_event < PROGRESS_MIN_INTERVAL) {
        /* not kept as an event, but the job's progress snapshot moves on */
        cJSON *obj = cJSON_Parse(data_json ? data_json : "{}");
        if (cJSON_IsObject(obj))
            job_apply_event(j, type, obj);
        pthread_mutex_unlock(&j->mu);
        cJSON_Delete(obj);
        return;
    }
    uint64_t seq = j->last_seq + 1;
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
    if (progress)
        j->last_progress_event = now;
    char *copy = persist ? strdup(line) : NULL;
    if ((persist && !copy) || job_keep_event(j, seq, type, line, len) < 0) {
        pthread_mutex_unlock(&j->mu);
        free(copy);
        log_error("job %s: out of memory for a '%s' event", j->id, type);
        return;
    }
    pthread_mutex_unlock(&j->mu);
    notify(js, j);

    if (strcmp(type, "epoch_end") == 0)
        atomic_fetch_add(&js->epochs_total, 1);
    if (strcmp(type, "checkpoint") == 0 && data_json &&
        (strstr(data_json, "\"improved\"") || strstr(data_json, "\"saved\"")))
        atomic_fetch_add(&js->checkpoints_total, 1);

    if (persist && !progress) {
        pthread_mutex_lock(&j->file_mu);
        events_append(j, copy, len, sync_type(type));
        pthread_mutex_unlock(&j->file_mu);
    }
    free(copy);
}

/* A terminal state: the event and job.json reach the disk before anyone
 * sees the new state, so a client that saw "succeeded" may DELETE at once. */
static void finish_job(struct jobs *js, struct job *j, enum job_state state, const char *error)
{
    double now = job_now();
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "state", job_state_name(state));
    if (error && error[0])
        cJSON_AddStringToObject(data, "error", error);
    char *data_json = print_and_delete(data);

    pthread_mutex_lock(&j->mu);
    uint64_t seq = j->last_seq + 1;
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
    events_append(j, line, len, true);
    record_write(j, rec);
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
    notify(js, j);
    log_info("job %s %s%s%s", j->id, job_state_name(state), error && error[0] ? ": " : "",
             error ? error : "");
}

/* --- registry -------------------------------------------------------------- */

/* Find a job and take a reference (NULL when absent). */
static struct job *job_get(struct jobs *js, const char *id)
{
    if (!api_id_valid(id))
        return NULL;
    pthread_mutex_lock(&js->mu);
    struct job *j = js->list;
    while (j && strcmp(j->id, id) != 0)
        j = j->next;
    if (j)
        j->refs++;
    pthread_mutex_unlock(&js->mu);
    return j;
}

static void job_put(struct jobs *js, struct job *j)
{
    pthread_mutex_lock(&js->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&js->mu);
    if (last)
        job_free(j);
}

/* Insert keeping ascending id order (registry lock held). */
static void list_insert(struct jobs *js, struct job *j)
{
    struct job **pp = &js->list;
    while (*pp && strcmp((*pp)->id, j->id) < 0)
        pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
}

static void queue_push(struct jobs *js, struct job *j)
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

static bool queue_remove(struct jobs *js, struct job *j)
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

/* --- workers ------------------------------------------------------------------ */

struct worker_sink {
    struct jobs *js;
    struct job *job;
};

static void worker_event(void *ctx, const char *type, const char *data_json, bool persist)
{
    struct worker_sink *ws = ctx;
    event_add(ws->js, ws->job, type, data_json, persist);
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
        finish_job(js, j, JOB_STATE_CANCELLED, NULL);
        return;
    }
    record_save(j);
    log_info("job %s running", j->id);

    struct worker_sink ws = {.js = js, .job = j};
    struct runner_sink sink = {.ctx = &ws, .event = worker_event, .print = NULL};
    struct diag d = {{0}, {0}};
    int r = runner_run(&j->spec, j->dir, &js->env, &sink, &j->stop, &d);

    pthread_mutex_lock(&j->mu);
    cancelled = j->cancel_requested;
    pthread_mutex_unlock(&j->mu);
    if (r == 0) {
        finish_job(js, j, JOB_STATE_SUCCEEDED, NULL);
    } else if (r == -ECANCELED && cancelled) {
        finish_job(js, j, JOB_STATE_CANCELLED, NULL);
    } else if (r == -ECANCELED) {
        log_info("job %s stopped for shutdown; it resumes at the next start", j->id);
    } else {
        char msg[1024];
        if (d.field[0] && !strstr(d.message, d.field))
            snprintf(msg, sizeof(msg), "%s: %s", d.field, d.message[0] ? d.message : strerror(-r));
        else
            snprintf(msg, sizeof(msg), "%s", d.message[0] ? d.message : strerror(-r));
        finish_job(js, j, JOB_STATE_FAILED, msg);
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
        queue_remove(js, j);
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

/* --- loading ------------------------------------------------------------------ */

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

/* Replay events.ndjson; a torn last line (crash mid-write) is cut off. */
static int load_events(struct job *j)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", j->dir, EVENTS_FILE) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char *text = NULL;
    size_t len = 0;
    struct diag d = {{0}, {0}};
    int r = read_text(j->dir, EVENTS_FILE, EVENTS_MAX_BYTES, &text, &len, &d);
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
                 EVENTS_FILE, len - good);
        if (ftruncate(fd, (off_t)good) < 0 || fsync(fd) < 0) {
            r = -errno;
            close(fd);
            return r;
        }
    }
    j->events_fd = fd;
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

static struct job *load_job(struct jobs *js, const char *id)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s/%s", js->jobs_dir, id);
    if (n < 0 || (size_t)n >= sizeof(dir))
        return NULL;
    char *text = NULL;
    size_t len;
    struct diag d = {{0}, {0}};
    if (read_text(dir, RECORD_FILE, RECORD_MAX_BYTES, &text, &len, &d) < 0) {
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
        log_warn("job %s: skipped: %s is not a valid job record%s%s", id, RECORD_FILE,
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

    int r = load_events(j);
    if (r < 0) {
        log_warn("job %s: skipped: %s: %s", id, EVENTS_FILE, strerror(-r));
        job_free(j);
        return NULL;
    }
    return j;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_all(struct jobs *js, struct diag *d)
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
            struct job *j = load_job(js, names[i]);
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
            list_insert(js, j);
            if (j->state == JOB_STATE_RUNNING || j->state == JOB_STATE_QUEUED) {
                if (interrupted)
                    log_info("job %s was interrupted; it continues from its resume state", j->id);
                queue_push(js, j);
            }
        }
    }
    free(names);
    return 0;
}

/* --- lifecycle ---------------------------------------------------------------- */

static int make_dir(const char *path, struct diag *d)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return diag_set(d, -errno, path, "state_dir %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) < 0)
        return diag_set(d, -errno, path, "state_dir %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return diag_set(d, -ENOTDIR, path, "state_dir %s: not a directory", path);
    return 0;
}

int jobs_open(struct jobs **ret, const struct jobs_config *cfg, struct diag *d)
{
    struct jobs *js = calloc(1, sizeof(*js));
    if (!js)
        return diag_set(d, -ENOMEM, "", "out of memory");
    js->cfg = *cfg;
    int r;
    if (snprintf(js->state_dir, sizeof(js->state_dir), "%s", cfg->state_dir) >=
            (int)sizeof(js->state_dir) ||
        snprintf(js->jobs_dir, sizeof(js->jobs_dir), "%s/jobs", cfg->state_dir) >=
            (int)sizeof(js->jobs_dir)) {
        free(js);
        return diag_set(d, -ENAMETOOLONG, cfg->state_dir, "state_dir: path too long");
    }
    js->env.datasets = cfg->datasets;
    js->env.n_datasets = cfg->n_datasets;
    js->env.threads = cfg->threads;
    pthread_mutex_init(&js->mu, NULL);
    pthread_cond_init(&js->cond, NULL);

    if ((r = make_dir(js->state_dir, d)) < 0 || (r = make_dir(js->jobs_dir, d)) < 0)
        goto fail;
    /* Writable? (an atomic write of a probe file, then remove it) */
    struct diag wd = {{0}, {0}};
    if ((r = fsutil_write_file_atomic(js->jobs_dir, ".probe", "", 0, NULL, &wd)) < 0) {
        diag_set(d, r, js->jobs_dir, "state_dir %s is not writable: %s", js->jobs_dir,
                 wd.message);
        goto fail;
    }
    char probe[PATH_MAX + 16];
    snprintf(probe, sizeof(probe), "%s/.probe", js->jobs_dir);
    unlink(probe);
    if ((r = load_all(js, d)) < 0)
        goto fail;
    *ret = js;
    return 0;
fail:
    jobs_free(js);
    return r;
}

void jobs_set_notify(struct jobs *js, void (*fn)(void *ctx, const char *id), void *ctx)
{
    pthread_mutex_lock(&js->mu);
    js->notify = fn;
    js->notify_ctx = ctx;
    pthread_mutex_unlock(&js->mu);
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

void jobs_free(struct jobs *js)
{
    if (!js)
        return;
    struct job *j = js->list;
    while (j) {
        struct job *next = j->next;
        job_free(j);
        j = next;
    }
    free(js->workers);
    pthread_cond_destroy(&js->cond);
    pthread_mutex_destroy(&js->mu);
    free(js);
}

/* --- backend ----------------------------------------------------------------- */

static int new_id(struct jobs *js, char id[JOB_ID_LEN + 1])
{
    static uint64_t last_ms;
    uint64_t ms = (uint64_t)(job_now() * 1000.0);
    pthread_mutex_lock(&js->mu);
    if (ms <= last_ms)
        ms = last_ms + 1;
    last_ms = ms;
    pthread_mutex_unlock(&js->mu);
    uint16_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint16_t)getpid();
    snprintf(id, JOB_ID_LEN + 1, "%012" PRIx64 "%04x", (uint64_t)(ms & 0xffffffffffffULL), rnd);
    return 0;
}

static int be_submit(void *ctx, const char *body, size_t len, char **ret_json,
                     char ret_id[static 17], struct diag *d)
{
    struct jobs *js = ctx;
    pthread_mutex_lock(&js->mu);
    bool stopping = js->shutting_down;
    bool full = js->n_queued >= js->cfg.max_queued;
    pthread_mutex_unlock(&js->mu);
    if (stopping)
        return -ESHUTDOWN;
    if (full)
        return diag_set(d, -EAGAIN, "", "%u jobs are queued already; try again later",
                        js->cfg.max_queued);

    struct job_spec spec;
    int r = job_spec_parse(&spec, body, len, d);
    if (r < 0)
        return r == -ENOMEM ? r : -EINVAL;
    if (!runner_find_dataset(&js->env, spec.dataset)) {
        job_spec_free(&spec);
        char known[512] = "";
        for (int i = 0; i < js->env.n_datasets; i++) {
            size_t k = strlen(known);
            snprintf(known + k, sizeof(known) - k, "%s%s", i ? ", " : "",
                     js->env.datasets[i].name);
        }
        return diag_set(d, -EINVAL, "/dataset", "unknown dataset '%s' (known: %s)", spec.dataset,
                        known);
    }

    char id[JOB_ID_LEN + 1], dir[PATH_MAX];
    for (int attempt = 0;; attempt++) {
        new_id(js, id);
        if (snprintf(dir, sizeof(dir), "%s/%s", js->jobs_dir, id) >= (int)sizeof(dir)) {
            job_spec_free(&spec);
            return diag_set(d, -ENAMETOOLONG, "", "state_dir path too long");
        }
        if (mkdir(dir, 0700) == 0)
            break;
        if (errno != EEXIST || attempt > 8) {
            int e = errno;
            job_spec_free(&spec);
            log_error("mkdir %s: %s", dir, strerror(e));
            return diag_set(d, -e, "", "cannot create the job folder: %s", strerror(e));
        }
    }
    struct job *j = job_new(id, dir);
    if (!j) {
        job_spec_free(&spec);
        rmdir(dir);
        return -ENOMEM;
    }
    j->spec = spec;
    j->spec_json = job_spec_to_json(&j->spec);
    j->created = job_now();
    j->state = JOB_STATE_QUEUED;
    j->progress.epochs = spec.epochs;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, EVENTS_FILE);
    j->events_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (!j->spec_json || j->events_fd < 0 || record_save(j) < 0) {
        int e = j->events_fd < 0 ? errno : EIO;
        log_error("job %s: cannot create its files: %s", id, strerror(e));
        int pfd = open(js->jobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0) {
            remove_tree_at(pfd, id);
            close(pfd);
        }
        job_free(j);
        return diag_set(d, -EIO, "", "cannot store the job: %s", strerror(e));
    }
    event_add(js, j, "state", "{\"state\":\"queued\"}", true);

    pthread_mutex_lock(&j->mu);
    char *out = print_and_delete(job_to_json(j, true));
    pthread_mutex_unlock(&j->mu);

    pthread_mutex_lock(&js->mu);
    j->refs = 1;
    list_insert(js, j);
    queue_push(js, j);
    pthread_cond_signal(&js->cond);
    pthread_mutex_unlock(&js->mu);
    log_info("job %s queued (%s)", id, j->spec.name[0] ? j->spec.name : "unnamed");

    if (!out)
        return -ENOMEM;
    memcpy(ret_id, id, JOB_ID_LEN + 1);
    *ret_json = out;
    return 0;
}

static int be_list(void *ctx, const char *state, char **ret_json, struct diag *d)
{
    struct jobs *js = ctx;
    enum job_state filter = JOB_STATE_COUNT;
    if (state && job_state_parse(state, &filter) < 0)
        return diag_set(d, -EINVAL, "", "unknown state '%s' (queued, running, succeeded, "
                                        "failed, cancelled)", state);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "jobs");
    pthread_mutex_lock(&js->mu);
    for (struct job *j = js->list; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        if (filter == JOB_STATE_COUNT || j->state == filter)
            cJSON_AddItemToArray(arr, job_to_json(j, false));
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&js->mu);
    char *out = print_and_delete(root);
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    return 0;
}

/* Render a job view under its lock. */
static int render(struct jobs *js, const char *id, cJSON *(*view)(const struct job *), char **ret)
{
    struct job *j = job_get(js, id);
    if (!j)
        return -ENOENT;
    pthread_mutex_lock(&j->mu);
    cJSON *o = view(j);
    pthread_mutex_unlock(&j->mu);
    job_put(js, j);
    char *out = print_and_delete(o);
    if (!out)
        return -ENOMEM;
    *ret = out;
    return 0;
}

/* The same for views that print text themselves (under the job's lock). */
static int render_text(struct jobs *js, const char *id, char *(*view)(struct job *), char **ret)
{
    struct job *j = job_get(js, id);
    if (!j)
        return -ENOENT;
    pthread_mutex_lock(&j->mu);
    char *out = view(j);
    pthread_mutex_unlock(&j->mu);
    job_put(js, j);
    if (!out)
        return -ENOMEM;
    *ret = out;
    return 0;
}

static int be_get(void *ctx, const char *id, char **ret_json)
{
    return render_text(ctx, id, job_resource_text, ret_json);
}

static int be_cancel(void *ctx, const char *id, char **ret_json)
{
    struct jobs *js = ctx;
    struct job *j = job_get(js, id);
    if (!j)
        return -ENOENT;
    pthread_mutex_lock(&js->mu);
    bool was_queued = queue_remove(js, j);
    pthread_mutex_unlock(&js->mu);
    if (was_queued) {
        pthread_mutex_lock(&j->mu);
        j->cancel_requested = true;
        pthread_mutex_unlock(&j->mu);
        finish_job(js, j, JOB_STATE_CANCELLED, NULL);
    } else {
        pthread_mutex_lock(&j->mu);
        if (!job_state_terminal(j->state)) {
            /* picked by a worker (running, or about to run) */
            j->cancel_requested = true;
            atomic_store(&j->stop, 1);
        }
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_lock(&j->mu);
    char *out = job_resource_text(j);
    pthread_mutex_unlock(&j->mu);
    job_put(js, j);
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    return 0;
}

static int be_remove(void *ctx, const char *id, struct diag *d)
{
    struct jobs *js = ctx;
    if (!api_id_valid(id))
        return -ENOENT;
    pthread_mutex_lock(&js->mu);
    struct job **pp = &js->list;
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    struct job *j = *pp;
    if (!j) {
        pthread_mutex_unlock(&js->mu);
        return -ENOENT;
    }
    pthread_mutex_lock(&j->mu);
    enum job_state st = j->state;
    pthread_mutex_unlock(&j->mu);
    if (!job_state_terminal(st)) {
        pthread_mutex_unlock(&js->mu);
        return diag_set(d, -EBUSY, "", "job %s is %s; cancel it first", id, job_state_name(st));
    }
    *pp = j->next;
    pthread_mutex_unlock(&js->mu);

    int pfd = open(js->jobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = pfd < 0 ? -errno : remove_tree_at(pfd, id);
    if (pfd >= 0) {
        if (fsync(pfd) < 0 && r == 0)
            r = -errno;
        close(pfd);
    }
    if (r < 0)
        log_error("job %s: removing its folder: %s", id, strerror(-r));
    else
        log_info("job %s deleted", id);
    notify(js, j); /* streams of a deleted job end */
    job_put(js, j);
    return 0;
}

static char *history_csv(struct job *j)
{
    return job_history_csv(j);
}

static int be_metrics(void *ctx, const char *id, bool csv, char **ret_text)
{
    if (csv)
        return render_text(ctx, id, history_csv, ret_text);
    return render(ctx, id, job_history_json, ret_text);
}

static int be_checkpoints(void *ctx, const char *id, char **ret_json)
{
    return render(ctx, id, job_checkpoints_json, ret_json);
}

/* Which file a download asks for, and what the table says about it. */
static int pick_file(const struct job *j, enum api_file_kind kind, const char (*components)[256],
                     int n, int policy, char *name, size_t namesz, struct job_ckpt *ret)
{
    const struct job_ckpt *found = NULL;
    if (kind == API_FILE_PATH) {
        size_t o = 0;
        name[0] = '\0';
        for (int i = 0; i < n; i++) {
            int w = snprintf(name + o, namesz - o, "%s%s", i ? "/" : "", components[i]);
            if (w < 0 || (size_t)w >= namesz - o)
                return -ENOENT;
            o += (size_t)w;
        }
        for (int i = 0; i < j->n_ckpts; i++)
            if (strcmp(j->ckpts[i].name, name) == 0)
                found = &j->ckpts[i];
    } else if (kind == API_FILE_BEST) {
        if (!job_best_file(j, policy < 0 ? 0 : policy, name, namesz))
            return -ENOENT;
        for (int i = 0; i < j->n_ckpts; i++)
            if (strcmp(j->ckpts[i].name, name) == 0)
                found = &j->ckpts[i];
    } else {
        if (policy >= j->spec.n_checkpoints)
            return -ENOENT;
        for (int i = 0; i < j->n_ckpts; i++) {
            if (policy >= 0 && j->ckpts[i].policy != policy)
                continue;
            if (!found || j->ckpts[i].seq > found->seq)
                found = &j->ckpts[i];
        }
        if (found)
            snprintf(name, namesz, "%s", found->name);
    }
    if (!found)
        return -ENOENT;
    *ret = *found;
    return 0;
}

/* Open checkpoints/<name> component by component, never following a link. */
static int open_confined(const char *job_dir, const char *name, int *ret_fd)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/checkpoints", job_dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[TEMPLATE_MAX_PATH];
    snprintf(buf, sizeof(buf), "%s", name);
    char *save = NULL;
    char *comp = strtok_r(buf, "/", &save);
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        if (!api_component_valid(comp)) {
            close(fd);
            return -ENOENT;
        }
        int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (next ? O_DIRECTORY : O_NONBLOCK);
        int sub = openat(fd, comp, flags);
        int e = errno;
        close(fd);
        if (sub < 0)
            return -e;
        fd = sub;
        comp = next;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -ENOENT;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *ret_fd = fd;
    return 0;
}

static int be_open_file(void *ctx, const char *id, enum api_file_kind kind,
                        const char (*components)[256], int n, int policy, struct api_file *ret,
                        struct diag *d)
{
    struct jobs *js = ctx;
    struct job *j = job_get(js, id);
    if (!j)
        return diag_set(d, -ENOENT, "", "no such job");
    char name[TEMPLATE_MAX_PATH], sha[65] = "";
    int fd = -1, r = 0;
    struct stat st;
    for (int attempt = 0; attempt < 3; attempt++) {
        struct job_ckpt entry;
        pthread_mutex_lock(&j->mu);
        r = pick_file(j, kind, components, n, policy, name, sizeof(name), &entry);
        pthread_mutex_unlock(&j->mu);
        if (r < 0)
            break;
        r = open_confined(j->dir, name, &fd);
        if (r < 0)
            break;
        if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == entry.bytes && entry.ino &&
            (uint64_t)st.st_ino == entry.ino &&
            (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == entry.mtime_ns) {
            memcpy(sha, entry.sha256, 65);
            break;
        }
        /* Replaced after its event was applied, or its event is not applied
         * yet: look again; in the end serve it without an entity tag rather
         * than with a wrong one. */
        if (attempt == 2)
            break;
        close(fd);
        fd = -1;
    }
    job_put(js, j);
    if (r < 0) {
        const char *what = kind == API_FILE_BEST ? "no best checkpoint (yet)"
                           : kind == API_FILE_LATEST ? "no checkpoint file (yet)"
                                                     : "no such checkpoint file";
        return diag_set(d, -ENOENT, "", "%s", what);
    }
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct api_file f = {.fd = fd, .size = (uint64_t)st.st_size};
    const char *base = strrchr(name, '/');
    const char *leaf = base ? base + 1 : name;
    size_t leaf_len = strlen(leaf);
    if (leaf_len >= sizeof(f.name))
        leaf_len = sizeof(f.name) - 1; /* components are at most 255 bytes */
    memcpy(f.name, leaf, leaf_len);
    f.name[leaf_len] = '\0';
    memcpy(f.sha256, sha, 65);
    *ret = f;
    return 0;
}

static int be_events(void *ctx, const char *id, uint64_t after, int max, struct api_events *ret)
{
    struct jobs *js = ctx;
    struct job *j = job_get(js, id);
    if (!j)
        return -ENOENT;
    pthread_mutex_lock(&j->mu);
    int r = job_copy_events(j, after, max, ret);
    pthread_mutex_unlock(&j->mu);
    job_put(js, j);
    return r;
}

static int be_datasets(void *ctx, char **ret_json)
{
    struct jobs *js = ctx;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "datasets");
    for (int i = 0; i < js->env.n_datasets; i++) {
        const struct runner_dataset *ds = &js->env.datasets[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ds->name);
        cJSON_AddStringToObject(o, "format", ds->format);
        struct stat st;
        cJSON_AddBoolToObject(o, "available", stat(ds->path, &st) == 0 && S_ISDIR(st.st_mode));
        cJSON_AddItemToArray(arr, o);
    }
    char *out = print_and_delete(root);
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    return 0;
}

static int be_models(void *ctx, char **ret_json)
{
    (void)ctx;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "models");
    for (const char *const *n = model_builtin_names(); *n; n++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", *n);
        cJSON_AddStringToObject(o, "kind", "builtin");
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *custom = cJSON_CreateObject();
    cJSON_AddStringToObject(custom, "name", "custom");
    cJSON_AddStringToObject(custom, "kind", "keras_sequential_json");
    cJSON_AddItemToArray(arr, custom);
    char *out = print_and_delete(root);
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    return 0;
}

static void count_states(struct jobs *js, unsigned counts[JOB_STATE_COUNT])
{
    memset(counts, 0, JOB_STATE_COUNT * sizeof(counts[0]));
    pthread_mutex_lock(&js->mu);
    for (struct job *j = js->list; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        counts[j->state]++;
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&js->mu);
}

static int be_health(void *ctx, char **ret_json, bool *ret_ready)
{
    struct jobs *js = ctx;
    unsigned counts[JOB_STATE_COUNT];
    count_states(js, counts);
    pthread_mutex_lock(&js->mu);
    bool ready = !js->shutting_down;
    pthread_mutex_unlock(&js->mu);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", ready ? "ok" : "stopping");
    cJSON_AddBoolToObject(o, "ready", ready);
    cJSON_AddStringToObject(o, "version", TRAIND_VERSION);
    cJSON_AddNumberToObject(o, "workers", js->cfg.workers);
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        cJSON_AddNumberToObject(jobs, job_state_name((enum job_state)s), counts[s]);
    char *out = print_and_delete(o);
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    *ret_ready = ready;
    return 0;
}

static int be_prometheus(void *ctx, char **ret_text)
{
    struct jobs *js = ctx;
    unsigned counts[JOB_STATE_COUNT];
    count_states(js, counts);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    if (!out)
        return -ENOMEM;
    len += (size_t)snprintf(out + len, cap - len,
                            "# HELP traind_jobs Jobs by state.\n# TYPE traind_jobs gauge\n");
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        len += (size_t)snprintf(out + len, cap - len, "traind_jobs{state=\"%s\"} %u\n",
                                job_state_name((enum job_state)s), counts[s]);
    len += (size_t)snprintf(
        out + len, cap - len,
        "# HELP traind_epochs_total Training epochs completed since start.\n"
        "# TYPE traind_epochs_total counter\n"
        "traind_epochs_total %" PRIu64 "\n"
        "# HELP traind_checkpoints_written_total Weight files written since start.\n"
        "# TYPE traind_checkpoints_written_total counter\n"
        "traind_checkpoints_written_total %" PRIu64 "\n"
        "# HELP traind_images_per_second Training throughput of running jobs.\n"
        "# TYPE traind_images_per_second gauge\n",
        (uint64_t)atomic_load(&js->epochs_total), (uint64_t)atomic_load(&js->checkpoints_total));
    pthread_mutex_lock(&js->mu);
    for (struct job *j = js->list; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        bool running = j->state == JOB_STATE_RUNNING;
        double ips = j->progress.images_per_s;
        pthread_mutex_unlock(&j->mu);
        if (!running)
            continue;
        if (cap - len < 128) {
            cap *= 2;
            char *o = realloc(out, cap);
            if (!o) {
                pthread_mutex_unlock(&js->mu);
                free(out);
                return -ENOMEM;
            }
            out = o;
        }
        len += (size_t)snprintf(out + len, cap - len, "traind_images_per_second{job=\"%s\"} %.3f\n",
                                j->id, ips);
    }
    pthread_mutex_unlock(&js->mu);
    *ret_text = out;
    return 0;
}

void jobs_backend(struct jobs *js, struct api_backend *be)
{
    struct api_backend b = {
        .ctx = js,
        .submit = be_submit,
        .list = be_list,
        .get = be_get,
        .cancel = be_cancel,
        .remove = be_remove,
        .metrics = be_metrics,
        .checkpoints = be_checkpoints,
        .open_file = be_open_file,
        .events = be_events,
        .datasets = be_datasets,
        .models = be_models,
        .health = be_health,
        .prometheus = be_prometheus,
    };
    *be = b;
}
