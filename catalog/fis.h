/*
 * fis.h - what the query service reads from the catalog: the repositories a
 * requester may see, a path resolved to its entry, and a directory's live
 * entries a page at a time (keyset on (kind, name): directories first, then
 * files, each by name in byte order), with the page's position and the
 * directory's size for XEP-0059 replies.
 *
 * Access: a whitelist repository exists only for requesters whose bare or
 * full JID is on its acl (any role); for everyone else every function here
 * answers as if it did not exist.  Strings handed to callbacks are borrowed
 * for the call.  Functions return 0, FR_ENOTFOUND, or FR_ECONN / FR_ERROR
 * with the detail in catalog_last_error(); a callback's non-zero return stops
 * the walk and is returned.
 */
#ifndef FILEREPO_CATALOG_FIS_H
#define FILEREPO_CATALOG_FIS_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"

/** Who asks: both NULL for nobody in particular (sees open repositories). */
struct catalog_fis_requester {
    const char *bare;          /* user@domain */
    const char *full;          /* user@domain/resource, or NULL */
};

/** A repository as the query service shows it. */
struct catalog_fis_repo {
    const char *name;          /* its name, the first segment of every path */
    const char *title;         /* human title */
    const char *description;   /* may be "" */
    const char *node;          /* its root pubsub node */
};

/** Calls fn for every repository the requester may see, by name. */
int catalog_fis_repos(struct catalog *catalog, const struct catalog_fis_requester *who,
                      int (*fn)(const struct catalog_fis_repo *repo, void *data), void *data);

/** An entry of a directory, or a file by itself. */
struct catalog_fis_entry {
    bool is_dir;               /* a directory (else a file) */
    const char *name;          /* its name */
    bool has_revision;         /* files: a current revision exists */
    int64_t size;              /* files: bytes */
    const char *date;          /* files: modification time, XEP-0082 (UTC) */
    const char *mime;          /* files: media type */
    const char *description;   /* files: may be "" */
    const char *sha256;        /* files: base64 of the digest */
    const char *sha1;          /* files: base64, "" when not recorded */
    const char *md5;           /* files: base64, "" when not recorded */
    const char *sha512;        /* files: base64, "" when not recorded */
};

/**
 * Finds live entry `path` ("" = the repository's root) of repository
 * `repo` for `who`: *out_id gets its id, *out_is_dir whether it is a
 * directory.  Returns FR_ENOTFOUND when there is none the requester may see.
 */
int catalog_fis_resolve(struct catalog *catalog, const struct catalog_fis_requester *who,
                        const char *repo, const char *path, int64_t *out_id, bool *out_is_dir);

/** Calls fn once with file `id` (from catalog_fis_resolve). */
int catalog_fis_file(struct catalog *catalog, int64_t id,
                     int (*fn)(const struct catalog_fis_entry *entry, void *data), void *data);

/** Where a page starts. */
enum catalog_fis_from {
    CATALOG_FIS_START,         /* the first page */
    CATALOG_FIS_AFTER,         /* just after the key */
    CATALOG_FIS_BEFORE,        /* just before the key */
    CATALOG_FIS_END,           /* the last page */
    CATALOG_FIS_INDEX,         /* from position `index` (0 = the first entry) */
};

/** Which page of a directory to read. */
struct catalog_fis_page {
    enum catalog_fis_from from; /* where it starts */
    bool key_is_dir;           /* AFTER, BEFORE: the key's kind */
    const char *key_name;      /* AFTER, BEFORE: the key's name */
    int64_t index;             /* INDEX: the first position */
    int max;                   /* entries at most (0: none, only the counts) */
    const char *base_name;     /* a checkpoint at or before the page's key or index
                                  (NULL: the directory's start) */
    bool base_is_dir;          /* its kind */
    int64_t base_rank;         /* its position */
    int64_t base_span;         /* AFTER, BEFORE: at most this many entries lie from the
                                  base to the key, both included (0: unknown) */
};

/** What a page turned out to be. */
struct catalog_fis_page_info {
    int64_t count;             /* live entries in the directory */
    int64_t first_index;       /* position of the page's first entry */
    int rows;                  /* entries on the page */
    int64_t version;           /* the directory's version (see catalog_fis_dir_stats) */
};

/**
 * Reads how many live entries directory `dir_id` holds and its version, a
 * number that changes whenever that set of entries does (ranks learnt at
 * one version hold until it changes).
 */
int catalog_fis_dir_stats(struct catalog *catalog, int64_t dir_id, int64_t *count,
                          int64_t *version);

/**
 * Calls fn with every `every`-th live entry of directory `dir_id` in
 * listing order (positions 0, every, 2 * every, …), and sets *version to
 * the version they belong to (-1 when the directory is empty).  Costs one
 * walk of the directory's index: for the caller to remember, not to repeat.
 */
int catalog_fis_checkpoints(struct catalog *catalog, int64_t dir_id, int every,
                            int (*fn)(bool is_dir, const char *name, void *data), void *data,
                            int64_t *version);

/**
 * Reads one page of directory `dir_id`'s live entries and calls fn for each,
 * in listing order; *info is filled in before the first call (a page before a key is also given in listing order).
 * Each query is one prepared statement walking the (parent, kind, name)
 * index; positions are counted from page->base_name, so with a checkpoint
 * near the page a page costs the same wherever it lies.  Returns FR_ENOTFOUND
 * when the AFTER or BEFORE key is not a live entry of the directory.
 */
int catalog_fis_children(struct catalog *catalog, int64_t dir_id,
                         const struct catalog_fis_page *page,
                         int (*fn)(const struct catalog_fis_entry *entry, void *data),
                         void *data, struct catalog_fis_page_info *info);

#endif
