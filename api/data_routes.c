/* data_routes.c - the data set and model-use routes: request parsing (see
 * data_routes.h) and serving (server_internal.h: serve_dataset, serve_use),
 * the slow part as a task (tasks.h). */
#include "data_routes.h"
#include "server_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *query(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

static const char *header(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, key);
}

/* Unknown query parameters are errors, as unknown JSON fields are. */
struct query_check {
    const char *const *allowed;
    const char *bad;
};

static enum MHD_Result check_key(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)value;
    struct query_check *q = cls;
    for (const char *const *a = q->allowed; *a; a++)
        if (strcmp(key, *a) == 0)
            return MHD_YES;
    q->bad = key;
    return MHD_NO;
}

static int check_query(struct MHD_Connection *c, const char *const *allowed, struct diag *d)
{
    struct query_check q = {allowed, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_key, &q);
    if (q.bad)
        return diag_set(d, -EINVAL, q.bad, "unknown query parameter '%s'", q.bad);
    return 0;
}

static int parse_u32(const char *s, unsigned long max, unsigned long *ret)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

int api_upload_prepare(struct api_upload *u, const struct api_backend *be,
                       struct MHD_Connection *c, const char *name, struct diag *d)
{
    static const char *const allowed[] = {"image_size", "color_mode", "validation_split", "seed",
                                          "format", NULL};
    memset(u, 0, sizeof(*u));
    u->be = be;
    u->fd = -1;
    snprintf(u->name, sizeof(u->name), "%s", name);
    import_options_init(&u->o);
    int r = check_query(c, allowed, d);
    if (r < 0)
        return r;
    const char *v;
    if ((v = query(c, "image_size")) != NULL) {
        unsigned long h, w;
        char hs[16], ws[16];
        const char *x = strpbrk(v, "x,");
        if (!x || x == v || (size_t)(x - v) >= sizeof(hs) || strlen(x + 1) >= sizeof(ws))
            return diag_set(d, -EINVAL, "image_size", "image_size is HEIGHTxWIDTH, e.g. 64x64");
        memcpy(hs, v, (size_t)(x - v));
        hs[x - v] = '\0';
        snprintf(ws, sizeof(ws), "%s", x + 1);
        if (parse_u32(hs, 4096, &h) < 0 || parse_u32(ws, 4096, &w) < 0 || h < 1 || w < 1)
            return diag_set(d, -EINVAL, "image_size", "image_size sides are 1 to 4096");
        u->o.image_h = (int)h;
        u->o.image_w = (int)w;
    }
    if ((v = query(c, "color_mode")) != NULL && import_color_mode_parse(v, &u->o.color_mode) < 0)
        return diag_set(d, -EINVAL, "color_mode", "color_mode is grayscale, rgb or rgba");
    if ((v = query(c, "validation_split")) != NULL) {
        char *end;
        double x = strtod(v, &end);
        if (!*v || *end || !isfinite(x) || x < 0 || x >= 1)
            return diag_set(d, -EINVAL, "validation_split", "validation_split is in [0, 1)");
        u->o.validation_split = x;
    }
    if ((v = query(c, "seed")) != NULL) {
        unsigned long s;
        if (parse_u32(v, 4294967295ul, &s) < 0)
            return diag_set(d, -EINVAL, "seed", "seed is an integer from 0 to 4294967295");
        u->o.seed = (uint32_t)s;
    }
    const char *fmt = query(c, "format");
    const char *ctype = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (fmt) {
        if (import_format_parse(fmt, &u->o.format) < 0)
            return diag_set(d, -EINVAL, "format", "format is npz, images, hdf5, cifar10 or auto");
    } else if (ctype && *ctype && import_format_parse(ctype, &u->o.format) < 0) {
        return diag_set(d, -EMEDIUMTYPE, "Content-Type",
                        "unsupported Content-Type '%.100s' (application/octet-stream to sniff, "
                        "application/x-npz, application/zip, application/x-tar, "
                        "application/gzip, application/x-hdf5)", ctype);
    }
    return 0;
}

int api_upload_prepare_weights(struct api_upload *u, const struct api_backend *be,
                               struct MHD_Connection *c, const char *name, struct diag *d)
{
    static const char *const allowed[] = {NULL};
    memset(u, 0, sizeof(*u));
    u->be = be;
    u->fd = -1;
    u->weights = true;
    snprintf(u->name, sizeof(u->name), "%s", name);
    import_options_init(&u->o);
    if (!be->weights_put)
        return diag_set(d, -ENOSYS, "", "weights uploads are not available");
    return check_query(c, allowed, d);
}

int api_upload_write(struct api_upload *u, const char *data, size_t n, uint64_t max,
                     struct diag *d)
{
    if (u->bytes + n > max)
        return diag_set(d, -EFBIG, "body", "data set larger than %llu bytes",
                        (unsigned long long)max);
    if (u->fd < 0) {
        if (!u->be->dataset_upload_file)
            return diag_set(d, -ENOSYS, "", "uploads are not available");
        int r = u->be->dataset_upload_file(u->be->ctx, u->path, &u->fd, d);
        if (r < 0)
            return r;
    }
    while (n > 0) {
        ssize_t w = write(u->fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return diag_set(d, w < 0 ? -errno : -EIO, "body", "storing the upload: %s",
                            strerror(w < 0 ? errno : EIO));
        data += w;
        n -= (size_t)w;
        u->bytes += (uint64_t)w;
    }
    return 0;
}

void api_upload_task(void *arg)
{
    struct api_upload *u = arg;
    struct api_task_result *res = &u->res;
    if (u->fd < 0) {
        res->err = diag_set(&res->d, -EINVAL, "body", "the request has no body (the data set "
                            "file is the body)");
        return;
    }
    int fd = u->fd;
    u->fd = -1;
    if (close(fd) < 0) {
        res->err = diag_set(&res->d, -EIO, "body", "storing the upload: %s", strerror(errno));
        return;
    }
    if (u->weights)
        res->err = u->be->weights_put(u->be->ctx, u->name, u->path, &res->json, &res->d);
    else
        res->err = u->be->dataset_put(u->be->ctx, u->name, u->path, &u->o, &res->json, &res->d);
    u->path[0] = '\0'; /* dataset_put / weights_put removed it */
}

void api_upload_free(struct api_upload *u)
{
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->path[0])
        unlink(u->path);
    u->path[0] = '\0';
    free(u->res.json);
    u->res.json = NULL;
}

static int set_checkpoint(struct api_use *u, const char *v, const char *field, struct diag *d)
{
    if (!v || !*v || strlen(v) >= sizeof(u->checkpoint))
        return diag_set(d, -EINVAL, field, "checkpoint is \"best\", \"latest\" or a file name of "
                        "the job");
    snprintf(u->checkpoint, sizeof(u->checkpoint), "%s", v);
    return 0;
}

int api_evaluate_prepare(struct api_use *u, const struct api_backend *be, const char *id,
                         const char *body, size_t len, struct diag *d)
{
    memset(u, 0, sizeof(*u));
    u->be = be;
    snprintf(u->id, sizeof(u->id), "%s", id);
    cJSON *root = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return diag_set(d, -EINVAL, "", "the body is a JSON object {\"checkpoint\": \"best\", "
                        "\"dataset\": name}");
    }
    int r = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (strcmp(it->string, "checkpoint") != 0 && strcmp(it->string, "dataset") != 0) {
            char field[80];
            snprintf(field, sizeof(field), "/%.60s", it->string);
            r = diag_set(d, -EINVAL, field, "unknown field");
            break;
        }
    }
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(root, "checkpoint");
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(root, "dataset");
    if (r == 0)
        r = set_checkpoint(u, ck ? (cJSON_IsString(ck) ? ck->valuestring : "") : "best",
                           "/checkpoint", d);
    if (r == 0 && (!cJSON_IsString(ds) || !ds->valuestring[0] ||
                   strlen(ds->valuestring) >= sizeof(u->dataset)))
        r = diag_set(d, -EINVAL, "/dataset", "dataset names the data set to evaluate on");
    if (r == 0)
        snprintf(u->dataset, sizeof(u->dataset), "%s", ds->valuestring);
    cJSON_Delete(root);
    return r;
}

static bool type_is(const char *ctype, const char *want)
{
    size_t n = strlen(want);
    while (*ctype == ' ')
        ctype++;
    return strncasecmp(ctype, want, n) == 0 && (ctype[n] == '\0' || ctype[n] == ';' ||
                                                ctype[n] == ' ');
}

int api_predict_prepare(struct api_use *u, const struct api_backend *be,
                        struct MHD_Connection *c, const char *id, const char *body, size_t len,
                        struct diag *d)
{
    static const char *const allowed[] = {"checkpoint", NULL};
    memset(u, 0, sizeof(*u));
    u->be = be;
    u->predict = true;
    snprintf(u->id, sizeof(u->id), "%s", id);
    int r = check_query(c, allowed, d);
    if (r < 0)
        return r;
    const char *ck = query(c, "checkpoint");
    if ((r = set_checkpoint(u, ck ? ck : "best", "checkpoint", d)) < 0)
        return r;
    const char *ctype = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ctype)
        ctype = "";
    if (len == 0)
        return diag_set(d, -EINVAL, "body", "the request has no body (an image or an .npy batch)");
    if (type_is(ctype, "image/png") || type_is(ctype, "image/jpeg")) {
        u->inputs[0] = (struct api_predict_input){.data = body, .len = len};
        u->n_inputs = 1;
        return 0;
    }
    if (type_is(ctype, "application/x-npy") || type_is(ctype, "application/octet-stream")) {
        u->inputs[0] = (struct api_predict_input){.data = body, .len = len, .npy = true};
        u->n_inputs = 1;
        return 0;
    }
    char boundary[72];
    if (multipart_boundary(ctype, boundary) == 0) {
        struct multipart_part *parts = malloc(MULTIPART_MAX_PARTS * sizeof(*parts));
        if (!parts)
            return diag_set(d, -ENOMEM, "body", "out of memory");
        int n = 0;
        r = multipart_parse(body, len, boundary, parts, MULTIPART_MAX_PARTS, &n, d);
        for (int i = 0; r == 0 && i < n; i++) {
            struct api_predict_input *in = &u->inputs[i];
            *in = (struct api_predict_input){.data = parts[i].data, .len = parts[i].len};
            snprintf(in->name, sizeof(in->name), "%s",
                     parts[i].filename[0] ? parts[i].filename : parts[i].name);
            if (type_is(parts[i].content_type, "application/x-npy"))
                r = diag_set(d, -EINVAL, "body", "an .npy batch is sent alone, not in a "
                             "multipart body");
        }
        free(parts);
        if (r == 0)
            u->n_inputs = n;
        return r;
    }
    return diag_set(d, -EMEDIUMTYPE, "Content-Type", "predict takes image/png, image/jpeg, "
                    "multipart/form-data of images, or application/x-npy");
}

void api_use_task(void *arg)
{
    struct api_use *u = arg;
    struct api_task_result *res = &u->res;
    if (u->predict)
        res->err = u->be->predict ? u->be->predict(u->be->ctx, u->id, u->checkpoint, u->inputs,
                                                   u->n_inputs, &res->json, &res->d)
                                  : -ENOSYS;
    else
        res->err = u->be->evaluate ? u->be->evaluate(u->be->ctx, u->id, u->checkpoint, u->dataset,
                                                     &res->json, &res->d)
                                   : -ENOSYS;
}

void api_use_free(struct api_use *u)
{
    free(u->res.json);
    u->res.json = NULL;
}

/* --- serving (libmicrohttpd's thread) ------------------------------------------ */

/* The answer of a finished task: status with its JSON, or its error. */
static enum MHD_Result respond_task(struct request *rq, struct MHD_Connection *c,
                                    struct api_task_result *res, unsigned status,
                                    const char *location)
{
    if (res->err < 0)
        return respond_backend_error(rq, c, res->err, &res->d, "request failed");
    char *json = res->json;
    res->json = NULL;
    struct MHD_Response *resp = text_response(json, strlen(json), "application/json");
    if (resp && location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    return respond_queue(rq, c, status, resp);
}

enum MHD_Result serve_dataset(struct request *rq, struct MHD_Connection *c)
{
    struct api_server *srv = rq->srv;
    const struct api_backend *be = &srv->be;
    struct diag d = {{0}, {0}};
    char *out = NULL;
    int r;
    if (rq->method == API_METHOD_DELETE) {
        r = be->dataset_delete ? be->dataset_delete(be->ctx, rq->path.name, &d) : -ENOSYS;
        if (r < 0)
            return respond_backend_error(rq, c, r, &d, "no such data set");
        return respond_queue(rq, c, MHD_HTTP_NO_CONTENT,
                             MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
    }
    if (rq->method != API_METHOD_PUT) {
        r = be->dataset_get ? be->dataset_get(be->ctx, rq->path.name, &out) : -ENOSYS;
        return r < 0 ? respond_backend_error(rq, c, r, NULL, "no such data set")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    }
    return serve_upload(rq, c);
}

/* /v1/weights/{name}: GET/HEAD download, DELETE, PUT upload. */
enum MHD_Result serve_weights(struct request *rq, struct MHD_Connection *c)
{
    const struct api_backend *be = &rq->srv->be;
    struct diag d = {{0}, {0}};
    if (rq->method == API_METHOD_DELETE) {
        int r = be->weights_delete ? be->weights_delete(be->ctx, rq->path.name, &d) : -ENOSYS;
        if (r < 0)
            return respond_backend_error(rq, c, r, &d, "no such weights file");
        return respond_queue(rq, c, MHD_HTTP_NO_CONTENT,
                             MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
    }
    if (rq->method != API_METHOD_PUT)
        return serve_file(rq, c, API_FILE_UPLOADED);
    return serve_upload(rq, c);
}

/* The PUT of a data set or a weights file: the stored body handed to the
 * backend on a task thread; 201 with the resource. */
enum MHD_Result serve_upload(struct request *rq, struct MHD_Connection *c)
{
    struct api_server *srv = rq->srv;
    struct api_upload *u = rq->upload;
    if (!rq->task_started) {
        rq->task_started = true;
        int r = api_task_start(&srv->tasks, c, api_upload_task, u, &u->res.done);
        if (r < 0)
            return respond_backend_error(rq, c, r, NULL, "cannot start the import");
        return MHD_YES; /* suspended until the import ends */
    }
    if (!atomic_load(&u->res.done))
        return MHD_YES;
    char loc[128];
    snprintf(loc, sizeof(loc), "/v1/%s/%s", u->weights ? "weights" : "datasets", rq->path.name);
    return respond_task(rq, c, &u->res, MHD_HTTP_CREATED, loc);
}

enum MHD_Result serve_use(struct request *rq, struct MHD_Connection *c)
{
    struct api_server *srv = rq->srv;
    struct diag d = {{0}, {0}};
    int r;
    if (!rq->task_started) {
        rq->task_started = true;
        rq->use = calloc(1, sizeof(*rq->use));
        if (!rq->use)
            return MHD_NO;
        if (rq->path.route == API_ROUTE_JOB_EVALUATE)
            r = api_evaluate_prepare(rq->use, &srv->be, rq->path.id, rq->body, rq->body_len, &d);
        else
            r = api_predict_prepare(rq->use, &srv->be, c, rq->path.id, rq->body, rq->body_len,
                                    &d);
        if (r < 0)
            return respond_backend_error(rq, c, r, &d, "bad request");
        r = api_task_start(&srv->tasks, c, api_use_task, rq->use, &rq->use->res.done);
        if (r < 0)
            return respond_backend_error(rq, c, r, NULL, "cannot start");
        return MHD_YES; /* suspended until the work ends */
    }
    if (!atomic_load(&rq->use->res.done))
        return MHD_YES;
    return respond_task(rq, c, &rq->use->res, MHD_HTTP_OK, NULL);
}
