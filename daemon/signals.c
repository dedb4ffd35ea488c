/* signals.c - signal handlers and the self-pipe (see signals.h). */
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static int signal_pipe[2] = {-1, -1};
static atomic_int stop_signal; /* SIGTERM or SIGINT once received */
static atomic_int hup_signal;
static atomic_int *stop_flag;  /* signals_on_stop */

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP)
        atomic_store(&hup_signal, 1);
    else
        atomic_store(&stop_signal, sig);
    char b = (char)sig;
    if (write(signal_pipe[1], &b, 1) < 0) {
        /* the pipe is full: a wake-up is pending anyway */
    }
    errno = saved;
}

int signals_install(void)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGHUP, &sa, NULL) < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int signals_fd(void)
{
    return signal_pipe[0];
}

int signals_take(bool *ret_hup)
{
    char buf[64];
    while (read(signal_pipe[0], buf, sizeof(buf)) > 0) {
    }
    *ret_hup = atomic_exchange(&hup_signal, 0) != 0;
    int sig = atomic_load(&stop_signal);
    return sig == SIGTERM || sig == SIGINT ? sig : 0;
}

void signals_block(sigset_t *old)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, old);
}

static void on_stop_signal(int sig)
{
    (void)sig;
    atomic_store(stop_flag, 1);
}

void signals_on_stop(atomic_int *flag)
{
    stop_flag = flag;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
