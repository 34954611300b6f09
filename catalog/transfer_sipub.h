/*
 * transfer_sipub.h - what the catalog knows for sipub (XEP-0137) requests: the
 * revision a published sipub id names, with what an SI file-transfer offer
 * says of it.
 *
 * Its rows in the transfer table are written with transfer.h's functions
 * (protocol "sipub").
 * Functions return 0, FR_ENOTFOUND, or FR_ECONN / FR_ERROR with the detail
 * in catalog_last_error().
 */
#ifndef FILEREPO_CATALOG_TRANSFER_SIPUB_H
#define FILEREPO_CATALOG_TRANSFER_SIPUB_H

#include <stdint.h>

#include "catalog.h"

/** A revision as an SI offer describes it. */
struct catalog_sipub_file {
    int64_t revision_id;        /* revision.id */
    unsigned char sha256[32];   /* its content (the content store's key) */
    int64_t size;               /* its bytes */
    char path[1024];            /* "repo/dir/file" */
    char name[256];             /* the file's own name */
    char mime[128];             /* its media type */
    char md5_hex[33];           /* its MD5 in hex, "" when not computed */
    char modified[32];          /* its mtime, XEP-0082 (UTC) */
    char description[1024];     /* "" when none */
};

/**
 * Finds revision `revision_id` for `requester` (a full JID) with the access
 * rule of catalog_transfer_find(): the repository is open or its acl names
 * the requester.  Withdrawn revisions and deleted files are never found;
 * older revisions of a live file are.  Anything not found or not readable
 * is FR_ENOTFOUND.
 */
int catalog_sipub_find(struct catalog *catalog, const char *requester, int64_t revision_id,
                       struct catalog_sipub_file *out);

#endif
