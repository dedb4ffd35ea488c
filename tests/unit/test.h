/* test.h - a minimal unit-test harness: checks count failures and report the
 * location; TEST_MAIN runs the listed test functions and exits non-zero when
 * any check failed (meson test reads the exit code). */
#ifndef TRAIND_TEST_H
#define TRAIND_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        test_checks++;                                                                \
        if (!(cond)) {                                                                \
            test_failures++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                          \
    do {                                                                              \
        test_checks++;                                                                \
        if (!(cond)) {                                                                \
            test_failures++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                            \
    do {                                                                              \
        long long _a = (long long)(a), _b = (long long)(b);                           \
        test_checks++;                                                                \
        if (_a != _b) {                                                               \
            test_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,       \
                    __LINE__, #a, #b, _a, _b);                                        \
        }                                                                             \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                            \
    do {                                                                              \
        const char *_a = (a), *_b = (b);                                              \
        test_checks++;                                                                \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                      \
            test_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,   \
                    __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");        \
        }                                                                             \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, rtol, atol)                                                 \
    do {                                                                              \
        double _a = (double)(a), _b = (double)(b);                                    \
        test_checks++;                                                                \
        if (!(fabs(_a - _b) <= (atol) + (rtol) * fabs(_b))) {                         \
            test_failures++;                                                          \
            fprintf(stderr, "%s:%d: %s ~ %s failed: %.9g vs %.9g\n", __FILE__,        \
                    __LINE__, #a, #b, _a, _b);                                        \
        }                                                                             \
    } while (0)

#define TEST_RUN(fn)                                                                  \
    do {                                                                              \
        int _before = test_failures;                                                  \
        fn();                                                                         \
        fprintf(stderr, "%s %s\n", test_failures == _before ? "ok  " : "FAIL", #fn);  \
    } while (0)

#define TEST_EXIT()                                                                   \
    (fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures),           \
     (test_failures || !test_checks) ? 1 : 0)

#endif
