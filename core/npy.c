/* npy.c - strict parser of .npy headers (see npy.h). */
#include "npy.h"

#include <errno.h>
#include <string.h>

#define NPY_HEADER_MAX 65536

int npy_preamble(const unsigned char *p, size_t len, uint64_t *ret_total, const char *field,
                 struct diag *d)
{
    if (len < NPY_PREAMBLE || memcmp(p, "\x93NUMPY", 6) != 0)
        return diag_set(d, -EINVAL, field, "%s: not a .npy array (no \\x93NUMPY magic)", field);
    uint64_t total;
    if (p[6] == 1 && p[7] == 0) {
        total = NPY_PREAMBLE + ((uint64_t)p[8] | (uint64_t)p[9] << 8);
    } else if ((p[6] == 2 || p[6] == 3) && p[7] == 0) {
        if (len < NPY_PREAMBLE + 2)
            return diag_set(d, -EINVAL, field, "%s: truncated .npy preamble", field);
        total = 12 + ((uint64_t)p[8] | (uint64_t)p[9] << 8 | (uint64_t)p[10] << 16 |
                      (uint64_t)p[11] << 24);
    } else {
        return diag_set(d, -EINVAL, field, "%s: unsupported .npy format version %u.%u", field,
                        p[6], p[7]);
    }
    if (total > NPY_HEADER_MAX)
        return diag_set(d, -EINVAL, field, "%s: .npy header of %llu bytes (at most %d)", field,
                        (unsigned long long)total, NPY_HEADER_MAX);
    *ret_total = total;
    return 0;
}

struct cursor {
    const char *p, *end;
};

static void skip_space(struct cursor *c)
{
    while (c->p < c->end && *c->p == ' ')
        c->p++;
}

static bool eat(struct cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes into buf. */
static bool string(struct cursor *c, char *buf, size_t size)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= size)
            return false;
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    buf[n] = '\0';
    return true;
}

static bool word(struct cursor *c, const char *w)
{
    skip_space(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return true;
    }
    return false;
}

static bool integer(struct cursor *c, uint64_t *ret)
{
    skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return false;
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (UINT64_C(1) << 48))
            return false;
        v = v * 10 + (uint64_t)(*c->p++ - '0');
    }
    if (c->p < c->end && *c->p == 'L') /* Python 2 writers */
        c->p++;
    *ret = v;
    return true;
}

static int parse_descr(const char *s, struct npy_header *h)
{
    static const struct {
        const char *descr;
        char kind;
        int size;
    } types[] = {
        {"|u1", 'u', 1}, {"|i1", 'i', 1}, {"<u1", 'u', 1}, {"<i1", 'i', 1},
        {"<u2", 'u', 2}, {"<i2", 'i', 2}, {"<u4", 'u', 4}, {"<i4", 'i', 4},
        {"<u8", 'u', 8}, {"<i8", 'i', 8}, {"<f4", 'f', 4}, {"<f8", 'f', 8},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(s, types[i].descr) == 0) {
            h->kind = types[i].kind;
            h->itemsize = types[i].size;
            return 0;
        }
    }
    return -EINVAL;
}

int npy_parse_header(const unsigned char *p, size_t total, struct npy_header *ret,
                     const char *field, struct diag *d)
{
    size_t pre = p[6] == 1 ? NPY_PREAMBLE : 12;
    struct cursor c = {(const char *)p + pre, (const char *)p + total};
    struct npy_header h = {.header_bytes = total};
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    if (total <= pre || c.end[-1] != '\n')
        return diag_set(d, -EINVAL, field, "%s: the .npy header does not end with a newline",
                        field);
    c.end--;
    if (!eat(&c, '{'))
        return diag_set(d, -EINVAL, field, "%s: the .npy header is not a dict", field);
    for (;;) {
        char key[32], val[32];
        if (eat(&c, '}'))
            break;
        if (!string(&c, key, sizeof(key)) || !eat(&c, ':'))
            return diag_set(d, -EINVAL, field, "%s: malformed .npy header near byte %ld", field,
                            (long)(c.p - (const char *)p));
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            seen_descr = true;
            if (!string(&c, val, sizeof(val)))
                return diag_set(d, -EINVAL, field, "%s: 'descr' is not a simple type string "
                                "(structured arrays are not supported)", field);
            if (parse_descr(val, &h) < 0)
                return diag_set(d, -EINVAL, field, "%s: dtype '%s' is not supported (uint8, "
                                "float32 or float64, integers, little-endian)", field, val);
        } else if (strcmp(key, "fortran_order") == 0 && !seen_fortran) {
            seen_fortran = true;
            if (word(&c, "True"))
                h.fortran_order = true;
            else if (!word(&c, "False"))
                return diag_set(d, -EINVAL, field, "%s: 'fortran_order' must be True or False",
                                field);
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = true;
            if (!eat(&c, '('))
                return diag_set(d, -EINVAL, field, "%s: 'shape' is not a tuple", field);
            while (!eat(&c, ')')) {
                uint64_t v;
                if (h.ndim == NPY_MAX_DIMS)
                    return diag_set(d, -EINVAL, field, "%s: more than %d dimensions", field,
                                    NPY_MAX_DIMS);
                if (!integer(&c, &v))
                    return diag_set(d, -EINVAL, field, "%s: 'shape' holds a non-integer", field);
                h.shape[h.ndim++] = v;
                if (!eat(&c, ',')) {
                    if (!eat(&c, ')'))
                        return diag_set(d, -EINVAL, field, "%s: malformed 'shape'", field);
                    break;
                }
            }
        } else {
            return diag_set(d, -EINVAL, field, "%s: unexpected or repeated key '%s' in the .npy "
                            "header", field, key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return diag_set(d, -EINVAL, field, "%s: malformed .npy header near byte %ld",
                                field, (long)(c.p - (const char *)p));
            break;
        }
    }
    skip_space(&c);
    if (c.p != c.end)
        return diag_set(d, -EINVAL, field, "%s: text after the .npy header dict", field);
    if (!seen_descr || !seen_fortran || !seen_shape)
        return diag_set(d, -EINVAL, field, "%s: the .npy header lacks '%s'", field,
                        !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
    uint64_t count = 1;
    for (int i = 0; i < h.ndim; i++) {
        if (h.shape[i] != 0 && count > (UINT64_C(1) << 48) / h.shape[i])
            return diag_set(d, -EINVAL, field, "%s: the shape is too large", field);
        count *= h.shape[i];
    }
    h.data_bytes = count * (uint64_t)h.itemsize;
    *ret = h;
    return 0;
}
