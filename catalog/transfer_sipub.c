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

static int sipub_hex(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64)
        return FR_ERROR;
    for (int i = 0; i < 32; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return FR_ERROR;
        out[i] = (unsigned char)v;
    }
    return 0;
}

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
        "  to_char(v.mtime AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        "  v.description"
        " FROM revision v JOIN entry e ON e.id = v.entry_id"
        " JOIN repository r ON r.id = e.repository_id"
        " WHERE v.id = $3::bigint AND v.withdrawn_at IS NULL AND e.kind = 'file'"
        "   AND e.deleted_at IS NULL AND" SIPUB_READABLE,
        3, params, &error);
    if (!res)
        return error;
    out->revision_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    error = sipub_hex(PQgetvalue(res, 0, 1), out->sha256);
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

int catalog_sipub_begin(struct catalog *catalog, const char *requester, int64_t revision_id,
                        const char *sid, int64_t *id)
{
    char rev[24];
    const char *params[3] = { requester, rev, sid };
    PGresult *res;
    int error;

    catalog_int64_text(rev, sizeof(rev), revision_id);
    res = catalog_query_found(catalog,
        "INSERT INTO transfer (requester, revision_id, protocol, sid)"
        " VALUES ($1, $2, 'sipub', $3) RETURNING id",
        3, params, &error);
    if (!res)
        return error;
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int catalog_sipub_method(struct catalog *catalog, int64_t id, const char *method,
                         int64_t offset, int64_t length)
{
    char ids[24], off[24], len[24];
    const char *params[4] = { ids, method, off, length >= 0 ? len : NULL };
    PGresult *res;

    catalog_int64_text(ids, sizeof(ids), id);
    catalog_int64_text(off, sizeof(off), offset);
    catalog_int64_text(len, sizeof(len), length);
    res = catalog_query(catalog,
        "UPDATE transfer SET method = $2, range_offset = $3, range_length = $4 WHERE id = $1",
        4, params, PGRES_COMMAND_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}

int catalog_sipub_refused(struct catalog *catalog, const char *requester, const char *sid)
{
    const char *params[] = { requester, sid };
    PGresult *res = catalog_query(catalog,
        "INSERT INTO transfer (requester, protocol, sid, outcome, finished_at)"
        " VALUES ($1, 'sipub', $2, 'refused', now())",
        2, params, PGRES_COMMAND_OK);

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}
