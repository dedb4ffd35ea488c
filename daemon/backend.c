/* backend.c - the api_backend (api/backend.h) over the registry: what
 * each HTTP request does to the jobs (submit, list, get, cancel, remove,
 * metrics, checkpoints, downloads, events, datasets, models, health and the
 * job metrics for Prometheus).  Every function takes the locks it needs
 * briefly and copies; none waits on training. */
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
#include "datasets.h"
#include "confine.h"
#include "event_log.h"
#include "fsutil.h"
#include "h5.h"
#include "job_id.h"
#include "job_queue.h"
#include "kernels.h"
#include "log.h"
#include "model.h"
#include "model_summary.h"
#include "registry_internal.h"
#include "template.h"
#include "uploaded_weights.h"

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

static int queue_full(struct jobs *js, struct diag *d)
{
    return diag_set(d, -EAGAIN, "", "%u jobs are queued already; try again later",
                    js->cfg.max_queued);
}

/* A new job that did not make it into the registry: its folder and memory. */
static void discard_job(struct jobs *js, struct job *j)
{
    int pfd = open(js->jobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd >= 0) {
        remove_tree_at(pfd, j->id);
        close(pfd);
    }
    job_free(j);
}

static int submit_queued(struct jobs *js, struct job_spec *spec_in, const char *initial_weights,
                         char **ret_json, char ret_id[static 17], struct diag *d);

/* The file a spec's initial_weights names: a checkpoint of another job (by
 * its checkpoint table, as the download routes find it) or an uploaded
 * weights file.  -EINVAL with d naming the field when there is none. */
static int resolve_initial_weights(struct jobs *js, const struct job_spec *spec, char *ret_path,
                                   size_t size, struct diag *d)
{
    if (spec->initial_weights.upload[0]) {
        if (snprintf(ret_path, size, "%s/" JOBS_WEIGHTS_DIR "/%s", js->state_dir,
                     spec->initial_weights.upload) >= (int)size)
            return diag_set(d, -ENAMETOOLONG, "/initial_weights/upload", "path too long");
        if (access(ret_path, R_OK) != 0)
            return diag_set(d, -EINVAL, "/initial_weights/upload",
                            "no uploaded weights file '%s' (PUT /v1/weights/%s first)",
                            spec->initial_weights.upload, spec->initial_weights.upload);
        return 0;
    }
    struct job *j = job_get(js, spec->initial_weights.job);
    if (!j)
        return diag_set(d, -EINVAL, "/initial_weights/job", "no such job '%s'",
                        spec->initial_weights.job);
    char name[TEMPLATE_MAX_PATH] = "";
    bool found = false;
    pthread_mutex_lock(&j->mu);
    if (strcmp(spec->initial_weights.file, "best") == 0) {
        found = job_best_file(j, 0, name, sizeof(name));
    } else {
        snprintf(name, sizeof(name), "%s", spec->initial_weights.file);
        for (int i = 0; i < j->n_ckpts && !found; i++)
            found = strcmp(j->ckpts[i].name, name) == 0;
    }
    /* a name of the job's checkpoint table: written by its runner, below
     * its checkpoint folder */
    int w = snprintf(ret_path, size, "%s/checkpoints/%s", j->dir, name);
    pthread_mutex_unlock(&j->mu);
    job_put(js, j);
    if (!found)
        return diag_set(d, -EINVAL, "/initial_weights/file",
                        strcmp(spec->initial_weights.file, "best") == 0
                            ? "job %s has no best checkpoint (yet)"
                            : "job %s has no checkpoint file '%s'",
                        spec->initial_weights.job, spec->initial_weights.file);
    if (w >= (int)size)
        return diag_set(d, -ENAMETOOLONG, "/initial_weights/file", "path too long");
    return 0;
}

/* Input shape and classes of a model trained on the data set (for the
 * warm start's check): the registry's description, else the configured
 * formats' fixed shapes. */
static int dataset_shape(struct jobs *js, const char *name, int shape[3], int *classes,
                         int *target_width, struct diag *d)
{
    *classes = 10;
    *target_width = 0;
    if (js->cfg.registry) {
        char **names = NULL;
        int r = datasets_describe(js->cfg.registry, name, shape, classes, target_width, NULL,
                                  &names, d);
        if (r == 0)
            datasets_free_names(names, *classes);
        return r;
    }
    struct runner_dataset ds;
    if (runner_resolve_dataset(&js->env, name, &ds) < 0)
        return -ENOENT;
    bool cifar = strcmp(ds.format, "cifar10") == 0;
    shape[0] = shape[1] = cifar ? 32 : 28;
    shape[2] = cifar ? 3 : 1;
    return 0;
}

static int be_submit(void *ctx, const char *body, size_t len, char **ret_json,
                     char ret_id[static 17], struct diag *d)
{
    struct jobs *js = ctx;
    /* A cheap early answer; job_queue_submit checks again under the lock. */
    pthread_mutex_lock(&js->mu);
    bool stopping = js->shutting_down;
    bool full = js->n_queued >= js->cfg.max_queued;
    pthread_mutex_unlock(&js->mu);
    if (stopping)
        return -ESHUTDOWN;
    if (full)
        return queue_full(js, d);

    struct job_spec spec;
    int r = job_spec_parse(&spec, body, len, d);
    if (r < 0)
        return r == -ENOMEM ? r : -EINVAL;
    /* the warm start's file against the model, before the registry lock
     * (the data set's description takes it); an unknown data set is
     * reported below */
    char iw[PATH_MAX + TEMPLATE_MAX_PATH + 32] = "";
    int shape[3], classes = 10, target_width = 0;
    struct diag ignored = {0};
    bool described = dataset_shape(js, spec.dataset, shape, &classes, &target_width,
                                   &ignored) == 0;
    /* float regression targets against the loss, metrics and model */
    if (described && (r = runner_check_targets(&spec, target_width, d)) < 0) {
        job_spec_free(&spec);
        return r;
    }
    if (spec.initial_weights.set) {
        r = resolve_initial_weights(js, &spec, iw, sizeof(iw), d);
        if (r == 0 && described)
            r = runner_check_initial_weights(&spec, iw, shape, classes, d);
        if (r < 0) {
            job_spec_free(&spec);
            return r == -ENOMEM ? r : -EINVAL;
        }
    }
    /* the registry lock spans "the data set exists" and "the job is queued":
     * a concurrent DELETE sees either no job or a queued one */
    if (js->cfg.registry)
        datasets_lock(js->cfg.registry);
    struct runner_dataset found;
    if (runner_resolve_dataset(&js->env, spec.dataset, &found) < 0) {
        if (js->cfg.registry)
            datasets_unlock(js->cfg.registry);
        job_spec_free(&spec);
        char known[512] = "";
        for (int i = 0; i < js->env.n_datasets; i++) {
            size_t k = strlen(known);
            snprintf(known + k, sizeof(known) - k, "%s%s", i ? ", " : "",
                     js->env.datasets[i].name);
        }
        return diag_set(d, -EINVAL, "/dataset", "unknown dataset '%s' (known: %s%s)",
                        spec.dataset, known, js->cfg.registry ? " and GET /v1/datasets" : "");
    }
    /* the loss against the model's output; the class count of imported data
     * sets is checked against the model when the run builds it */
    if ((r = runner_check_model(&spec, &found, d)) < 0) {
        if (js->cfg.registry)
            datasets_unlock(js->cfg.registry);
        job_spec_free(&spec);
        return r;
    }
    r = submit_queued(js, &spec, iw[0] ? iw : NULL, ret_json, ret_id, d);
    if (js->cfg.registry)
        datasets_unlock(js->cfg.registry);
    return r;
}

/* Create the job's folder and files and queue it (spec taken over). */
static int submit_queued(struct jobs *js, struct job_spec *spec_in, const char *initial_weights,
                         char **ret_json, char ret_id[static 17], struct diag *d)
{
    struct job_spec spec = *spec_in;
    int r;

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
    char path[PATH_MAX + sizeof("/" JOB_EVENTS_FILE)];
    snprintf(path, sizeof(path), "%s/" JOB_EVENTS_FILE, dir);
    j->events_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int stored = !j->spec_json ? -ENOMEM : j->events_fd < 0 ? -errno : 0;
    if (stored == 0 && initial_weights) {
        /* the job's own copy: the source may be replaced or deleted later */
        void *data = NULL;
        size_t len = 0;
        struct diag cd = {0};
        stored = fsutil_read_file(initial_weights, (size_t)1 << 33, &data, &len, &cd);
        if (stored == 0)
            stored = fsutil_write_file_atomic(dir, RUNNER_INITIAL_WEIGHTS_FILE, data, len, NULL,
                                              NULL, &cd);
        free(data);
    }
    if (stored == 0)
        stored = job_record_save(j);
    if (stored == 0)
        stored = event_log_reserve_seq(j);
    if (stored < 0) {
        log_error("job %s: cannot create its files: %s", id, strerror(-stored));
        discard_job(js, j);
        if (stored == -ENOSPC || stored == -EDQUOT)
            return diag_set(d, stored, "", "no space left on device: cannot store the job");
        return diag_set(d, stored == -ENOMEM ? -ENOMEM : -EIO, "", "cannot store the job: %s",
                        strerror(-stored));
    }
    job_event_add(js, j, "state", "{\"state\":\"queued\"}", true);

    pthread_mutex_lock(&j->mu);
    char *out = json_print_and_delete(job_to_json(j, true));
    pthread_mutex_unlock(&j->mu);

    r = job_queue_submit(js, j);
    if (r < 0) {
        /* Filled up (or stopping) while this one was being stored. */
        free(out);
        discard_job(js, j);
        return r == -EAGAIN ? queue_full(js, d) : r;
    }
    log_info("job %s queued (%s)", id, j->spec.name[0] ? j->spec.name : "unnamed");

    if (!out)
        return -ENOMEM;
    memcpy(ret_id, id, JOB_ID_LEN + 1);
    *ret_json = out;
    return 0;
}

static int be_list(void *ctx, const char *state, char **ret_json, struct diag *d)
{
    bool ok = true;
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
            ok &= cjson_append(arr, job_to_json(j, false));
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&js->mu);
    char *out = json_print_and_delete(cjson_checked(root, ok));
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
    char *out = json_print_and_delete(o);
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
    bool was_queued = job_queue_remove(js, j);
    pthread_mutex_unlock(&js->mu);
    if (was_queued) {
        pthread_mutex_lock(&j->mu);
        j->cancel_requested = true;
        pthread_mutex_unlock(&j->mu);
        job_finish(js, j, JOB_STATE_CANCELLED, NULL);
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
    jobs_notify_job(js, j); /* streams of a deleted job end */
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


static int be_open_file(void *ctx, const char *id, enum api_file_kind kind,
                        const char (*components)[256], int n, int policy, struct api_file *ret,
                        struct diag *d)
{
    struct jobs *js = ctx;
    struct job *j = job_get(js, id);
    if (!j)
        return diag_set(d, -ENOENT, "", "no such job");
    char name[TEMPLATE_MAX_PATH], sha[FSUTIL_SHA256_HEX_SIZE] = "";
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
            memcpy(sha, entry.sha256, sizeof(sha));
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
    memcpy(f.sha256, sha, sizeof(f.sha256));
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
    bool ok = true;
    struct jobs *js = ctx;
    if (js->cfg.registry)
        return backend_data_list(&js->data, ret_json);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "datasets");
    for (int i = 0; i < js->env.n_datasets; i++) {
        const struct runner_dataset *ds = &js->env.datasets[i];
        cJSON *o = cJSON_CreateObject();
        ok &= cJSON_AddStringToObject(o, "name", ds->name) != NULL;
        ok &= cJSON_AddStringToObject(o, "format", ds->format) != NULL;
        struct stat st;
        ok &= cJSON_AddBoolToObject(o, "available", stat(ds->path, &st) == 0 && S_ISDIR(st.st_mode)) != NULL;
        ok &= cjson_append(arr, o);
    }
    char *out = json_print_and_delete(cjson_checked(root, ok));
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    return 0;
}

static int be_models(void *ctx, char **ret_json)
{
    (void)ctx;
    return model_catalog_json(ret_json);
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
    bool ok = true;
    struct jobs *js = ctx;
    unsigned counts[JOB_STATE_COUNT];
    count_states(js, counts);
    pthread_mutex_lock(&js->mu);
    bool ready = !js->shutting_down;
    pthread_mutex_unlock(&js->mu);
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddStringToObject(o, "status", ready ? "ok" : "stopping") != NULL;
    ok &= cJSON_AddBoolToObject(o, "ready", ready) != NULL;
    ok &= cJSON_AddStringToObject(o, "version", TRAIND_VERSION) != NULL;
    ok &= cJSON_AddStringToObject(o, "kernels", kernels_name(kernels_active())) != NULL;
    ok &= cJSON_AddNumberToObject(o, "workers", js->cfg.workers) != NULL;
    cJSON *mpi = cJSON_AddObjectToObject(o, "mpi");
    ok &= mpi && cJSON_AddNumberToObject(mpi, "world_size",
                                         js->cfg.coll ? js->cfg.coll->size : 1) != NULL;
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        ok &= cJSON_AddNumberToObject(jobs, job_state_name((enum job_state)s), counts[s]) != NULL;
    char *out = json_print_and_delete(cjson_checked(o, ok));
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    *ret_ready = ready;
    return 0;
}

/* Appends the running jobs' ranks and collective time per step (jobs
 * trained over several MPI ranks only) to *out (len of cap bytes used). */
static int prometheus_mpi_jobs(struct jobs *js, char **out, size_t *cap, size_t *len)
{
    static const char *const head =
        "# HELP traind_job_collective_seconds_per_step Time in MPI collectives per training "
        "step of running jobs trained over several ranks.\n"
        "# TYPE traind_job_collective_seconds_per_step gauge\n";
    bool any = false;
    pthread_mutex_lock(&js->mu);
    for (struct job *j = js->list; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        bool show = j->state == JOB_STATE_RUNNING && j->mpi.ranks > 1;
        int ranks = j->mpi.ranks;
        double per = j->mpi.collective_seconds_per_step;
        pthread_mutex_unlock(&j->mu);
        if (!show)
            continue;
        if (*cap - *len < 512) {
            char *o = realloc(*out, *cap * 2);
            if (!o) {
                pthread_mutex_unlock(&js->mu);
                return -ENOMEM;
            }
            *out = o;
            *cap *= 2;
        }
        *len += (size_t)snprintf(*out + *len, *cap - *len,
                                 "%straind_job_collective_seconds_per_step{job=\"%s\",ranks=\"%d\"} "
                                 "%.6f\n",
                                 any ? "" : head, j->id, ranks, per);
        any = true;
    }
    pthread_mutex_unlock(&js->mu);
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
                            "# HELP traind_build_info Version and compute kernel path in use.\n"
                            "# TYPE traind_build_info gauge\n"
                            "traind_build_info{version=\"%s\",kernels=\"%s\"} 1\n"
                            "# HELP traind_jobs Jobs by state.\n# TYPE traind_jobs gauge\n",
                            TRAIND_VERSION, kernels_name(kernels_active()));
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
        "# HELP traind_mpi_world_size Processes of the MPI world (1 without mpirun).\n"
        "# TYPE traind_mpi_world_size gauge\n"
        "traind_mpi_world_size %d\n"
        "# HELP traind_images_per_second Training throughput of running jobs.\n"
        "# TYPE traind_images_per_second gauge\n",
        (uint64_t)atomic_load(&js->epochs_total), (uint64_t)atomic_load(&js->checkpoints_total),
        js->cfg.coll ? js->cfg.coll->size : 1);
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
    int r = prometheus_mpi_jobs(js, &out, &cap, &len);
    if (r < 0) {
        free(out);
        return r;
    }
    *ret_text = out;
    return 0;
}

/* --- data sets and model use: backend_data.c over the registry --------------- */

static int be_dataset_upload_file(void *ctx, char ret_path[4096], int *ret_fd, struct diag *d)
{
    return backend_data_upload_file(&((struct jobs *)ctx)->data, ret_path, ret_fd, d);
}

static int be_dataset_put(void *ctx, const char *name, const char *upload_path,
                          const struct import_options *o, char **ret_json, struct diag *d)
{
    return backend_data_put(&((struct jobs *)ctx)->data, name, upload_path, o, ret_json, d);
}

/* /v1/weights: uploaded_weights.c. */
static int be_weights_put(void *ctx, const char *name, const char *upload_path, char **ret_json,
                          struct diag *d)
{
    return uploaded_weights_put(ctx, name, upload_path, ret_json, d);
}

static int be_weights_list(void *ctx, char **ret_json)
{
    return uploaded_weights_list(ctx, ret_json);
}

static int be_weights_open(void *ctx, const char *name, struct api_file *ret, struct diag *d)
{
    return uploaded_weights_open(ctx, name, ret, d);
}

static int be_weights_delete(void *ctx, const char *name, struct diag *d)
{
    return uploaded_weights_delete(ctx, name, d);
}

static int be_dataset_get(void *ctx, const char *name, char **ret_json)
{
    return backend_data_get(&((struct jobs *)ctx)->data, name, ret_json);
}

static int be_dataset_delete(void *ctx, const char *name, struct diag *d)
{
    return backend_data_delete(&((struct jobs *)ctx)->data, name, d);
}

static int be_evaluate(void *ctx, const char *id, const char *checkpoint, const char *dataset,
                       char **ret_json, struct diag *d)
{
    return backend_data_evaluate(&((struct jobs *)ctx)->data, id, checkpoint, dataset, ret_json,
                                 d);
}

static int be_predict(void *ctx, const char *id, const char *checkpoint,
                      const struct api_predict_input *in, int n, char **ret_json, struct diag *d)
{
    return backend_data_predict(&((struct jobs *)ctx)->data, id, checkpoint, in, n, ret_json, d);
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
    if (js->cfg.registry) {
        b.dataset_upload_file = be_dataset_upload_file;
        b.dataset_put = be_dataset_put;
        b.weights_put = be_weights_put;
        b.weights_list = be_weights_list;
        b.weights_open = be_weights_open;
        b.weights_delete = be_weights_delete;
        b.dataset_get = be_dataset_get;
        b.dataset_delete = be_dataset_delete;
        b.evaluate = be_evaluate;
        b.predict = be_predict;
    }
    *be = b;
}
