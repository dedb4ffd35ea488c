/* pyfloat.c - see pyfloat.h. */
#include "pyfloat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void py_float_repr(char *buf, size_t size, double x)
{
    if (!isfinite(x)) {
        snprintf(buf, size, "%s", isnan(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (x == 0) {
        snprintf(buf, size, "%s", signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char e[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, x);
        if (strtod(e, NULL) == x)
            break;
    }
    snprintf(e, sizeof(e), "%.*e", prec - 1, x);
    int exp10 = atoi(strchr(e, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16) {
        /* mantissa digits from %e, exponent with at least two digits as Python */
        char mant[32];
        size_t ml = (size_t)(strchr(e, 'e') - e);
        memcpy(mant, e, ml);
        mant[ml] = '\0';
        snprintf(buf, size, "%se%c%02d", mant, exp10 < 0 ? '-' : '+', abs(exp10) % 1000); /* |exp10| <= 324 */
        return;
    }
    int decimals = prec - 1 - exp10;
    if (decimals < 1)
        snprintf(buf, size, "%.0f.0", x);
    else
        snprintf(buf, size, "%.*f", decimals, x);
}
