/* test_http_range.c - api/http_range: Range and If-None-Match parsing. */
#include "http_range.h"
#include "test.h"

static void test_ranges(void)
{
    static const struct {
        const char *h;
        uint64_t size;
        enum http_range_result want;
        uint64_t start, len;
    } cases[] = {
        {NULL, 100, HTTP_RANGE_FULL, 0, 0},
        {"bytes=0-9", 100, HTTP_RANGE_PARTIAL, 0, 10},
        {"bytes=10-", 100, HTTP_RANGE_PARTIAL, 10, 90},
        {"bytes=-10", 100, HTTP_RANGE_PARTIAL, 90, 10},
        {"bytes=-1000", 100, HTTP_RANGE_PARTIAL, 0, 100},
        {"bytes=90-1000", 100, HTTP_RANGE_PARTIAL, 90, 10},
        {"bytes=99-99", 100, HTTP_RANGE_PARTIAL, 99, 1},
        {" bytes = 5 - 6 ", 100, HTTP_RANGE_PARTIAL, 5, 2},
        {"bytes=100-", 100, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=100-200", 100, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-0", 100, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-1,5-6", 100, HTTP_RANGE_FULL, 0, 0},
        {"bytes=9-1", 100, HTTP_RANGE_FULL, 0, 0},
        {"bytes=-", 100, HTTP_RANGE_FULL, 0, 0},
        {"bytes=a-b", 100, HTTP_RANGE_FULL, 0, 0},
        {"items=0-1", 100, HTTP_RANGE_FULL, 0, 0},
        {"bytes=99999999999999999999-", 100, HTTP_RANGE_FULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t s = 7777, l = 7777;
        enum http_range_result r = http_range_parse(cases[i].h, cases[i].size, &s, &l);
        CHECK_MSG(r == cases[i].want, "case %zu (%s): %d", i, cases[i].h ? cases[i].h : "NULL",
                  (int)r);
        if (r == HTTP_RANGE_PARTIAL && cases[i].want == HTTP_RANGE_PARTIAL) {
            CHECK_INT_EQ(s, cases[i].start);
            CHECK_INT_EQ(l, cases[i].len);
        }
    }
}

static void test_etags(void)
{
    const char *e = "\"abc\"";
    CHECK(http_etag_matches("\"abc\"", e));
    CHECK(http_etag_matches("W/\"abc\"", e));
    CHECK(http_etag_matches("\"x\", \"abc\"", e));
    CHECK(http_etag_matches("*", e));
    CHECK(!http_etag_matches("\"abcd\"", e));
    CHECK(!http_etag_matches("\"ab\"", e));
    CHECK(!http_etag_matches("abc", e));
    CHECK(!http_etag_matches("", e));
    CHECK(!http_etag_matches(NULL, e));
    CHECK(!http_etag_matches(",,,", e));
}

int main(void)
{
    TEST_RUN(test_ranges);
    TEST_RUN(test_etags);
    return TEST_EXIT();
}
