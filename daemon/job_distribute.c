/* job_distribute.c - one job trained data-parallel over the ranks of an MPI
 * world: rank 0's runner posts it (runner_distribute), every other rank takes
 * part (runner_worker_job, called by mpi_worker.c's loop).
 *
 * The exchange, in this order, the same on every rank:
 *   1. rank 0 posts {"spec": <job spec>, "threads", "initial_epoch",
 *      "initial_batch", "initial_loss_sum", "initial_correct",
 *      "initial_seen"} (mpi_comm_post);
 *   2. every rank reports whether it built the job (data set, model,
 *      optimizer): a status and a message, gathered; any failure fails the
 *      job on every rank with that rank's reason;
 *   3. every rank's SHA-256 of its training and validation data (images and
 *      labels as loaded), gathered; a rank whose data differ from rank 0's
 *      fails the job ("/dataset");
 *   4. rank 0's weights (trainable and BN statistics), optimizer slots and
 *      iterations are broadcast: a resumed or warm-started job continues from
 *      rank 0's files on every rank;
 *   5. fit() on every rank with model->coll set (core/model.c, core/fit.c).
 * Only this file and mpi_comm.c know about ranks; the collective itself is
 * core/collective.h. */
#include "job_runner_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_comm.h"

#define SETUP_MESSAGE 240

struct setup_status {
    int32_t status;               /* 0 or a negative errno */
    char message[SETUP_MESSAGE];  /* "field: message" */
};

/* Step 2: 0 when every rank built the job, else the first failure (d names
 * the rank). */
static int exchange_status(struct collective *c, int status, const struct diag *mine,
                           struct diag *d)
{
    struct setup_status s = {.status = status};
    if (status < 0 && mine) {
        /* "field: message", cut to fit */
        size_t n = strnlen(mine->field, sizeof(mine->field));
        n = n < SETUP_MESSAGE / 2 ? n : SETUP_MESSAGE / 2;
        memcpy(s.message, mine->field, n);
        if (n)
            memcpy(s.message + n, ": ", 2), n += 2;
        size_t m = strnlen(mine->message, sizeof(mine->message));
        m = m < SETUP_MESSAGE - 1 - n ? m : SETUP_MESSAGE - 1 - n;
        memcpy(s.message + n, mine->message, m);
    }
    struct setup_status *all = calloc((size_t)c->size, sizeof(*all));
    if (!all)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int r = c->allgather(c->ctx, &s, all, sizeof(s));
    for (int k = 0; r == 0 && k < c->size; k++)
        if (all[k].status < 0 && k != c->rank) {
            all[k].message[SETUP_MESSAGE - 1] = '\0';
            r = diag_set(d, all[k].status, "", "rank %d of %d could not set up the job: %s", k,
                         c->size, all[k].message);
        } else if (all[k].status < 0) {
            r = all[k].status; /* our own failure: d already says why */
        }
    free(all);
    return r;
}

static void data_sha256(const struct dataset *train, const struct dataset *val,
                        uint8_t ret[FSUTIL_SHA256_BYTES])
{
    uint8_t parts[4][FSUTIL_SHA256_BYTES];
    const struct dataset *ds[2] = {train, val};
    for (int i = 0; i < 2; i++) {
        size_t ex = (size_t)ds[i]->h * ds[i]->w * ds[i]->c;
        fsutil_sha256(ds[i]->images, ds[i]->images ? (size_t)ds[i]->n * ex : 0, parts[2 * i]);
        fsutil_sha256(ds[i]->labels, ds[i]->labels ? (size_t)ds[i]->n : 0, parts[2 * i + 1]);
    }
    fsutil_sha256(parts, sizeof(parts), ret);
}

/* Step 3. */
static int check_data(struct collective *c, const char *name, const struct dataset *train,
                      const struct dataset *val, struct diag *d)
{
    uint8_t mine[FSUTIL_SHA256_BYTES];
    data_sha256(train, val, mine);
    uint8_t *all = malloc((size_t)c->size * FSUTIL_SHA256_BYTES);
    if (!all)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int r = c->allgather(c->ctx, mine, all, FSUTIL_SHA256_BYTES);
    for (int k = 1; r == 0 && k < c->size; k++)
        if (memcmp(all, all + (size_t)k * FSUTIL_SHA256_BYTES, FSUTIL_SHA256_BYTES) != 0) {
            char h0[FSUTIL_SHA256_HEX_SIZE], hk[FSUTIL_SHA256_HEX_SIZE];
            fsutil_sha256_hex(all, h0);
            fsutil_sha256_hex(all + (size_t)k * FSUTIL_SHA256_BYTES, hk);
            r = diag_set(d, -EINVAL, "/dataset",
                         "data set '%s' differs between ranks: rank 0 has sha256 %s, rank %d "
                         "has %s (every rank must have the same files)",
                         name, h0, k, hk);
        }
    free(all);
    return r;
}

/* Step 4. */
static int share_state(struct collective *c, struct model *m, struct optimizer *opt)
{
    int r = c->bcast(c->ctx, m->params, m->n_params * sizeof(float));
    for (int k = 0; r == 0 && k < opt->n_slots; k++)
        r = c->bcast(c->ctx, opt->slots[k], opt->n * sizeof(float));
    if (r == 0)
        r = c->bcast(c->ctx, &opt->iterations, sizeof(opt->iterations));
    return r;
}

static char *job_message(const struct runner *r, const struct fit_options *o)
{
    char *spec = job_spec_to_json(r->spec);
    cJSON *msg = cJSON_CreateObject();
    cJSON *spec_obj = spec ? cJSON_Parse(spec) : NULL;
    free(spec);
    char *text = NULL;
    if (msg && spec_obj && cJSON_AddItemToObject(msg, "spec", spec_obj)) {
        spec_obj = NULL;
        bool ok = cJSON_AddNumberToObject(msg, "threads", r->m->threads) != NULL;
        ok &= cJSON_AddNumberToObject(msg, "initial_epoch", o->initial_epoch) != NULL;
        ok &= cJSON_AddNumberToObject(msg, "initial_batch", o->initial_batch) != NULL;
        ok &= cJSON_AddItemToObject(msg, "initial_loss_sum",
                                    cjson_double(o->initial_loss_sum));
        ok &= cJSON_AddNumberToObject(msg, "initial_correct", (double)o->initial_correct) != NULL;
        ok &= cJSON_AddNumberToObject(msg, "initial_seen", (double)o->initial_seen) != NULL;
        if (ok)
            text = cJSON_PrintUnformatted(msg);
    }
    cJSON_Delete(spec_obj);
    cJSON_Delete(msg);
    return text;
}

int runner_distribute(struct runner *r, struct collective *c, const struct dataset *train,
                      const struct dataset *val, const struct fit_options *o, struct diag *d)
{
    char *msg = job_message(r, o);
    if (!msg)
        return diag_set(d, -ENOMEM, "", "out of memory for the job message");
    int ret = mpi_comm_post(msg, strlen(msg));
    free(msg);
    if (ret < 0)
        return diag_set(d, ret, "", "posting the job to the other ranks failed");
    if ((ret = exchange_status(c, 0, NULL, d)) < 0 ||
        (ret = check_data(c, r->spec->dataset, train, val, d)) < 0)
        return ret;
    if ((ret = share_state(c, r->m, r->opt)) < 0)
        return diag_set(d, ret, "", "sending the weights to the other ranks failed");
    r->m->coll = c;
    return 0;
}

static int json_int(const cJSON *o, const char *key, long *ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return -EPROTO;
    *ret = (long)v->valuedouble;
    return 0;
}

/* Step 1 on a worker: the spec and fit options from rank 0's message. */
static int parse_message(const char *msg, size_t len, struct job_spec *spec, int *threads,
                         struct fit_options *o, struct diag *d)
{
    cJSON *root = cJSON_ParseWithLength(msg, len);
    const cJSON *so = root ? cJSON_GetObjectItemCaseSensitive(root, "spec") : NULL;
    char *spec_text = so ? cJSON_PrintUnformatted(so) : NULL;
    long th = 0, ie = 0, ib = 0, ic = 0, is = 0;
    double ils = 0;
    int ret = -EPROTO;
    if (spec_text && json_int(root, "threads", &th) == 0 &&
        json_int(root, "initial_epoch", &ie) == 0 && json_int(root, "initial_batch", &ib) == 0 &&
        cjson_get_double(root, "initial_loss_sum", &ils) &&
        json_int(root, "initial_correct", &ic) == 0 && json_int(root, "initial_seen", &is) == 0)
        ret = job_spec_parse(spec, spec_text, strlen(spec_text), d);
    else
        diag_set(d, -EPROTO, "", "malformed job message from rank 0");
    if (ret == 0) {
        *threads = (int)th;
        fit_options_default(o);
        o->epochs = spec->epochs;
        o->initial_epoch = (int)ie;
        o->batch_size = spec->batch_size;
        o->steps_per_epoch = spec->steps_per_epoch;
        o->validation_steps = spec->validation_steps;
        o->seed = spec->seed;
        o->initial_batch = (int)ib;
        o->initial_loss_sum = ils;
        o->initial_correct = ic;
        o->initial_seen = is;
    }
    free(spec_text);
    cJSON_Delete(root);
    return ret;
}

int runner_worker_job(const char *msg, size_t len, const struct runner_env *env,
                      struct diag *d)
{
    struct collective *c = env->coll;
    struct job_spec spec;
    memset(&spec, 0, sizeof(spec));
    struct fit_options o;
    struct runner r = {.spec = &spec, .ckpt_dirfd = -1};
    struct dataset train = {0}, val = {0};
    int threads = 1;
    bool have_spec = false;
    int ret = parse_message(msg, len, &spec, &threads, &o, d);
    if (ret == 0) {
        have_spec = true;
        spec.threads = threads; /* every rank as many threads as rank 0 */
        ret = runner_load_data(&spec, env, &train, &val, d);
    }
    if (ret == 0)
        ret = runner_build_model(&r, &train, env, d);
    if ((ret = exchange_status(c, ret, d, d)) < 0 ||
        (ret = check_data(c, spec.dataset, &train, &val, d)) < 0 ||
        (ret = share_state(c, r.m, r.opt)) < 0)
        goto out;
    r.m->coll = c;
    ret = fit(r.m, r.opt, &train, &val, &o, NULL, NULL, d);
out:
    optimizer_free(r.opt);
    model_free(r.m);
    dataset_free(&train);
    dataset_free(&val);
    if (have_spec)
        job_spec_free(&spec);
    return ret;
}
