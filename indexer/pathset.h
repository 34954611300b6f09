/*
 * pathset.h - a set of paths, each with a due time: what the watcher saw and
 * the indexer will look at once the path has been quiet long enough.
 *
 * Adding a path that is already there moves its due time (a file written
 * again settles again).  Lookups, additions and removals cost O(1) on
 * average, so a burst of 100,000 events stays cheap.
 */
#ifndef FILEREPO_PATHSET_H
#define FILEREPO_PATHSET_H

#include <stddef.h>
#include <stdint.h>

#include "fr_error.h"

struct pathset;

/** Creates an empty set.  Returns 0, or FR_ENOMEM. */
int pathset_new(struct pathset **out);

/** Frees the set and its paths; NULL is fine. */
void pathset_free(struct pathset *set);

/** Adds `path` (copied) due at `due_ms`, or moves its due time there. Returns 0 or FR_ENOMEM. */
int pathset_put(struct pathset *set, const char *path, uint64_t due_ms);

/**
 * Looks `path` up: returns 1 and sets *due_ms (may be NULL) when it is
 * there, 0 when not.
 */
int pathset_get(const struct pathset *set, const char *path, uint64_t *due_ms);

/** Removes `path`; returns 1 when it was there, 0 when not. */
int pathset_remove(struct pathset *set, const char *path);

/** Returns how many paths the set holds. */
size_t pathset_count(const struct pathset *set);

/** Returns the earliest due time, or UINT64_MAX when empty. */
uint64_t pathset_next_due(const struct pathset *set);

/**
 * Removes every path due at or before `now_ms` and hands each to fn (the
 * string is the caller's to free).  Returns how many were taken.
 */
size_t pathset_take_due(struct pathset *set, uint64_t now_ms,
                        void (*fn)(char *path, void *data), void *data);

/** Removes every path. */
void pathset_clear(struct pathset *set);

#endif
