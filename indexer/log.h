/*
 * log.h - one line per event, on standard error.
 *
 * Every line reads "TIME PROG[PID] LEVEL SUBJECT: message", with key=value
 * pairs in the message where they help grep.  The subject names the part of
 * the daemon that speaks ("xmpp", "catalog", "config", …).  Secrets must never
 * be passed here.
 */
#ifndef FILEREPO_LOG_H
#define FILEREPO_LOG_H

#include <stdarg.h>

enum log_level {
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
};

/** Sets the program name printed on every line (borrowed, must outlive use). */
void log_set_program(const char *program);

/** Sets the lowest level that is printed (default LOG_LEVEL_INFO). */
void log_set_level(enum log_level level);

/** Returns the current threshold. */
enum log_level log_get_level(void);

/**
 * Parses "debug", "info", "warn" or "error" into *out.
 * Returns 0, or -1 when the name is none of those.
 */
int log_level_parse(enum log_level *out, const char *name);

/** Writes one line at `level` about `subject` (a short word, no spaces). */
void log_line(enum log_level level, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** As log_line, with a va_list. */
void log_vline(enum log_level level, const char *subject, const char *fmt,
               va_list ap) __attribute__((format(printf, 3, 0)));

#define log_debug(subject, ...) log_line(LOG_LEVEL_DEBUG, subject, __VA_ARGS__)
#define log_info(subject, ...) log_line(LOG_LEVEL_INFO, subject, __VA_ARGS__)
#define log_warn(subject, ...) log_line(LOG_LEVEL_WARN, subject, __VA_ARGS__)
#define log_error(subject, ...) log_line(LOG_LEVEL_ERROR, subject, __VA_ARGS__)

#endif
