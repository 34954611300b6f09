/*
 * checkpoints.h - every CHECKPOINTS_EVERY-th key of a few big directories,
 * remembered with the version of the directory they were read at, so the
 * query service counts a position from the nearest checkpoint instead of
 * from the directory's start.
 *
 * Reading a directory's checkpoints is one walk of its index (about half a
 * second for a million entries); they stay right until the directory's
 * version changes (catalog_fis_dir_stats), which the caller notices in its
 * page's answer.  The CHECKPOINTS_DIRS most recently used directories are
 * kept; memory is about 40 bytes per CHECKPOINTS_EVERY entries.
 */
#ifndef FILEREPO_CHECKPOINTS_H
#define FILEREPO_CHECKPOINTS_H

#include <stdint.h>

#include "catalog.h"
#include "fis.h"

/* Every how many entries a checkpoint is kept, from what directory size,
 * for how many directories. */
#define CHECKPOINTS_EVERY 1024
#define CHECKPOINTS_MIN 4096
#define CHECKPOINTS_DIRS 8

struct checkpoints;
struct checkpoints_dir;

/** Creates an empty memory.  Returns 0 and hands it to *out, or FR_ENOMEM. */
int checkpoints_new(struct checkpoints **out);

/** Frees it; NULL is fine. */
void checkpoints_free(struct checkpoints *checkpoints);

/**
 * Returns the remembered checkpoints of directory dir_id (borrowed, valid
 * until the next call that builds or forgets), or NULL when there are none.
 */
const struct checkpoints_dir *checkpoints_find(struct checkpoints *checkpoints, int64_t dir_id);

/**
 * Reads the checkpoints of dir_id from `catalog`, in place of any
 * remembered, evicting the least recently used directory when full.
 * Returns them (borrowed), or NULL when the directory is empty or the
 * catalog failed (then positions are counted from the start).
 */
const struct checkpoints_dir *checkpoints_build(struct checkpoints *checkpoints,
                                                struct catalog *catalog, int64_t dir_id);

/** Forgets the checkpoints of dir_id, if any. */
void checkpoints_forget(struct checkpoints *checkpoints, int64_t dir_id);

/** Returns the directory version the checkpoints were read at. */
int64_t checkpoints_version(const struct checkpoints_dir *dir);

/**
 * Points `request` (an AFTER or BEFORE key, or an INDEX) at the nearest
 * checkpoint at or before where its page starts: base_name (borrowed from
 * dir), base_is_dir, base_rank and base_span.  Leaves base_name NULL when
 * the key lies before the first checkpoint.
 */
void checkpoints_base(const struct checkpoints_dir *dir, struct catalog_fis_page *request);

#endif
