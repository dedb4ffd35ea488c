/* conf.c - defaults, INI parsing (libinih) and checks for traind's
 * configuration; see conf.h and config/traind.conf. */
#include "conf.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATASET_PREFIX "dataset."

void config_default(struct config *ret)
{
    struct config c;
    memset(&c, 0, sizeof(c));
    snprintf(c.listen, sizeof(c.listen), "127.0.0.1:8470");
    snprintf(c.state_dir, sizeof(c.state_dir), "/var/lib/traind");
    c.workers = 1;
    c.threads = 2;
    c.max_body_bytes = 1024 * 1024;
    c.max_dataset_bytes = (size_t)4 << 30;
    c.max_predict_bytes = (size_t)32 << 20;
    c.max_predict_images = 256;
    c.max_connections = 1024;
    c.max_connections_per_ip = 256;
    c.connection_timeout = 60;
    c.connection_memory_limit = 128 * 1024;
    c.heartbeat_interval = 15;
    c.max_queued_jobs = 1000;
    c.stream_max_backlog = 100000;
    c.n_datasets = 2;
    snprintf(c.datasets[0].name, sizeof(c.datasets[0].name), "fashion-mnist");
    snprintf(c.datasets[0].format, sizeof(c.datasets[0].format), "idx");
    snprintf(c.datasets[0].path, sizeof(c.datasets[0].path), "/usr/share/datasets/fashion-mnist");
    snprintf(c.datasets[1].name, sizeof(c.datasets[1].name), "cifar10");
    snprintf(c.datasets[1].format, sizeof(c.datasets[1].format), "cifar10");
    snprintf(c.datasets[1].path, sizeof(c.datasets[1].path),
             "/var/lib/traind/datasets/cifar-10-batches-bin");
    *ret = c;
}

/* Unsigned integer with an optional k/M/G (binary) suffix, in [lo, hi]. */
static int parse_size(const char *key, const char *value, unsigned long long lo,
                      unsigned long long hi, unsigned long long *ret, struct diag *d)
{
    const char *p = value;
    unsigned long long v = 0;
    if (*p < '0' || *p > '9')
        goto bad;
    while (*p >= '0' && *p <= '9') {
        unsigned long long digit = (unsigned long long)(*p - '0');
        if (v > (hi - digit) / 10)
            goto bad;
        v = v * 10 + digit;
        p++;
    }
    unsigned long long mult = 1;
    if (*p == 'k' || *p == 'K')
        mult = 1024;
    else if (*p == 'm' || *p == 'M')
        mult = 1024 * 1024;
    else if (*p == 'g' || *p == 'G')
        mult = 1024ULL * 1024 * 1024;
    if (mult != 1)
        p++;
    if (*p != '\0' || (mult != 1 && v > hi / mult))
        goto bad;
    v *= mult;
    if (v < lo || v > hi)
        goto bad;
    *ret = v;
    return 0;
bad:
    return diag_set(d, -EINVAL, key, "%s: expected an integer from %llu to %llu, got '%s'", key,
                    lo, hi, value);
}

static int set_string(char *out, size_t outsz, const char *key, const char *value,
                      struct diag *d)
{
    size_t n = strlen(value);
    if (n >= outsz)
        return diag_set(d, -EINVAL, key, "%s: value too long", key);
    memcpy(out, value, n + 1);
    return 0;
}

int config_set(struct config *cfg, const char *key, const char *value, struct diag *d)
{
    unsigned long long v = 0;
    int r;
    if (strcmp(key, "listen") == 0) {
        struct api_listen l;
        struct diag ld = {{0}, {0}};
        if ((r = api_listen_parse(&l, value, &ld)) < 0)
            return diag_set(d, r, key, "listen: %s", ld.message);
        return set_string(cfg->listen, sizeof(cfg->listen), key, value, d);
    }
    if (strcmp(key, "state_dir") == 0) {
        if (!value[0])
            return diag_set(d, -EINVAL, key, "state_dir: must not be empty");
        return set_string(cfg->state_dir, sizeof(cfg->state_dir), key, value, d);
    }
    if (strcmp(key, "token_file") == 0)
        return set_string(cfg->token_file, sizeof(cfg->token_file), key, value, d);
    if (strcmp(key, "cors_allow_origins") == 0)
        return cors_origins_parse(&cfg->cors, value, d);
    if (strcmp(key, "tls_cert_file") == 0)
        return set_string(cfg->tls_cert_file, sizeof(cfg->tls_cert_file), key, value, d);
    if (strcmp(key, "tls_key_file") == 0)
        return set_string(cfg->tls_key_file, sizeof(cfg->tls_key_file), key, value, d);
    if (strcmp(key, "allow_insecure_http") == 0) {
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
            cfg->allow_insecure_http = strcmp(value, "true") == 0;
            return 0;
        }
        return diag_set(d, -EINVAL, key, "allow_insecure_http: must be true or false");
    }

    static const struct {
        const char *key;
        unsigned long long lo, hi;
        size_t offset;
        int kind; /* 0 int, 1 unsigned, 2 size_t */
    } nums[] = {
        {"workers", 1, 64, offsetof(struct config, workers), 0},
        {"threads", 1, 256, offsetof(struct config, threads), 0},
        {"max_body_bytes", 1024, 1ULL << 30, offsetof(struct config, max_body_bytes), 2},
        {"max_dataset_bytes", 1024, 1ULL << 40, offsetof(struct config, max_dataset_bytes), 2},
        {"max_predict_bytes", 1024, 1ULL << 30, offsetof(struct config, max_predict_bytes), 2},
        {"max_predict_images", 1, 65536, offsetof(struct config, max_predict_images), 1},
        {"max_connections", 1, 100000, offsetof(struct config, max_connections), 1},
        {"max_connections_per_ip", 1, 100000, offsetof(struct config, max_connections_per_ip), 1},
        {"connection_timeout", 1, 86400, offsetof(struct config, connection_timeout), 1},
        {"connection_memory_limit", 8192, 1ULL << 26,
         offsetof(struct config, connection_memory_limit), 2},
        {"heartbeat_interval", 1, 3600, offsetof(struct config, heartbeat_interval), 1},
        {"max_queued_jobs", 1, 1000000, offsetof(struct config, max_queued_jobs), 1},
        {"stream_max_backlog", 16, 100000000, offsetof(struct config, stream_max_backlog), 1},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (strcmp(key, nums[i].key) != 0)
            continue;
        if ((r = parse_size(key, value, nums[i].lo, nums[i].hi, &v, d)) < 0)
            return r;
        char *field = (char *)cfg + nums[i].offset;
        if (nums[i].kind == 0)
            *(int *)(void *)field = (int)v;
        else if (nums[i].kind == 1)
            *(unsigned *)(void *)field = (unsigned)v;
        else
            *(size_t *)(void *)field = (size_t)v;
        return 0;
    }
    return diag_set(d, -EINVAL, key, "unknown key '%s'", key);
}

static bool dataset_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(((struct runner_dataset *)0)->name))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static int dataset_set(struct config *cfg, const char *name, const char *key, const char *value,
                       struct diag *d)
{
    char field[160];
    snprintf(field, sizeof(field), "dataset.%s.%s", name, key);
    if (!dataset_name_valid(name))
        return diag_set(d, -EINVAL, field, "[dataset.%s]: bad data set name", name);
    struct runner_dataset *ds = NULL;
    for (int i = 0; i < cfg->n_datasets; i++)
        if (strcmp(cfg->datasets[i].name, name) == 0)
            ds = &cfg->datasets[i];
    if (!ds) {
        if (cfg->n_datasets == CONFIG_MAX_DATASETS)
            return diag_set(d, -EINVAL, field, "more than %d data sets", CONFIG_MAX_DATASETS);
        ds = &cfg->datasets[cfg->n_datasets++];
        memset(ds, 0, sizeof(*ds));
        snprintf(ds->name, sizeof(ds->name), "%s", name);
    }
    if (strcmp(key, "format") == 0) {
        if (strcmp(value, "idx") != 0 && strcmp(value, "cifar10") != 0)
            return diag_set(d, -EINVAL, field, "%s: format must be idx or cifar10, got '%s'",
                            field, value);
        return set_string(ds->format, sizeof(ds->format), field, value, d);
    }
    if (strcmp(key, "path") == 0) {
        if (value[0] != '/')
            return diag_set(d, -EINVAL, field, "%s: must be an absolute path", field);
        return set_string(ds->path, sizeof(ds->path), field, value, d);
    }
    return diag_set(d, -EINVAL, field, "unknown key '%s' in [dataset.%s]", key, name);
}

struct parse_ctx {
    struct config *cfg;
    struct diag d;
    int err;
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *p = user;
    struct diag d = {{0}, {0}};
    int r;
    if (section[0] == '\0' || strcmp(section, "traind") == 0)
        r = config_set(p->cfg, name, value, &d);
    else if (strncmp(section, DATASET_PREFIX, strlen(DATASET_PREFIX)) == 0)
        r = dataset_set(p->cfg, section + strlen(DATASET_PREFIX), name, value, &d);
    else
        r = diag_set(&d, -EINVAL, section, "unknown section [%s]", section);
    if (r < 0 && p->err == 0) {
        p->err = r;
        p->d = d;
    }
    return r < 0 ? 0 : 1;
}

static int finish(struct parse_ctx *p, int line, const char *origin, struct diag *d)
{
    if (line == 0 && p->err == 0)
        return 0;
    if (p->err)
        return diag_set(d, p->err, p->d.field, "%s: line %d: %s", origin, line, p->d.message);
    return diag_set(d, -EINVAL, "", "%s: line %d: syntax error", origin, line);
}

int config_parse_string(struct config *cfg, const char *text, struct diag *d)
{
    struct parse_ctx p = {.cfg = cfg};
    int line = ini_parse_string(text, on_ini, &p);
    if (line < 0)
        return diag_set(d, -ENOMEM, "", "out of memory");
    return finish(&p, line, "config", d);
}

int config_load_file(struct config *cfg, const char *path, struct diag *d)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return diag_set(d, -errno, path, "config file %s: %s", path, strerror(errno));
    struct parse_ctx p = {.cfg = cfg};
    int line = ini_parse_file(f, on_ini, &p);
    fclose(f);
    if (line < 0)
        return diag_set(d, -ENOMEM, "", "out of memory");
    return finish(&p, line, path, d);
}

int config_check(const struct config *cfg, struct diag *d)
{
    struct api_listen l;
    int r = api_listen_parse(&l, cfg->listen, d);
    if (r < 0)
        return r;
    if (cfg->heartbeat_interval >= cfg->connection_timeout)
        return diag_set(d, -EINVAL, "heartbeat_interval",
                        "heartbeat_interval (%u) must be shorter than connection_timeout (%u), "
                        "or idle event streams are closed",
                        cfg->heartbeat_interval, cfg->connection_timeout);
    for (int i = 0; i < cfg->n_datasets; i++) {
        const struct runner_dataset *ds = &cfg->datasets[i];
        if (!ds->format[0] || !ds->path[0])
            return diag_set(d, -EINVAL, ds->name, "[dataset.%s] needs both format= and path=",
                            ds->name);
    }
    return 0;
}
