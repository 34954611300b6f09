/*
 * scan.h - compare a published tree (or part of it) with the catalog.
 *
 * The scanner says what changed, not how it looks now: files that are new
 * or whose (size, mtime, ctime, inode) differ from the catalog's (to be
 * hashed), directories that appeared, and names that vanished.  It walks one
 * directory at a time, comparing readdir with that directory's catalog rows,
 * so memory follows the largest directory, not the tree.  Paths are opened
 * relative to the repository root with RESOLVE_BENEATH: a symbolic link to a
 * file inside the repository is indexed as that file, one leading outside is
 * not followed (and logged), a symbolic link to a directory is not followed.
 * Scans run in worker threads, each with its own catalog connection.
 */
#ifndef FILEREPO_SCAN_H
#define FILEREPO_SCAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "catalog.h"
#include "config.h"

enum scan_kind {
    SCAN_FILE,          /* new or changed: hash it */
    SCAN_DIR_ADDED,     /* a directory the catalog does not have (yet) */
    SCAN_FILE_REMOVED,  /* a file the catalog has and the disk does not */
    SCAN_DIR_REMOVED,   /* likewise a directory, with everything below it */
};

struct scan_item {
    enum scan_kind kind;    /* what changed */
    char *path;             /* relative to the repository root */
    int64_t size;           /* SCAN_FILE: as seen by the scan */
    int64_t mtime_ns;       /* SCAN_FILE */
    int64_t ctime_ns;       /* SCAN_FILE */
    int64_t inode;          /* SCAN_FILE */
};

struct scan {
    struct scan_item *items; /* what changed, parents before children */
    size_t count;            /* items */
    size_t cap;              /* allocated */
    uint64_t files;          /* regular files seen */
    uint64_t bytes;          /* their sizes, summed */
    unsigned problems;       /* paths that could not be read (logged) */
};

/**
 * Opens a repository root for scanning (an O_PATH directory descriptor).
 * Returns the descriptor, or -errno.
 */
int scan_open_root(const char *path);

/**
 * Compares `path` ("" = the whole repository) of repository repo_id (named
 * repo_name, for the log) with the catalog and appends what changed to
 * *out: a directory is compared with everything below it, a file with its
 * entry, and a path that no longer exists is reported removed if the
 * catalog has it.  Names matching `ignore` (any path segment) are skipped.
 * Returns 0, FR_ENOMEM, or FR_ECONN / FR_ERROR from the catalog.  Paths it
 * cannot read are logged and counted in out->problems, not errors.
 */
int scan_reconcile(struct scan *out, struct catalog *catalog, int64_t repo_id,
                   const char *repo_name, int root_fd, const char *path,
                   const struct config_strings *ignore);

/** Frees the items and empties the scan. */
void scan_clear(struct scan *scan);

/**
 * Opens `path` below root_fd for reading, never resolving outside the root
 * (RESOLVE_BENEATH), and fills *st.  Returns the descriptor, or -errno
 * (-EXDEV: a symbolic link leads outside the repository).
 */
int scan_open_file(int root_fd, const char *path, struct stat *st);

/**
 * Opens directory `path` ("" = the root) below root_fd as an O_PATH
 * descriptor, never resolving outside the root.  Returns it, or -errno.
 */
int scan_open_dir(int root_fd, const char *path);

/**
 * Returns whether a name (one segment) can be published: valid UTF-8 (the
 * catalog's encoding) and not a name git refuses in a tree.
 */
bool scan_name_publishable(const char *name);

/** Returns whether any '/'-separated segment of path matches a pattern. */
bool scan_ignored(const struct config_strings *ignore, const char *path);

#endif
