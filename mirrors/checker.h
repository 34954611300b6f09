/*
 * mirrors/checker.h - the mirror checker: a thread of its own that verifies
 * every revision on every mirror and keeps the result in the catalog.
 *
 * It has its own catalog connection (LISTENing for admin changes and new
 * revisions) and one libcurl multi handle, so no check ever blocks the
 * daemon's loop: results go back through the catalog (mirror_copy, mirror,
 * and publish_item rows in the outbox when the mirrors an item advertises
 * change), which the publisher drains as usual.
 */
#ifndef FILEREPO_MIRRORS_CHECKER_H
#define FILEREPO_MIRRORS_CHECKER_H

#include "probe.h"

/** What the checker is told at start (strings copied). */
struct mirror_checker_settings {
    const char *conninfo;          /* catalog */
    const char *password;          /* its password, NULL when none (secret) */
    int reconnect_max_seconds;     /* back-off cap while the catalog is away */
    enum probe_policy policy;      /* mirrors.verify */
    int interval_seconds;          /* mirrors.check_interval_seconds */
    int failures_max;              /* mirrors.failures_before_failing */
    int connect_timeout_seconds;   /* mirrors.connect_timeout_seconds */
    int low_speed_seconds;         /* mirrors.low_speed_seconds */
    int per_host;                  /* mirrors.per_host */
    int max_checks;                /* mirrors.max_checks */
    struct store *store;           /* content store (borrowed, thread-safe reads), may be NULL */
};

struct mirror_checker;

/**
 * Starts the checker thread.  Returns 0 and hands it to *out, FR_ENOMEM,
 * or FR_ERROR when the thread cannot be started.
 */
int mirror_checker_start(struct mirror_checker **out,
                         const struct mirror_checker_settings *settings);

struct config;

/**
 * As mirror_checker_start, with the settings of filerepod's configuration
 * (database.*, mirrors.*) and its content store (borrowed).
 */
int mirror_checker_start_config(struct mirror_checker **out, const struct config *config,
                                struct store *store);

/**
 * Stops the thread (checks under way are abandoned, nothing half-recorded)
 * and frees the checker; NULL is fine.  Returns promptly: no transfer or
 * timeout is waited for.
 */
void mirror_checker_stop(struct mirror_checker *checker);

#endif
