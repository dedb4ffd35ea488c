/* test_conf.c - daemon/conf: defaults, INI parsing with libinih, errors that
 * name the key and line, command-line overrides. */
#include "conf.h"
#include "test.h"

#include <errno.h>
#include <string.h>

static void test_defaults(void)
{
    struct config c;
    struct diag d = {{0}, {0}};
    config_default(&c);
    CHECK_STR_EQ(c.listen, "127.0.0.1:8470");
    CHECK_STR_EQ(c.state_dir, "/var/lib/traind");
    CHECK_INT_EQ(c.workers, 1);
    CHECK_INT_EQ(c.threads, 2);
    CHECK_STR_EQ(c.token_file, "");
    CHECK_INT_EQ(c.cors.n, 0);
    CHECK_INT_EQ(c.n_datasets, 2);
    CHECK_STR_EQ(c.datasets[0].name, "fashion-mnist");
    CHECK_STR_EQ(c.datasets[0].path, "/usr/share/datasets/fashion-mnist");
    CHECK_STR_EQ(c.datasets[1].format, "cifar10");
    CHECK_INT_EQ(config_check(&c, &d), 0);
}

/* The shipped config/traind.conf must parse and equal the defaults. */
static void test_shipped_file(void)
{
    struct config a, b;
    struct diag d = {{0}, {0}};
    config_default(&a);
    config_default(&b);
    int r = config_load_file(&b, TEST_SOURCE_DIR "/config/traind.conf", &d);
    CHECK_MSG(r == 0, "%s", d.message);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
}

static void test_values(void)
{
    struct config c;
    struct diag d = {{0}, {0}};
    config_default(&c);
    int r = config_parse_string(&c,
                                "# comment\n"
                                "[traind]\n"
                                "listen = [::1]:9000\n"
                                "workers = 3\n"
                                "max_body_bytes = 2M\n"
                                "connection_memory_limit = 32k\n"
                                "token_file = /etc/traind/token\n"
                                "cors_allow_origins = http://127.0.0.1:8080, https://d.example\n"
                                "[dataset.mnist]\n"
                                "format = idx\n"
                                "path = /data/mnist\n"
                                "[dataset.fashion-mnist]\n"
                                "path = /elsewhere\n",
                                &d);
    CHECK_MSG(r == 0, "%s", d.message);
    CHECK_STR_EQ(c.listen, "[::1]:9000");
    CHECK_INT_EQ(c.workers, 3);
    CHECK_INT_EQ(c.max_body_bytes, 2 * 1024 * 1024);
    CHECK_INT_EQ(c.connection_memory_limit, 32 * 1024);
    CHECK_STR_EQ(c.token_file, "/etc/traind/token");
    CHECK_INT_EQ(c.cors.n, 2);
    CHECK_STR_EQ(c.cors.origin[1], "https://d.example");
    CHECK_INT_EQ(c.n_datasets, 3);
    CHECK_STR_EQ(c.datasets[0].path, "/elsewhere");
    CHECK_STR_EQ(c.datasets[2].name, "mnist");
    CHECK_STR_EQ(c.datasets[2].format, "idx");
    CHECK_INT_EQ(config_check(&c, &d), 0);
    /* command-line override */
    CHECK_INT_EQ(config_set(&c, "listen", "127.0.0.1:1", &d), 0);
    CHECK_STR_EQ(c.listen, "127.0.0.1:1");
}

static void test_errors(void)
{
    static const struct {
        const char *text;
        const char *needle; /* must appear in the message */
    } cases[] = {
        {"[traind]\nworkers = 0\n", "line 2: workers"},
        {"[traind]\nworkers = two\n", "workers"},
        {"[traind]\nthreads = 99999\n", "threads"},
        {"[traind]\nbogus = 1\n", "unknown key 'bogus'"},
        {"[other]\nx = 1\n", "unknown section [other]"},
        {"[traind]\nlisten = nowhere\n", "listen"},
        {"[traind]\nlisten = 127.0.0.1:99999\n", "listen"},
        {"[traind]\nmax_body_bytes = 1Q\n", "max_body_bytes"},
        {"[traind]\nstate_dir =\n", "state_dir"},
        {"[dataset.x]\nformat = png\n", "dataset.x.format"},
        {"[dataset.x]\npath = relative\n", "dataset.x.path"},
        {"[dataset.x]\ncolour = red\n", "colour"},
        {"[dataset.a/b]\nformat = idx\n", "dataset.a/b"},
        {"just words\n", "line 1"},
        {"[traind]\ncors_allow_origins = *\n", "line 2: cors_allow_origins"},
        {"[traind]\ncors_allow_origins = http://a.example/x\n", "http://a.example/x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config c;
        struct diag d = {{0}, {0}};
        config_default(&c);
        int r = config_parse_string(&c, cases[i].text, &d);
        CHECK_MSG(r == -EINVAL && strstr(d.message, cases[i].needle), "case %zu: %d '%s'", i, r,
                  d.message);
    }
    /* a data set without a path is caught by the final check */
    struct config c;
    struct diag d = {{0}, {0}};
    config_default(&c);
    CHECK_INT_EQ(config_parse_string(&c, "[dataset.x]\nformat = idx\n", &d), 0);
    CHECK_INT_EQ(config_check(&c, &d), -EINVAL);
    CHECK(strstr(d.message, "dataset.x") != NULL);
    /* heartbeats must come before the idle timeout closes a stream */
    config_default(&c);
    CHECK_INT_EQ(config_parse_string(&c, "connection_timeout = 10\nheartbeat_interval = 10\n", &d), 0);
    CHECK_INT_EQ(config_check(&c, &d), -EINVAL);
    CHECK(strstr(d.message, "heartbeat_interval") != NULL);
    /* a missing file names the file */
    CHECK(config_load_file(&c, "/nonexistent/traind.conf", &d) == -ENOENT);
    CHECK(strstr(d.message, "/nonexistent/traind.conf") != NULL);
}

static void test_listen(void)
{
    struct api_listen l;
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(api_listen_parse(&l, "127.0.0.1:8470", &d), 0);
    CHECK(api_listen_is_loopback(&l));
    CHECK_INT_EQ(api_listen_parse(&l, "127.1.2.3:0", &d), 0);
    CHECK(api_listen_is_loopback(&l));
    CHECK_INT_EQ(api_listen_parse(&l, "[::1]:80", &d), 0);
    CHECK(api_listen_is_loopback(&l));
    CHECK_INT_EQ(api_listen_parse(&l, "localhost:80", &d), 0);
    CHECK(api_listen_is_loopback(&l));
    CHECK_INT_EQ(api_listen_parse(&l, "0.0.0.0:80", &d), 0);
    CHECK(!api_listen_is_loopback(&l));
    CHECK_INT_EQ(api_listen_parse(&l, "[::]:80", &d), 0);
    CHECK(!api_listen_is_loopback(&l));
    CHECK_INT_EQ(api_listen_parse(&l, "[::ffff:127.0.0.1]:80", &d), 0);
    CHECK(api_listen_is_loopback(&l));
    CHECK_INT_EQ(api_listen_parse(&l, "10.0.0.1:80", &d), 0);
    CHECK(!api_listen_is_loopback(&l));
    CHECK(api_listen_parse(&l, "8470", &d) < 0);
    CHECK(api_listen_parse(&l, "127.0.0.1:", &d) < 0);
    CHECK(api_listen_parse(&l, "127.0.0.1:-1", &d) < 0);
    CHECK(api_listen_parse(&l, "example.com:80", &d) < 0);
    CHECK(api_listen_parse(&l, "[::1:80", &d) < 0);
}

int main(void)
{
    TEST_RUN(test_defaults);
    TEST_RUN(test_shipped_file);
    TEST_RUN(test_values);
    TEST_RUN(test_errors);
    TEST_RUN(test_listen);
    return TEST_EXIT();
}
