/*
 * log.c - line-oriented logging to standard error.
 *
 * Each line is formatted into one buffer and written with a single write(2)
 * so lines from worker threads never interleave mid-line.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "filerepo";
static enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {
    [LOG_LEVEL_DEBUG] = "debug",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_ERROR] = "error",
};

void log_set_program(const char *program)
{
    log_program = program;
}

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_get_level(void)
{
    return log_threshold;
}

int log_level_parse(enum log_level *out, const char *name)
{
    for (size_t i = 0; i < sizeof(log_level_names) / sizeof(*log_level_names); i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_vline(enum log_level level, const char *subject, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t len;
    int n;

    if (level < log_threshold)
        return;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + len, sizeof(line) - len, ".%03ldZ %s[%ld] %s %s: ",
                 (long)(tv.tv_usec / 1000), log_program, (long)getpid(),
                 log_level_names[level], subject);
    if (n > 0)
        len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
    n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    if (n > 0)
        len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
    /* One event is one line: fold any newline a message carries
     * (a PostgreSQL error text, say). */
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    while (len > 0 && line[len - 1] == ' ')
        len--;
    line[len++] = '\n';
    if (write(STDERR_FILENO, line, len) < 0) {
        /* Nowhere left to report it. */
    }
}

void log_line(enum log_level level, const char *subject, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vline(level, subject, fmt, ap);
    va_end(ap);
}
