/* conf.h - traind's configuration: built-in defaults, the INI file
 * (config/traind.conf, parsed with libinih) and command-line overrides.
 *
 * Every key lives in section [traind] (keys before any section are accepted
 * too); data sets are sections [dataset.NAME] with format= and path=.
 * Unknown sections or keys and bad values are errors naming the key. */
#ifndef TRAIND_CONF_H
#define TRAIND_CONF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "job_runner.h"
#include "server.h"

#define CONFIG_MAX_DATASETS 16

struct config {
    char listen[128];                 /* "127.0.0.1:8470" */
    char state_dir[PATH_MAX];         /* "/var/lib/traind" */
    int workers;                      /* jobs trained at once: 1 */
    int threads;                      /* compute threads per job: 2 */
    char token_file[PATH_MAX];        /* "" = no authentication */
    char tls_cert_file[PATH_MAX];     /* PEM certificate (chain); "" = plain HTTP */
    char tls_key_file[PATH_MAX];      /* PEM private key; set with tls_cert_file */
    bool allow_insecure_http;         /* listen beyond loopback without TLS: false */
    size_t max_body_bytes;            /* 1 MiB */
    size_t max_dataset_bytes;         /* PUT /v1/datasets/{name} bodies: 4 GiB */
    size_t max_predict_bytes;         /* POST /v1/jobs/{id}/predict bodies: 32 MiB */
    unsigned max_predict_images;      /* examples per predict request: 256 */
    unsigned max_connections;         /* 1024 */
    unsigned max_connections_per_ip;  /* 256 */
    unsigned connection_timeout;      /* seconds: 60 */
    size_t connection_memory_limit;   /* bytes per connection (bounds headers): 131072 */
    unsigned heartbeat_interval;      /* seconds between SSE heartbeats: 15 */
    unsigned max_queued_jobs;         /* queued jobs before submit answers 503: 1000 */
    unsigned stream_max_backlog;      /* events a subscriber may lag before it is dropped: 100000 */
    struct cors_origins cors;         /* cors_allow_origins: exact origins, none by default */
    int n_datasets;
    struct runner_dataset datasets[CONFIG_MAX_DATASETS];
};

/* Built-in defaults (the values config/traind.conf documents). */
void config_default(struct config *ret);
/* Apply an INI text on top of cfg.  -EINVAL with d naming "line N: key". */
int config_parse_string(struct config *cfg, const char *text, struct diag *d);
/* Read and apply the file at path.  -errno with d naming the file. */
int config_load_file(struct config *cfg, const char *path, struct diag *d);
/* Set one [traind] key from text (also used for command-line overrides). */
int config_set(struct config *cfg, const char *key, const char *value, struct diag *d);
/* Cross-key checks after everything is applied (listen syntax, ...). */
int config_check(const struct config *cfg, struct diag *d);

#endif
