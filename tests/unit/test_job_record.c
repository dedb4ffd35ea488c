/* test_job_record.c - daemon/job_record: event rendering, derived state (history, best,
 * checkpoint table), event copies for streams, Keras CSVLogger text. */
#include "job_record.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_render(void)
{
    size_t len;
    char *s = job_event_render(7, 0.5, "checkpoint", " {\"a\": 1,\n\"b\":\"x\"} ", &len);
    CHECK(s != NULL);
    CHECK_STR_EQ(s, "{\"seq\":7,\"time\":\"1970-01-01T00:00:00.500Z\",\"type\":\"checkpoint\","
                    "\"a\": 1, \"b\":\"x\"}");
    CHECK_INT_EQ(len, strlen(s));
    cJSON *o = cJSON_Parse(s);
    CHECK(cJSON_IsObject(o));
    cJSON_Delete(o);
    free(s);
    s = job_event_render(1, 0, "state", "{}", &len);
    CHECK_STR_EQ(s, "{\"seq\":1,\"time\":\"1970-01-01T00:00:00.000Z\",\"type\":\"state\"}");
    free(s);
    CHECK(job_event_render(1, 0, "state", "[1]", &len) == NULL);
    CHECK(job_event_render(1, 0, "state", "", &len) == NULL);
}

static void keep(struct job *j, uint64_t seq, const char *type, const char *data)
{
    size_t len;
    char *s = job_event_render(seq, 1e9, type, data, &len);
    CHECK(s != NULL);
    cJSON *o = cJSON_Parse(s);
    job_apply_event(j, type, o);
    cJSON_Delete(o);
    CHECK_INT_EQ(job_keep_event(j, seq, type, s, len), 0);
}

static void test_copy_events(void)
{
    struct job *j = job_new("0123456789abcdef", "/nonexistent");
    keep(j, 1, "state", "{\"state\":\"queued\"}");
    keep(j, 2, "state", "{\"state\":\"running\"}");
    keep(j, 3, "progress", "{\"batch\":1,\"batches\":4}");
    keep(j, 4, "epoch_end", "{\"epoch\":1,\"logs\":{\"loss\":1.0}}");
    keep(j, 5, "progress", "{\"batch\":2,\"batches\":4}");
    struct api_events ev;
    CHECK_INT_EQ(job_copy_events(j, 0, 10, &ev), 0);
    CHECK_INT_EQ(ev.n, 5);
    for (int i = 0; i < ev.n; i++)
        CHECK_INT_EQ(ev.items[i].seq, (uint64_t)i + 1);
    CHECK_STR_EQ(ev.items[2].type, "progress");
    CHECK(!ev.final);
    CHECK_INT_EQ(ev.last_seq, 5);
    api_events_free(&ev);
    CHECK_INT_EQ(job_copy_events(j, 3, 10, &ev), 0);
    CHECK_INT_EQ(ev.n, 2);
    CHECK_INT_EQ(ev.items[0].seq, 4);
    api_events_free(&ev);
    CHECK_INT_EQ(job_copy_events(j, 0, 2, &ev), 0);
    CHECK_INT_EQ(ev.n, 2);
    CHECK_INT_EQ(ev.items[1].seq, 2);
    api_events_free(&ev);
    /* the progress ring keeps only the newest JOB_RECENT_PROGRESS */
    for (uint64_t s = 6; s < 6 + 2 * JOB_RECENT_PROGRESS; s++)
        keep(j, s, "progress", "{\"batch\":3,\"batches\":4}");
    keep(j, 100, "state", "{\"state\":\"succeeded\"}");
    CHECK_INT_EQ(job_copy_events(j, 0, 1000, &ev), 0);
    CHECK_INT_EQ(ev.n, 4 + JOB_RECENT_PROGRESS);
    for (int i = 1; i < ev.n; i++)
        CHECK(ev.items[i].seq > ev.items[i - 1].seq);
    CHECK(ev.final);
    CHECK_INT_EQ(ev.items[ev.n - 1].seq, 100);
    api_events_free(&ev);
    job_free(j);
}

static void test_history_best_csv(void)
{
    struct job *j = job_new("0123456789abcdef", "/nonexistent");
    j->spec.n_checkpoints = 1;
    ckpt_policy_config_default(&j->spec.checkpoints[0]);
    keep(j, 1, "epoch_end",
         "{\"epoch\":1,\"logs\":{\"loss\":0.5,\"accuracy\":0.1,\"val_loss\":2.0,"
         "\"val_accuracy\":1e-05},\"lr\":0.01,\"seconds\":1.5}");
    keep(j, 2, "checkpoint",
         "{\"policy\":0,\"epoch\":1,\"decision\":\"improved\",\"value\":2.0,"
         "\"file\":\"w-1.h5\",\"bytes\":10,\"sha256\":"
         "\"0000000000000000000000000000000000000000000000000000000000000001\"}");
    keep(j, 3, "epoch_end",
         "{\"epoch\":2,\"logs\":{\"loss\":0.25,\"accuracy\":0.3333333333333333,\"val_loss\":3.0,"
         "\"val_accuracy\":0.5},\"lr\":0.01,\"seconds\":1.5}");
    keep(j, 4, "checkpoint",
         "{\"policy\":0,\"epoch\":2,\"decision\":\"not_improved\",\"value\":3.0}");
    CHECK_INT_EQ(j->n_history, 2);
    CHECK_INT_EQ(j->n_ckpts, 1);
    CHECK_INT_EQ(j->ckpts[0].seq, 2);
    char file[64];
    CHECK(job_best_file(j, 0, file, sizeof(file)));
    CHECK_STR_EQ(file, "w-1.h5");
    CHECK(!job_best_file(j, 1, file, sizeof(file)));

    char *csv = job_history_csv(j);
    CHECK_STR_EQ(csv, "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                      "0,0.1,0.5,1e-05,2.0\r\n"
                      "1,0.3333333333333333,0.25,0.5,3.0\r\n");
    free(csv);

    /* a redone epoch (resume after a crash) replaces the record */
    keep(j, 5, "epoch_end", "{\"epoch\":2,\"logs\":{\"loss\":0.75}}");
    CHECK_INT_EQ(j->n_history, 2);
    double v;
    CHECK(logs_get(&j->history[1].logs, "loss", &v) && v == 0.75);

    /* top-k deletions leave the table */
    keep(j, 6, "checkpoint",
         "{\"policy\":0,\"epoch\":3,\"decision\":\"improved\",\"value\":1.0,"
         "\"file\":\"w-3.h5\",\"deleted\":[\"w-1.h5\"]}");
    CHECK_INT_EQ(j->n_ckpts, 1);
    CHECK_STR_EQ(j->ckpts[0].name, "w-3.h5");
    CHECK(job_best_file(j, 0, file, sizeof(file)));
    CHECK_STR_EQ(file, "w-3.h5");

    /* save_last: the copy is listed with the same bytes and digest */
    keep(j, 7, "checkpoint",
         "{\"policy\":0,\"epoch\":4,\"decision\":\"improved\",\"value\":0.5,"
         "\"file\":\"w-4.h5\",\"bytes\":12,\"sha256\":"
         "\"0000000000000000000000000000000000000000000000000000000000000004\","
         "\"last\":\"last.h5\",\"deleted\":[\"w-3.h5\"]}");
    CHECK_INT_EQ(j->n_ckpts, 2);
    CHECK_STR_EQ(j->ckpts[0].name, "w-4.h5");
    CHECK_STR_EQ(j->ckpts[1].name, "last.h5");
    CHECK_INT_EQ(j->ckpts[1].bytes, 12);
    CHECK_STR_EQ(j->ckpts[1].sha256, j->ckpts[0].sha256);
    CHECK_INT_EQ(j->best[0].epoch, 4);
    job_free(j);
}

static void test_states(void)
{
    enum job_state s;
    for (int i = 0; i < JOB_STATE_COUNT; i++) {
        CHECK_INT_EQ(job_state_parse(job_state_name((enum job_state)i), &s), 0);
        CHECK_INT_EQ(s, i);
    }
    CHECK(job_state_parse("sleeping", &s) < 0);
    CHECK(job_state_terminal(JOB_STATE_CANCELLED));
    CHECK(!job_state_terminal(JOB_STATE_RUNNING));
    char t[32];
    job_format_time(1795824000.25, t);
    CHECK_STR_EQ(t, "2026-11-28T00:00:00.250Z");
}

int main(void)
{
    TEST_RUN(test_render);
    TEST_RUN(test_copy_events);
    TEST_RUN(test_history_best_csv);
    TEST_RUN(test_states);
    return TEST_EXIT();
}
