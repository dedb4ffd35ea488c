/* template.c - checkpoint filepath templates: the str.format subset of
 * template.h, rendered exactly as CPython 3.11 renders it.
 *
 * Floats follow CPython's PyOS_double_to_string: 'e' and 'f' come from
 * glibc's printf (both round the exact binary value correctly, ties to even,
 * like CPython's dtoa); 'g' and the no-type form are assembled from a digit
 * string and a decimal point position exactly as CPython's
 * format_float_short does; repr (no type, no precision) is pyfmt_double.
 * Sign, fill, alignment, zero padding and digit grouping follow CPython's
 * calc_number_widths / InsertThousandsGrouping.
 *
 * One walker (tmpl_walk) parses the template and enforces the literal path
 * rules; template_validate adds key and type checks, template_render formats
 * the values and re-checks the rendered path. */
#include "template.h"

#include "pyfmt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC_MAX_PRECISION 50
#define FIELD_MAX 768 /* longest formatted field: 309 integer digits + precision + padding */

struct fmt_spec {
    char fill;     /* ' ' unless given */
    char align;    /* '<' '>' '^' '='; resolved: '=' with the '0' flag, else '>' */
    char sign;     /* '+' '-' ' ' or 0 */
    bool alt;      /* '#' */
    int width;     /* -1 when absent */
    char group;    /* ',' '_' or 0 */
    int precision; /* -1 when absent */
    char type;     /* 0 or the type character */
};

enum piece_kind {
    PIECE_END,
    PIECE_CHAR,
    PIECE_FIELD,
};

struct piece {
    enum piece_kind kind;
    int pos;  /* CHAR: position of the character; FIELD: position of the key name */
    char ch;  /* CHAR: the character after unescaping */
    char name[64];
    int spec_pos; /* FIELD: position of the spec (after ':'), or of the closing '}' */
    struct fmt_spec spec;
};

/* Characters allowed in literal text besides '/'. */
static bool char_is_safe(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("._+=@,-", c));
}

static bool char_is_align(char c)
{
    return c == '<' || c == '>' || c == '^' || c == '=';
}

static int read_integer(const char *s, size_t n, size_t *i, int *ret)
{
    int v = 0, digits = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        if (v > 100000)
            v = 100001; /* saturate; rejected by the caller */
        else
            v = v * 10 + (s[*i] - '0');
        (*i)++;
        digits++;
    }
    *ret = v;
    return digits;
}

/* Python's format-spec mini-language:
 *   [[fill]align][sign][z][#][0][width][,|_][.precision][type]
 * On failure returns -EINVAL with the reason in why. */
static int spec_parse(const char *s, size_t n, struct fmt_spec *ret, char *why, size_t whysz)
{
    struct fmt_spec f = {.fill = ' ', .width = -1, .precision = -1};
    size_t i = 0;
    bool fill_given = false, zero_flag = false;

    if (n >= 2 && char_is_align(s[1])) {
        f.fill = s[0];
        f.align = s[1];
        fill_given = true;
        i = 2;
    } else if (n >= 1 && char_is_align(s[0])) {
        f.align = s[0];
        i = 1;
    }
    if (i < n && (s[i] == '+' || s[i] == '-' || s[i] == ' '))
        f.sign = s[i++];
    if (i < n && s[i] == 'z') {
        snprintf(why, whysz, "option 'z' is not supported");
        return -EINVAL;
    }
    if (i < n && s[i] == '#') {
        f.alt = true;
        i++;
    }
    if (!fill_given && i < n && s[i] == '0') {
        f.fill = '0';
        zero_flag = true;
        i++;
    }
    int v;
    if (read_integer(s, n, &i, &v) > 0)
        f.width = v;
    if (i < n && (s[i] == ',' || s[i] == '_')) {
        f.group = s[i++];
        if (i < n && (s[i] == ',' || s[i] == '_')) {
            snprintf(why, whysz, "cannot specify both ',' and '_'");
            return -EINVAL;
        }
    }
    if (i < n && s[i] == '.') {
        i++;
        if (read_integer(s, n, &i, &v) == 0) {
            snprintf(why, whysz, "format specifier missing precision");
            return -EINVAL;
        }
        f.precision = v;
    }
    if (n - i > 1) {
        snprintf(why, whysz, "invalid format specifier");
        return -EINVAL;
    }
    if (n - i == 1)
        f.type = s[i];
    if (!f.align)
        f.align = zero_flag ? '=' : '>';
    *ret = f;
    return 0;
}

/* The spec against the value's Python type (int for epoch/batch, float for
 * logs values) and against our limits.  Returns 0 or -EINVAL with why. */
static int spec_check(const struct fmt_spec *f, bool is_int, char *why, size_t whysz)
{
    const char *tname = is_int ? "int" : "float";
    char t = f->type;

    if (t && !strchr("dfFeEgGs%", t)) {
        if (strchr("bcnoxX", t))
            snprintf(why, whysz, "format code '%c' is not supported", t);
        else
            snprintf(why, whysz, "unknown format code '%c' for a value of type %s", t, tname);
        return -EINVAL;
    }
    if (t == 's' || (t == 'd' && !is_int)) {
        snprintf(why, whysz, "format code '%c' is not valid for a value of type %s", t, tname);
        return -EINVAL;
    }
    if (is_int && (t == 0 || t == 'd') && f->precision >= 0) {
        snprintf(why, whysz, "precision not allowed in integer format specifier");
        return -EINVAL;
    }
    if (t == '%') {
        snprintf(why, whysz, "format code '%%' is not supported in file names");
        return -EINVAL;
    }
    if (f->sign == ' ') {
        snprintf(why, whysz, "sign ' ' is not supported in file names (it renders a space)");
        return -EINVAL;
    }
    if (f->fill != ' ' && !(char_is_safe(f->fill) && f->fill != '.')) {
        snprintf(why, whysz, "fill character '%c' is not allowed in file names", f->fill);
        return -EINVAL;
    }
    if (f->width > TEMPLATE_MAX_NAME) {
        snprintf(why, whysz, "width larger than %d", TEMPLATE_MAX_NAME);
        return -EINVAL;
    }
    if (f->precision > SPEC_MAX_PRECISION) {
        snprintf(why, whysz, "precision larger than %d", SPEC_MAX_PRECISION);
        return -EINVAL;
    }
    if (f->fill == ' ' && f->width > 0) {
        snprintf(why, whysz,
                 "padding with spaces is not supported in file names (give a fill character "
                 "or '0', e.g. {epoch:03d})");
        return -EINVAL;
    }
    return 0;
}

/* Next piece of t from *pos: one literal character ("{{" and "}}" unescaped)
 * or one replacement field with its spec parsed. */
static int tmpl_next(const char *t, int *pos, struct piece *p, struct diag *d)
{
    int i = *pos;
    char c = t[i];

    p->kind = PIECE_CHAR;
    p->pos = i;
    p->ch = c;
    if (c == '\0') {
        p->kind = PIECE_END;
        return 0;
    }
    if (c == '}') {
        if (t[i + 1] != '}')
            return diag_set(d, -EINVAL, "",
                            "position %d: single '}' in template (write '}}' for a literal brace)", i);
        *pos = i + 2;
        return 0;
    }
    if (c != '{') {
        *pos = i + 1;
        return 0;
    }
    if (t[i + 1] == '{') {
        *pos = i + 2;
        return 0;
    }

    int start = i + 1, j = start;
    while (t[j] && t[j] != '}' && t[j] != ':' && t[j] != '!') {
        if (t[j] == '{')
            return diag_set(d, -EINVAL, "", "position %d: unexpected '{' in field name", j);
        if (t[j] == '.' || t[j] == '[')
            return diag_set(d, -EINVAL, "",
                            "position %d: attribute or index access ('%c') is not supported", j, t[j]);
        j++;
    }
    if (!t[j])
        return diag_set(d, -EINVAL, "",
                        "position %d: unterminated '{' (write '{{' for a literal brace)", i);
    int nlen = j - start;
    if (nlen == 0)
        return diag_set(d, -EINVAL, "",
                        "position %d: empty field '{}': positional fields are not supported, name a key",
                        start);
    if ((int)strspn(t + start, "0123456789") >= nlen)
        return diag_set(d, -EINVAL, "",
                        "position %d: positional field '{%.*s}' is not supported, name a key", start,
                        nlen, t + start);
    if (nlen >= (int)sizeof(p->name))
        return diag_set(d, -EINVAL, "", "position %d: key name longer than %zu bytes", start,
                        sizeof(p->name) - 1);
    if (t[j] == '!')
        return diag_set(d, -EINVAL, "", "position %d: conversion '!%c' is not supported", j,
                        t[j + 1] ? t[j + 1] : ' ');

    int spec_start = j, spec_len = 0;
    if (t[j] == ':') {
        spec_start = j + 1;
        int k = spec_start;
        while (t[k] && t[k] != '}') {
            if (t[k] == '{')
                return diag_set(d, -EINVAL, "",
                                "position %d: nested field in format spec is not supported", k);
            k++;
        }
        if (!t[k])
            return diag_set(d, -EINVAL, "",
                            "position %d: unterminated '{' (write '{{' for a literal brace)", i);
        spec_len = k - spec_start;
        j = k;
    }
    memcpy(p->name, t + start, (size_t)nlen);
    p->name[nlen] = '\0';
    char why[160];
    if (spec_parse(t + spec_start, (size_t)spec_len, &p->spec, why, sizeof(why)) < 0)
        return diag_set(d, -EINVAL, "", "position %d: invalid format spec '%.*s' for key '%s': %s",
                        spec_start, spec_len, t + spec_start, p->name, why);
    p->kind = PIECE_FIELD;
    p->pos = start;
    p->spec_pos = spec_start;
    *pos = j + 1;
    return 0;
}

typedef int (*piece_fn)(void *ctx, const struct piece *p, struct diag *d);

/* Walk tmpl, enforcing the path rules that the literal text decides, and
 * hand every character and field to fn. */
static int tmpl_walk(const char *tmpl, piece_fn fn, void *ctx, struct diag *d)
{
    size_t tlen = strlen(tmpl);
    if (tlen == 0)
        return diag_set(d, -EINVAL, "", "position 0: empty template");
    if (tlen >= TEMPLATE_MAX_PATH)
        return diag_set(d, -EINVAL, "", "position %d: template longer than %d bytes",
                        TEMPLATE_MAX_PATH - 1, TEMPLATE_MAX_PATH - 1);
    if (tmpl[0] == '/')
        return diag_set(d, -EINVAL, "",
                        "position 0: absolute path; the template is relative to the job's checkpoint folder");

    int pos = 0, components = 1, comp_pieces = 0, comp_literal = 0;
    for (;;) {
        struct piece p;
        int r = tmpl_next(tmpl, &pos, &p, d);
        if (r < 0)
            return r;
        if (p.kind == PIECE_END || (p.kind == PIECE_CHAR && p.ch == '/')) {
            if (comp_pieces == 0)
                return diag_set(d, -EINVAL, "", "position %d: empty path component", p.pos);
            if (p.kind == PIECE_END)
                return 0;
            if (++components > TEMPLATE_MAX_COMPONENTS)
                return diag_set(d, -EINVAL, "", "position %d: more than %d path components", p.pos,
                                TEMPLATE_MAX_COMPONENTS);
            comp_pieces = comp_literal = 0;
        } else if (p.kind == PIECE_CHAR) {
            if (p.ch == '{' || p.ch == '}')
                return diag_set(d, -EINVAL, "",
                                "position %d: '%c%c': braces are not supported in file names",
                                p.pos, p.ch, p.ch);
            if (!char_is_safe(p.ch))
                return diag_set(d, -EINVAL, "",
                                "position %d: character 0x%02x is not allowed in file names "
                                "(allowed: A-Z a-z 0-9 . _ + = @ , -, and '/' between components)",
                                p.pos, (unsigned char)p.ch);
            if (p.ch == '.' && strncmp(tmpl + p.pos, ".tmp", 4) == 0)
                return diag_set(d, -EINVAL, "",
                                "position %d: '.tmp' is not allowed in file names (reserved for "
                                "temp files)",
                                p.pos);
            if (comp_pieces == 0 && p.ch == '.') {
                const char *s = tmpl + p.pos;
                if (s[1] == '/' || s[1] == '\0')
                    return diag_set(d, -EINVAL, "", "position %d: '.' path component", p.pos);
                if (s[1] == '.' && (s[2] == '/' || s[2] == '\0'))
                    return diag_set(d, -EINVAL, "", "position %d: '..' path component", p.pos);
                return diag_set(d, -EINVAL, "", "position %d: path component starts with '.'", p.pos);
            }
            if (++comp_literal > TEMPLATE_MAX_NAME)
                return diag_set(d, -EINVAL, "", "position %d: path component longer than %d bytes",
                                p.pos, TEMPLATE_MAX_NAME);
            comp_pieces++;
        } else {
            comp_pieces++;
        }
        r = fn(ctx, &p, d);
        if (r < 0)
            return r;
    }
}

bool template_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > TEMPLATE_MAX_NAME || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!char_is_safe(name[i]))
            return false;
        if (name[i] == '.' && len - i >= 4 && memcmp(name + i, ".tmp", 4) == 0)
            return false;
    }
    return true;
}

bool template_has_fields(const char *tmpl)
{
    for (const char *s = tmpl; *s; s++) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            s++;
            continue;
        }
        if (*s == '{')
            return true;
    }
    return false;
}

/* ---- validation ---- */

struct validate_ctx {
    const char *const *keys;
    int n_keys;
    bool batch_allowed;
};

static void append_key_list(char *buf, size_t sz, const struct validate_ctx *v)
{
    size_t len = strlen(buf);
    len += (size_t)snprintf(buf + len, len < sz ? sz - len : 0, "epoch");
    if (v->batch_allowed && len < sz)
        len += (size_t)snprintf(buf + len, sz - len, ", batch");
    for (int i = 0; i < v->n_keys && len < sz; i++)
        len += (size_t)snprintf(buf + len, sz - len, ", %s", v->keys[i]);
}

static int validate_piece(void *ctx, const struct piece *p, struct diag *d)
{
    const struct validate_ctx *v = ctx;
    if (p->kind != PIECE_FIELD)
        return 0;

    bool is_int = false, found = false;
    if (strcmp(p->name, "epoch") == 0) {
        is_int = found = true;
    } else if (strcmp(p->name, "batch") == 0) {
        if (!v->batch_allowed)
            return diag_set(d, -EINVAL, "",
                            "position %d: key 'batch' is only available with batch-based saving "
                            "(integer save_freq)",
                            p->pos);
        is_int = found = true;
    } else {
        const char *want = logs_canonical_key(p->name);
        for (int i = 0; i < v->n_keys && !found; i++)
            found = strcmp(logs_canonical_key(v->keys[i]), want) == 0;
    }
    if (!found) {
        char avail[320] = "";
        append_key_list(avail, sizeof(avail), v);
        return diag_set(d, -EINVAL, "", "position %d: unknown key '%s' (available: %s)", p->pos,
                        p->name, avail);
    }
    char why[160];
    if (spec_check(&p->spec, is_int, why, sizeof(why)) < 0)
        return diag_set(d, -EINVAL, "", "position %d: format spec for key '%s': %s", p->spec_pos,
                        p->name, why);
    return 0;
}

int template_validate(const char *tmpl, const char *const *available_keys, int n_keys,
                      bool batch_allowed, struct diag *d)
{
    struct validate_ctx v = {available_keys, n_keys > 0 ? n_keys : 0, batch_allowed};
    if (!tmpl)
        return diag_set(d, -EINVAL, "", "position 0: no template");
    return tmpl_walk(tmpl, validate_piece, &v, d);
}

/* ---- number formatting ---- */

static void put_zeros(char **p, int n)
{
    for (int i = 0; i < n; i++)
        *(*p)++ = '0';
}

/* CPython's format_float_short layout of digits/decpt for code 'g' ('e' and
 * 'f' come straight from printf, 'r' from pyfmt_double).  out must hold
 * FIELD_MAX bytes. */
static void float_layout(char *out, const char *digits, int decpt, int precision, bool alt,
                         bool add_dot_0, bool upper)
{
    int n = (int)strlen(digits), vend = n, exp = 0;
    bool use_exp = false;

    if (decpt <= -4 || decpt > (add_dot_0 ? precision - 1 : precision))
        use_exp = true;
    if (alt)
        vend = precision;
    if (use_exp) {
        exp = decpt - 1;
        decpt = 1;
    }
    if (!use_exp && add_dot_0)
        vend = vend > decpt ? vend : decpt + 1;
    else
        vend = vend > decpt ? vend : decpt;

    char *p = out;
    if (decpt <= 0) {
        *p++ = '0';
        *p++ = '.';
        put_zeros(&p, -decpt);
    }
    if (decpt > 0 && decpt <= n) {
        memcpy(p, digits, (size_t)decpt);
        p += decpt;
        *p++ = '.';
        memcpy(p, digits + decpt, (size_t)(n - decpt));
        p += n - decpt;
    } else {
        memcpy(p, digits, (size_t)n);
        p += n;
    }
    if (n < decpt) {
        put_zeros(&p, decpt - n);
        *p++ = '.';
        put_zeros(&p, vend - decpt);
    } else {
        put_zeros(&p, vend - n);
    }
    if (p[-1] == '.' && !alt)
        p--;
    if (use_exp)
        p += sprintf(p, "%c%+.02d", upper ? 'E' : 'e', exp);
    *p = '\0';
}

/* Digits grouped from the right with sep (0: no grouping), zero-padded to
 * min_width the way CPython's InsertThousandsGrouping does.  Returns the
 * length written to out (size FIELD_MAX). */
static int group_digits(char *out, const char *digits, int n, int min_width, char sep)
{
    char rev[FIELD_MAX];
    int len = 0, remaining = n;
    const char *src = digits + n;
    bool use_sep = false;

    for (;;) {
        int want = remaining > min_width ? remaining : min_width;
        if (want < 1)
            want = 1;
        int l = sep && want > 3 ? 3 : want;
        int zeros = l - remaining > 0 ? l - remaining : 0;
        int chars = remaining < l ? remaining : l;
        if (chars < 0)
            chars = 0;
        if (len + 1 + chars + zeros >= (int)sizeof(rev))
            break;
        if (use_sep)
            rev[len++] = sep;
        for (int k = 0; k < chars; k++)
            rev[len++] = *--src;
        for (int k = 0; k < zeros; k++)
            rev[len++] = '0';
        use_sep = true;
        remaining -= chars;
        min_width -= l;
        if (!sep || (remaining <= 0 && min_width <= 0))
            break;
        min_width -= 1;
    }
    for (int k = 0; k < len; k++)
        out[k] = rev[len - 1 - k];
    out[len] = '\0';
    return len;
}

static void put_fill(char **p, char fill, int n)
{
    for (int i = 0; i < n; i++)
        *(*p)++ = fill;
}

/* sign, padding and grouping around body (the unsigned number text):
 *   <lpad><sign><spad><grouped digits><rest><rpad>
 * out has FIELD_MAX bytes; the spec limits keep the result below that. */
static void number_assemble(char *out, bool negative, const char *body, const struct fmt_spec *f)
{
    char sign = 0;
    if (f->sign == '+')
        sign = negative ? '-' : '+';
    else if (f->sign == ' ')
        sign = negative ? '-' : ' ';
    else if (negative)
        sign = '-';

    int n_digits = (int)strspn(body, "0123456789");
    const char *rest = body + n_digits;
    int n_sign = sign ? 1 : 0, n_rest = (int)strlen(rest);
    int min_width = f->fill == '0' && f->align == '=' ? f->width - n_sign - n_rest : 0;

    char grouped[FIELD_MAX];
    int n_grouped = n_digits ? group_digits(grouped, body, n_digits, min_width, f->group) : 0;
    grouped[n_grouped] = '\0';

    int pad = f->width - (n_sign + n_rest + n_grouped);
    int lpad = 0, spad = 0, rpad = 0;
    if (pad > 0) {
        switch (f->align) {
        case '<': rpad = pad; break;
        case '^': lpad = pad / 2; rpad = pad - lpad; break;
        case '=': spad = pad; break;
        default: lpad = pad; break;
        }
    }
    char *p = out;
    put_fill(&p, f->fill, lpad);
    if (sign)
        *p++ = sign;
    put_fill(&p, f->fill, spad);
    memcpy(p, grouped, (size_t)n_grouped);
    p += n_grouped;
    memcpy(p, rest, (size_t)n_rest);
    p += n_rest;
    put_fill(&p, f->fill, rpad);
    *p = '\0';
}

/* format(x, spec) for a Python float x. */
static void format_float(char *out, double x, const struct fmt_spec *f)
{
    char type = f->type, code;
    int precision = f->precision;
    bool upper = type == 'E' || type == 'F' || type == 'G';
    bool add_dot_0 = false, percent = false;

    switch (type) {
    case 0:
        code = precision < 0 ? 'r' : 'g';
        add_dot_0 = true;
        break;
    case '%':
        code = 'f';
        percent = true;
        x *= 100.0;
        break;
    default:
        code = (char)(type | 0x20); /* lower case */
        break;
    }
    if (precision < 0)
        precision = 6;

    char body[FIELD_MAX];
    bool negative = signbit(x) && !isnan(x);
    double ax = fabs(x);
    if (isnan(x)) {
        strcpy(body, upper ? "NAN" : "nan");
    } else if (isinf(x)) {
        strcpy(body, upper ? "INF" : "inf");
    } else if (code == 'f') {
        snprintf(body, sizeof(body), f->alt ? "%#.*f" : "%.*f", precision, ax);
    } else if (code == 'e') {
        snprintf(body, sizeof(body), f->alt ? "%#.*e" : "%.*e", precision, ax);
        if (upper) {
            char *e = strchr(body, 'e');
            if (e)
                *e = 'E';
        }
    } else if (code == 'r') {
        pyfmt_double(body, ax, PYFMT_NONFINITE_PY);
        char *e = strchr(body, 'e');
        if (f->alt && e && !strchr(body, '.')) { /* '#' keeps the point: "1.e-05" */
            memmove(e + 1, e, strlen(e) + 1);
            *e = '.';
        }
    } else {
        char digits[SPEC_MAX_PRECISION + 24];
        int decpt;
        if (precision == 0)
            precision = 1;
        pyfmt_digits(ax, precision, digits, &decpt);
        float_layout(body, digits, decpt, precision, f->alt, add_dot_0, upper);
    }
    if (percent)
        strcat(body, "%");
    number_assemble(out, negative, body, f);
}

/* format(v, spec) for a Python int v. */
static void format_int(char *out, long long v, const struct fmt_spec *f)
{
    if (f->type && f->type != 'd') {
        format_float(out, (double)v, f);
        return;
    }
    char body[32];
    unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    snprintf(body, sizeof(body), "%llu", mag);
    number_assemble(out, v < 0, body, f);
}

/* ---- rendering ---- */

struct render_ctx {
    char buf[TEMPLATE_MAX_PATH];
    size_t len;
    bool too_long;
    int epoch, batch;
    const struct logs *logs;
};

static void render_append(struct render_ctx *r, const char *s, size_t n)
{
    if (r->len + n >= sizeof(r->buf)) {
        r->too_long = true;
        return;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

static int render_piece(void *ctx, const struct piece *p, struct diag *d)
{
    struct render_ctx *r = ctx;
    if (p->kind == PIECE_CHAR) {
        render_append(r, &p->ch, 1);
        return 0;
    }
    if (p->kind != PIECE_FIELD)
        return 0;

    bool is_int = true;
    long long iv = 0;
    double fv = 0.0;
    if (strcmp(p->name, "epoch") == 0) {
        iv = r->epoch;
    } else if (strcmp(p->name, "batch") == 0) {
        if (r->batch <= 0)
            return diag_set(d, -EINVAL, "",
                            "position %d: key 'batch' has no value (not batch-based saving)", p->pos);
        iv = r->batch;
    } else {
        is_int = false;
        if (!r->logs || !logs_get(r->logs, p->name, &fv))
            return diag_set(d, -EINVAL, "", "position %d: key '%s' is not in the logs", p->pos,
                            p->name);
    }
    char why[160];
    if (spec_check(&p->spec, is_int, why, sizeof(why)) < 0)
        return diag_set(d, -EINVAL, "", "position %d: format spec for key '%s': %s", p->spec_pos,
                        p->name, why);
    char field[FIELD_MAX];
    if (is_int)
        format_int(field, iv, &p->spec);
    else
        format_float(field, fv, &p->spec);
    render_append(r, field, strlen(field));
    return 0;
}

/* The path rules on the rendered text: fields may not add a separator, an
 * empty or dot-leading component, or a component longer than allowed. */
static int rendered_check(const char *path, struct diag *d)
{
    int components = 0;
    const char *s = path;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        components++;
        if (len == 0)
            return diag_set(d, -EINVAL, "", "rendered path '%s': empty path component", path);
        if (s[0] == '.')
            return diag_set(d, -EINVAL, "", "rendered path '%s': a component starts with '.'", path);
        if (len > TEMPLATE_MAX_NAME)
            return diag_set(d, -ENAMETOOLONG, "",
                            "rendered path '%.64s...': component longer than %d bytes", path,
                            TEMPLATE_MAX_NAME);
        if (!template_name_valid(s, len))
            return diag_set(d, -EINVAL, "",
                            "rendered path '%s': a component is not a valid file name", path);
        if (!slash)
            break;
        s = slash + 1;
    }
    if (components > TEMPLATE_MAX_COMPONENTS)
        return diag_set(d, -EINVAL, "", "rendered path '%s': more than %d components", path,
                        TEMPLATE_MAX_COMPONENTS);
    return 0;
}

int template_render(char *out, size_t outsz, const char *tmpl, int epoch, int batch,
                    const struct logs *logs, struct diag *d)
{
    struct render_ctx rc = {.epoch = epoch, .batch = batch, .logs = logs}, *r = &rc;

    int ret = tmpl ? tmpl_walk(tmpl, render_piece, r, d)
                   : diag_set(d, -EINVAL, "", "position 0: no template");
    if (ret == 0 && r->too_long)
        ret = diag_set(d, -ENAMETOOLONG, "", "rendered path longer than %d bytes",
                       TEMPLATE_MAX_PATH - 1);
    if (ret == 0)
        ret = rendered_check(r->buf, d);
    if (ret == 0 && r->len >= outsz)
        ret = diag_set(d, -ENAMETOOLONG, "", "rendered path does not fit the %zu-byte buffer", outsz);
    if (ret == 0)
        memcpy(out, r->buf, r->len + 1);
    return ret;
}
