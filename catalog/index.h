/*
 * index.h - the catalog side of indexing: repositories, the tree the
 * scanner compares with the disk, and the one transaction per settled batch
 * that records entries, revisions, deletions and the publisher's outbox.
 */
#ifndef FILEREPO_CATALOG_INDEX_H
#define FILEREPO_CATALOG_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

/** Channel NOTIFYed when outbox rows were added. */
#define CATALOG_OUTBOX_CHANNEL "filerepo_outbox"

/** Optional digests of a file change (sha-256 is always there). */
enum catalog_digest {
    CATALOG_DIGEST_SHA1 = 1u << 1,   /* sha1 is set */
    CATALOG_DIGEST_MD5 = 1u << 2,    /* md5 is set */
    CATALOG_DIGEST_SHA512 = 1u << 3, /* sha512 is set */
    CATALOG_DIGEST_CRC32 = 1u << 4,  /* crc32 is set */
};

/** A repository as configured. */
struct catalog_repository_spec {
    const char *name;                /* unique name, also the root node */
    const char *path;                /* published directory */
    const char *title;               /* pubsub#title */
    const char *description;         /* pubsub#description */
    bool whitelist;                  /* access: whitelist (else open) */
    const char *const *members;      /* whitelist JIDs */
    size_t members_count;            /* how many */
};

/**
 * Records a configured repository: creates it (with its root directory
 * entry and an outbox row to create its root collection) or updates what
 * changed (an outbox row to reconfigure it), and makes its "member" acl
 * rows exactly `members`.  *out_id gets its id.
 * Returns 0, or FR_ECONN / FR_ERROR (catalog_last_error()).
 */
int catalog_repository_upsert(struct catalog *catalog, int64_t *out_id,
                              const struct catalog_repository_spec *spec);

/** What the catalog knows of one live entry of a directory. */
struct catalog_entry_stat {
    const char *name;                /* borrowed for the callback's duration */
    bool is_dir;                     /* a directory (else a file) */
    int64_t size;                    /* files: as last indexed */
    int64_t mtime_ns;                /* files: st_mtim in ns */
    int64_t ctime_ns;                /* files: st_ctim in ns */
    int64_t inode;                   /* files: st_ino */
};

/**
 * Calls fn for every live (not deleted) child of directory `dir_path`
 * ("" for the root) of repository repo_id, in name order.  fn returning
 * non-zero stops the walk and is returned.
 * Returns 0, FR_ENOTFOUND when the directory is not in the catalog (or is
 * deleted), or FR_ECONN / FR_ERROR.
 */
int catalog_dir_children(struct catalog *catalog, int64_t repo_id, const char *dir_path,
                         int (*fn)(const struct catalog_entry_stat *entry, void *data),
                         void *data);

/**
 * The live entries below a directory, streamed in the order a depth-first
 * walk meets them when it visits each directory's children sorted by name
 * (bytes, strcmp) and descends into subdirectories in that order: grouped
 * by parent directory, the groups in catalog_tree_order() of their paths,
 * names ascending within a group.  Rows come in pages, so memory stays
 * bounded however big the tree.  The stream holds a read-only transaction
 * open on the connection until catalog_tree_close().
 */
struct catalog_tree;

/** One row of a catalog_tree; the strings are valid until the next call. */
struct catalog_tree_entry {
    const char *dir;                 /* parent directory ("" for the root) */
    struct catalog_entry_stat stat;  /* the entry (stat.name is its name) */
};

/**
 * Opens the stream of everything below `dir_path` ("" for the whole
 * repository).  Returns 0, FR_ENOMEM, or FR_ECONN / FR_ERROR.
 */
int catalog_tree_open(struct catalog_tree **out, struct catalog *catalog, int64_t repo_id,
                      const char *dir_path);

/** Next row: 1 (*out filled), 0 at the end, or FR_ECONN / FR_ERROR. */
int catalog_tree_next(struct catalog_tree *tree, struct catalog_tree_entry *out);

/** Ends the stream and its transaction; NULL is ignored. */
void catalog_tree_close(struct catalog_tree *tree);

/**
 * The order of directory paths in a catalog_tree: bytewise, with '/'
 * before every other byte (it ties with a byte 0x01 in a name, and a walk
 * meeting such names must not rely on the order).  <0, 0 or >0.
 */
int catalog_tree_order(const char *a, const char *b);

/**
 * Reads what the catalog knows of the live entry at `path` of repository
 * repo_id into *out (its name is not filled in).
 * Returns 0, FR_ENOTFOUND (no such live entry), or FR_ECONN / FR_ERROR.
 */
int catalog_entry_lookup(struct catalog *catalog, int64_t repo_id, const char *path,
                         struct catalog_entry_stat *out);

/** One change of a settled batch. */
struct catalog_change {
    const char *path;                /* "dir/file", relative to the repository */
    bool is_dir;                     /* a directory appeared or vanished */
    bool deleted;                    /* gone from disk (with everything below) */
    /* present files: */
    int64_t size, mtime_ns, ctime_ns, inode; /* stat at hashing time */
    const char *mime;                /* media type */
    unsigned digests;                /* enum catalog_digest bits */
    unsigned char sha256[32], sha1[20], md5[16], sha512[64]; /* digests */
    uint32_t crc32;                  /* CRC-32 */
};

/** What a batch did. */
struct catalog_batch_result {
    int revisions;                   /* new revisions recorded */
    int entries;                     /* entries created or brought back */
    int deleted;                     /* entries marked deleted */
};

/**
 * Records a settled batch of repository repo_id (named repo_name) whose git
 * commit is commit_id (40 hex), in one transaction: ancestor directories,
 * file entries and their stat, one new revision per file whose content
 * changed (numbered per file from 1; a file whose sha-256 and size equal its
 * current revision only gets its stat updated), deletions (a directory
 * deletes what lies below it), outbox rows for the publisher (create
 * collection / leaf, publish item, delete node), then a NOTIFY on
 * CATALOG_OUTBOX_CHANNEL.  Nothing is recorded on failure.
 * Returns 0 with *out filled (may be NULL), FR_EINVAL for a bad change, or
 * FR_ECONN / FR_ERROR.
 */
int catalog_batch_apply(struct catalog *catalog, int64_t repo_id, const char *repo_name,
                        const char *commit_id, const struct catalog_change *changes,
                        size_t count, struct catalog_batch_result *out);

/**
 * catalog_batch_apply() in two steps, so the git commit can be made while
 * the catalog does its part: catalog_batch_begin() records everything but
 * the revisions themselves and leaves the transaction open, *out counting
 * what it recorded (the revisions it is about to); catalog_batch_finish()
 * adds the revisions with commit_id, notifies and commits.  Either one
 * rolls back on failure; catalog_batch_abort() rolls back an open one.
 * Returns as catalog_batch_apply().
 */
int catalog_batch_begin(struct catalog *catalog, int64_t repo_id, const char *repo_name,
                        const struct catalog_change *changes, size_t count,
                        struct catalog_batch_result *out);
int catalog_batch_finish(struct catalog *catalog, const char *repo_name, const char *commit_id,
                         const struct catalog_batch_result *begun);
void catalog_batch_abort(struct catalog *catalog);

#endif
