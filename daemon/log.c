/* log.c - see log.h. */
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool log_journal;

void log_init(void)
{
    log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_vmsg(int priority, const char *fmt, va_list ap)
{
    char line[2048];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    if (log_journal) {
        fprintf(stderr, "<%d>%s\n", priority, line);
    } else {
        const char *level = priority <= LOG_ERR ? "error" : priority == LOG_WARNING ? "warning"
                                                                                    : "info";
        fprintf(stderr, "traind: %s: %s\n", level, line);
    }
}

void log_msg(int priority, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(priority, fmt, ap);
    va_end(ap);
}
