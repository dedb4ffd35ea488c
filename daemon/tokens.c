/* tokens.c - token_file: permission check, one token per line with its
 * role; the client's pick of one token from such a file.  See tokens.h. */
#include "tokens.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"

void tokens_free(struct api_token *tokens, int n)
{
    if (!tokens)
        return;
    for (int i = 0; i < n; i++) {
        if (tokens[i].token) {
            explicit_bzero((char *)tokens[i].token, strlen(tokens[i].token));
            free((char *)tokens[i].token);
        }
    }
    free(tokens);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* One non-comment line into t (the token strdup'ed). */
static int parse_line(char *line, int lineno, const char *path, struct api_token *t,
                      struct diag *d)
{
    char *sp = line + strcspn(line, " \t");
    const char *token = line;
    enum api_role role = API_ROLE_ADMIN;
    if (*sp) {
        *sp = '\0';
        token = trim(sp + 1);
        if (api_role_parse(line, &role) < 0)
            return diag_set(d, -EINVAL, "token_file",
                            "token_file %s line %d: unknown role '%s' (read, submit or admin)",
                            path, lineno, line);
        if (token[strcspn(token, " \t")] != '\0')
            return diag_set(d, -EINVAL, "token_file",
                            "token_file %s line %d: expected 'ROLE TOKEN'", path, lineno);
    }
    if (strlen(token) < TOKENS_MIN_LENGTH)
        return diag_set(d, -EINVAL, "token_file",
                        "token_file %s line %d: the token must have at least %d characters",
                        path, lineno, TOKENS_MIN_LENGTH);
    t->token = strdup(token);
    t->role = role;
    return t->token ? 0 : diag_set(d, -ENOMEM, "token_file", "out of memory");
}

/* The lines of path, without a permission check. */
static int tokens_read(const char *path, struct api_token **ret, int *ret_n, struct diag *d)
{
    void *data;
    size_t len;
    struct diag rd = {{0}, {0}};
    int r = fsutil_read_file(path, 64 * 1024, &data, &len, &rd);
    if (r < 0)
        return diag_set(d, r, "token_file", "token_file %s: %s", path, rd.message);
    struct api_token *tokens = calloc(TOKENS_MAX, sizeof(*tokens));
    int n = 0, lineno = 0;
    if (!tokens)
        r = diag_set(d, -ENOMEM, "token_file", "out of memory");
    char *rest = r < 0 ? NULL : data;
    for (char *line; r == 0 && (line = strsep(&rest, "\n")) != NULL;) {
        lineno++;
        line = trim(line);
        if (!*line || *line == '#')
            continue;
        if (n == TOKENS_MAX) {
            r = diag_set(d, -EINVAL, "token_file", "token_file %s: more than %d tokens", path,
                         TOKENS_MAX);
            break;
        }
        r = parse_line(line, lineno, path, &tokens[n], d);
        if (r == 0)
            n++;
    }
    explicit_bzero(data, len);
    free(data);
    if (r == 0 && n == 0)
        r = diag_set(d, -EINVAL, "token_file",
                     "token_file %s: no token (the token must have at least %d characters)", path,
                     TOKENS_MIN_LENGTH);
    if (r < 0) {
        tokens_free(tokens, n);
        return r;
    }
    *ret = tokens;
    *ret_n = n;
    return 0;
}

int tokens_load(const char *path, struct api_token **ret, int *ret_n, struct diag *d)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return diag_set(d, -errno, "token_file", "token_file %s: %s", path, strerror(errno));
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return diag_set(d, -EPERM, "token_file",
                        "token_file %s: readable or writable by group or others (mode %04o); "
                        "chmod 600 it",
                        path, (unsigned)(st.st_mode & 07777));
    return tokens_read(path, ret, ret_n, d);
}

int tokens_load_strongest(const char *path, char **ret_token, struct diag *d)
{
    struct api_token *tokens;
    int n;
    int r = tokens_read(path, &tokens, &n, d);
    if (r < 0)
        return r;
    int best = 0;
    for (int i = 1; i < n; i++)
        if (tokens[i].role > tokens[best].role)
            best = i;
    *ret_token = (char *)tokens[best].token;
    tokens[best].token = NULL;
    tokens_free(tokens, n);
    return 0;
}
