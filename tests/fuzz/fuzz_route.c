/* fuzz_route.c - request paths (api/route.c: api_path_parse, which splits
 * /v1/jobs/{id}/checkpoints/{path} and percent-decodes it).
 *
 * Input: the raw request target, given with its exact length (it may hold
 * anything, NULs included); its first line also goes through
 * api_method_parse.  An accepted path must give a route the method table
 * knows, a valid job id where the route has one, and 1 to
 * API_PATH_MAX_COMPONENTS checkpoint components that api_component_valid
 * accepts (so none is "", ".", "..", a temp name, or holds '/' or NUL). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "route.h"

static bool route_has_id(enum api_route route)
{
    return route != API_ROUTE_JOBS && route != API_ROUTE_DATASETS && route != API_ROUTE_MODELS &&
           route != API_ROUTE_HEALTH && route != API_ROUTE_PROMETHEUS &&
           route != API_ROUTE_OPENAPI && route != API_ROUTE_STATIC;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *line, *rest = data;
    size_t line_len, rest_size = size;
    fuzz_take_line(&rest, &rest_size, &line, &line_len);
    char *method = fuzz_strndup(line, line_len);
    enum api_method m = api_method_parse(method);
    FUZZ_CHECK(m == API_METHOD_GET || m == API_METHOD_HEAD || m == API_METHOD_POST ||
               m == API_METHOD_DELETE || m == API_METHOD_PUT || m == API_METHOD_OPTIONS ||
               m == API_METHOD_OTHER);
    free(method);

    char *raw = fuzz_memdup(data, size);
    struct api_path p;
    struct diag d = {{0}, {0}};
    int r = api_path_parse(&p, raw, size, &d);
    free(raw);
    if (r < 0) {
        FUZZ_CHECK(r == -ENOENT || r == -EINVAL);
        FUZZ_CHECK(d.message[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(p.route >= API_ROUTE_JOBS && p.route <= API_ROUTE_STATIC);
    if (p.route == API_ROUTE_STATIC)
        FUZZ_CHECK(p.n_components == 1 &&
                   (p.components[0][0] == '\0' || api_component_valid(p.components[0])));
    unsigned methods = api_route_methods(p.route);
    FUZZ_CHECK((methods & API_METHOD_GET) != 0 || methods == API_METHOD_POST);
    char allow[64];
    api_methods_format(allow, sizeof(allow), methods);
    FUZZ_CHECK(allow[0] != '\0');
    if (route_has_id(p.route))
        FUZZ_CHECK(api_id_valid(p.id));
    else
        FUZZ_CHECK(p.id[0] == '\0');
    if (p.route == API_ROUTE_JOB_CHECKPOINT) {
        FUZZ_CHECK(p.n_components >= 1 && p.n_components <= API_PATH_MAX_COMPONENTS);
        for (int i = 0; i < p.n_components; i++) {
            FUZZ_CHECK(api_component_valid(p.components[i]));
            FUZZ_CHECK(strcmp(p.components[i], ".") != 0 && strcmp(p.components[i], "..") != 0);
            FUZZ_CHECK(strchr(p.components[i], '/') == NULL);
        }
    } else if (p.route != API_ROUTE_STATIC) {
        FUZZ_CHECK(p.n_components == 0);
    }
    return 0;
}
