/* server.c - the HTTP API's listening and lifecycle: the listen address,
 * starting libmicrohttpd with its limits and callbacks (dispatch.c), the
 * bound port, quiesce and stop.  See server.h; server_internal.h lists the
 * other files of the server. */
#include "server_internal.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int api_listen_parse(struct api_listen *ret, const char *text, struct diag *d)
{
    char host[256];
    const char *colon;
    struct api_listen l;
    memset(&l, 0, sizeof(l));

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return diag_set(d, -EINVAL, "listen", "expected [IPv6]:PORT, got '%s'", text);
        size_t n = (size_t)(close - text - 1);
        if (n >= sizeof(host))
            return diag_set(d, -EINVAL, "listen", "address too long");
        memcpy(host, text + 1, n);
        host[n] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return diag_set(d, -EINVAL, "listen", "expected ADDR:PORT, got '%s'", text);
        size_t n = (size_t)(colon - text);
        if (n >= sizeof(host))
            return diag_set(d, -EINVAL, "listen", "address too long");
        memcpy(host, text, n);
        host[n] = '\0';
    }
    const char *ps = colon + 1;
    char *end;
    errno = 0;
    long port = strtol(ps, &end, 10);
    if (*ps == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
        return diag_set(d, -EINVAL, "listen", "bad port '%s'", ps);

    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *a4 = (struct sockaddr_in *)&l.addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&l.addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        l.len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        l.len = sizeof(*a6);
    } else {
        return diag_set(d, -EINVAL, "listen", "'%s' is not a numeric IPv4/IPv6 address", host);
    }
    *ret = l;
    return 0;
}

bool api_listen_is_loopback(const struct api_listen *l)
{
    if (l->addr.ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&l->addr;
        return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    if (l->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&l->addr;
        if (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
            return a6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct api_server *srv = cls;
    if (srv->cfg.log)
        srv->cfg.log(srv->cfg.log_ctx, fmt, ap);
}

int api_server_start(struct api_server **ret, const struct api_server_config *cfg,
                     const struct api_backend *be, struct diag *d)
{
    struct api_server *s = calloc(1, sizeof(*s));
    if (!s)
        return diag_set(d, -ENOMEM, "", "out of memory");
    s->cfg = *cfg;
    s->be = *be;
    pthread_mutex_init(&s->mu, NULL);
    api_tasks_init(&s->tasks);

    /* poll(2), not epoll: libmicrohttpd 0.9.75 in epoll mode leaves a
     * connection it has given up on (a request line whose query arguments
     * overflow the connection's memory) open until connection_timeout
     * instead of closing it; with poll it is closed at once. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (cfg->listen.addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The certificate comes from tls.c at every handshake, so that
     * api_server_reload_tls can replace it while connections are open. */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, api_tls_retrieve_function()},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)API_TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    bool use_tls = cfg->tls_cert_pem && cfg->tls_key_pem;
    if (use_tls) {
        int r = api_tls_open(cfg->tls_cert_pem, cfg->tls_key_pem, d);
        if (r < 0) {
            api_tasks_destroy(&s->tasks);
            pthread_mutex_destroy(&s->mu);
            free(s);
            return r;
        }
        flags |= MHD_USE_TLS;
    }
    s->tls = use_tls;
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, api_on_access, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&cfg->listen.addr,
        MHD_OPTION_URI_LOG_CALLBACK, api_on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, api_on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory_limit,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
        MHD_OPTION_ARRAY, use_tls ? tls : &tls[2],
        MHD_OPTION_END);
    if (!s->mhd) {
        if (use_tls)
            api_tls_close();
        api_tasks_destroy(&s->tasks);
        pthread_mutex_destroy(&s->mu);
        free(s);
        char host[64] = "?";
        unsigned port = 0;
        if (cfg->listen.addr.ss_family == AF_INET) {
            const struct sockaddr_in *a4 = (const struct sockaddr_in *)&cfg->listen.addr;
            inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
            port = ntohs(a4->sin_port);
        } else {
            const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&cfg->listen.addr;
            inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
            port = ntohs(a6->sin6_port);
        }
        if (use_tls)
            return diag_set(d, -EINVAL, "tls_cert_file",
                            "cannot start HTTPS on %s port %u (address in use?)",
                            host, port);
        return diag_set(d, -EADDRNOTAVAIL, "listen", "cannot listen on %s port %u", host, port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *ret = s;
    return 0;
}

uint16_t api_server_port(const struct api_server *s)
{
    return s->port;
}

int api_server_reload_tls(struct api_server *s, const char *cert_pem, const char *key_pem,
                          struct diag *d)
{
    if (!s->tls)
        return diag_set(d, -ENOTCONN, "tls_cert_file", "the server was started without TLS");
    return api_tls_replace(cert_pem, key_pem, d);
}

void api_server_quiesce(struct api_server *s)
{
    if (!s)
        return;
    stream_resume_all(s);
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void api_server_free(struct api_server *s)
{
    if (!s)
        return;
    stream_resume_all(s);
    api_tasks_wait(&s->tasks); /* suspended connections must be resumed before the stop */
    MHD_stop_daemon(s->mhd);
    if (s->tls)
        api_tls_close();
    api_tasks_destroy(&s->tasks);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void api_events_free(struct api_events *ev)
{
    if (!ev)
        return;
    for (int i = 0; i < ev->n; i++)
        free(ev->items[i].json);
    free(ev->items);
    ev->items = NULL;
    ev->n = 0;
}
