/* job_registry.c - the registry of jobs: open the state dir (then
 * recovery.c reloads it), the list in id order with reference counts, the
 * notify hook, and freeing.  See job_registry.h. */
#include "registry_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "job_id.h"
#include "recovery.h"

#define PROBE_FILE ".probe" /* written and removed at start: is state_dir writable? */

void jobs_notify_job(struct jobs *js, const struct job *j)
{
    if (js->notify)
        js->notify(js->notify_ctx, j->id);
}

struct job *job_get(struct jobs *js, const char *id)
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

void job_put(struct jobs *js, struct job *j)
{
    pthread_mutex_lock(&js->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&js->mu);
    if (last)
        job_free(j);
}

void jobs_list_insert(struct jobs *js, struct job *j)
{
    struct job **pp = &js->list;
    while (*pp && strcmp((*pp)->id, j->id) < 0)
        pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
}

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

/* datasets_usage_fn: the jobs naming data set name (only queued or running
 * ones when active_only); their ids go into ids (a cJSON array). */
static int dataset_usage(void *ctx, const char *name, bool active_only, void *ids)
{
    struct jobs *js = ctx;
    int n = 0;
    pthread_mutex_lock(&js->mu);
    for (struct job *j = js->list; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        bool match = strcmp(j->spec.dataset, name) == 0 &&
                     (!active_only || j->state == JOB_STATE_QUEUED ||
                      j->state == JOB_STATE_RUNNING);
        pthread_mutex_unlock(&j->mu);
        if (!match)
            continue;
        n++;
        if (ids)
            cjson_append(ids, cJSON_CreateString(j->id));
    }
    pthread_mutex_unlock(&js->mu);
    return n;
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
    js->env.coll = cfg->coll;
    if (cfg->registry) {
        js->env.resolve_dataset = datasets_resolve;
        js->env.resolve_ctx = cfg->registry;
    }
    pthread_mutex_init(&js->mu, NULL);
    pthread_cond_init(&js->cond, NULL);

    if ((r = make_dir(js->state_dir, d)) < 0 || (r = make_dir(js->jobs_dir, d)) < 0)
        goto fail;
    /* Writable? (an atomic write of a probe file, then remove it) */
    struct diag wd = {{0}, {0}};
    if ((r = fsutil_write_file_atomic(js->jobs_dir, PROBE_FILE, "", 0, NULL, NULL, &wd)) < 0) {
        diag_set(d, r, js->jobs_dir, "state_dir %s is not writable: %s", js->jobs_dir,
                 wd.message);
        goto fail;
    }
    char probe[PATH_MAX + sizeof("/" PROBE_FILE)];
    snprintf(probe, sizeof(probe), "%s/" PROBE_FILE, js->jobs_dir);
    unlink(probe);
    if ((r = recovery_load_all(js, d)) < 0)
        goto fail;
    if (cfg->registry) {
        jobs_backend(js, &js->data.jobs);
        js->data.ds = cfg->registry;
        js->data.env = js->env;
        js->data.threads = cfg->threads;
        js->data.max_predict_images = cfg->max_predict_images;
        datasets_set_usage(cfg->registry, dataset_usage, js);
    }
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
