/*
 * query.h - what the catalog answers for people: repositories, listings,
 * a file's revisions, the indexer's progress.  Used by the filerepo CLI.
 *
 * Every function streams its rows to a callback (the strings are borrowed
 * for the call) and returns 0, FR_ENOTFOUND, or FR_ECONN / FR_ERROR with the
 * detail in catalog_last_error().  A callback returning non-zero stops and
 * is returned.
 */
#ifndef FILEREPO_CATALOG_QUERY_H
#define FILEREPO_CATALOG_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"

/** A repository and its totals. */
struct catalog_repo_row {
    int64_t id;                /* catalog id */
    const char *name;          /* its name */
    const char *path;          /* published directory */
    const char *title;         /* pubsub#title */
    const char *access;        /* "open" or "whitelist" */
    int64_t files;             /* live files */
    int64_t bytes;             /* their current revisions' sizes */
    int64_t revisions;         /* revisions ever recorded */
    const char *last_commit;   /* newest revision's commit, "" when none */
    const char *last_change;   /* when it was recorded (ISO 8601), "" when none */
    int64_t outbox_pending;    /* publisher work waiting */
    int64_t outbox_parked;     /* publisher work given up on */
    bool indexing;             /* a batch is running */
    int64_t files_total, files_done, bytes_total, bytes_done; /* its progress */
};

/** Calls fn for every repository, by name. */
int catalog_repo_list(struct catalog *catalog,
                      int (*fn)(const struct catalog_repo_row *row, void *data), void *data);

/** One entry of a listing. */
struct catalog_ls_row {
    const char *name;          /* entry name ("" for a file listed by itself) */
    const char *path;          /* path in the repository */
    bool is_dir;               /* a directory */
    int64_t size;              /* files: current revision's size */
    int revision;              /* files: current revision number (0: none) */
    const char *modified;      /* files: mtime (ISO 8601) */
    const char *sha256;        /* files: hex */
    const char *mime;          /* files: media type */
};

/**
 * Lists directory `path` ("" = the root) of repository `repo` (by name),
 * live entries in name order, streamed in pages; a file's path lists that
 * file.  Returns FR_ENOTFOUND for an unknown repository or path.
 */
int catalog_ls(struct catalog *catalog, const char *repo, const char *path,
               int (*fn)(const struct catalog_ls_row *row, void *data), void *data);

/** One revision of a file. */
struct catalog_log_row {
    int number;                /* 1, 2, … */
    const char *commit;        /* git commit */
    int64_t size;              /* bytes */
    const char *modified;      /* mtime (ISO 8601) */
    const char *recorded;      /* when it was recorded (ISO 8601) */
    const char *sha256;        /* hex */
    const char *mime;          /* media type */
    bool current;              /* the file's current revision */
    bool withdrawn;            /* retracted by an admin */
};

/**
 * Lists the revisions of file `path` of repository `repo`, newest first,
 * deleted files included.  Returns FR_ENOTFOUND when there is no such file.
 */
int catalog_log(struct catalog *catalog, const char *repo, const char *path,
                int (*fn)(const struct catalog_log_row *row, void *data), void *data);

/**
 * Records the progress of a running batch of repository repo_id (the row
 * is created on the first call) or, with done, removes it.
 */
int catalog_progress_set(struct catalog *catalog, int64_t repo_id, bool done,
                         int64_t files_total, int64_t files_done, int64_t bytes_total,
                         int64_t bytes_done);

#endif
