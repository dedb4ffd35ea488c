/* test_route.c - api/route: request paths to routes, job id syntax, and the
 * checkpoint path checks that run before any file system access. */
#include "route.h"
#include "test.h"

#include <errno.h>
#include <string.h>

static int parse(const char *raw, struct api_path *p)
{
    struct diag d = {{0}, {0}};
    return api_path_parse(p, raw, strlen(raw), &d);
}

#define ID "0123456789abcdef"

static void test_routes(void)
{
    static const struct {
        const char *path;
        enum api_route route;
    } ok[] = {
        {"/v1/jobs", API_ROUTE_JOBS},
        {"/v1/jobs/" ID, API_ROUTE_JOB},
        {"/v1/jobs/" ID "/cancel", API_ROUTE_JOB_CANCEL},
        {"/v1/jobs/" ID "/events", API_ROUTE_JOB_EVENTS},
        {"/v1/jobs/" ID "/metrics", API_ROUTE_JOB_METRICS},
        {"/v1/jobs/" ID "/checkpoints", API_ROUTE_JOB_CHECKPOINTS},
        {"/v1/jobs/" ID "/checkpoints/w.h5", API_ROUTE_JOB_CHECKPOINT},
        {"/v1/jobs/" ID "/best", API_ROUTE_JOB_BEST},
        {"/v1/jobs/" ID "/latest", API_ROUTE_JOB_LATEST},
        {"/v1/datasets", API_ROUTE_DATASETS},
        {"/v1/models", API_ROUTE_MODELS},
        {"/v1/health", API_ROUTE_HEALTH},
        {"/metrics", API_ROUTE_PROMETHEUS},
        {"/v1/jobs/%30123456789abcdef", API_ROUTE_JOB}, /* %30 = '0' */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct api_path p;
        int r = parse(ok[i].path, &p);
        CHECK_MSG(r == 0 && p.route == ok[i].route, "%s -> %d", ok[i].path, r);
    }
    struct api_path p;
    CHECK_INT_EQ(parse("/v1/jobs/" ID "/checkpoints/acc/best.h5", &p), 0);
    CHECK_INT_EQ(p.n_components, 2);
    CHECK_STR_EQ(p.components[0], "acc");
    CHECK_STR_EQ(p.components[1], "best.h5");
    CHECK_STR_EQ(p.id, ID);
}

static void test_not_found(void)
{
    static const char *const paths[] = {
        "", "/v1", "/v1/", "/v2/jobs", "/ui", "/ui/a/b", "/index.html", "//", "/v1/jobs/", "/v1/nothing", "/metrics/x",
        "/v1/jobs/no-such-job", "/v1/jobs/0123456789ABCDEF", "/v1/jobs/0123456789abcde",
        "/v1/jobs/" ID "/nothing", "/v1/jobs/" ID "/events/1", "/v1/jobs/" ID "/",
        "v1/jobs", "/v1/jobs/../jobs",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct api_path p;
        CHECK_MSG(parse(paths[i], &p) == -ENOENT, "%s", paths[i]);
    }
}

static void test_traversal_rejected(void)
{
    static const char *const paths[] = {
        "/v1/jobs/" ID "/checkpoints/..",
        "/v1/jobs/" ID "/checkpoints/../job.json",
        "/v1/jobs/" ID "/checkpoints/a/../../job.json",
        "/v1/jobs/" ID "/checkpoints/%2e%2e/job.json",
        "/v1/jobs/" ID "/checkpoints/%2E%2E%2Fjob.json",
        "/v1/jobs/" ID "/checkpoints/..%2fjob.json",
        "/v1/jobs/" ID "/checkpoints/a%2fb.h5",
        "/v1/jobs/" ID "/checkpoints/w.h5%00.txt",
        "/v1/jobs/" ID "/checkpoints/.",
        "/v1/jobs/" ID "/checkpoints/.hidden.h5",
        "/v1/jobs/" ID "/checkpoints/.tmp-w.h5-1-2",
        "/v1/jobs/" ID "/checkpoints/w.h5.tmp",
        "/v1/jobs/" ID "/checkpoints//etc/passwd",
        "/v1/jobs/" ID "/checkpoints/a//b.h5",
        "/v1/jobs/" ID "/checkpoints/a/",
        "/v1/jobs/" ID "/checkpoints/%",
        "/v1/jobs/" ID "/checkpoints/%4",
        "/v1/jobs/" ID "/checkpoints/%zz",
        "/v1/jobs/" ID "/checkpoints/sp%20ace.h5",
        "/v1/jobs/" ID "/checkpoints/a/b/c/d/e.h5",
        "/v1/jobs/" ID "/checkpoints/back\\slash.h5",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct api_path p;
        int r = parse(paths[i], &p);
        CHECK_MSG(r == -EINVAL, "%s -> %d", paths[i], r);
    }
    /* a raw NUL inside the given length */
    struct api_path p;
    struct diag d = {{0}, {0}};
    const char raw[] = "/v1/jobs/" ID "/checkpoints/w.h5\0x";
    CHECK_INT_EQ(api_path_parse(&p, raw, sizeof(raw) - 1, &d), -EINVAL);
}

static void test_methods(void)
{
    char allow[64];
    api_methods_format(allow, sizeof(allow), api_route_methods(API_ROUTE_JOBS));
    CHECK_STR_EQ(allow, "GET, HEAD, POST");
    api_methods_format(allow, sizeof(allow), api_route_methods(API_ROUTE_JOB));
    CHECK_STR_EQ(allow, "GET, HEAD, DELETE");
    api_methods_format(allow, sizeof(allow), api_route_methods(API_ROUTE_JOB_CANCEL));
    CHECK_STR_EQ(allow, "POST");
    CHECK(api_method_parse("PATCH") == API_METHOD_OTHER);
    CHECK(api_method_parse("get") == API_METHOD_OTHER);
    CHECK(api_method_parse("HEAD") == API_METHOD_HEAD);
}

static void test_roles(void)
{
    CHECK_INT_EQ(api_route_role(API_ROUTE_JOBS, API_METHOD_GET), API_ROLE_READ);
    CHECK_INT_EQ(api_route_role(API_ROUTE_JOB_CHECKPOINT, API_METHOD_HEAD), API_ROLE_READ);
    CHECK_INT_EQ(api_route_role(API_ROUTE_JOB_EVENTS, API_METHOD_GET), API_ROLE_READ);
    CHECK_INT_EQ(api_route_role(API_ROUTE_JOBS, API_METHOD_POST), API_ROLE_SUBMIT);
    CHECK_INT_EQ(api_route_role(API_ROUTE_JOB_CANCEL, API_METHOD_POST), API_ROLE_SUBMIT);
    CHECK_INT_EQ(api_route_role(API_ROUTE_JOB, API_METHOD_DELETE), API_ROLE_ADMIN);
    CHECK_INT_EQ(api_route_role(API_ROUTE_JOB, API_METHOD_OTHER), API_ROLE_ADMIN);
    enum api_role r = API_ROLE_NONE;
    CHECK_INT_EQ(api_role_parse("submit", &r), 0);
    CHECK_INT_EQ(r, API_ROLE_SUBMIT);
    CHECK_INT_EQ(api_role_parse("Admin", &r), -EINVAL);
    CHECK_INT_EQ(api_role_parse("", &r), -EINVAL);
    CHECK_STR_EQ(api_role_name(API_ROLE_READ), "read");
}

int main(void)
{
    TEST_RUN(test_routes);
    TEST_RUN(test_not_found);
    TEST_RUN(test_traversal_rejected);
    TEST_RUN(test_methods);
    TEST_RUN(test_roles);
    return TEST_EXIT();
}
