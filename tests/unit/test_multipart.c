/* test_multipart.c - multipart/form-data parsing: what curl -F sends,
 * quoted boundaries, preambles, and every way a body can be cut short. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "test.h"

#define BODY                                                                        \
    "--XyZ\r\n"                                                                      \
    "Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"         \
    "Content-Type: image/png\r\n"                                                    \
    "\r\n"                                                                           \
    "\x89PNG\r\n--not-a-boundary\r\n"                                                \
    "\r\n--XyZ\r\n"                                                                  \
    "Content-Disposition: form-data; name=\"image\"; filename=\"b.jpg\"\r\n"         \
    "\r\n"                                                                           \
    "\xff\xd8\xff"                                                                   \
    "\r\n--XyZ--\r\n"

static void test_boundary(void)
{
    char b[72];
    CHECK_INT_EQ(multipart_boundary("multipart/form-data; boundary=XyZ", b), 0);
    CHECK_STR_EQ(b, "XyZ");
    CHECK_INT_EQ(multipart_boundary("multipart/form-data; charset=x; boundary=\"a b\"", b), 0);
    CHECK_STR_EQ(b, "a b");
    CHECK_INT_EQ(multipart_boundary("multipart/form-data", b), -EINVAL);
    CHECK_INT_EQ(multipart_boundary("image/png; boundary=x", b), -EINVAL);
    CHECK_INT_EQ(multipart_boundary(NULL, b), -EINVAL);
}

static void test_parse(void)
{
    struct multipart_part parts[4];
    int n = 0;
    struct diag d = {{0}, {0}};
    const char body[] = BODY;
    CHECK_INT_EQ(multipart_parse(body, sizeof(body) - 1, "XyZ", parts, 4, &n, &d), 0);
    CHECK_INT_EQ(n, 2);
    CHECK_STR_EQ(parts[0].name, "image");
    CHECK_STR_EQ(parts[0].filename, "a.png");
    CHECK_STR_EQ(parts[0].content_type, "image/png");
    CHECK_INT_EQ(parts[0].len, 24);
    CHECK(memcmp(parts[0].data, "\x89PNG\r\n--not-a-boundary\r\n", 24) == 0);
    CHECK_STR_EQ(parts[1].filename, "b.jpg");
    CHECK_INT_EQ(parts[1].len, 3);
    /* a preamble before the first delimiter */
    const char pre[] = "ignored text\r\n" BODY;
    CHECK_INT_EQ(multipart_parse(pre, sizeof(pre) - 1, "XyZ", parts, 4, &n, &d), 0);
    CHECK_INT_EQ(n, 2);
    /* every truncation is an error, never a shorter part */
    for (size_t cut = 0; cut < sizeof(body) - 1 - 4; cut++) {
        int r = multipart_parse(body, cut, "XyZ", parts, 4, &n, &d);
        CHECK_MSG(r == -EINVAL, "cut at %zu gave %d", cut, r);
    }
    /* too many parts */
    CHECK_INT_EQ(multipart_parse(body, sizeof(body) - 1, "XyZ", parts, 1, &n, &d), -EINVAL);
    /* wrong boundary */
    CHECK_INT_EQ(multipart_parse(body, sizeof(body) - 1, "abc", parts, 4, &n, &d), -EINVAL);
}

int main(void)
{
    TEST_RUN(test_boundary);
    TEST_RUN(test_parse);
    return TEST_EXIT();
}
