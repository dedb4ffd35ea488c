/* resume_state.c - the state JSON inside <job_dir>/resume.h5 and reading
 * a run back from that file (format in job_runner.c's top comment): each
 * checkpoint policy's state, the other callbacks' (runner_callbacks.h), and the position inside an
 * epoch of a run stopped mid-epoch. */
#include "job_runner_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cjson_add.h"
#include "h5.h"

static cJSON *policy_state_json(struct runner *r, int i)
{
    char *text = NULL;
    if (ckpt_state_to_json(&r->policies[i], &text) < 0)
        return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    return o;
}

static int policy_state_from_json(struct runner *r, int i, const cJSON *o, struct diag *d)
{
    char *text = cJSON_PrintUnformatted(o);
    if (!text)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int ret = ckpt_state_from_json(&r->spec->checkpoints[i], text, &r->policies[i], d);
    cJSON_free(text);
    if (ret < 0) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), RUNNER_RESUME_FILE ": policy %d state", i);
        diag_prefix(d, prefix);
    }
    return ret;
}

char *resume_state_json(struct runner *r)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    char *out = NULL;
    cJSON *pol = cJSON_CreateArray();
    if (!o || !cJSON_AddItemToObject(o, "policies", pol))
        goto out;
    ok &= cJSON_AddNumberToObject(o, "version", RUNNER_STATE_VERSION) != NULL;
    for (int i = 0; i < r->n_policies; i++) {
        cJSON *ps = policy_state_json(r, i);
        if (!ps || !cJSON_AddItemToArray(pol, ps))
            goto out;
    }
    ok &= runner_cb_state_add(&r->cbs, o);
    if (r->in_batch > 0) {
        cJSON *pos = cJSON_AddObjectToObject(o, "epoch_position");
        if (!pos)
            goto out;
        ok &= cJSON_AddNumberToObject(pos, "batch", r->in_batch) != NULL;
        ok &= cJSON_AddNumberToObject(pos, "loss_sum", r->in_loss_sum) != NULL;
        cJSON *sums = cJSON_AddArrayToObject(pos, "metric_sums");
        ok &= sums != NULL;
        for (int i = 0; ok && i < r->spec->n_metrics; i++)
            ok &= cjson_append(sums, cJSON_CreateNumber(r->in_metric_sums[i]));
        ok &= cJSON_AddNumberToObject(pos, "seen", (double)r->in_seen) != NULL;
    }
    out = ok ? cJSON_PrintUnformatted(o) : NULL;
out:
    cJSON_Delete(o);
    return out;
}

/* The epoch position's metric sums into r->in_metric_sums: "metric_sums",
 * one a metric of the job; state written by a one-metric traind has
 * "metric_sum" and before that "correct" (the accuracy count). */
static bool metric_sums_from_json(struct runner *r, const cJSON *pos)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(pos, "metric_sums");
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(pos, "metric_sum");
    if (!one)
        one = cJSON_GetObjectItemCaseSensitive(pos, "correct");
    int n = r->spec->n_metrics, i = 0;
    if (!a && one && n == 1)
        a = one; /* read below as a list of one */
    else if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return false;
    for (const cJSON *c = cJSON_IsArray(a) ? a->child : a; c && i < n; c = c->next, i++) {
        if (!cJSON_IsNumber(c) || !(c->valuedouble >= 0 && isfinite(c->valuedouble)))
            return false;
        r->in_metric_sums[i] = c->valuedouble;
    }
    return i == n;
}

static int state_from_json(struct runner *r, const char *text, struct diag *d)
{
    cJSON *o = cJSON_Parse(text ? text : "{}");
    int ret = 0;
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(o, "policies");
    if (!cJSON_IsNumber(version) || version->valueint != RUNNER_STATE_VERSION ||
        !cJSON_IsArray(pol)) {
        ret = diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                       "the resume file's state is not traind runner state version %d",
                       RUNNER_STATE_VERSION);
        goto out;
    }
    if (cJSON_GetArraySize(pol) != r->n_policies) {
        ret = diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                       "the resume file has %d checkpoint policies, the job %d",
                       cJSON_GetArraySize(pol), r->n_policies);
        goto out;
    }
    int i = 0;
    for (const cJSON *ps = pol->child; ps; ps = ps->next, i++)
        if ((ret = policy_state_from_json(r, i, ps, d)) < 0)
            goto out;
    ret = runner_cb_state_restore(&r->cbs, o, d);
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(o, "epoch_position");
    if (ret == 0 && pos) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(pos, "batch");
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(pos, "loss_sum");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(pos, "seen");
        bool sums_ok = metric_sums_from_json(r, pos);
        if (!cJSON_IsNumber(b) || !cJSON_IsNumber(ls) || !sums_ok || !cJSON_IsNumber(n) ||
            b->valuedouble < 1 || b->valuedouble > 1e9 || n->valuedouble > 1e15) {
            ret = diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                           "the resume file's epoch position is malformed");
            goto out;
        }
        r->in_batch = (int)b->valuedouble;
        r->in_loss_sum = ls->valuedouble;
        r->in_seen = (long)n->valuedouble;
    }
out:
    cJSON_Delete(o);
    return ret;
}

/* Continue from <job_dir>/resume.h5 when it exists: *ret_epoch = epochs done. */
int resume_state_load(struct runner *r, int *ret_epoch, struct diag *d)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->job_dir, RUNNER_RESUME_FILE);
    if (access(path, F_OK) != 0) {
        *ret_epoch = 0;
        return errno == ENOENT ? 0 : diag_set(d, -errno, RUNNER_RESUME_FILE, "%s: %s", path,
                                                 strerror(errno));
    }
    int epoch = 0;
    char *state = NULL;
    int ret = h5_load_resume(r->m, r->opt, path, &epoch, &state, d);
    if (ret < 0) {
        diag_prefix(d, RUNNER_RESUME_FILE ": ");
        return ret;
    }
    ret = state_from_json(r, state, d);
    free(state);
    if (ret < 0)
        return ret;
    *ret_epoch = epoch;
    return 0;
}
