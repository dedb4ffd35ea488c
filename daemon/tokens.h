/* tokens.h - the bearer tokens of token_file and their roles.
 *
 * The file holds one token per line: "TOKEN" (role admin, the old
 * one-token format) or "ROLE TOKEN" with ROLE read, submit or admin; blank
 * lines and lines starting with '#' are skipped.  Tokens have at least
 * TOKENS_MIN_LENGTH characters and no spaces.  The file must not be
 * readable or writable by group or others (chmod 600). */
#ifndef TRAIND_TOKENS_H
#define TRAIND_TOKENS_H

#include "diag.h"
#include "server.h"

#define TOKENS_MIN_LENGTH 16
#define TOKENS_MAX 64

/* Read path into *ret (n_tokens entries, each token malloc'ed; free with
 * tokens_free).  -errno with d naming "token_file" on failure: missing or
 * unreadable file, group/world permissions, no token, a short token, an
 * unknown role, more than TOKENS_MAX tokens. */
int tokens_load(const char *path, struct api_token **ret, int *ret_n, struct diag *d);
/* The client's side (--token-file): the token of the highest role in path
 * (the first of equal ones), in the same format, so that the server's file
 * or a file with one bare token both work; no permission check.
 * *ret_token malloc'ed.  Errors as tokens_load. */
int tokens_load_strongest(const char *path, char **ret_token, struct diag *d);
void tokens_free(struct api_token *tokens, int n);

#endif
