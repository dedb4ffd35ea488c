/* test_pyfmt.c - core/pyfmt: Python's repr(float) for doubles and for
 * float32 settings. */
#include "pyfmt.h"
#include "test.h"

#include <math.h>
#include <string.h>

/* Reference strings printed by Python 3's repr() for the same doubles. */
static void test_python_repr(void)
{
    static const struct {
        double v;
        const char *repr;
    } cases[] = {
        {0.1, "0.1"},
        {1e-05, "1e-05"},
        {2.0, "2.0"},
        {123456789.0, "123456789.0"},
        {0.0001, "0.0001"},
        {1e+16, "1e+16"},
        {1.5e-07, "1.5e-07"},
        {-3.25, "-3.25"},
        {2.251494978554547, "2.251494978554547"},
        {0.171875, "0.171875"},
        {0.3333333333333333, "0.3333333333333333"},
        {1e+22, "1e+22"},
        {5e-324, "5e-324"},
        {1.7976931348623157e+308, "1.7976931348623157e+308"},
        {100.0, "100.0"},
        {1.2345678901234568e+16, "1.2345678901234568e+16"},
        {0.0, "0.0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[PYFMT_SIZE];
        pyfmt_double(out, cases[i].v, PYFMT_NONFINITE_PY);
        CHECK_STR_EQ(out, cases[i].repr);
    }
    char out[PYFMT_SIZE];
    pyfmt_double(out, NAN, PYFMT_NONFINITE_PY);
    CHECK_STR_EQ(out, "nan");
    pyfmt_double(out, -INFINITY, PYFMT_NONFINITE_PY);
    CHECK_STR_EQ(out, "-inf");
    pyfmt_double(out, -0.0, PYFMT_NONFINITE_PY);
    CHECK_STR_EQ(out, "-0.0");
    pyfmt_double(out, NAN, PYFMT_NONFINITE_JSON);
    CHECK_STR_EQ(out, "NaN");
    pyfmt_double(out, INFINITY, PYFMT_NONFINITE_JSON);
    CHECK_STR_EQ(out, "Infinity");
    pyfmt_double(out, -INFINITY, PYFMT_NONFINITE_JSON);
    CHECK_STR_EQ(out, "-Infinity");
}

/* Reference strings: Python 3's repr() of the double a float32 setting was
 * written as (what Keras writes in a model config). */
static void test_float32(void)
{
    static const struct {
        float v;
        const char *repr;
    } cases[] = {
        {0.1f, "0.1"},
        {100.0f, "100.0"},
        {0.99f, "0.99"},
        {0.001f, "0.001"},
        {1e-05f, "1e-05"},
        {0.0001f, "0.0001"},
        {0.25f, "0.25"},
        {0.3f, "0.3"},
        {100000.0f, "100000.0"},
        {1e16f, "1e+16"},
        {3.4028235e38f, "3.4028235e+38"},
        {1e-45f, "1e-45"},
        {123456789.0f, "123456790.0"},
        {1.0f / 3.0f, "0.33333334"},
        {0.0f, "0.0"},
        {-0.5f, "-0.5"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[PYFMT_SIZE];
        pyfmt_float32(out, cases[i].v, PYFMT_NONFINITE_PY);
        CHECK_STR_EQ(out, cases[i].repr);
    }
    char out[PYFMT_SIZE];
    pyfmt_float32(out, NAN, PYFMT_NONFINITE_JSON);
    CHECK_STR_EQ(out, "NaN");
    pyfmt_float32(out, -INFINITY, PYFMT_NONFINITE_PY);
    CHECK_STR_EQ(out, "-inf");
}

int main(void)
{
    TEST_RUN(test_python_repr);
    TEST_RUN(test_float32);
    return TEST_EXIT();
}
