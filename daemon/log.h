/* log.h - the daemon's log: one line per message on stderr.  Under systemd
 * (JOURNAL_STREAM set) lines carry a "<N>" syslog priority prefix so the
 * journal records the level; otherwise "traind: level: message". */
#ifndef TRAIND_LOG_H
#define TRAIND_LOG_H

#include <stdarg.h>
#include <syslog.h>

void log_init(void);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int priority, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)

#endif
