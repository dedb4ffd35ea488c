/* pyfmt.c - Python's float repr (see pyfmt.h).
 *
 * Digits: glibc's "%.*e" rounds the exact binary value correctly, so the
 * first precision whose text reads back (strtod / strtof) to the same value
 * gives the shortest digits, as CPython's dtoa mode 0 and numpy's Dragon4
 * do.  Layout: CPython's format_float_short for repr ('r'). */
#include "pyfmt.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOUBLE_MAX_DIGITS 17 /* enough for every double to round-trip */
#define FLOAT_MAX_DIGITS 9   /* enough for every float32 to round-trip */
#define REPR_EXP_LOW (-4)    /* repr is positional for decimal exponents in [-4, 16) */
#define REPR_EXP_HIGH 16
#define DIGITS_SIZE (DOUBLE_MAX_DIGITS + 1)

void pyfmt_digits(double ax, int ndig, char *digits, int *ret_decpt)
{
    char buf[PYFMT_MAX_NDIG + 32];
    snprintf(buf, sizeof(buf), "%.*e", ndig - 1, ax);
    int n = 0;
    const char *s = buf;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            digits[n++] = *s;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *ret_decpt = (*s ? (int)strtol(s + 1, NULL, 10) : 0) + 1;
}

/* The shortest digits that read back as ax: as a double, or (as_float) as a
 * float32. */
static void shortest(double ax, bool as_float, char digits[DIGITS_SIZE], int *decpt)
{
    int max = as_float ? FLOAT_MAX_DIGITS : DOUBLE_MAX_DIGITS;
    for (int p = 1; p < max; p++) {
        char buf[40];
        snprintf(buf, sizeof(buf), "%.*e", p - 1, ax);
        bool same = as_float ? strtof(buf, NULL) == (float)ax : strtod(buf, NULL) == ax;
        if (same) {
            pyfmt_digits(ax, p, digits, decpt);
            return;
        }
    }
    pyfmt_digits(ax, max, digits, decpt);
}

static void repr(char out[PYFMT_SIZE], double x, bool as_float, enum pyfmt_nonfinite nonfinite)
{
    bool json = nonfinite == PYFMT_NONFINITE_JSON;
    if (isnan(x)) {
        strcpy(out, json ? "NaN" : "nan");
        return;
    }
    if (isinf(x)) {
        strcpy(out, x > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf"));
        return;
    }
    char digits[DIGITS_SIZE];
    int decpt;
    char *o = out;
    if (signbit(x))
        *o++ = '-';
    shortest(fabs(x), as_float, digits, &decpt);
    int n = (int)strlen(digits), exp = decpt - 1;
    if (exp < REPR_EXP_LOW || exp >= REPR_EXP_HIGH) {
        *o++ = digits[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(n - 1));
            o += n - 1;
        }
        sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
        return;
    }
    if (decpt <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -decpt; i++)
            *o++ = '0';
        memcpy(o, digits, (size_t)n);
        o += n;
    } else {
        for (int i = 0; i < decpt; i++)
            *o++ = i < n ? digits[i] : '0';
        *o++ = '.';
        if (n > decpt) {
            memcpy(o, digits + decpt, (size_t)(n - decpt));
            o += n - decpt;
        } else {
            *o++ = '0';
        }
    }
    *o = '\0';
}

void pyfmt_double(char out[PYFMT_SIZE], double x, enum pyfmt_nonfinite nonfinite)
{
    repr(out, x, false, nonfinite);
}

void pyfmt_float32(char out[PYFMT_SIZE], float x, enum pyfmt_nonfinite nonfinite)
{
    repr(out, (double)x, true, nonfinite);
}
