/* job_distribute.c - one job trained data-parallel over the ranks of an MPI
 * world: rank 0's runner posts it (runner_distribute), every other rank takes
 * part (runner_worker_job, called by mpi_worker.c's loop).
 *
 * The exchange, in this order, the same on every rank:
 *   1. rank 0 posts {"spec": <job spec>, "threads", "initial_epoch",
 *      "initial_batch", "initial_loss_sum", "initial_metric_sums",
 *      "initial_seen"} (mpi_comm_post), with "dataset_sha256" and
 *      "dataset_bytes" when it sends the data set (1b);
 *   1b. a data set that is not a configured one (uploaded with PUT
 *      /v1/datasets, or imported by `traind run` from dataset.file) exists
 *      only on rank 0: rank 0 sends its tensor file to the ranks that do not
 *      hold it yet.  Each rank looks for <rank_cache_dir>/<sha256>.tensor
 *      and checks its SHA-256 (a damaged copy is received again);
 *      the ranks tell each other whether they need it (gathered); when one
 *      does, rank 0 reads the file in SHIP_CHUNK pieces and broadcasts each
 *      (the file is never whole in memory), and every rank that needs it
 *      writes the pieces to a temp file, checks the SHA-256 and renames it
 *      into the cache (fsutil's atomic write).  The next job on the same
 *      data set finds it there and nothing is sent;
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
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpi_comm.h"

#define SETUP_MESSAGE 240
#define SHIP_CHUNK ((size_t)4 << 20)

/* Step 1b's data set file. */
struct shipment {
    bool active;                          /* the job's data set is sent */
    char sha256[FSUTIL_SHA256_HEX_SIZE];  /* of the file */
    uint64_t bytes;
    char path[PATH_MAX];  /* rank 0: the file; other ranks: the cached copy */
};

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
        size_t ex = dataset_example_bytes(ds[i]); /* uint8 or float32 pixels */
        fsutil_sha256(ds[i]->images, ds[i]->images ? (size_t)ds[i]->n * ex : 0, parts[2 * i]);
        if (ds[i]->targets) /* float regression targets instead of labels */
            fsutil_sha256(ds[i]->targets,
                          (size_t)ds[i]->n * (size_t)ds[i]->target_width * sizeof(float),
                          parts[2 * i + 1]);
        else
            fsutil_sha256(ds[i]->labels, ds[i]->labels ? (size_t)ds[i]->n : 0,
                          parts[2 * i + 1]);
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

/* Rank 0: the shipment for the job's data set.  A configured data set is not
 * sent: every rank reads its own copy named in the same configuration (step
 * 3 checks that they hold the same data). */
static int shipment_source(const struct job_spec *spec, const struct runner_env *env,
                           struct shipment *ret, struct diag *d)
{
    memset(ret, 0, sizeof(*ret));
    if (!spec->dataset_file[0] && runner_find_dataset(env, spec->dataset))
        return 0;
    struct runner_dataset ds;
    if (runner_resolve_dataset(env, spec->dataset, &ds) < 0)
        return diag_set(d, -ENOENT, "/dataset", "unknown data set '%s'", spec->dataset);
    if (strcmp(ds.format, "tensor") != 0)
        return 0;
    uint8_t sha[FSUTIL_SHA256_BYTES];
    int r = fsutil_sha256_file(ds.path, sha, &ret->bytes, d);
    if (r < 0) {
        if (d && !d->field[0])
            snprintf(d->field, sizeof(d->field), "/dataset");
        return r;
    }
    fsutil_sha256_hex(sha, ret->sha256);
    snprintf(ret->path, sizeof(ret->path), "%s", ds.path);
    ret->active = true;
    return 0;
}

/* A rank other than 0: s->path := its cache file for s; 1 when it is there
 * with rank 0's SHA-256, 0 when it must be received (missing, or damaged:
 * the copy received replaces it), negative errno (d) when there is no
 * cache. */
static int shipment_cached(struct shipment *s, const char *cache_dir, int rank, struct diag *d)
{
    if (!cache_dir || !cache_dir[0])
        return diag_set(d, -EINVAL, "/dataset", "rank %d has no folder for data sets", rank);
    if (snprintf(s->path, sizeof(s->path), "%s/%s.tensor", cache_dir, s->sha256) >=
        (int)sizeof(s->path))
        return diag_set(d, -ENAMETOOLONG, "/dataset", "rank %d: %s: path too long", rank,
                        cache_dir);
    struct stat st;
    if (stat(s->path, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != s->bytes)
        return 0;
    uint8_t sha[FSUTIL_SHA256_BYTES];
    char hex[FSUTIL_SHA256_HEX_SIZE];
    struct diag ignored = {{0}, {0}};
    if (fsutil_sha256_file(s->path, sha, NULL, &ignored) < 0)
        return 0;
    fsutil_sha256_hex(sha, hex);
    return strcmp(hex, s->sha256) == 0;
}

/* mkdir -p of the cache folder (mode 0700). */
static int make_dirs(const char *dir, struct diag *d)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
        return diag_set(d, -ENAMETOOLONG, "/dataset", "%s: path too long", dir);
    for (char *q = p + 1;; q++) {
        bool end = *q == '\0';
        if (*q == '/' || end) {
            *q = '\0';
            if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return diag_set(d, -errno, "/dataset", "%s: %s", p, strerror(errno));
            if (end)
                return 0;
            *q = '/';
        }
    }
}

/* Rank 0: n bytes of fd at off into buf; -errno, or -EIO when the file is
 * shorter than it was when hashed. */
static int read_at(int fd, void *buf, size_t n, uint64_t off)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        got += (size_t)k;
    }
    return 0;
}

/* Step 1b on every rank (s->active).  Returns 0 when this rank holds the file
 * afterwards (s->path), else its negative errno with d filled; the exchange
 * itself always runs to its end on every rank, so that the ranks stay in
 * step and report their failures in step 2.  -EPROTO: the exchange broke. */
static int ship_dataset(struct collective *c, struct shipment *s, const char *cache_dir,
                        const char *name, struct diag *d)
{
    int status = 0;
    int32_t need = 0;
    if (c->rank != 0) {
        status = shipment_cached(s, cache_dir, c->rank, d);
        need = status == 0;
        status = status < 0 ? status : 0;
    }
    void *buf = malloc(SHIP_CHUNK);
    int32_t *all = calloc((size_t)c->size, sizeof(*all));
    if (!buf || !all) {
        need = -1; /* nobody sends: the job fails in step 2 with this rank's reason */
        status = diag_set(d, -ENOMEM, "/dataset", "rank %d: out of memory", c->rank);
    }
    int32_t any = 0, gathered = 0;
    if (all && c->allgather(c->ctx, &need, all, sizeof(need)) == 0) {
        gathered = 1;
        for (int k = 0; k < c->size; k++)
            any = all[k] < 0 ? -1 : (any < 0 ? any : any | all[k]);
    } else if (all) {
        status = diag_set(d, -EPROTO, "", "the data set exchange between ranks failed");
    }
    free(all);
    if (!gathered || any <= 0) {
        free(buf);
        return status;
    }
    int fd = -1;
    bool writing = false;
    struct fsutil_atomic a = {.dfd = -1, .fd = -1}; /* used once begun */
    struct sha256_ctx h;
    sha256_init(&h);
    if (c->rank == 0) {
        fd = open(s->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            status = diag_set(d, -errno, "/dataset", "%s: %s", s->path, strerror(errno));
    } else if (need) {
        char file[FSUTIL_SHA256_HEX_SIZE + 8];
        snprintf(file, sizeof(file), "%s.tensor", s->sha256);
        status = make_dirs(cache_dir, d);
        if (status == 0)
            status = fsutil_atomic_begin(&a, cache_dir, file, d);
        writing = status == 0;
    }
    for (uint64_t off = 0; off < s->bytes;) {
        size_t n = s->bytes - off < SHIP_CHUNK ? (size_t)(s->bytes - off) : SHIP_CHUNK;
        if (c->rank == 0 && fd >= 0) {
            int r = read_at(fd, buf, n, off);
            if (r < 0) {
                status = diag_set(d, r, "/dataset", "%s: %s", s->path, strerror(-r));
                close(fd);
                fd = -1;
            }
        }
        if (c->rank == 0 && fd < 0)
            memset(buf, 0, n); /* the receivers' SHA-256 check fails */
        if (c->bcast(c->ctx, buf, n) < 0) {
            status = diag_set(d, -EPROTO, "", "the data set exchange between ranks failed");
            break;
        }
        if (writing) {
            sha256_update(&h, n, buf);
            int r = fsutil_write_all(a.fd, buf, n);
            if (r < 0) {
                status = diag_set(d, r, "/dataset", "rank %d: %s/%s: write: %s", c->rank,
                                  cache_dir, a.tmp, strerror(-r));
                fsutil_atomic_abort(&a);
                writing = false;
            }
        }
        off += n;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    if (writing) {
        uint8_t got[FSUTIL_SHA256_BYTES];
        char hex[FSUTIL_SHA256_HEX_SIZE];
        sha256_digest(&h, sizeof(got), got);
        fsutil_sha256_hex(got, hex);
        if (status < 0 || strcmp(hex, s->sha256) != 0) {
            fsutil_atomic_abort(&a);
            if (status == 0)
                status = diag_set(d, -EIO, "/dataset",
                                  "data set '%s' reached rank %d with sha256 %s, rank 0 sent %s",
                                  name, c->rank, hex, s->sha256);
        } else {
            status = fsutil_atomic_commit(&a, d);
            if (status < 0 && d)
                snprintf(d->field, sizeof(d->field), "/dataset");
        }
    }
    return status;
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

static char *job_message(const struct runner *r, const struct fit_options *o,
                         const struct shipment *ship)
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
        cJSON *sums = cJSON_AddArrayToObject(msg, "initial_metric_sums");
        ok &= sums != NULL;
        for (int i = 0; ok && i < r->spec->n_metrics; i++)
            ok &= cjson_append(sums, cjson_double(o->initial_metric_sums[i]));
        ok &= cJSON_AddNumberToObject(msg, "initial_seen", (double)o->initial_seen) != NULL;
        if (ship->active) {
            ok &= cJSON_AddStringToObject(msg, "dataset_sha256", ship->sha256) != NULL;
            ok &= cJSON_AddNumberToObject(msg, "dataset_bytes", (double)ship->bytes) != NULL;
        }
        if (ok)
            text = cJSON_PrintUnformatted(msg);
    }
    cJSON_Delete(spec_obj);
    cJSON_Delete(msg);
    return text;
}

int runner_distribute(struct runner *r, const struct runner_env *env,
                      const struct dataset *train, const struct dataset *val,
                      const struct fit_options *o, struct diag *d)
{
    struct collective *c = env->coll;
    struct shipment ship;
    int ret = shipment_source(r->spec, env, &ship, d);
    if (ret < 0)
        return ret;
    char *msg = job_message(r, o, &ship);
    if (!msg)
        return diag_set(d, -ENOMEM, "", "out of memory for the job message");
    ret = mpi_comm_post(msg, strlen(msg));
    free(msg);
    if (ret < 0)
        return diag_set(d, ret, "", "posting the job to the other ranks failed");
    int status = ship.active ? ship_dataset(c, &ship, NULL, r->spec->dataset, d) : 0;
    if ((ret = exchange_status(c, status, d, d)) < 0 ||
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

/* Step 1 on a worker: the spec and fit options from rank 0's message, and
 * the shipment (step 1b; read even when the rest fails, so that this rank
 * takes part in it). */
static int parse_message(const char *msg, size_t len, struct job_spec *spec, int *threads,
                         struct fit_options *o, struct shipment *ship, struct diag *d)
{
    cJSON *root = cJSON_ParseWithLength(msg, len);
    memset(ship, 0, sizeof(*ship));
    const cJSON *sha = root ? cJSON_GetObjectItemCaseSensitive(root, "dataset_sha256") : NULL;
    const cJSON *bytes = root ? cJSON_GetObjectItemCaseSensitive(root, "dataset_bytes") : NULL;
    if (cJSON_IsString(sha) && strlen(sha->valuestring) == FSUTIL_SHA256_HEX_SIZE - 1 &&
        strspn(sha->valuestring, "0123456789abcdef") == FSUTIL_SHA256_HEX_SIZE - 1 &&
        cJSON_IsNumber(bytes) && bytes->valuedouble >= 0) {
        ship->active = true;
        memcpy(ship->sha256, sha->valuestring, FSUTIL_SHA256_HEX_SIZE);
        ship->bytes = (uint64_t)bytes->valuedouble;
    }
    const cJSON *so = root ? cJSON_GetObjectItemCaseSensitive(root, "spec") : NULL;
    char *spec_text = so ? cJSON_PrintUnformatted(so) : NULL;
    long th = 0, ie = 0, ib = 0, is = 0;
    double ils = 0, ims[METRICS_MAX] = {0};
    const cJSON *sums = root ? cJSON_GetObjectItemCaseSensitive(root, "initial_metric_sums") : NULL;
    int n_sums = cJSON_IsArray(sums) ? 0 : -1;
    for (const cJSON *c = n_sums == 0 ? sums->child : NULL; c; c = c->next) {
        if (n_sums >= METRICS_MAX || !cJSON_IsNumber(c)) {
            n_sums = -1; /* malformed */
            break;
        }
        ims[n_sums++] = c->valuedouble;
    }
    int ret = -EPROTO;
    if (spec_text && json_int(root, "threads", &th) == 0 &&
        json_int(root, "initial_epoch", &ie) == 0 && json_int(root, "initial_batch", &ib) == 0 &&
        cjson_get_double(root, "initial_loss_sum", &ils) && n_sums >= 0 &&
        json_int(root, "initial_seen", &is) == 0)
        /* rank 0's own spec: `traind run`'s may name a local file */
        ret = job_spec_parse_local(spec, spec_text, strlen(spec_text), d);
    else
        diag_set(d, -EPROTO, "", "malformed job message from rank 0");
    if (ret == 0 && n_sums != spec->n_metrics) {
        ret = diag_set(d, -EPROTO, "", "rank 0 sent %d metric sums for %d metrics", n_sums,
                       spec->n_metrics);
        job_spec_free(spec);
    }
    if (ret == 0) {
        *threads = (int)th;
        fit_options_default(o);
        o->epochs = spec->epochs;
        o->initial_epoch = (int)ie;
        o->batch_size = spec->batch_size;
        o->steps_per_epoch = spec->steps_per_epoch;
        o->validation_steps = spec->validation_steps;
        o->seed = spec->seed;
        runner_metric_keys(spec, o);
        o->initial_batch = (int)ib;
        o->initial_loss_sum = ils;
        memcpy(o->initial_metric_sums, ims, sizeof(ims));
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
    struct shipment ship;
    int threads = 1;
    bool have_spec = false;
    int ret = parse_message(msg, len, &spec, &threads, &o, &ship, d);
    if (ret == 0) {
        have_spec = true;
        spec.threads = threads; /* every rank as many threads as rank 0 */
    }
    if (ship.active) {
        struct diag sd = {{0}, {0}};
        int s = ship_dataset(c, &ship, env->rank_cache_dir, have_spec ? spec.dataset : "?", &sd);
        if (ret == 0 && s < 0) {
            ret = s;
            if (d)
                *d = sd;
        }
    }
    if (ret == 0) {
        /* the data set rank 0 sent, under the job's name */
        struct runner_env local = *env;
        struct runner_dataset cached;
        if (ship.active) {
            memset(&cached, 0, sizeof(cached));
            snprintf(cached.name, sizeof(cached.name), "%s", spec.dataset);
            snprintf(cached.format, sizeof(cached.format), "tensor");
            snprintf(cached.path, sizeof(cached.path), "%s", ship.path);
            local.datasets = &cached;
            local.n_datasets = 1;
            local.resolve_dataset = NULL;
        }
        ret = runner_load_data(&spec, &local, &train, &val, d);
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
