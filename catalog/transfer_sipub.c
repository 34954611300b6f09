/*
 * transfer_sipub.c - revisions named by sipub ids, and the transfer table's
 * 'sipub' rows.
 */
#include "catalog_internal.h"
#include "fr_error.h"
#include "transfer_sipub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* May the requester ($1 full JID, $2 bare JID) read repository r? */
#define SIPUB_READABLE " " CATALOG_SQL_READABLE("$2", "$1")

int catalog_sipub_find(struct catalog *catalog, const char *requester, int64_t revision_id,
                       struct catalog_sipub_file *out)
{
    char bare[1024], rev[24];
    const char *params[3] = { requester, bare, rev };
    PGresult *res;
    int error;

    memset(out, 0, sizeof(*out));
    snprintf(bare, sizeof(bare), "%s", requester);
    bare[strcspn(bare, "/")] = '\0';
    catalog_int64_text(rev, sizeof(rev), revision_id);
    res = catalog_query_found(catalog,
        "SELECT v.id, encode(v.sha256, 'hex'), v.size, r.name || '/' || e.path, e.name,"
        "  v.mime, coalesce(encode(v.md5, 'hex'), ''),"
        "  " CATALOG_SQL_XEP0082("v.mtime") ","
        "  v.description"
        " FROM revision v JOIN entry e ON e.id = v.entry_id"
        " JOIN repository r ON r.id = e.repository_id"
        " WHERE v.id = $3::bigint AND v.withdrawn_at IS NULL AND e.kind = 'file'"
        "   AND e.deleted_at IS NULL AND" SIPUB_READABLE,
        3, params, &error);
    if (!res)
        return error;
    out->revision_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    error = catalog_sha256_from_hex(PQgetvalue(res, 0, 1), out->sha256);
    out->size = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    snprintf(out->path, sizeof(out->path), "%s", PQgetvalue(res, 0, 3));
    snprintf(out->name, sizeof(out->name), "%s", PQgetvalue(res, 0, 4));
    snprintf(out->mime, sizeof(out->mime), "%s", PQgetvalue(res, 0, 5));
    snprintf(out->md5_hex, sizeof(out->md5_hex), "%s", PQgetvalue(res, 0, 6));
    snprintf(out->modified, sizeof(out->modified), "%s", PQgetvalue(res, 0, 7));
    snprintf(out->description, sizeof(out->description), "%s", PQgetvalue(res, 0, 8));
    PQclear(res);
    if (error != 0)
        catalog_set_error(catalog, "revision %" PRId64 ": malformed sha256", out->revision_id);
    return error;
}
