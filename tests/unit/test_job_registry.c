/* test_job_registry.c - daemon/job_registry and its neighbours without training: submit/cancel/delete through
 * the backend table, the on-disk layout they leave, and recovery of a state
 * dir with a torn event log and temp leftovers. */
#include "job_registry.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const tiny =
    "{\"name\":\"t\",\"dataset\":\"fashion-mnist\",\"model\":\"mlp\",\"epochs\":2,"
    "\"checkpoints\":[{\"filepath\":\"w.h5\",\"monitor\":\"val_loss\",\"mode\":\"min\"}]}";

static struct runner_dataset datasets[1] = {
    {"fashion-mnist", "idx", FASHION_DIR},
};

static char state_dir[512];

static struct jobs *open_jobs(void)
{
    struct jobs_config cfg = {.state_dir = state_dir, .workers = 1, .threads = 1,
                              .datasets = datasets, .n_datasets = 1, .max_queued = 2};
    struct jobs *js = NULL;
    struct diag d = {{0}, {0}};
    int r = jobs_open(&js, &cfg, &d);
    CHECK_MSG(r == 0, "%s", d.message);
    return js;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static cJSON *get_json(struct api_backend *be, const char *id)
{
    char *text = NULL;
    if (be->get(be->ctx, id, &text) < 0)
        return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    return o;
}

static const char *state_of(const cJSON *o)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "state");
    return cJSON_IsString(s) ? s->valuestring : "?";
}

static void test_submit_cancel_delete(void)
{
    struct jobs *js = open_jobs();
    if (!js)
        return;
    struct api_backend be;
    jobs_backend(js, &be);
    char *out = NULL, id[17];
    struct diag d = {{0}, {0}};

    CHECK_INT_EQ(be.submit(be.ctx, "{", 1, &out, id, &d), -EINVAL);
    const char *bad_ds = "{\"dataset\":\"imagenet\",\"model\":\"mlp\"}";
    memset(&d, 0, sizeof(d));
    CHECK_INT_EQ(be.submit(be.ctx, bad_ds, strlen(bad_ds), &out, id, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/dataset");

    int r = be.submit(be.ctx, tiny, strlen(tiny), &out, id, &d);
    CHECK_MSG(r == 0, "%s %s", d.field, d.message);
    if (r < 0) {
        jobs_free(js);
        return;
    }
    free(out);
    char dir[1024], path[1100];
    snprintf(dir, sizeof(dir), "%s/jobs/%s", state_dir, id);
    snprintf(path, sizeof(path), "%s/job.json", dir);
    CHECK(exists(path));
    snprintf(path, sizeof(path), "%s/events.ndjson", dir);
    CHECK_INT_EQ(count_lines(path), 1);

    /* queue limit 2: a second job is accepted, a third answers -EAGAIN */
    char id2[17];
    CHECK_INT_EQ(be.submit(be.ctx, tiny, strlen(tiny), &out, id2, &d), 0);
    free(out);
    CHECK(strcmp(id2, id) > 0); /* time-sortable ids */
    char id3[17];
    CHECK_INT_EQ(be.submit(be.ctx, tiny, strlen(tiny), &out, id3, &d), -EAGAIN);

    /* delete while queued: 409; cancel (twice: idempotent); delete */
    CHECK_INT_EQ(be.remove(be.ctx, id, &d), -EBUSY);
    CHECK_INT_EQ(be.cancel(be.ctx, id, &out), 0);
    cJSON *o = cJSON_Parse(out);
    CHECK_STR_EQ(state_of(o), "cancelled");
    cJSON_Delete(o);
    free(out);
    CHECK_INT_EQ(be.cancel(be.ctx, id, &out), 0);
    free(out);
    CHECK_INT_EQ(count_lines(path), 2);

    struct api_events ev;
    CHECK_INT_EQ(be.events(be.ctx, id, 0, 10, &ev), 0);
    CHECK_INT_EQ(ev.n, 2);
    CHECK(ev.final);
    api_events_free(&ev);

    CHECK_INT_EQ(be.remove(be.ctx, id, &d), 0);
    CHECK(!exists(dir));
    CHECK(get_json(&be, id) == NULL);
    CHECK_INT_EQ(be.remove(be.ctx, id, &d), -ENOENT);
    CHECK_INT_EQ(be.cancel(be.ctx, "no-such-job", &out), -ENOENT);

    /* state filter */
    CHECK_INT_EQ(be.list(be.ctx, "sleeping", &out, &d), -EINVAL);
    CHECK_INT_EQ(be.list(be.ctx, "queued", &out, &d), 0);
    CHECK(strstr(out, id2) != NULL);
    free(out);
    jobs_free(js);

    /* restart: the queued job is back, queued */
    js = open_jobs();
    jobs_backend(js, &be);
    o = get_json(&be, id2);
    CHECK_STR_EQ(state_of(o), "queued");
    cJSON_Delete(o);
    CHECK_INT_EQ(be.cancel(be.ctx, id2, &out), 0);
    free(out);
    CHECK_INT_EQ(be.remove(be.ctx, id2, &d), 0);
    jobs_free(js);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static void test_recovery(void)
{
    const char *id = "00000000000a0001";
    char dir[1024], path[1200];
    snprintf(dir, sizeof(dir), "%s/jobs/%s", state_dir, id);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/checkpoints", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/checkpoints/.tmp-w.h5-1-1", dir);
    write_file(path, "partial");
    snprintf(path, sizeof(path), "%s/jobs/.tmp-job.json-1-2", state_dir);
    write_file(path, "partial");
    snprintf(path, sizeof(path), "%s/jobs/not-a-job", state_dir);
    mkdir(path, 0700);

    char record[2048];
    snprintf(record, sizeof(record),
             "{\"version\":1,\"id\":\"%s\",\"name\":\"t\",\"spec\":%s,\"state\":\"running\","
             "\"created\":\"2026-11-28T08:00:00.000Z\",\"started\":\"2026-11-28T08:00:01.000Z\","
             "\"finished\":null,\"error\":null}",
             id, tiny);
    snprintf(path, sizeof(path), "%s/job.json", dir);
    write_file(path, record);
    const char *events =
        "{\"seq\":1,\"time\":\"2026-11-28T08:00:00.000Z\",\"type\":\"state\",\"state\":\"queued\"}\n"
        "{\"seq\":2,\"time\":\"2026-11-28T08:00:01.000Z\",\"type\":\"state\",\"state\":\"running\"}\n"
        "{\"seq\":4,\"time\":\"2026-11-28T08:00:02.000Z\",\"type\":\"epoch_end\",\"epoch\":1,"
        "\"logs\":{\"loss\":1.5,\"val_loss\":1.25}}\n"
        "{\"seq\":5,\"time\":\"2026-11-28T08:00:03.000Z\",\"type\":\"epo";
    snprintf(path, sizeof(path), "%s/events.ndjson", dir);
    write_file(path, events);

    struct jobs *js = open_jobs();
    if (!js)
        return;
    struct api_backend be;
    jobs_backend(js, &be);
    cJSON *o = get_json(&be, id);
    CHECK(o != NULL);
    CHECK_STR_EQ(state_of(o), "running"); /* interrupted: queued to continue */
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(o, "history");
    CHECK_INT_EQ(cJSON_GetArraySize(hist), 1);
    cJSON_Delete(o);
    CHECK_INT_EQ(count_lines(path), 3);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (size_t)st.st_size == strlen(events) - strlen(
        "{\"seq\":5,\"time\":\"2026-11-28T08:00:03.000Z\",\"type\":\"epo"));
    snprintf(path, sizeof(path), "%s/checkpoints/.tmp-w.h5-1-1", dir);
    CHECK(!exists(path));
    snprintf(path, sizeof(path), "%s/jobs/.tmp-job.json-1-2", state_dir);
    CHECK(!exists(path));
    /* events continue after the last persisted sequence number */
    struct api_events ev;
    CHECK_INT_EQ(be.events(be.ctx, id, 2, 10, &ev), 0);
    CHECK_INT_EQ(ev.n, 1);
    CHECK_INT_EQ(ev.last_seq, 4);
    api_events_free(&ev);
    char *out;
    CHECK_INT_EQ(be.cancel(be.ctx, id, &out), 0);
    free(out);
    jobs_free(js);
}

static void test_unusable_state_dir(void)
{
    struct jobs_config cfg = {.state_dir = "/proc/traind-test", .workers = 1, .threads = 1,
                              .datasets = datasets, .n_datasets = 1, .max_queued = 2};
    struct jobs *js = NULL;
    struct diag d = {{0}, {0}};
    CHECK(jobs_open(&js, &cfg, &d) < 0);
    CHECK(strstr(d.message, "/proc/traind-test") != NULL);
}

/* Submissions that arrive together must not pass max_queued together: the
 * limit is checked where the job is pushed, under the registry lock.  With
 * max_queued 1 and no workers, exactly one of them is accepted, the others
 * get -EAGAIN and leave no folder behind. */
#define RACE_THREADS 8

struct race_arg {
    struct api_backend *be;
    pthread_barrier_t *barrier;
    int ret;
};

static void *race_submit(void *p)
{
    struct race_arg *a = p;
    char *out = NULL, id[JOB_ID_LEN + 1];
    struct diag d = {{0}, {0}};
    pthread_barrier_wait(a->barrier);
    a->ret = a->be->submit(a->be->ctx, tiny, strlen(tiny), &out, id, &d);
    free(out);
    return NULL;
}

static void test_queue_limit_concurrent(void)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s-race", state_dir);
    struct jobs_config cfg = {.state_dir = dir, .workers = 1, .threads = 1,
                              .datasets = datasets, .n_datasets = 1, .max_queued = 1};
    struct jobs *js = NULL;
    struct diag d = {{0}, {0}};
    int r = jobs_open(&js, &cfg, &d);
    CHECK_MSG(r == 0, "%s", d.message);
    if (r < 0)
        return;
    struct api_backend be;
    jobs_backend(js, &be);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, RACE_THREADS);
    pthread_t th[RACE_THREADS];
    struct race_arg args[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        args[i] = (struct race_arg){.be = &be, .barrier = &barrier, .ret = 1};
        CHECK_INT_EQ(pthread_create(&th[i], NULL, race_submit, &args[i]), 0);
    }
    int accepted = 0, refused = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        accepted += args[i].ret == 0;
        refused += args[i].ret == -EAGAIN;
    }
    pthread_barrier_destroy(&barrier);
    CHECK_INT_EQ(accepted, 1);
    CHECK_INT_EQ(refused, RACE_THREADS - 1);

    char jobs_dir[700];
    snprintf(jobs_dir, sizeof(jobs_dir), "%s/jobs", dir);
    DIR *dh = opendir(jobs_dir);
    CHECK(dh != NULL);
    int folders = 0;
    for (struct dirent *de; dh && (de = readdir(dh));)
        folders += de->d_name[0] != '.';
    if (dh)
        closedir(dh);
    CHECK_INT_EQ(folders, 1);
    jobs_free(js);
}

int main(void)
{
    const char *tmp = getenv("TRAIND_TEST_TMP");
    snprintf(state_dir, sizeof(state_dir), "%s/test_jobs.%d", tmp ? tmp : "/tmp", (int)getpid());
    TEST_RUN(test_submit_cancel_delete);
    TEST_RUN(test_recovery);
    TEST_RUN(test_unusable_state_dir);
    TEST_RUN(test_queue_limit_concurrent);
    return TEST_EXIT();
}
