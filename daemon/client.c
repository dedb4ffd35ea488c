/* client.c - HTTP calls to a traind server through libcurl (see client.h). */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "fsutil.h"
#include "tokens.h"

#define CLIENT_CONNECT_TIMEOUT_S 10L
#define CLIENT_MAX_BODY (64u << 20)
/* A stream with no byte (the server sends heartbeats while idle) for this
 * long is taken as dropped. */
#define CLIENT_STREAM_IDLE_S 120L

static int curl_ready;

int client_init(struct client *c, const char *base, const char *token_file, struct diag *d)
{
    memset(c, 0, sizeof(*c));
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof(c->base) ||
        (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0))
        return diag_set(d, -EINVAL, "--server", "the server URL must start with http:// or "
                                                "https:// (got '%s')", base);
    memcpy(c->base, base, n);
    c->base[n] = '\0';
    if (token_file && token_file[0]) {
        char *token = NULL;
        struct diag td = {{0}, {0}};
        if (tokens_load_strongest(token_file, &token, &td) < 0)
            return diag_set(d, -EINVAL, "--token-file", "%s", td.message);
        size_t sz = strlen(token) + 32;
        c->auth = malloc(sz);
        if (c->auth)
            snprintf(c->auth, sz, "Authorization: Bearer %s", token);
        explicit_bzero(token, strlen(token));
        free(token);
        if (!c->auth)
            return diag_set(d, -ENOMEM, "", "out of memory");
    }
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return diag_set(d, -EIO, "", "curl_global_init failed");
        curl_ready = 1;
    }
    c->curl = curl_easy_init();
    if (!c->curl) {
        client_free(c);
        return diag_set(d, -ENOMEM, "", "curl_easy_init failed");
    }
    return 0;
}

void client_free(struct client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->auth) {
        explicit_bzero(c->auth, strlen(c->auth));
        free(c->auth);
    }
    memset(c, 0, sizeof(*c));
}

void client_response_free(struct client_response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int client_escape_path(const char *in, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || strchr("._~/-", *p);
        if (n + (plain ? 1 : 3) >= outsz)
            return -ENAMETOOLONG;
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return 0;
}

/* --- one transfer: headers, body sinks ------------------------------------------------ */

struct transfer {
    void *h;                  /* CURL * of the transfer */
    struct client_response *resp;
    /* body to memory */
    char *buf;
    size_t len, cap;
    /* or to a file */
    int fd;
    bool to_fd;
    int err;                  /* write error on fd (negative errno) */
    /* or to an SSE parser */
    bool sse;
    char *line;               /* the current partial line */
    size_t line_len, line_cap;
    char type[64];
    uint64_t id;
    char *data;
    size_t data_len, data_cap;
    client_event_fn fn;
    void *ctx;
    bool stop;                /* fn asked to stop */
    /* request body read from a file (upload) */
    bool upload;
    int in_fd;
    uint64_t in_size;
    /* download or upload bar */
    bool bar;
    uint64_t offset;
    double last_draw;
};

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    struct transfer *t = ctx;
    size_t len = size * n;
    char line[1024];
    size_t k = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
    memcpy(line, p, k);
    line[k] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a redirect or 100) */
        t->resp->etag[0] = t->resp->filename[0] = '\0';
        t->resp->content_length = -1;
        t->resp->range_start = 0;
        return len;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return len;
    *colon = '\0';
    char *v = colon + 1 + strspn(colon + 1, " \t");
    if (strcasecmp(line, "ETag") == 0) {
        if (*v == '"')
            v++;
        v[strcspn(v, "\"")] = '\0';
        snprintf(t->resp->etag, sizeof(t->resp->etag), "%s", v);
    } else if (strcasecmp(line, "Content-Length") == 0) {
        t->resp->content_length = strtoll(v, NULL, 10);
    } else if (strcasecmp(line, "Content-Range") == 0) {
        unsigned long long a;
        if (sscanf(v, "bytes %llu-", &a) == 1)
            t->resp->range_start = a;
    } else if (strcasecmp(line, "Content-Disposition") == 0) {
        char *f = strstr(v, "filename=\"");
        if (f) {
            f += 10;
            f[strcspn(f, "\"")] = '\0';
            snprintf(t->resp->filename, sizeof(t->resp->filename), "%s", f);
        }
    }
    return len;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = c;
    return 0;
}

/* One SSE line (without its newline): a field, a comment, or the blank line
 * that dispatches the frame. */
static void sse_line(struct transfer *t, char *line)
{
    if (line[0] == '\0') {
        if (t->data_len > 0 || t->type[0]) {
            if (!t->stop && t->fn(t->ctx, t->id, t->type[0] ? t->type : "message",
                                  t->data ? t->data : "") != 0)
                t->stop = true;
        }
        t->type[0] = '\0';
        t->data_len = 0;
        if (t->data)
            t->data[0] = '\0';
        return;
    }
    if (line[0] == ':')
        return;
    char *v = strchr(line, ':');
    if (v) {
        *v++ = '\0';
        if (*v == ' ')
            v++;
    } else {
        v = line + strlen(line);
    }
    if (strcmp(line, "event") == 0) {
        snprintf(t->type, sizeof(t->type), "%s", v);
    } else if (strcmp(line, "id") == 0) {
        t->id = strtoull(v, NULL, 10);
    } else if (strcmp(line, "data") == 0) {
        size_t k = strlen(v);
        if (grow(&t->data, &t->data_cap, t->data_len + k + 2) < 0) {
            t->err = -ENOMEM;
            return;
        }
        if (t->data_len > 0)
            t->data[t->data_len++] = '\n';
        memcpy(t->data + t->data_len, v, k + 1);
        t->data_len += k;
    }
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    struct transfer *t = ctx;
    size_t len = size * n;
    if (t->to_fd || t->sse) {
        long status = 0;
        curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
        if (status / 100 != 2) { /* an error answer: its body goes to memory */
            t->to_fd = false;
            t->sse = false;
        }
    }
    if (t->sse) {
        for (size_t i = 0; i < len; i++) {
            if (p[i] == '\n') {
                if (t->line_len > 0 && t->line[t->line_len - 1] == '\r')
                    t->line_len--;
                if (grow(&t->line, &t->line_cap, t->line_len + 1) < 0)
                    return 0;
                t->line[t->line_len] = '\0';
                sse_line(t, t->line);
                t->line_len = 0;
                if (t->stop || t->err)
                    return 0; /* ends the transfer */
                continue;
            }
            if (t->line_len > CLIENT_MAX_BODY || grow(&t->line, &t->line_cap, t->line_len + 2) < 0)
                return 0;
            t->line[t->line_len++] = p[i];
        }
        return len;
    }
    if (t->to_fd) {
        size_t done = 0;
        while (done < len) {
            ssize_t w = write(t->fd, p + done, len - done);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                t->err = -errno;
                return 0;
            }
            done += (size_t)w;
        }
        return len;
    }
    if (t->len + len > CLIENT_MAX_BODY || grow(&t->buf, &t->cap, t->len + len + 1) < 0)
        return 0;
    memcpy(t->buf + t->len, p, len);
    t->len += len;
    t->buf[t->len] = '\0';
    return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *ctx)
{
    struct transfer *t = ctx;
    for (;;) {
        ssize_t r = read(t->in_fd, p, size * n);
        if (r >= 0)
            return (size_t)r;
        if (errno != EINTR) {
            t->err = -errno;
            return CURL_READFUNC_ABORT;
        }
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void human_bytes(double b, char *out, size_t outsz)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(out, outsz, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

/* "  1.2 MiB / 1.9 MiB [=================>............]  63%" on stderr: the
 * bytes received, or sent for an upload. */
static int on_xfer(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
    struct transfer *t = ctx;
    if (t->upload) {
        dltotal = ultotal;
        dlnow = ulnow;
    }
    double now = now_s();
    bool done = dltotal > 0 && dlnow == dltotal;
    if (!t->bar || dltotal <= 0 || (!done && now - t->last_draw < 0.1))
        return 0;
    t->last_draw = now;
    double total = (double)t->offset + (double)dltotal, got = (double)t->offset + (double)dlnow;
    char a[32], b[32], bar[32];
    human_bytes(got, a, sizeof(a));
    human_bytes(total, b, sizeof(b));
    int w = (int)(30 * got / total);
    for (int i = 0; i < 30; i++)
        bar[i] = i < w - 1 ? '=' : i == w - 1 ? (got < total ? '>' : '=') : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%10s / %10s [%s] %3.0f%%", a, b, bar, 100 * got / total);
    fflush(stderr);
    return 0;
}

static int curl_failed(CURLcode rc, const char *url, const char *errbuf, struct diag *d)
{
    int err;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: err = -ECONNREFUSED; break;
    case CURLE_OPERATION_TIMEDOUT: err = -ETIMEDOUT; break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE: err = -ECONNRESET; break;
    default: err = -EIO; break;
    }
    return diag_set(d, err, "", "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* Run one transfer on c's handle: method, path, optional body and extra headers. */
static int perform(struct client *c, const char *method, const char *path, const char *ctype,
                   const void *body, size_t len, const char *extra_header, struct transfer *t,
                   struct diag *d)
{
    CURL *h = c->curl;
    char url[2048];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, path) >= sizeof(url))
        return diag_set(d, -ENAMETOOLONG, "", "URL too long");
    char errbuf[CURL_ERROR_SIZE] = "";
    char ctype_header[128];
    struct curl_slist *hdrs = NULL;
    if (c->auth)
        hdrs = curl_slist_append(hdrs, c->auth);
    if (body) {
        snprintf(ctype_header, sizeof(ctype_header), "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, ctype_header);
    }
    if (extra_header)
        hdrs = curl_slist_append(hdrs, extra_header);
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_reset(h);
    t->h = h;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLIENT_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "traind-client");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (t->upload) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, t);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->in_size);
    }
    if (t->sse) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, CLIENT_STREAM_IDLE_S);
    }
    if (t->bar) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    t->resp->content_length = -1;
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &t->resp->status);
    curl_slist_free_all(hdrs);
    if (t->bar && t->last_draw > 0)
        fputc('\n', stderr); /* ends the bar's line */
    if (t->err)
        return diag_set(d, t->err, "", "%s: %s", url, strerror(-t->err));
    if (rc == CURLE_WRITE_ERROR && t->stop)
        return 0;
    if (rc != CURLE_OK)
        return curl_failed(rc, url, errbuf, d);
    return 0;
}

/* Hand the transfer's memory body to ret (an empty string when none came),
 * or drop it when the transfer failed.  Returns r. */
static int hand_over(struct transfer *t, int r, struct client_response *ret, struct diag *d)
{
    if (r < 0) {
        free(t->buf);
        return r;
    }
    if (!t->buf && !(t->buf = calloc(1, 1)))
        return diag_set(d, -ENOMEM, "", "out of memory");
    t->resp->body = t->buf;
    t->resp->len = t->len;
    *ret = *t->resp;
    return 0;
}

int client_request(struct client *c, const char *method, const char *path,
                   const char *content_type, const void *body, size_t len,
                   struct client_response *ret, struct diag *d)
{
    struct client_response resp;
    memset(&resp, 0, sizeof(resp));
    struct transfer t = {.resp = &resp};
    int r = perform(c, method, path, content_type, body, len, NULL, &t, d);
    return hand_over(&t, r, ret, d);
}

void client_error_text(const struct client_response *r, char *out, size_t outsz)
{
    cJSON *o = r->body ? cJSON_Parse(r->body) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(err, "field");
    if (cJSON_IsString(msg) && cJSON_IsString(field) && field->valuestring[0])
        snprintf(out, outsz, "%s: %s", field->valuestring, msg->valuestring);
    else if (cJSON_IsString(msg))
        snprintf(out, outsz, "%s", msg->valuestring);
    else
        snprintf(out, outsz, "the server answered HTTP %ld", r->status);
    cJSON_Delete(o);
}

int client_stream_events(struct client *c, const char *job_id, uint64_t after, client_event_fn fn,
                         void *ctx, struct client_response *ret, struct diag *d)
{
    char id[64], path[128], last[64];
    if (client_escape_path(job_id, id, sizeof(id)) < 0)
        return diag_set(d, -EINVAL, "", "job id too long");
    snprintf(path, sizeof(path), "/v1/jobs/%s/events", id);
    snprintf(last, sizeof(last), "Last-Event-ID: %llu", (unsigned long long)after);
    struct client_response resp;
    memset(&resp, 0, sizeof(resp));
    struct transfer t = {.resp = &resp, .sse = true, .fn = fn, .ctx = ctx};
    int r = perform(c, "GET", path, NULL, NULL, 0, last, &t, d);
    free(t.line);
    free(t.data);
    if (r == 0 && !t.stop && resp.status == 200 && t.line_len > 0)
        r = diag_set(d, -ECONNRESET, "", "the event stream ended inside an event");
    return hand_over(&t, r, ret, d);
}

int client_download(struct client *c, const char *path, int fd, uint64_t offset, bool bar,
                    struct client_response *ret, struct diag *d)
{
    char range[64];
    snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)offset);
    struct client_response resp;
    memset(&resp, 0, sizeof(resp));
    struct transfer t = {.resp = &resp, .fd = fd, .to_fd = true, .bar = bar, .offset = offset};
    int r = perform(c, "GET", path, NULL, NULL, 0, offset > 0 ? range : NULL, &t, d);
    return hand_over(&t, r, ret, d);
}

int client_upload(struct client *c, const char *path, int fd, uint64_t size,
                  const char *content_type, bool bar, struct client_response *ret,
                  struct diag *d)
{
    char ctype[160];
    if ((size_t)snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type) >= sizeof(ctype))
        return diag_set(d, -EINVAL, "", "content type too long");
    struct client_response resp;
    memset(&resp, 0, sizeof(resp));
    struct transfer t = {.resp = &resp, .upload = true, .in_fd = fd, .in_size = size, .bar = bar};
    int r = perform(c, "PUT", path, NULL, NULL, 0, ctype, &t, d);
    return hand_over(&t, r, ret, d);
}
