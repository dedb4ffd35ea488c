/* test_cors.c - cors_allow_origins parsing and matching (api/cors.c), the
 * gzip choice from Accept-Encoding and the embedded file table
 * (api/static_files.c), and the dashboard's routes (api/route.c). */
#include <errno.h>
#include <string.h>

#include "cors.h"
#include "route.h"
#include "static_files.h"
#include "test.h"

static void test_origins_parse(void)
{
    struct cors_origins o;
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(cors_origins_parse(&o, "", &d), 0);
    CHECK_INT_EQ(o.n, 0);
    CHECK(!cors_origin_allowed(&o, "http://a.example"));
    CHECK_INT_EQ(cors_origins_parse(&o, " http://127.0.0.1:8080,https://dash.example.org "
                                        "http://[::1]:9000", &d), 0);
    CHECK_INT_EQ(o.n, 3);
    CHECK_STR_EQ(o.origin[0], "http://127.0.0.1:8080");
    CHECK_STR_EQ(o.origin[2], "http://[::1]:9000");
    CHECK(cors_origin_allowed(&o, "https://dash.example.org"));
    CHECK(!cors_origin_allowed(&o, "https://dash.example.org/"));
    CHECK(!cors_origin_allowed(&o, "http://dash.example.org"));
    CHECK(!cors_origin_allowed(&o, "http://127.0.0.1:8081"));
    CHECK(!cors_origin_allowed(&o, "null"));
    CHECK(!cors_origin_allowed(&o, NULL));
    CHECK(!cors_origin_allowed(NULL, "http://127.0.0.1:8080"));
}

static void test_origins_rejected(void)
{
    static const char *const bad[] = {
        "*", "http://*", "null", "127.0.0.1:8080", "http://", "http://a.example/",
        "http://a.example/path", "http://A.example", "http://a.example:", "http://a.example:x",
        "http://a.example:123456", "http://[::1", "file:///etc", "http://a b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cors_origins o = {.n = 7};
        struct diag d = {{0}, {0}};
        CHECK_MSG(cors_origins_parse(&o, bad[i], &d) == -EINVAL, "accepted '%s'", bad[i]);
        CHECK_STR_EQ(d.field, "cors_allow_origins");
        CHECK_MSG(strstr(d.message, "cors_allow_origins") != NULL, "%s", d.message);
        CHECK_INT_EQ(o.n, 7); /* untouched on failure */
    }
    /* more than CORS_MAX_ORIGINS */
    char many[CORS_MAX_ORIGINS * 32 + 64] = "";
    for (int i = 0; i <= CORS_MAX_ORIGINS; i++) {
        char one[32];
        snprintf(one, sizeof(one), "http://h%d.example ", i);
        strcat(many, one);
    }
    struct cors_origins o;
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(cors_origins_parse(&o, many, &d), -EINVAL);
}

static void test_accepts_gzip(void)
{
    CHECK(!static_accepts_gzip(NULL));
    CHECK(!static_accepts_gzip(""));
    CHECK(static_accepts_gzip("gzip"));
    CHECK(static_accepts_gzip("gzip, deflate, br"));
    CHECK(static_accepts_gzip("br;q=1.0, GZIP;q=0.5"));
    CHECK(static_accepts_gzip("*"));
    CHECK(static_accepts_gzip("identity, *;q=0.1"));
    CHECK(!static_accepts_gzip("gzip;q=0"));
    CHECK(!static_accepts_gzip("gzip; q=0.000, identity"));
    CHECK(!static_accepts_gzip("deflate, br"));
    CHECK(!static_accepts_gzip("x-gzip2"));
    CHECK(!static_accepts_gzip("gzipx"));
    CHECK(static_accepts_gzip("gzip;q=0.001"));
}

static void test_file_table(void)
{
    const struct static_file *f = static_file_find("index.html");
    CHECK(f != NULL);
    if (f) {
        CHECK(strncmp(f->content_type, "text/html", 9) == 0);
        CHECK(f->size > 100);
        CHECK_INT_EQ(strlen(f->etag), 34);
        CHECK(f->etag[0] == '"' && f->etag[33] == '"');
    }
    f = static_file_find("chart.min.js");
    CHECK(f != NULL);
    if (f) {
        CHECK(f->gz != NULL);
        CHECK(f->gz_size < f->size / 2);
        CHECK(strcmp(f->gz_etag, f->etag) != 0);
        /* gzip magic, deflate */
        CHECK(f->gz[0] == 0x1f && f->gz[1] == 0x8b && f->gz[2] == 8);
    }
    CHECK(static_file_find("openapi.json") != NULL);
    CHECK(static_file_find("nothing.js") == NULL);
    CHECK(static_file_find("") == NULL);
    for (size_t i = 0; i < static_files_count; i++)
        CHECK_MSG(static_files[i].gz == NULL || static_files[i].gz_size <= static_files[i].size,
                  "%s", static_files[i].name);
}

static void test_static_routes(void)
{
    struct api_path p;
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(api_path_parse(&p, "/", 1, &d), 0);
    CHECK_INT_EQ(p.route, API_ROUTE_STATIC);
    CHECK_STR_EQ(p.components[0], "");
    CHECK_INT_EQ(api_path_parse(&p, "/ui/app.js", 10, &d), 0);
    CHECK_INT_EQ(p.route, API_ROUTE_STATIC);
    CHECK_STR_EQ(p.components[0], "app.js");
    CHECK_INT_EQ(api_path_parse(&p, "/v1/openapi.json", 16, &d), 0);
    CHECK_INT_EQ(p.route, API_ROUTE_OPENAPI);
    CHECK_INT_EQ(api_path_parse(&p, "/ui/..", 6, &d), -ENOENT);
    CHECK_INT_EQ(api_path_parse(&p, "/ui/.hidden", 11, &d), -ENOENT);
    CHECK_INT_EQ(api_path_parse(&p, "/ui/a/b.js", 10, &d), -ENOENT);
    CHECK_INT_EQ(api_path_parse(&p, "/ui/%2e%2e", 10, &d), -ENOENT);
    CHECK_INT_EQ(api_path_parse(&p, "/ui/", 4, &d), -ENOENT);
    CHECK(api_method_parse("OPTIONS") == API_METHOD_OPTIONS);
}

int main(void)
{
    TEST_RUN(test_origins_parse);
    TEST_RUN(test_origins_rejected);
    TEST_RUN(test_accepts_gzip);
    TEST_RUN(test_file_table);
    TEST_RUN(test_static_routes);
    return TEST_EXIT();
}
