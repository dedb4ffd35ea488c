/* cmd_client.h - traind as its own client: `traind submit|jobs|show|logs|
 * cancel|rm|get|upload|health` talk to a running traind over HTTP (client.c) and
 * print what Keras users expect (progress.c).  See traind(1). */
#ifndef TRAIND_CMD_CLIENT_H
#define TRAIND_CMD_CLIENT_H

#include <stdbool.h>

/* Exit statuses of the client sub-commands. */
enum client_exit {
    CLIENT_EXIT_OK = 0,
    CLIENT_EXIT_FAILED = 1,       /* the followed job failed or was cancelled; a bad download */
    CLIENT_EXIT_USAGE = 2,        /* bad command line or unreadable input file */
    CLIENT_EXIT_UNREACHABLE = 3,  /* no answer from the server */
    CLIENT_EXIT_REFUSED = 4,      /* the server answered with an HTTP error status */
};

/* True when argv names a client sub-command (possibly after the client's
 * global options --server, --token-file, --json). */
bool cmd_client_wanted(int argc, char **argv);

/* Run it; returns the process exit status (enum client_exit). */
int cmd_client_main(int argc, char **argv);

#endif
