/*
 * mirror.h - the catalog's mirrors: what admins add and change (the CLI),
 * what the checker verifies and records (libmirrors), and what the
 * publisher and `filerepo metalink` advertise.
 *
 * Every admin change is one transaction ending with a NOTIFY on
 * CATALOG_MIRROR_CHANNEL (the checker wakes up) and, when items must show
 * a different mirror list, publish_item rows and a NOTIFY on the outbox
 * channel.  A copy (mirror, revision) is advertised exactly while it is
 * verified and its mirror is in state "ok".
 */
#ifndef FILEREPO_CATALOG_MIRROR_H
#define FILEREPO_CATALOG_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"

/** Channel NOTIFYed when an admin changed a mirror (the checker LISTENs). */
#define CATALOG_MIRROR_CHANNEL "filerepo_mirrors"

/** A mirror to add: checked by the caller (mirrors/url.h), stored as given. */
struct catalog_mirror_new {
    const char *repo;              /* repository name */
    const char *url;               /* normal base URL, ending in '/' */
    const char *type;              /* http, https, ftp, sftp, smb, webdav */
    const char *description;       /* "" for none */
    const char *username;          /* NULL for none */
    const char *password_file;     /* absolute path, NULL for none; the secret stays there */
    bool credentials_public;       /* advertise user and password in items */
};

/**
 * Adds a mirror; *id gets its id.  Returns 0, FR_ENOTFOUND (no such
 * repository), FR_EINVAL (that URL is already a mirror of the repository,
 * or the catalog refused a value: the text in catalog_last_error()), or
 * FR_ECONN / FR_ERROR.
 */
int catalog_mirror_add(struct catalog *catalog, const struct catalog_mirror_new *mirror,
                       int64_t *id);

/** One mirror as `filerepo mirror list` shows it. */
struct catalog_mirror_row {
    int64_t id;                    /* mirror id */
    const char *repo;              /* repository */
    const char *url;               /* base URL */
    const char *type;              /* as stored */
    const char *description;       /* "" when none */
    const char *username;          /* "" when none */
    bool credentials_public;       /* user/pass advertised */
    const char *state;             /* new, ok, failing, disabled */
    const char *state_reason;      /* why it entered that state, "" when not recorded */
    const char *state_changed_at;  /* ISO 8601 UTC, "" when never */
    const char *last_check_at;     /* ISO 8601 UTC, "" when never */
    const char *last_error;        /* the last failure, "" when none */
    int consecutive_failures;      /* failed checks in a row */
    int64_t verified;              /* copies verified */
    int64_t pending;               /* copies not checked yet */
    int64_t failed;                /* copies missing, different or in error */
};

/**
 * Calls fn for every mirror of `repo` (NULL: of every repository), by
 * repository and id.  Strings are borrowed for the call.  Returns 0,
 * FR_ENOTFOUND (no such repository), fn's non-zero return, or FR_E*.
 */
int catalog_mirror_list(struct catalog *catalog, const char *repo,
                        int (*fn)(const struct catalog_mirror_row *row, void *data), void *data);

/** What an admin does to one mirror. */
enum catalog_mirror_action {
    CATALOG_MIRROR_DISABLE,        /* stop checking and advertising it */
    CATALOG_MIRROR_ENABLE,         /* check it again from scratch (state new) */
    CATALOG_MIRROR_REMOVE,         /* forget it and its copies */
    CATALOG_MIRROR_CHECK,          /* check it now */
};

/**
 * Applies `action` to mirror `mirror` (its id or its URL) of `repo`, or
 * with CATALOG_MIRROR_CHECK and mirror NULL to every mirror of `repo`.
 * Items that advertised a mirror that is disabled or removed are queued for
 * republishing.  *count gets how many mirrors changed (0: nothing to do,
 * e.g. disabling a disabled mirror).  Returns 0, FR_ENOTFOUND, or FR_E*.
 */
int catalog_mirror_apply(struct catalog *catalog, const char *repo, const char *mirror,
                         enum catalog_mirror_action action, int64_t *count);

/** One verified mirror of a revision. */
struct catalog_mirror_copy_row {
    const char *type;              /* as stored (webdav included) */
    const char *url;               /* base URL */
    const char *description;       /* "" when none */
};

/**
 * For `filerepo metalink`: calls fn for the advertised mirrors of revision
 * `revision_id`, by mirror id.  Returns 0 or FR_E*.
 */
int catalog_mirror_copies(struct catalog *catalog, int64_t revision_id,
                          int (*fn)(const struct catalog_mirror_copy_row *row, void *data),
                          void *data);

/** One revision as `filerepo metalink` describes it. */
struct catalog_revision_info {
    int64_t id;                    /* revision id */
    int number;                    /* revision number */
    int64_t size;                  /* bytes */
    const char *modified;          /* RFC 3339 UTC */
    const char *description;       /* "" when none */
    const char *sha256_hex, *sha1_hex, *md5_hex, *sha512_hex; /* NULL: not recorded */
};

/**
 * Calls fn once for revision `number` (0: the current one) of file `path`
 * of `repo`, if it exists and was not withdrawn.  Returns 0, FR_ENOTFOUND,
 * fn's return, or FR_E*.
 */
int catalog_mirror_revision(struct catalog *catalog, const char *repo, const char *path,
                            int number,
                            int (*fn)(const struct catalog_revision_info *info, void *data),
                            void *data);

/* ------------------------------------------------------------ the checker */

/** One check to make: a revision on a mirror. */
struct catalog_mirror_check {
    int64_t mirror_id;             /* mirror */
    int64_t revision_id;           /* revision */
    const char *type;              /* mirror type */
    const char *url;               /* mirror base URL */
    const char *username;          /* NULL for none */
    const char *password_file;     /* NULL for none */
    const char *path;              /* the file's path in the repository */
    int64_t size;                  /* the revision's bytes */
    const char *sha256_hex;        /* its digest */
    bool whitelist;                /* the repository is restricted */
    const char *jids;              /* whitelist: its acl JIDs, one a line, "" for none */
    bool probe;                    /* a verified copy of a current revision: the
                                      mirror's health is at stake */
    bool verified;                 /* the copy was verified before this check */
};

/**
 * Tries to become the one mirror checker of this catalog (several filerepod
 * may share it): a session advisory lock, held until the connection ends.
 * *held tells whether it was obtained.  Returns 0 or FR_E*.
 */
int catalog_mirror_checker_lock(struct catalog *catalog, bool *held);

/** Starts listening for CATALOG_MIRROR_CHANNEL and the outbox channel. */
int catalog_mirror_listen(struct catalog *catalog);

/** The (mirror, revision) pairs under way, left out of catalog_mirror_due(). */
struct catalog_mirror_busy {
    const int64_t *mirror_ids;     /* count of them */
    const int64_t *revision_ids;   /* count of them, pairwise with mirror_ids */
    size_t count;                  /* how many */
};

/**
 * Finds the checks due.  A copy is due while its checked_at is NULL: new
 * (mirror, current revision) pairs get such a row (only with `new_pairs`:
 * it reads every live file, so the caller asks when told of new revisions
 * or mirrors); each enabled mirror whose round has come (its next round is
 * then set `interval_seconds` ahead) has its copies not verified, its
 * verified copies of revisions no longer current, and one verified copy
 * picked at random made due.  Calls fn for up to `limit` due copies, not
 * those in `busy`, checks of verified copies first; *rows gets how many.
 * Strings are borrowed for the call.  Returns 0 or FR_E*.
 */
int catalog_mirror_due(struct catalog *catalog, int interval_seconds, int limit, bool new_pairs,
                       const struct catalog_mirror_busy *busy,
                       int (*fn)(const struct catalog_mirror_check *check, void *data),
                       void *data, int *rows);

/** What one check found. */
struct catalog_mirror_result {
    int64_t mirror_id;             /* mirror */
    int64_t revision_id;           /* revision */
    const char *state;             /* verified, missing, mismatch, error */
    const char *reason;            /* why not verified; NULL when verified */
    bool transient;                /* the mirror failed (unreachable, timeout, 5xx):
                                      the copy keeps its state, the mirror counts a failure */
    bool probe;                    /* the health probe: not verified counts a failure */
};

/** How recording a result changed the mirror, for the log. */
struct catalog_mirror_change {
    char old_state[16];            /* mirror state before */
    char new_state[16];            /* and after ("" when the mirror is gone) */
    char url[2100];                /* the mirror's URL */
    int failures;                  /* consecutive failures after */
    int64_t republished;           /* publish_item rows queued */
    char reason[600];              /* why the state changed ("" when it did not) */
    char copy_before[16];          /* the copy's state before ("" when unknown) */
    char copy_after[16];           /* and after */
};

/**
 * Records a result: the copy's state and reason, the mirror's last check,
 * its consecutive failures and state (failing after `failures_max` in a
 * row, ok again after a check passes), and publish_item rows for every
 * revision whose advertised mirrors changed, in one transaction.
 * Returns 0, or FR_E* (nothing recorded).
 */
int catalog_mirror_record(struct catalog *catalog, const struct catalog_mirror_result *result,
                          int failures_max, struct catalog_mirror_change *change);

#endif
