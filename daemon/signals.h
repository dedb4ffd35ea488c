/* signals.h - the daemon's signals (mosquitto keeps them in signals.c too).
 *
 * SIGTERM and SIGINT stop the daemon, SIGHUP is noted (and ignored),
 * SIGPIPE is ignored.  The handler only records the signal and writes a
 * byte into a pipe that the main loop polls: libraries start threads of
 * their own before main() (OpenBLAS), so a process-directed signal may be
 * delivered to any thread.  `traind run` has its own, simpler handler
 * (signals_on_stop). */
#ifndef TRAIND_SIGNALS_H
#define TRAIND_SIGNALS_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Create the pipe and install the handlers.  0 or -errno. */
int signals_install(void);
/* The pipe's read end, for poll(POLLIN). */
int signals_fd(void);
/* Drain the pipe.  Returns SIGTERM or SIGINT once one was received (else 0);
 * *ret_hup is true when a SIGHUP came since the last call. */
int signals_take(bool *ret_hup);
/* Block SIGTERM, SIGINT and SIGHUP in the calling thread (threads started
 * meanwhile inherit the mask); *old receives the mask to restore. */
void signals_block(sigset_t *old);
/* SIGINT and SIGTERM set *flag to 1 (for `traind run`'s stop flag). */
void signals_on_stop(atomic_int *flag);

#endif
