/* main.c - the traind process: command line, configuration, recovery of the
 * state dir, the HTTP server, worker threads, the main loop (signals.c),
 * sd_notify readiness and watchdog; `traind run JOB.json` is cmd_run.c. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_client.h"
#include "cmd_run.h"
#include "conf.h"
#include "config.h"
#include "datasets.h"
#include "fsutil.h"
#include "job_registry.h"
#include "kernels.h"
#include "log.h"
#include "mpi_comm.h"
#include "mpi_worker.h"
#include "server.h"
#include "signals.h"
#include "tokens.h"

#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: traind [--config FILE] [--listen ADDR:PORT] [--state-dir DIR]\n"
            "       traind run [--config FILE] [--dir DIR] JOB.json\n"
            "       traind [--server URL] [--token-file FILE] [--json] COMMAND ...\n"
            "              COMMAND: submit, jobs, show, logs, cancel, rm, get, upload, health\n"
            "              (traind COMMAND --help, and traind(1))\n"
            "       traind --version | --help\n"
            "\n"
            "Trains neural networks in worker threads, driven over HTTP (see DESIGN.md).\n"
            "\n"
            "  -c, --config FILE      INI configuration (none: the built-in defaults that\n"
            "                         config/traind.conf documents)\n"
            "  -l, --listen ADDR:PORT listen address (default 127.0.0.1:8470)\n"
            "  -s, --state-dir DIR    jobs, events, checkpoints (default /var/lib/traind)\n"
            "  -V, --version          print the version and exit\n"
            "  -h, --help             print this help and exit\n"
            "\n"
            "run: train one job in the foreground with Keras-style output; files go to\n"
            "     DIR (default ./traind-run): DIR/checkpoints/ and DIR/resume.h5.\n"
            "     Interrupted (Ctrl-C) runs continue when started again with the same DIR.\n");
}

static void notify_systemd(const char *state)
{
#if HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

static void server_log(void *ctx, const char *fmt, va_list ap)
{
    (void)ctx;
    log_vmsg(LOG_WARNING, fmt, ap);
}

static void notify_streams(void *ctx, const char *id)
{
    api_server_notify(ctx, id);
}

/* A PEM file for TLS (logs and returns -errno when unreadable or empty). */
static int load_pem(const char *key, const char *path, char **ret)
{
    struct diag d = {{0}, {0}};
    void *data;
    size_t len;
    int r = fsutil_read_file(path, 1 << 20, &data, &len, &d);
    if (r < 0) {
        log_error("%s %s: %s", key, path, d.message);
        return r;
    }
    if (!strstr(data, "-----BEGIN ")) {
        log_error("%s %s: not a PEM file", key, path);
        free(data);
        return -EINVAL;
    }
    *ret = data;
    return 0;
}

/* SIGHUP: read tls_cert_file and tls_key_file again; new connections get
 * the new pair, open ones keep theirs; any error keeps the current pair. */
static void reload_tls(struct api_server *srv, const struct config *cfg)
{
    char *cert = NULL, *key = NULL;
    struct diag d = {{0}, {0}};
    if (load_pem("tls_cert_file", cfg->tls_cert_file, &cert) < 0 ||
        load_pem("tls_key_file", cfg->tls_key_file, &key) < 0) {
        log_error("SIGHUP: keeping the current TLS certificate");
    } else if (api_server_reload_tls(srv, cert, key, &d) < 0) {
        log_error("SIGHUP: %s: %s; keeping the current TLS certificate", d.field, d.message);
    } else {
        log_info("SIGHUP: TLS certificate reloaded from %s and %s", cfg->tls_cert_file,
                 cfg->tls_key_file);
    }
    free(cert);
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
}

static int serve(const struct config *cfg)
{
    struct diag d = {{0}, {0}};
    struct api_token *tokens = NULL;
    int n_tokens = 0;
    char *tls_cert = NULL, *tls_key = NULL;
    struct jobs *js = NULL;
    struct api_server *srv = NULL;
    struct datasets *registry = NULL;
    int status = 1;
    struct api_listen listen;
    if (api_listen_parse(&listen, cfg->listen, &d) < 0) {
        log_error("listen: %s", d.message);
        goto out;
    }
    if (cfg->token_file[0] && tokens_load(cfg->token_file, &tokens, &n_tokens, &d) < 0) {
        log_error("%s", d.message);
        goto out;
    }
    if (n_tokens == 0 && !api_listen_is_loopback(&listen)) {
        log_error("listen = %s is not a loopback address; refusing to start without token_file",
                  cfg->listen);
        goto out;
    }
    if (!cfg->tls_cert_file[0] != !cfg->tls_key_file[0]) {
        log_error("tls_cert_file and tls_key_file: set both or neither");
        goto out;
    }
    if (cfg->tls_cert_file[0] && (load_pem("tls_cert_file", cfg->tls_cert_file, &tls_cert) < 0 ||
                                  load_pem("tls_key_file", cfg->tls_key_file, &tls_key) < 0))
        goto out;
    if (!tls_cert && !api_listen_is_loopback(&listen)) {
        if (!cfg->allow_insecure_http) {
            log_error("listen = %s is not a loopback address; refusing to start without TLS "
                      "(tls_cert_file, tls_key_file) unless allow_insecure_http = true",
                      cfg->listen);
            goto out;
        }
        log_warn("INSECURE: listening on %s with plain HTTP (allow_insecure_http = true): bearer "
                 "tokens, job specs and weight files cross the network unencrypted",
                 cfg->listen);
    }

    int r = signals_install();
    if (r < 0) {
        log_error("cannot install signal handlers: %s", strerror(-r));
        goto out;
    }
    /* Threads we start (HTTP, workers, their compute threads) keep the
     * signals blocked; the main thread takes them. */
    sigset_t old;
    signals_block(&old);

    if (datasets_open(&registry, cfg->state_dir, cfg->datasets, cfg->n_datasets, &d) < 0) {
        log_error("%s", d.message);
        goto out;
    }
    struct jobs_config jc = {
        .registry = registry,
        .max_predict_images = cfg->max_predict_images,
        .state_dir = cfg->state_dir,
        .workers = cfg->workers,
        .threads = cfg->threads,
        .datasets = cfg->datasets,
        .n_datasets = cfg->n_datasets,
        .max_queued = cfg->max_queued_jobs,
        .coll = mpi_comm_world(),
    };
    if (jc.coll && jc.workers > 1) {
        log_info("%d MPI ranks: one job at a time over all of them (workers = %d ignored)",
                 jc.coll->size, jc.workers);
        jc.workers = 1;
    }
    if (jobs_open(&js, &jc, &d) < 0) {
        log_error("%s", d.message);
        goto out;
    }

    struct api_backend be;
    jobs_backend(js, &be);
    struct api_server_config sc = {
        .listen = listen,
        .tokens = tokens,
        .n_tokens = n_tokens,
        .tls_cert_pem = tls_cert,
        .tls_key_pem = tls_key,
        .max_body_bytes = cfg->max_body_bytes,
        .max_dataset_bytes = cfg->max_dataset_bytes,
        .max_predict_bytes = cfg->max_predict_bytes,
        .max_connections = cfg->max_connections,
        .max_connections_per_ip = cfg->max_connections_per_ip,
        .connection_timeout_s = cfg->connection_timeout,
        .connection_memory_limit = cfg->connection_memory_limit,
        .heartbeat_s = cfg->heartbeat_interval,
        .stream_max_backlog = cfg->stream_max_backlog,
        .cors = &cfg->cors,
        .log = server_log,
    };
    if (api_server_start(&srv, &sc, &be, &d) < 0) {
        log_error("%s", d.message);
        goto out;
    }
    jobs_set_notify(js, notify_streams, srv);
    if (jobs_start_workers(js, &d) < 0) {
        log_error("%s", d.message);
        goto out;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    log_info("traind %s listening on %s (port %u, %s), state dir %s, %d worker(s), auth %s, "
             "kernels %s",
             TRAIND_VERSION, cfg->listen, (unsigned)api_server_port(srv),
             tls_cert ? "HTTPS" : "HTTP", cfg->state_dir, cfg->workers, n_tokens ? "on" : "off",
             kernels_name(kernels_active()));
    notify_systemd("READY=1\nSTATUS=serving");

    uint64_t watchdog_usec = 0;
#if HAVE_SYSTEMD
    if (sd_watchdog_enabled(0, &watchdog_usec) <= 0)
        watchdog_usec = 0;
#endif
    int wait_ms = 1000;
    if (watchdog_usec && watchdog_usec / 2000 < 1000)
        wait_ms = (int)(watchdog_usec / 2000) > 0 ? (int)(watchdog_usec / 2000) : 1;
    for (;;) {
        struct pollfd pfd = {.fd = signals_fd(), .events = POLLIN};
        if (poll(&pfd, 1, wait_ms) > 0) {
            bool hup;
            int sig = signals_take(&hup);
            if (sig) {
                log_info("%s: stopping (running jobs stop after their current batch)",
                         sig == SIGTERM ? "SIGTERM" : "SIGINT");
                break;
            }
            if (hup && tls_cert)
                reload_tls(srv, cfg);
            else if (hup)
                log_info("SIGHUP ignored (restart to apply a new configuration)");
        }
        if (watchdog_usec)
            notify_systemd("WATCHDOG=1");
        api_server_tick(srv);
    }
    notify_systemd("STOPPING=1\nSTATUS=stopping");
    status = 0;

out:
    /* Every step undone in reverse, whether serving ended or never began:
     * streams end and no new connection is taken, running jobs stop after
     * their current batch (they resume at the next start), then the server
     * and the registry are freed (each NULL-safe). */
    api_server_quiesce(srv);
    if (js)
        jobs_shutdown(js);
    api_server_free(srv);
    jobs_free(js);
    datasets_close(registry); /* after the jobs: their usage hook is gone */
    tokens_free(tokens, n_tokens);
    free(tls_cert);
    if (tls_key) {
        explicit_bzero(tls_key, strlen(tls_key));
        free(tls_key);
    }
    if (status == 0)
        log_info("stopped");
    return status;
}

static int traind_main(int argc, char **argv);

/* Under mpirun (built with -Dmpi), rank 0 is the daemon (or `traind run`)
 * and trains every job over all ranks; the other ranks run mpi_worker.c's
 * loop with the same command line.  Rank 0 tells them to stop when it
 * leaves. */
int main(int argc, char **argv)
{
    if (cmd_client_wanted(argc, argv))
        return cmd_client_main(argc, argv);
    int r = mpi_comm_init(&argc, &argv);
    if (r < 0) {
        log_init();
        log_error("MPI_Init failed: %s", strerror(-r));
        return 1;
    }
    int status = traind_main(argc, argv);
    if (mpi_comm_rank() == 0)
        mpi_comm_post(NULL, 0);
    mpi_comm_finalize();
    return status;
}

static int traind_main(int argc, char **argv)
{
    log_init();
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* the compute kernels, once for the whole process (kernels.h) */
    struct diag kd = {{0}, {0}};
    if (kernels_init(getenv("TRAIND_KERNELS"), &kd) < 0 ||
        kernels_conv_algo_init(getenv("TRAIND_CONV_ALGO"), &kd) < 0) {
        log_error("%s: %s", kd.field, kd.message);
        return 2;
    }
    bool run_mode = argc > 1 && strcmp(argv[1], "run") == 0;
    if (run_mode) {
        argv++;
        argc--;
    }
    const char *config_file = NULL, *listen = NULL, *state_dir = NULL, *dir = "traind-run";
    int c;
    while ((c = getopt_long(argc, argv, run_mode ? "c:d:h" : "c:l:s:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_file = optarg; break;
        case 'l': listen = optarg; break;
        case 's': state_dir = optarg; break;
        case 'd':
            if (!run_mode) {
                usage(stderr);
                return 2;
            }
            dir = optarg;
            break;
        case 'V':
            printf("traind %s (kernels: %s)\n", TRAIND_VERSION, kernels_name(kernels_active()));
            return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (run_mode ? optind != argc - 1 : optind != argc) {
        usage(stderr);
        return 2;
    }

    struct config cfg;
    struct diag d = {{0}, {0}};
    config_default(&cfg);
    if (config_file && config_load_file(&cfg, config_file, &d) < 0) {
        log_error("%s", d.message);
        return 1;
    }
    if ((listen && config_set(&cfg, "listen", listen, &d) < 0) ||
        (state_dir && config_set(&cfg, "state_dir", state_dir, &d) < 0) ||
        config_check(&cfg, &d) < 0) {
        log_error("%s", d.message);
        return 1;
    }
    if (mpi_comm_rank() != 0) {
        /* data sets from rank 0: beside `traind run`'s folder, or in the
         * state dir (on rank 0's machine too: the names never meet) */
        char cache[PATH_MAX];
        size_t len = strlen(run_mode ? dir : cfg.state_dir);
        const char *base = run_mode ? dir : cfg.state_dir;
        while (len > 1 && base[len - 1] == '/')
            len--;
        if (snprintf(cache, sizeof(cache), "%.*s%s", (int)len, base,
                     run_mode ? "-mpi-cache" : "/mpi-cache") >= (int)sizeof(cache)) {
            log_error("%s: path too long", base);
            return 1;
        }
        return mpi_worker_main(&cfg, cache);
    }
    if (run_mode)
        return run_command(&cfg, argv[optind], dir);
    return serve(&cfg);
}
