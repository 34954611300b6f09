/*
 * watch.h - inotify over every directory of the published trees.
 *
 * Only write-side events are asked for (close after writing, renames,
 * creation and removal), so the daemon's own reads never come back as
 * events.  Each event names a repository (by the index it was added with)
 * and a path relative to that repository's root.  New directories are
 * watched as they appear; the caller scans each new directory, since files
 * may have been created in it before its watch existed.
 */
#ifndef FILEREPO_WATCH_H
#define FILEREPO_WATCH_H

#include <stddef.h>

#include "fr_error.h"

struct watch;

enum watch_kind {
    WATCH_WRITTEN,     /* a file was closed after writing, or renamed into place */
    WATCH_LINKED,      /* a symlink or other non-regular name appeared (ready at once) */
    WATCH_DIR_ADDED,   /* a directory appeared (now watched): scan it */
    WATCH_REMOVED,     /* a name was deleted or renamed away (file or directory) */
    WATCH_LOST,        /* events were lost (queue overflow, a failed watch): rescan */
};

struct watch_event {
    enum watch_kind kind;   /* what happened */
    int repo;               /* the repository's index; -1 for WATCH_LOST of all */
    const char *path;       /* relative to the repository root ("" = the root);
                               borrowed until the callback returns */
    const char *reason;     /* WATCH_LOST: why, for the log */
};

/**
 * Creates the watcher (one inotify instance).
 * Returns 0 and hands it to *out, or FR_ERROR (errno kept) / FR_ENOMEM.
 */
int watch_new(struct watch **out);

/** Frees the watcher and its watches; NULL is fine. */
void watch_free(struct watch *watch);

/** Returns the inotify descriptor to poll for reading. */
int watch_fd(const struct watch *watch);

/**
 * Watches directory `dir` ("" = the root) of repository `repo` rooted at
 * `root` (an absolute path), and every directory below it, without
 * following symbolic links.  Directories it cannot watch are reported as
 * one WATCH_LOST event through fn (running out of watches says which sysctl
 * to raise).  Returns 0, or FR_ERROR when even `dir` could not be watched.
 */
int watch_add_tree(struct watch *watch, int repo, const char *root, const char *dir,
                   void (*fn)(const struct watch_event *event, void *data), void *data);

/**
 * Reads every pending event and calls fn for each, in order.
 * Returns 0, or FR_ERROR when reading failed.
 */
int watch_read(struct watch *watch, void (*fn)(const struct watch_event *event, void *data),
               void *data);

/** Returns how many directories are watched. */
size_t watch_count(const struct watch *watch);

#endif
