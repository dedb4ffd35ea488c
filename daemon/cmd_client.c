/* cmd_client.c - the client sub-commands of traind (see cmd_client.h and
 * traind.1): argument parsing, one function per sub-command, following a
 * job's events across dropped connections, downloads with resume and
 * SHA-256 verification. */
#include "cmd_client.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "client.h"
#include "fsutil.h"
#include "progress.h"

/* While following, a server that does not answer is asked again for this long. */
#define FOLLOW_RETRY_S 60.0

struct cli {
    struct client c;
    bool json, follow, quiet, has_after;
    const char *state, *output;
    const char *image_size, *color_mode, *validation_split, *seed;  /* upload options */
    uint64_t after;
};

struct command {
    const char *name;
    int min_args, max_args;
    const char *options;   /* the options it takes besides the global ones */
    int (*run)(struct cli *cl, char **args, int n);
    const char *synopsis;
};

static void usage(FILE *f);

/* --- errors ----------------------------------------------------------------------- */

static void say_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("traind: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A request that got no answer. */
static int unreachable(int r, const struct diag *d)
{
    say_error("%s", d->message);
    return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET ? CLIENT_EXIT_UNREACHABLE
                                                                     : CLIENT_EXIT_FAILED;
}

/* An answer with an error status: "<what>: <field>: <message> (HTTP 400)". */
static int refused(const char *what, const struct client_response *resp)
{
    char text[1024];
    client_error_text(resp, text, sizeof(text));
    fprintf(stderr, "%s%s%s (HTTP %ld)\n", what ? what : "", what ? ": " : "", text, resp->status);
    return CLIENT_EXIT_REFUSED;
}

static int job_path(char *out, size_t outsz, const char *id, const char *rest)
{
    char esc[256];
    if (client_escape_path(id, esc, sizeof(esc)) < 0 ||
        (size_t)snprintf(out, outsz, "/v1/jobs/%s%s", esc, rest) >= outsz)
        return -ENAMETOOLONG;
    return 0;
}

/* GET/POST/DELETE that must answer 2xx; ret (may be NULL) gets the body. */
static int call(struct cli *cl, const char *method, const char *path, const char *what,
                struct client_response *ret)
{
    struct client_response resp;
    struct diag d = {{0}, {0}};
    int r = client_request(&cl->c, method, path, NULL, NULL, 0, &resp, &d);
    if (r < 0)
        return unreachable(r, &d);
    if (resp.status / 100 != 2) {
        int code = refused(what, &resp);
        client_response_free(&resp);
        return code;
    }
    if (ret)
        *ret = resp;
    else
        client_response_free(&resp);
    return CLIENT_EXIT_OK;
}

/* METHOD /v1/jobs/{id}{rest}, which must answer 2xx (see call()). */
static int job_call(struct cli *cl, const char *method, const char *id, const char *rest,
                    struct client_response *ret)
{
    char path[320];
    if (job_path(path, sizeof(path), id, rest) < 0) {
        say_error("%s: job id too long", id);
        return CLIENT_EXIT_USAGE;
    }
    return call(cl, method, path, id, ret);
}

/* With --json, print the body as the API sent it and free it: true. */
static bool json_printed(const struct cli *cl, struct client_response *resp)
{
    if (!cl->json)
        return false;
    fputs(resp->body, stdout);
    if (resp->len == 0 || resp->body[resp->len - 1] != '\n')
        fputc('\n', stdout);
    client_response_free(resp);
    return true;
}

static const char *str_or(const cJSON *o, const char *key, const char *fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

static double num_or(const cJSON *o, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static bool state_is_terminal(const char *st)
{
    return strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
           strcmp(st, "cancelled") == 0;
}

/* --- following a job's events --------------------------------------------------------- */

struct follow {
    struct cli *cl;
    struct progress bar;
    uint64_t last_kept;    /* highest seq of a stored (non-progress) event handled */
    uint64_t last_any;     /* highest seq handled */
    uint64_t stop_at;      /* stop after this seq (0: at the terminal state) */
    char final[16];        /* terminal state seen, "" before */
    char error[512];
    bool done;
};

static int on_event(void *ctx, uint64_t seq, const char *type, const char *data)
{
    struct follow *f = ctx;
    bool progress = strcmp(type, "progress") == 0;
    /* A reconnect asks for the events after the last stored one: progress
     * events may come twice (drop them), stored events never do; after a
     * daemon restart, new events may reuse the numbers of progress events
     * that were never stored, so stored events are judged by last_kept. */
    if (progress ? seq <= f->last_any : seq <= f->last_kept)
        return 0;
    if (seq > f->last_any)
        f->last_any = seq;
    if (!progress)
        f->last_kept = seq;
    cJSON *ev = cJSON_Parse(data);
    if (f->cl->json) {
        fputs(data, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    } else {
        progress_event(&f->bar, type, ev);
    }
    if (strcmp(type, "state") == 0) {
        const char *st = str_or(ev, "state", "");
        if (state_is_terminal(st)) {
            snprintf(f->final, sizeof(f->final), "%s", st);
            snprintf(f->error, sizeof(f->error), "%s", str_or(ev, "error", ""));
            f->done = true;
        }
    }
    cJSON_Delete(ev);
    if (f->stop_at && seq >= f->stop_at)
        f->done = true;
    return f->done ? 1 : 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void pause_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* True when the job is in a terminal state and has no event after the last
 * one handled (f->final is then set). */
static bool job_ended_before(struct cli *cl, const char *path, struct follow *f)
{
    struct client_response resp;
    struct diag d = {{0}, {0}};
    if (client_request(&cl->c, "GET", path, NULL, NULL, 0, &resp, &d) < 0)
        return false;
    cJSON *job = resp.status == 200 ? cJSON_Parse(resp.body) : NULL;
    client_response_free(&resp);
    const char *st = str_or(job, "state", "");
    bool ended = state_is_terminal(st) && (uint64_t)num_or(job, "last_event", 0) <= f->last_kept;
    if (ended) {
        snprintf(f->final, sizeof(f->final), "%s", st);
        snprintf(f->error, sizeof(f->error), "%s", str_or(job, "error", ""));
    }
    cJSON_Delete(job);
    return ended;
}

/* Print the job's events after `after`, rendered (or as JSON lines with
 * --json), until its terminal state (follow) or up to the last event it
 * had when asked (!follow).  Reconnects after dropped connections and
 * daemon restarts. */
static int follow_job(struct cli *cl, const char *id, uint64_t after, bool follow)
{
    char path[320];
    if (job_path(path, sizeof(path), id, "") < 0) {
        say_error("job id too long");
        return CLIENT_EXIT_USAGE;
    }
    struct client_response resp;
    int code = call(cl, "GET", path, id, &resp);
    if (code)
        return code;
    cJSON *job = cJSON_Parse(resp.body);
    client_response_free(&resp);
    struct follow f = {.cl = cl, .last_kept = after, .last_any = after};
    struct progress_config pc;
    progress_config_from_spec(&pc, cJSON_GetObjectItemCaseSensitive(job, "spec"));
    progress_init(&f.bar, stdout, !cl->json && isatty(STDOUT_FILENO), &pc);
    uint64_t last_event = (uint64_t)num_or(job, "last_event", 0);
    cJSON_Delete(job);
    if (!follow) {
        if (last_event <= after)
            return CLIENT_EXIT_OK;
        f.stop_at = last_event;
    }

    double failing_since = 0, wait = 0.1;
    while (!f.done) {
        struct client_response sresp;
        struct diag d = {{0}, {0}};
        uint64_t before = f.last_any;
        int r = client_stream_events(&cl->c, id, f.last_kept, on_event, &f, &sresp, &d);
        long status = r == 0 ? sresp.status : 0;
        if (r == 0 && status != 200 && status != 503) {
            progress_finish(&f.bar);
            code = refused(id, &sresp);
            client_response_free(&sresp);
            return code;
        }
        if (r == 0)
            client_response_free(&sresp);
        /* A stream that ends without the terminal state: the daemon is
         * stopping, or the terminal event lies at or before --after (ask
         * the job).  Then, or without an answer: reconnect, at once after a
         * stream that brought events, else after a growing pause. */
        if (f.done || (status == 200 && job_ended_before(cl, path, &f)))
            break;
        if (f.last_any != before) {
            failing_since = 0;
            wait = 0.1;
            continue;
        }
        double now = mono_s();
        if (failing_since == 0) {
            failing_since = now;
        } else if (now - failing_since > FOLLOW_RETRY_S) {
            progress_finish(&f.bar);
            return r < 0 ? unreachable(r, &d) : CLIENT_EXIT_UNREACHABLE;
        }
        pause_s(wait);
        wait = wait * 2 > 2.0 ? 2.0 : wait * 2;
    }
    progress_finish(&f.bar);
    if (!follow || !f.final[0] || strcmp(f.final, "succeeded") == 0)
        return CLIENT_EXIT_OK;
    if (!cl->json)
        say_error("job %s %s%s%s", id, f.final, f.error[0] ? ": " : "", f.error);
    return CLIENT_EXIT_FAILED;
}

/* --- sub-commands ------------------------------------------------------------------- */

static int cmd_submit(struct cli *cl, char **args, int n)
{
    (void)n;
    const char *file = args[0];
    void *text;
    size_t len;
    struct diag d = {{0}, {0}};
    if (fsutil_read_file(file, 16u << 20, &text, &len, &d) < 0) {
        say_error("%s: %s", file, d.message);
        return CLIENT_EXIT_USAGE;
    }
    struct client_response resp;
    int r = client_request(&cl->c, "POST", "/v1/jobs", "application/json", text, len, &resp, &d);
    free(text);
    if (r < 0)
        return unreachable(r, &d);
    if (resp.status != 201) {
        int code = refused(file, &resp);
        client_response_free(&resp);
        return code;
    }
    cJSON *job = cJSON_Parse(resp.body);
    char id[64];
    snprintf(id, sizeof(id), "%s", str_or(job, "id", ""));
    cJSON_Delete(job);
    if (cl->follow)
        fprintf(stderr, "traind: submitted job %s\n", id);
    else if (!json_printed(cl, &resp))
        printf("%s\n", id);
    client_response_free(&resp);
    if (!cl->follow)
        return CLIENT_EXIT_OK;
    fflush(stdout);
    return follow_job(cl, id, 0, true);
}

static void format_duration(double s, char *out, size_t outsz)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, outsz, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else if (t >= 60)
        snprintf(out, outsz, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, outsz, "%lds", t);
}

static int cmd_jobs(struct cli *cl, char **args, int n)
{
    (void)args;
    (void)n;
    char path[128] = "/v1/jobs";
    if (cl->state) {
        char esc[64];
        if (client_escape_path(cl->state, esc, sizeof(esc)) < 0) {
            say_error("--state: too long");
            return CLIENT_EXIT_USAGE;
        }
        snprintf(path, sizeof(path), "/v1/jobs?state=%s", esc);
    }
    struct client_response resp;
    int code = call(cl, "GET", path, "jobs", &resp);
    if (code || json_printed(cl, &resp))
        return code;
    cJSON *body = cJSON_Parse(resp.body);
    client_response_free(&resp);
    const cJSON *list = cJSON_IsArray(body) ? body : cJSON_GetObjectItemCaseSensitive(body, "jobs");
    if (!cl->quiet)
        printf("%-16s  %-10s  %-11s  %-24s  %s\n", "ID", "STATE", "EPOCH", "CREATED", "NAME");
    const cJSON *j;
    cJSON_ArrayForEach(j, list)
    {
        if (cl->quiet) {
            printf("%s\n", str_or(j, "id", ""));
            continue;
        }
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
        char epoch[32];
        snprintf(epoch, sizeof(epoch), "%d/%d", (int)num_or(p, "epoch", 0),
                 (int)num_or(p, "epochs", 0));
        printf("%-16s  %-10s  %-11s  %-24s  %s\n", str_or(j, "id", ""), str_or(j, "state", ""),
               epoch, str_or(j, "created", "-"), str_or(j, "name", ""));
    }
    cJSON_Delete(body);
    return CLIENT_EXIT_OK;
}

static int cmd_show(struct cli *cl, char **args, int n)
{
    (void)n;
    struct client_response resp;
    int code = job_call(cl, "GET", args[0], "", &resp);
    if (code || json_printed(cl, &resp))
        return code;
    cJSON *j = cJSON_Parse(resp.body);
    client_response_free(&resp);
    static const char *const keys[] = {"id", "name", "state", "dataset", "model",
                                       "created", "started", "finished", "error"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = str_or(j, keys[i], NULL);
        if (v)
            printf("%-10s %s\n", keys[i], v);
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
    if (p) {
        char eta[32];
        format_duration(num_or(p, "eta_s", 0), eta, sizeof(eta));
        printf("%-10s epoch %d/%d, batch %d/%d, %.0f images/s, ETA %s\n", "progress",
               (int)num_or(p, "epoch", 0), (int)num_or(p, "epochs", 0), (int)num_or(p, "batch", 0),
               (int)num_or(p, "batches", 0), num_or(p, "images_per_s", 0), eta);
    }
    const cJSON *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(j, "best"))
    {
        printf("%-10s policy %d: %s %.5f at epoch %d: %s\n", "best", (int)num_or(b, "policy", 0),
               str_or(b, "monitor", "?"), num_or(b, "value", 0), (int)num_or(b, "epoch", 0),
               str_or(b, "file", "-"));
    }
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(j, "history"))
    {
        printf("%-10s %d", "epoch", (int)num_or(h, "epoch", 0));
        const cJSON *kv;
        cJSON_ArrayForEach(kv, h)
        {
            if (kv->string && cJSON_IsNumber(kv) && strcmp(kv->string, "epoch") != 0)
                printf(" - %s: %.4f", kv->string, kv->valuedouble);
        }
        putchar('\n');
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "checkpoints"))
    {
        printf("%-10s %s (%.0f bytes, sha256 %s)%s\n", "file", str_or(c, "name", ""),
               num_or(c, "bytes", 0), str_or(c, "sha256", ""),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "best")) ? " best" : "");
    }
    cJSON_Delete(j);
    return CLIENT_EXIT_OK;
}

static int cmd_logs(struct cli *cl, char **args, int n)
{
    (void)n;
    return follow_job(cl, args[0], cl->has_after ? cl->after : 0, cl->follow);
}

static int cmd_cancel(struct cli *cl, char **args, int n)
{
    (void)n;
    struct client_response resp;
    int code = job_call(cl, "POST", args[0], "/cancel", &resp);
    if (code || json_printed(cl, &resp))
        return code;
    cJSON *j = cJSON_Parse(resp.body);
    printf("%s %s\n", args[0], str_or(j, "state", "?"));
    cJSON_Delete(j);
    client_response_free(&resp);
    return CLIENT_EXIT_OK;
}

static int cmd_rm(struct cli *cl, char **args, int n)
{
    (void)n;
    int code = job_call(cl, "DELETE", args[0], "", NULL);
    if (code)
        return code;
    if (!cl->json)
        printf("removed %s\n", args[0]);
    else
        printf("{\"id\":\"%s\",\"removed\":true}\n", args[0]);
    return CLIENT_EXIT_OK;
}

static int cmd_health(struct cli *cl, char **args, int n)
{
    (void)args;
    (void)n;
    struct client_response resp;
    int code = call(cl, "GET", "/v1/health", "health", &resp);
    if (code || json_printed(cl, &resp))
        return code;
    cJSON *j = cJSON_Parse(resp.body);
    printf("%s %s\n", cl->c.base, str_or(j, "status", "ok"));
    cJSON_Delete(j);
    client_response_free(&resp);
    return CLIENT_EXIT_OK;
}

/* --- get: download with resume and SHA-256 check ---------------------------------------- */

/* The name a download is saved under when -o is not given: the last
 * component of the server's file name, never a dot file. */
static int default_name(const char *server_name, char *out, size_t outsz)
{
    const char *base = strrchr(server_name, '/');
    base = base ? base + 1 : server_name;
    if (!base[0] || base[0] == '.' || strlen(base) >= outsz)
        return -EINVAL;
    snprintf(out, outsz, "%s", base);
    return 0;
}

static int sha256_matches(const char *path, const char *etag, char hex[65])
{
    uint8_t sha[32];
    struct diag d = {{0}, {0}};
    if (fsutil_sha256_file(path, sha, NULL, &d) < 0)
        return -EIO;
    fsutil_sha256_hex(sha, hex);
    return strcmp(hex, etag) == 0;
}

/* HEAD of a file route; an error status is reported with the server's
 * message (HEAD has no body: a GET asks for it).  Returns 0 or an exit status. */
static int head_file(struct cli *cl, const char *path, const char *what,
                     struct client_response *ret)
{
    struct diag d = {{0}, {0}};
    int r = client_request(&cl->c, "HEAD", path, NULL, NULL, 0, ret, &d);
    if (r < 0)
        return unreachable(r, &d);
    if (ret->status == 200)
        return 0;
    client_response_free(ret);
    struct client_response get;
    r = client_request(&cl->c, "GET", path, NULL, NULL, 0, &get, &d);
    if (r < 0)
        return unreachable(r, &d);
    int code = refused(what, &get);
    client_response_free(&get);
    return code;
}

/* One attempt: bring part up to the file's size from where it stops.
 * Returns 0 and the file's ETag in etag, or an exit status. */
static int fetch_into(struct cli *cl, const char *path, const char *part, char etag[80],
                      int64_t *ret_size, bool *ret_resumed)
{
    struct client_response head;
    struct diag d = {{0}, {0}};
    int r = head_file(cl, path, path, &head);
    if (r)
        return r;
    snprintf(etag, 80, "%s", head.etag);
    int64_t size = head.content_length;
    client_response_free(&head);

    int fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        say_error("%s: %s", part, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CLIENT_EXIT_FAILED;
    }
    uint64_t have = (uint64_t)st.st_size;
    if (size >= 0 && have > (uint64_t)size) {
        if (ftruncate(fd, 0) < 0) {
            say_error("%s: truncate: %s", part, strerror(errno));
            close(fd);
            return CLIENT_EXIT_FAILED;
        }
        have = 0;
    }
    *ret_resumed = have > 0;
    if (size < 0 || have < (uint64_t)size) {
        if (have > 0 && !cl->json)
            fprintf(stderr, "traind: %s: resuming at byte %llu of %lld\n", part,
                    (unsigned long long)have, (long long)size);
        struct client_response got;
        r = client_download(&cl->c, path, fd, have, !cl->json && isatty(STDERR_FILENO), &got, &d);
        if (r < 0) {
            close(fd);
            return unreachable(r, &d);
        }
        int code = CLIENT_EXIT_OK;
        if (got.status / 100 != 2) {
            code = refused(path, &got);
        } else if (have > 0 && (got.status != 206 || got.range_start != have ||
                                strcmp(got.etag, etag) != 0)) {
            /* not the rest of the same file: start again from byte 0 */
            if (ftruncate(fd, 0) < 0)
                code = CLIENT_EXIT_FAILED;
            else
                code = -EAGAIN;
        } else if (have == 0 && got.etag[0]) {
            snprintf(etag, 80, "%s", got.etag); /* the file may have moved on since HEAD */
        }
        client_response_free(&got);
        if (code) {
            close(fd);
            return code;
        }
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        say_error("%s: %s", part, strerror(errno));
        return CLIENT_EXIT_FAILED;
    }
    *ret_size = size;
    return 0;
}

static int cmd_get(struct cli *cl, char **args, int n)
{
    const char *id = args[0], *which = n > 1 ? args[1] : "best";
    char rest[600], path[1024], esc[560];
    if (strcmp(which, "best") == 0 || strcmp(which, "latest") == 0) {
        snprintf(rest, sizeof(rest), "/%s", which);
    } else {
        if (client_escape_path(which, esc, sizeof(esc)) < 0) {
            say_error("%s: file name too long", which);
            return CLIENT_EXIT_USAGE;
        }
        snprintf(rest, sizeof(rest), "/checkpoints/%s", esc);
    }
    if (job_path(path, sizeof(path), id, rest) < 0)
        return CLIENT_EXIT_USAGE;

    char final[PATH_MAX];
    if (cl->output) {
        snprintf(final, sizeof(final), "%s", cl->output);
    } else {
        /* the server's file name, from Content-Disposition */
        struct client_response head;
        int r = head_file(cl, path, id, &head);
        if (r)
            return r;
        r = default_name(head.filename, final, sizeof(final));
        client_response_free(&head);
        if (r < 0) {
            say_error("%s: the server sent no usable file name; name one with -o FILE", path);
            return CLIENT_EXIT_FAILED;
        }
    }
    char part[PATH_MAX + 8];
    snprintf(part, sizeof(part), "%s.part", final);

    /* A partial file from elsewhere or of an older version fails the check:
     * then one more try from byte 0.  A file without an ETag (the server was
     * rewriting it) is asked for again. */
    for (int attempt = 0; attempt < 3; attempt++) {
        char etag[80], hex[65];
        int64_t size = -1;
        bool resumed = false;
        int code = fetch_into(cl, path, part, etag, &size, &resumed);
        if (code == -EAGAIN)
            continue;
        if (code)
            return code;
        if (!etag[0])
            continue;
        int ok = sha256_matches(part, etag, hex);
        if (ok == 1) {
            if (rename(part, final) < 0) {
                say_error("rename %s to %s: %s", part, final, strerror(errno));
                return CLIENT_EXIT_FAILED;
            }
            if (cl->json)
                printf("{\"file\":\"%s\",\"bytes\":%lld,\"sha256\":\"%s\"}\n", final,
                       (long long)size, hex);
            else
                printf("%s  %s\n", hex, final); /* as sha256sum prints it */
            return CLIENT_EXIT_OK;
        }
        if (ok < 0) {
            say_error("%s: cannot read it back", part);
            return CLIENT_EXIT_FAILED;
        }
        if (unlink(part) < 0 && errno != ENOENT) {
            say_error("%s: %s", part, strerror(errno));
            return CLIENT_EXIT_FAILED;
        }
        if (resumed) {
            fprintf(stderr, "traind: %s: the resumed file does not match; downloading it again\n",
                    part);
            continue;
        }
        say_error("%s: SHA-256 %s does not match the server's ETag %s; not saved", final, hex,
                  etag);
        return CLIENT_EXIT_FAILED;
    }
    say_error("%s: no verified download after 3 attempts; not saved", final);
    return CLIENT_EXIT_FAILED;
}

/* --- upload: a data set file streamed to PUT /v1/datasets/{name} ----------------------- */

/* Appends "&key=value" (the first one with '?') to q when value is given. */
static int add_query(char *q, size_t qsz, const char *key, const char *value)
{
    if (!value)
        return 0;
    char esc[256];
    size_t k = strlen(q);
    if (client_escape_path(value, esc, sizeof(esc)) < 0 ||
        (size_t)snprintf(q + k, qsz - k, "%c%s=%s", k ? '&' : '?', key, esc) >= qsz - k)
        return -ENAMETOOLONG;
    return 0;
}

static int cmd_upload(struct cli *cl, char **args, int n)
{
    (void)n;
    const char *name = args[0], *file = args[1];
    char esc[512], query[1024] = "", path[1600];
    if (client_escape_path(name, esc, sizeof(esc)) < 0 ||
        add_query(query, sizeof(query), "image_size", cl->image_size) < 0 ||
        add_query(query, sizeof(query), "color_mode", cl->color_mode) < 0 ||
        add_query(query, sizeof(query), "validation_split", cl->validation_split) < 0 ||
        add_query(query, sizeof(query), "seed", cl->seed) < 0 ||
        (size_t)snprintf(path, sizeof(path), "/v1/datasets/%s%s", esc, query) >= sizeof(path)) {
        say_error("%s: name or options too long", name);
        return CLIENT_EXIT_USAGE;
    }
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    const char *why = fd < 0 || fstat(fd, &st) < 0 ? strerror(errno)
                      : !S_ISREG(st.st_mode)      ? "not a regular file"
                                                  : NULL;
    if (why) {
        say_error("%s: %s", file, why);
        if (fd >= 0)
            close(fd);
        return CLIENT_EXIT_USAGE;
    }
    struct client_response resp;
    struct diag d = {{0}, {0}};
    int r = client_upload(&cl->c, path, fd, (uint64_t)st.st_size, "application/octet-stream",
                          !cl->json && isatty(STDERR_FILENO), &resp, &d);
    close(fd);
    if (r < 0)
        return unreachable(r, &d);
    if (resp.status / 100 != 2) {
        int code = refused(file, &resp);
        client_response_free(&resp);
        return code;
    }
    if (json_printed(cl, &resp))
        return CLIENT_EXIT_OK;
    cJSON *j = cJSON_Parse(resp.body);
    client_response_free(&resp);
    static const char *const keys[] = {"name", "format", "dtype", "sha256"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = str_or(j, keys[i], NULL);
        if (v)
            printf("%-10s %s\n", keys[i], v);
    }
    printf("%-10s %.0f\n", "bytes", num_or(j, "bytes", 0));
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "input_shape"), *x;
    if (cJSON_IsArray(shape)) {
        printf("%-10s ", "shape");
        const char *sep = "";
        cJSON_ArrayForEach(x, shape)
        {
            printf("%s%d", sep, (int)x->valuedouble);
            sep = "x";
        }
        putchar('\n');
    }
    printf("%-10s %.0f train, %.0f test\n", "images", num_or(j, "train", 0), num_or(j, "test", 0));
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(j, "classes");
    if (cJSON_GetArraySize(classes) > 0)
        printf("%-10s %d\n", "classes", cJSON_GetArraySize(classes));
    cJSON_Delete(j);
    return CLIENT_EXIT_OK;
}

/* --- the command table and main ----------------------------------------------------------- */

static const struct command commands[] = {
    {"submit", 1, 1, "f", cmd_submit, "submit JOB.json [--follow]"},
    {"jobs", 0, 0, "Sq", cmd_jobs, "jobs [--state S] [-q]"},
    {"show", 1, 1, "", cmd_show, "show ID"},
    {"logs", 1, 1, "fA", cmd_logs, "logs ID [-f] [--after N]"},
    {"cancel", 1, 1, "", cmd_cancel, "cancel ID"},
    {"rm", 1, 1, "", cmd_rm, "rm ID"},
    {"get", 1, 2, "o", cmd_get, "get ID [best|latest|NAME] [-o FILE]"},
    {"upload", 2, 2, "ICVE", cmd_upload,
     "upload NAME FILE [--image-size HxW] [--color-mode M] [--validation-split F] [--seed N]"},
    {"health", 0, 0, "", cmd_health, "health"},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: traind [--server URL] [--token-file FILE] [--json] COMMAND ...\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  traind %s\n", commands[i].synopsis);
    fprintf(f, "\n"
               "  --server URL       the daemon (default $TRAIND_URL, else " CLIENT_DEFAULT_URL ")\n"
               "  --token-file FILE  bearer token (default $TRAIND_TOKEN_FILE)\n"
               "  --json             print the API's JSON unchanged\n"
               "Exit: 0 ok, 1 job failed or cancelled (following) or bad download, 2 usage,\n"
               "      3 server unreachable, 4 refused by the server (HTTP status). See traind(1).\n");
}

bool cmd_client_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--server") == 0 || strcmp(a, "--token-file") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--server=", 9) == 0 || strncmp(a, "--token-file=", 13) == 0 ||
            strcmp(a, "--json") == 0)
            continue;
        return find_command(a) != NULL;
    }
    return false;
}

int cmd_client_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 'U'},
        {"token-file", required_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'J'},
        {"follow", no_argument, NULL, 'f'},
        {"state", required_argument, NULL, 'S'},
        {"after", required_argument, NULL, 'A'},
        {"output", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"image-size", required_argument, NULL, 'I'},
        {"color-mode", required_argument, NULL, 'C'},
        {"validation-split", required_argument, NULL, 'V'},
        {"seed", required_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli cl;
    memset(&cl, 0, sizeof(cl));
    const char *server = getenv("TRAIND_URL"), *token_file = getenv("TRAIND_TOKEN_FILE");
    char used[16] = "";
    int c;
    while ((c = getopt_long(argc, argv, "fo:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'U': server = optarg; break;
        case 'T': token_file = optarg; break;
        case 'J': cl.json = true; break;
        case 'f': cl.follow = true; break;
        case 'S': cl.state = optarg; break;
        case 'A': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                say_error("--after: a sequence number (got '%s')", optarg);
                return CLIENT_EXIT_USAGE;
            }
            cl.after = v;
            cl.has_after = true;
            break;
        }
        case 'o': cl.output = optarg; break;
        case 'q': cl.quiet = true; break;
        case 'I': cl.image_size = optarg; break;
        case 'C': cl.color_mode = optarg; break;
        case 'V': cl.validation_split = optarg; break;
        case 'E': cl.seed = optarg; break;
        case 'h': usage(stdout); return CLIENT_EXIT_OK;
        default: usage(stderr); return CLIENT_EXIT_USAGE;
        }
        size_t k = strlen(used);
        if (strchr("fSAoqICVE", c) && !strchr(used, c) && k < sizeof(used) - 1) {
            used[k] = (char)c;
            used[k + 1] = '\0';
        }
    }
    const struct command *cmd = optind < argc ? find_command(argv[optind]) : NULL;
    if (!cmd) {
        usage(stderr);
        return CLIENT_EXIT_USAGE;
    }
    int n = argc - optind - 1;
    if (n < cmd->min_args || n > cmd->max_args) {
        fprintf(stderr, "Usage: traind %s\n", cmd->synopsis);
        return CLIENT_EXIT_USAGE;
    }
    for (const char *u = used; *u; u++) {
        if (!strchr(cmd->options, *u)) {
            fprintf(stderr, "traind %s: option not accepted here\nUsage: traind %s\n", cmd->name,
                    cmd->synopsis);
            return CLIENT_EXIT_USAGE;
        }
    }
    struct diag d = {{0}, {0}};
    if (client_init(&cl.c, server && server[0] ? server : CLIENT_DEFAULT_URL, token_file, &d) < 0) {
        say_error("%s%s%s", d.field, d.field[0] ? ": " : "", d.message);
        client_free(&cl.c);
        return CLIENT_EXIT_USAGE;
    }
    int code = cmd->run(&cl, argv + optind + 1, n);
    client_free(&cl.c);
    return code;
}
