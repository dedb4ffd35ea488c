/* fuzz_conf.c - traind's INI configuration (daemon/conf.c on libinih, and
 * api_listen_parse for listen=).
 *
 * Input: the configuration text (up to its first NUL, as the file loader
 * would see it).  Applied on top of the built-in defaults, then checked
 * with config_check; an accepted configuration must keep its numbers in the
 * documented ranges and every string terminated within its field. */
#include <string.h>

#include "conf.h"
#include "fuzz.h"

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    struct config *cfg = malloc(sizeof(*cfg));
    FUZZ_CHECK(cfg != NULL);
    config_default(cfg);
    struct diag d = {{0}, {0}};
    int r = config_parse_string(cfg, text, &d);
    free(text);
    if (r < 0) {
        FUZZ_CHECK(d.message[0] != '\0' && TERMINATED(d.message) && TERMINATED(d.field));
    } else {
        (void)config_check(cfg, &d);
    }
    /* Whatever was applied before an error must still be well-formed. */
    FUZZ_CHECK(TERMINATED(cfg->listen) && TERMINATED(cfg->state_dir) &&
               TERMINATED(cfg->token_file));
    FUZZ_CHECK(cfg->workers >= 1 && cfg->workers <= 64);
    FUZZ_CHECK(cfg->threads >= 1 && cfg->threads <= 256);
    FUZZ_CHECK(cfg->max_body_bytes >= 1024 && cfg->max_body_bytes <= (size_t)1 << 30);
    FUZZ_CHECK(cfg->connection_memory_limit >= 8192 &&
               cfg->connection_memory_limit <= (size_t)1 << 26);
    FUZZ_CHECK(cfg->stream_max_backlog >= 16);
    FUZZ_CHECK(cfg->n_datasets >= 0 && cfg->n_datasets <= CONFIG_MAX_DATASETS);
    for (int i = 0; i < cfg->n_datasets; i++) {
        const struct runner_dataset *ds = &cfg->datasets[i];
        FUZZ_CHECK(TERMINATED(ds->name) && TERMINATED(ds->format) && TERMINATED(ds->path));
        FUZZ_CHECK(ds->name[0] != '\0');
        FUZZ_CHECK(!ds->path[0] || ds->path[0] == '/');
    }
    free(cfg);
    return 0;
}
