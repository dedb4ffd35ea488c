/* multipart.c - multipart/form-data parsing (see multipart.h). */
#include "multipart.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int multipart_boundary(const char *content_type, char ret[72])
{
    if (!content_type)
        return -EINVAL;
    while (*content_type == ' ')
        content_type++;
    const char *type = "multipart/form-data";
    if (strncasecmp(content_type, type, strlen(type)) != 0)
        return -EINVAL;
    const char *p = content_type + strlen(type);
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        while (*p == ' ')
            p++;
        if (strncasecmp(p, "boundary=", 9) != 0)
            continue;
        p += 9;
        size_t n;
        if (*p == '"') {
            p++;
            const char *q = strchr(p, '"');
            if (!q)
                return -EINVAL;
            n = (size_t)(q - p);
        } else {
            n = strcspn(p, "; ");
        }
        if (n < 1 || n > 70)
            return -EINVAL;
        memcpy(ret, p, n);
        ret[n] = '\0';
        return 0;
    }
    return -EINVAL;
}

static const char *find(const char *hay, size_t len, const char *needle, size_t nlen)
{
    if (!hay || nlen == 0 || len < nlen)
        return NULL;
    return memmem(hay, len, needle, nlen);
}

/* A parameter (name="x") of a Content-Disposition value into out. */
static void disposition_param(const char *v, size_t len, const char *key, char *out,
                              size_t outsz)
{
    size_t klen = strlen(key);
    out[0] = '\0';
    for (size_t i = 0; i + klen + 2 <= len; i++) {
        if ((i == 0 || v[i - 1] == ' ' || v[i - 1] == ';') && strncasecmp(v + i, key, klen) == 0 &&
            v[i + klen] == '=') {
            const char *s = v + i + klen + 1;
            const char *end = v + len;
            size_t n;
            if (*s == '"') {
                s++;
                const char *q = memchr(s, '"', (size_t)(end - s));
                n = q ? (size_t)(q - s) : (size_t)(end - s);
            } else {
                n = strcspn(s, ";");
                if (n > (size_t)(end - s))
                    n = (size_t)(end - s);
            }
            if (n >= outsz)
                n = outsz - 1;
            memcpy(out, s, n);
            out[n] = '\0';
            return;
        }
    }
}

static void parse_headers(const char *h, size_t len, struct multipart_part *part)
{
    const char *end = h + len;
    while (h < end) {
        const char *eol = find(h, (size_t)(end - h), "\r\n", 2);
        size_t n = eol ? (size_t)(eol - h) : (size_t)(end - h);
        const char *colon = memchr(h, ':', n);
        if (colon) {
            size_t klen = (size_t)(colon - h);
            const char *v = colon + 1;
            while (v < h + n && *v == ' ')
                v++;
            size_t vlen = (size_t)(h + n - v);
            if (klen == 19 && strncasecmp(h, "Content-Disposition", 19) == 0) {
                disposition_param(v, vlen, "name", part->name, sizeof(part->name));
                disposition_param(v, vlen, "filename", part->filename, sizeof(part->filename));
            } else if (klen == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
                size_t c = vlen < sizeof(part->content_type) - 1 ? vlen
                                                                 : sizeof(part->content_type) - 1;
                memcpy(part->content_type, v, c);
                part->content_type[c] = '\0';
            }
        }
        h += n + (eol ? 2 : 0);
    }
}

int multipart_parse(const char *body, size_t len, const char *boundary,
                    struct multipart_part *parts, int max, int *ret_n, struct diag *d)
{
    char delim[80];
    int dl = snprintf(delim, sizeof(delim), "--%s", boundary);
    if (dl < 3 || (size_t)dl >= sizeof(delim))
        return diag_set(d, -EINVAL, "body", "bad multipart boundary");
    /* the first delimiter: at the start, or after a preamble line */
    const char *p = NULL;
    if (len >= (size_t)dl && memcmp(body, delim, (size_t)dl) == 0) {
        p = body;
    } else {
        char nd[84];
        int nl = snprintf(nd, sizeof(nd), "\r\n%s", delim);
        const char *f = find(body, len, nd, (size_t)nl);
        if (f)
            p = f + 2;
    }
    if (!p)
        return diag_set(d, -EINVAL, "body", "multipart body without its boundary");
    char next[84];
    int nl = snprintf(next, sizeof(next), "\r\n%s", delim);
    const char *end = body + len;
    int n = 0;
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* close delimiter */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return diag_set(d, -EINVAL, "body", "part %d: malformed delimiter line", n);
        p += 2;
        const char *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *data;
        size_t hlen;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') { /* no headers */
            hlen = 0;
            data = p + 2;
        } else if (hend) {
            hlen = (size_t)(hend - p);
            data = hend + 4;
        } else {
            return diag_set(d, -EINVAL, "body", "part %d: headers do not end", n);
        }
        const char *dend = find(data, (size_t)(end - data), next, (size_t)nl);
        if (!dend)
            return diag_set(d, -EINVAL, "body", "part %d: the body ends before the closing "
                            "boundary (truncated?)", n);
        if (n == max)
            return diag_set(d, -EINVAL, "body", "more than %d parts", max);
        struct multipart_part *part = &parts[n];
        memset(part, 0, sizeof(*part));
        parse_headers(p, hlen, part);
        part->data = data;
        part->len = (size_t)(dend - data);
        n++;
        p = dend + 2;
    }
    if (n == 0)
        return diag_set(d, -EINVAL, "body", "multipart body without parts");
    *ret_n = n;
    return 0;
}
