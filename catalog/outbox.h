/*
 * outbox.h - the publisher's side of the catalog: the outbox rows it
 * drains, their outcome, and the admin changes that feed it (access lists,
 * withdrawn revisions, republishing).
 *
 * Rows are handed out in id order.  A row is done only when the publisher
 * says so; a retried row waits until its next_attempt_at, and later rows of
 * the same node wait with it, so a node sees its changes in order.
 */
#ifndef FILEREPO_CATALOG_OUTBOX_H
#define FILEREPO_CATALOG_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

/** One pending outbox row with what publishing it needs. */
struct catalog_outbox_row {
    int64_t id;                /* outbox id */
    const char *action;        /* create_collection, create_leaf, … */
    const char *node;          /* the row's node text (repo/path), the order key */
    int attempts;              /* failed attempts so far */
    bool expanded;             /* set_affiliations / configure_node for one node */
    const char *repo;          /* repository name */
    bool whitelist;            /* repository access */
    const char *repo_title;    /* repository title */
    const char *repo_description; /* repository description */
    const char *path;          /* entry path, "" for the root */
    const char *name;          /* entry name, "" for the root */
    bool is_dir;               /* the entry is a directory (or the row is the root's) */
    int64_t entry_id;          /* 0 when none */
    /* publish_item, publish_feed, retract_item, and a create_leaf that also
     * publishes the new file's first revision: */
    int64_t revision_id;       /* 0 when none */
    int revision;              /* revision number (0 when unknown) */
    bool withdrawn;            /* the revision was withdrawn */
    int64_t size;              /* bytes */
    const char *modified;      /* XEP-0082, UTC */
    const char *mime;          /* media type */
    const char *description;   /* revision description */
    const char *sha256_hex, *sha1_hex, *md5_hex, *sha512_hex, *crc32_hex; /* NULL: none */
    const char *sha256_b64, *sha1_b64, *sha512_b64; /* NULL: none */
    const char *acl;           /* "role jid" lines of the repository's acl */
    const char *mirrors;       /* publish_item: advertised mirrors (catalog/mirror.h), one a
                                  line: "type\turl\tdescription\tuser\tpassword_file", the
                                  last two empty unless public; "" for none */
};

/** Starts listening for CATALOG_OUTBOX_CHANNEL on this connection. */
int catalog_outbox_listen(struct catalog *catalog);

/**
 * Calls fn for up to `limit` pending rows that are due, in id order,
 * skipping the `skip_count` ids in `skip` (in flight) and rows of a node
 * whose earlier row, or an earlier row of a node above it, waits for a
 * retry.  *more is set when `limit` rows were
 * handed out; *retry_in_ms to the delay until the next row waiting for a
 * retry is due (-1: none).  Strings are borrowed for the call.
 * Returns 0 or FR_ECONN / FR_ERROR.
 */
int catalog_outbox_fetch(struct catalog *catalog, const int64_t *skip, size_t skip_count,
                         int limit, int (*fn)(const struct catalog_outbox_row *row, void *data),
                         void *data, bool *more, int *retry_in_ms);

/** How a finished row changes the tree's record. */
enum catalog_outbox_effect {
    CATALOG_OUTBOX_NONE,       /* nothing beyond the row */
    CATALOG_OUTBOX_CREATED,    /* entry (and for the root, repository) pubsub_node = node */
    CATALOG_OUTBOX_DELETED,    /* entry pubsub_node cleared */
};

/** A row the pubsub service acknowledged. */
struct catalog_outbox_done {
    int64_t id;                /* outbox id */
    enum catalog_outbox_effect effect; /* what to record */
    int64_t entry_id;          /* with CREATED / DELETED */
    bool root;                 /* CREATED: the repository's root */
    char node[1024];           /* CREATED: the node id as published */
};

/** Marks `count` rows done, recording their effects, in one transaction. */
int catalog_outbox_finish(struct catalog *catalog, const struct catalog_outbox_done *done,
                          size_t count);

/** Leaves row `id` pending, to be tried again in delay_ms, with `error`. */
int catalog_outbox_retry(struct catalog *catalog, int64_t id, unsigned delay_ms,
                         const char *error);

/** Parks row `id` with `error`: retrying cannot fix it. */
int catalog_outbox_park(struct catalog *catalog, int64_t id, const char *error);

/**
 * Replaces repository-wide row `id` (set_affiliations or configure_node of
 * a root) by one row per live node of the repository, root first, and marks
 * it done, in one transaction.
 */
int catalog_outbox_expand(struct catalog *catalog, int64_t id);

/* ------------------------------------------------------------ admin side */

/** A parked row, or a pending one that failed before, for `filerepo status`. */
struct catalog_parked_row {
    int64_t id;                /* outbox id */
    const char *repo;          /* repository */
    const char *action;        /* what it was */
    const char *node;          /* on which node */
    int attempts;              /* attempts made */
    const char *error;         /* why it was parked, or why the last attempt failed */
    const char *when;          /* parked: when; retrying: the next attempt (ISO 8601) */
};

/**
 * Calls fn for the parked rows (parked = true) or for the pending rows that
 * failed before and wait for their next attempt (parked = false), oldest
 * first, the newest `limit` of them.
 */
int catalog_outbox_parked(struct catalog *catalog, bool parked, int limit,
                          int (*fn)(const struct catalog_parked_row *row, void *data), void *data);

/**
 * Grants (grant = true) or revokes `role` ("owner", "publisher", "member")
 * of `jid` on repository `repo` and queues the affiliations for every node.
 * *changed tells whether the acl changed.  Returns 0, FR_ENOTFOUND (no such
 * repository), FR_EINVAL (bad role or JID), or FR_ECONN / FR_ERROR.
 */
int catalog_acl_set(struct catalog *catalog, const char *repo, const char *jid, const char *role,
                    bool grant, bool *changed);

/** One acl row. */
struct catalog_acl_row {
    const char *jid;           /* bare or full JID */
    const char *role;          /* owner, publisher, member */
};

/** Calls fn for every acl row of `repo`, by JID. FR_ENOTFOUND: no such repository. */
int catalog_acl_list(struct catalog *catalog, const char *repo,
                     int (*fn)(const struct catalog_acl_row *row, void *data), void *data);

/**
 * Withdraws revision `number` of file `path` of `repo`: marks it and queues
 * its retraction.  *changed is false when it was withdrawn already.
 * Returns 0, FR_ENOTFOUND, or FR_ECONN / FR_ERROR.
 */
int catalog_revision_withdraw(struct catalog *catalog, const char *repo, const char *path,
                              int number, bool *changed);

/**
 * Queues the whole of repository `repo` again: every live node (created or
 * corrected), every revision not withdrawn, and the affiliations; parked
 * rows of the repository are dropped (the rebuild supersedes them).
 * *rows gets how many rows were queued.  Returns 0, FR_ENOTFOUND, or
 * FR_ECONN / FR_ERROR.
 */
int catalog_republish(struct catalog *catalog, const char *repo, int64_t *rows);

#endif
