/* route.c - request path -> route, with job id and checkpoint path checks
 * done on the decoded text before anything touches the file system. */
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "template.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode one segment into out.  Rejects bad escapes, decoded '/'
 * and NUL (either raw or encoded), and segments longer than outsz - 1. */
static int segment_decode(char *out, size_t outsz, const char *s, size_t len, struct diag *d)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return diag_set(d, -EINVAL, "", "truncated percent escape in path");
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return diag_set(d, -EINVAL, "", "bad percent escape in path");
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '/')
                return diag_set(d, -EINVAL, "", "encoded '/' in path");
        }
        if (c == '\0')
            return diag_set(d, -EINVAL, "", "NUL in path");
        if (o + 1 >= outsz)
            return diag_set(d, -EINVAL, "", "path component too long");
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int api_role_parse(const char *name, enum api_role *ret)
{
    static const enum api_role roles[] = {API_ROLE_READ, API_ROLE_SUBMIT, API_ROLE_ADMIN};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(name, api_role_name(roles[i])) == 0) {
            *ret = roles[i];
            return 0;
        }
    return -EINVAL;
}

const char *api_role_name(enum api_role role)
{
    switch (role) {
    case API_ROLE_READ:
        return "read";
    case API_ROLE_SUBMIT:
        return "submit";
    case API_ROLE_ADMIN:
        return "admin";
    case API_ROLE_NONE:
        break;
    }
    return "none";
}

enum api_role api_route_role(enum api_route route, unsigned method)
{
    if (method == API_METHOD_GET || method == API_METHOD_HEAD)
        return API_ROLE_READ;
    if (method == API_METHOD_POST && route == API_ROUTE_MODEL_VALIDATE)
        return API_ROLE_READ; /* reads a model config, changes nothing */
    if (method == API_METHOD_POST &&
        (route == API_ROUTE_JOBS || route == API_ROUTE_JOB_CANCEL ||
         route == API_ROUTE_JOB_EVALUATE || route == API_ROUTE_JOB_PREDICT))
        return API_ROLE_SUBMIT;
    return API_ROLE_ADMIN;
}

bool api_component_valid(const char *name)
{
    /* The checkpoint name rule: a name the template can render is a name
     * this route accepts, and the reverse. */
    return template_name_valid(name, strlen(name));
}

static const struct {
    const char *name;
    enum api_route route;
} job_subroutes[] = {
    {"cancel", API_ROUTE_JOB_CANCEL},
    {"events", API_ROUTE_JOB_EVENTS},
    {"metrics", API_ROUTE_JOB_METRICS},
    {"checkpoints", API_ROUTE_JOB_CHECKPOINTS},
    {"best", API_ROUTE_JOB_BEST},
    {"latest", API_ROUTE_JOB_LATEST},
    {"evaluate", API_ROUTE_JOB_EVALUATE},
    {"predict", API_ROUTE_JOB_PREDICT},
};

#define MAX_SEGMENTS (4 + API_PATH_MAX_COMPONENTS + 1)

int api_path_parse(struct api_path *ret, const char *raw, size_t len, struct diag *d)
{
    char seg[MAX_SEGMENTS][API_PATH_MAX_NAME + 1];
    int n = 0;
    int r;

    if (len == 0 || raw[0] != '/')
        return diag_set(d, -ENOENT, "", "no such route");
    size_t i = 1;
    for (;;) {
        size_t start = i;
        while (i < len && raw[i] != '/')
            i++;
        if (n == MAX_SEGMENTS)
            return diag_set(d, -ENOENT, "", "no such route");
        r = segment_decode(seg[n], sizeof(seg[n]), raw + start, i - start, d);
        if (r < 0)
            return r;
        n++;
        if (i >= len)
            break;
        i++; /* skip '/' */
    }

    struct api_path p;
    memset(&p, 0, sizeof(p));

    if (n == 1 && strcmp(seg[0], "metrics") == 0) {
        p.route = API_ROUTE_PROMETHEUS;
        goto done;
    }
    if (n == 1 && seg[0][0] == '\0') {
        p.route = API_ROUTE_STATIC; /* components[0] "" = index.html */
        p.n_components = 1;
        goto done;
    }
    if (n == 2 && strcmp(seg[0], "ui") == 0) {
        if (!api_component_valid(seg[1]))
            return diag_set(d, -ENOENT, "", "no such file");
        p.route = API_ROUTE_STATIC;
        p.n_components = 1;
        memcpy(p.components[0], seg[1], sizeof(seg[1]));
        goto done;
    }
    if (n < 2 || strcmp(seg[0], "v1") != 0)
        return diag_set(d, -ENOENT, "", "no such route");
    if (n == 2) {
        if (strcmp(seg[1], "jobs") == 0)
            p.route = API_ROUTE_JOBS;
        else if (strcmp(seg[1], "datasets") == 0)
            p.route = API_ROUTE_DATASETS;
        else if (strcmp(seg[1], "models") == 0)
            p.route = API_ROUTE_MODELS;
        else if (strcmp(seg[1], "weights") == 0)
            p.route = API_ROUTE_WEIGHTS_LIST;
        else if (strcmp(seg[1], "health") == 0)
            p.route = API_ROUTE_HEALTH;
        else if (strcmp(seg[1], "openapi.json") == 0)
            p.route = API_ROUTE_OPENAPI;
        else
            return diag_set(d, -ENOENT, "", "no such route");
        goto done;
    }
    if (n == 3 && strcmp(seg[1], "datasets") == 0) {
        if (!api_dataset_name_valid(seg[2]))
            return diag_set(d, -EINVAL, "name", "data set names are 1 to %d letters, digits, "
                            "'-', '_' and '.', not starting with '.'", API_DATASET_NAME_MAX);
        p.route = API_ROUTE_DATASET;
        memcpy(p.name, seg[2], strlen(seg[2]) + 1);
        goto done;
    }
    if (n == 3 && strcmp(seg[1], "models") == 0 && strcmp(seg[2], "validate") == 0) {
        p.route = API_ROUTE_MODEL_VALIDATE;
        goto done;
    }
    if (n == 3 && strcmp(seg[1], "weights") == 0) {
        if (!api_dataset_name_valid(seg[2]))
            return diag_set(d, -EINVAL, "name", "weights file names are 1 to %d letters, digits, "
                            "'-', '_' and '.', not starting with '.'", API_DATASET_NAME_MAX);
        p.route = API_ROUTE_WEIGHTS;
        memcpy(p.name, seg[2], strlen(seg[2]) + 1);
        goto done;
    }
    if (strcmp(seg[1], "jobs") != 0)
        return diag_set(d, -ENOENT, "", "no such route");
    if (!api_id_valid(seg[2]))
        return diag_set(d, -ENOENT, "", "no such job");
    memcpy(p.id, seg[2], JOB_ID_LEN + 1);
    if (n == 3) {
        p.route = API_ROUTE_JOB;
        goto done;
    }
    size_t k;
    for (k = 0; k < sizeof(job_subroutes) / sizeof(job_subroutes[0]); k++)
        if (strcmp(seg[3], job_subroutes[k].name) == 0)
            break;
    if (k == sizeof(job_subroutes) / sizeof(job_subroutes[0]))
        return diag_set(d, -ENOENT, "", "no such route");
    p.route = job_subroutes[k].route;
    if (n == 4)
        goto done;
    if (p.route != API_ROUTE_JOB_CHECKPOINTS)
        return diag_set(d, -ENOENT, "", "no such route");
    p.route = API_ROUTE_JOB_CHECKPOINT;
    if (n - 4 > API_PATH_MAX_COMPONENTS)
        return diag_set(d, -EINVAL, "", "checkpoint path has more than %d components",
                        API_PATH_MAX_COMPONENTS);
    for (int c = 4; c < n; c++) {
        if (!api_component_valid(seg[c]))
            return diag_set(d, -EINVAL, "", "checkpoint path component %d is not allowed",
                            c - 4);
        memcpy(p.components[p.n_components++], seg[c], sizeof(seg[c]));
    }

done:
    *ret = p;
    return 0;
}

unsigned api_route_methods(enum api_route route)
{
    switch (route) {
    case API_ROUTE_JOBS: return API_METHOD_GET | API_METHOD_HEAD | API_METHOD_POST;
    case API_ROUTE_JOB: return API_METHOD_GET | API_METHOD_HEAD | API_METHOD_DELETE;
    case API_ROUTE_JOB_CANCEL: return API_METHOD_POST;
    case API_ROUTE_JOB_EVALUATE: return API_METHOD_POST;
    case API_ROUTE_JOB_PREDICT: return API_METHOD_POST;
    case API_ROUTE_MODEL_VALIDATE: return API_METHOD_POST;
    case API_ROUTE_DATASET:
        return API_METHOD_GET | API_METHOD_HEAD | API_METHOD_PUT | API_METHOD_DELETE;
    case API_ROUTE_WEIGHTS:
        return API_METHOD_GET | API_METHOD_HEAD | API_METHOD_PUT | API_METHOD_DELETE;
    default: return API_METHOD_GET | API_METHOD_HEAD;
    }
}

void api_methods_format(char *out, size_t outsz, unsigned methods)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "DELETE", "PUT"};
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < 5; i++) {
        if (!(methods & (1u << i)))
            continue;
        int w = snprintf(out + o, outsz - o, "%s%s", o ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= outsz - o)
            return;
        o += (size_t)w;
    }
}

enum api_method api_method_parse(const char *method)
{
    if (strcmp(method, "GET") == 0)
        return API_METHOD_GET;
    if (strcmp(method, "HEAD") == 0)
        return API_METHOD_HEAD;
    if (strcmp(method, "POST") == 0)
        return API_METHOD_POST;
    if (strcmp(method, "DELETE") == 0)
        return API_METHOD_DELETE;
    if (strcmp(method, "PUT") == 0)
        return API_METHOD_PUT;
    if (strcmp(method, "OPTIONS") == 0)
        return API_METHOD_OPTIONS;
    return API_METHOD_OTHER;
}
