/*
 * transfer.h - what the catalog knows for file transfers: which revision a
 * request names, whether the requester may have it, and the record of each
 * transfer (the transfer table).
 *
 * Functions return 0, FR_ENOTFOUND, or FR_ECONN / FR_ERROR with the detail
 * in catalog_last_error().
 */
#ifndef FILEREPO_CATALOG_TRANSFER_H
#define FILEREPO_CATALOG_TRANSFER_H

#include <stdint.h>

#include "catalog.h"

/** The revision a request resolved to. */
struct catalog_transfer_file {
    int64_t revision_id;        /* revision.id */
    unsigned char sha256[32];   /* its content (the content store's key) */
    int64_t size;               /* its bytes */
    char path[1024];            /* "repo/dir/file" */
};

/**
 * Finds the revision a requester asks for and checks that `requester` (a
 * full JID) may read it: the repository is open, or the acl has a row (any
 * role) for the requester's bare JID (case aside) or its full JID.
 *
 * `path` ("repo/dir/file", or NULL) names a file of the catalog; `sha256`
 * (32 bytes, or NULL) names content.  Path alone: the file's current
 * revision.  Path and hash: that file's revision with that content, current
 * or older.  Hash alone: the newest revision with that content in any
 * repository the requester may read.  Withdrawn revisions and deleted files
 * are never found.  A file the requester may not read is FR_ENOTFOUND, the
 * same as one that does not exist.
 */
int catalog_transfer_find(struct catalog *catalog, const char *requester, const char *path,
                          const unsigned char *sha256, struct catalog_transfer_file *out);

/**
 * Records the start of a transfer: protocol ("jingle", "sipub"), requester
 * (full JID), revision (0: none), method ("ibb", "s5b-direct", "s5b-proxy",
 * or NULL while it is being chosen), the session's sid, range offset and
 * length (-1: to the end).
 * Sets *id to the new row's id.
 */
int catalog_transfer_begin(struct catalog *catalog, const char *protocol, const char *requester,
                           int64_t revision_id, const char *method, const char *sid,
                           int64_t offset, int64_t length, int64_t *id);

/**
 * Records how transfer `id` ended: bytes sent and outcome ("success",
 * "decline", "cancel", "timeout", "failed-transport", "failed-application",
 * "refused").
 */
int catalog_transfer_end(struct catalog *catalog, int64_t id, int64_t bytes, const char *outcome);

/**
 * Records the method transfer `id` settled on (see catalog_transfer_begin())
 * and, when offset >= 0, the range asked for then (length -1: to the end).
 */
int catalog_transfer_method(struct catalog *catalog, int64_t id, const char *method,
                            int64_t offset, int64_t length);

/**
 * Records a request over `protocol` that was refused (nothing found the
 * requester may read, or too many transfers): no revision, outcome
 * 'refused'; `sid` is the session's (or the sipub id asked for).
 * Returns 0, or FR_ECONN / FR_ERROR.
 */
int catalog_transfer_refused(struct catalog *catalog, const char *protocol,
                             const char *requester, const char *sid);

#endif
