/*
 * transfer.c - revisions looked up for transfers, and the transfer table.
 */
#include "catalog_internal.h"
#include "fr_error.h"
#include "transfer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* May the requester ($1 full JID, $2 bare JID) read repository r? */
#define TRANSFER_READABLE " " CATALOG_SQL_READABLE("$2", "$1")

#define TRANSFER_COLUMNS "v.id, encode(v.sha256, 'hex'), v.size, r.name || '/' || e.path"

int catalog_transfer_find(struct catalog *catalog, const char *requester, const char *path,
                          const unsigned char *sha256, struct catalog_transfer_file *out)
{
    char bare[1024], repo[128], hex[65] = "";
    const char *slash, *file = "", *params[5];
    PGresult *res;
    int error;

    memset(out, 0, sizeof(*out));
    snprintf(bare, sizeof(bare), "%s", requester);
    bare[strcspn(bare, "/")] = '\0';
    if (sha256)
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", sha256[i]);
    params[0] = requester;
    params[1] = bare;
    if (path) {
        slash = strchr(path, '/');
        if (!slash || slash == path || (size_t)(slash - path) >= sizeof(repo) || !slash[1])
            return FR_ENOTFOUND;
        memcpy(repo, path, (size_t)(slash - path));
        repo[slash - path] = '\0';
        file = slash + 1;
        params[2] = repo;
        params[3] = file;
        params[4] = sha256 ? hex : NULL;
        res = catalog_query_found(catalog,
            "SELECT " TRANSFER_COLUMNS
            " FROM repository r JOIN entry e ON e.repository_id = r.id"
            " JOIN revision v ON v.entry_id = e.id"
            " WHERE r.name = $3 AND e.path = $4 AND e.kind = 'file' AND e.deleted_at IS NULL"
            "   AND v.withdrawn_at IS NULL AND" TRANSFER_READABLE
            "   AND CASE WHEN $5::text IS NULL THEN v.id = e.current_revision_id"
            "            ELSE v.sha256 = decode($5, 'hex') END"
            " ORDER BY v.number DESC LIMIT 1",
            5, params, &error);
    } else if (sha256) {
        params[2] = hex;
        res = catalog_query_found(catalog,
            "SELECT " TRANSFER_COLUMNS
            " FROM revision v JOIN entry e ON e.id = v.entry_id"
            " JOIN repository r ON r.id = e.repository_id"
            " WHERE v.sha256 = decode($3, 'hex') AND v.withdrawn_at IS NULL"
            "   AND e.deleted_at IS NULL AND" TRANSFER_READABLE
            " ORDER BY v.id DESC LIMIT 1",
            3, params, &error);
    } else {
        return FR_ENOTFOUND;
    }
    if (!res)
        return error;
    out->revision_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    error = catalog_sha256_from_hex(PQgetvalue(res, 0, 1), out->sha256);
    out->size = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    snprintf(out->path, sizeof(out->path), "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    if (error != 0)
        catalog_set_error(catalog, "revision %" PRId64 ": malformed sha256", out->revision_id);
    return error;
}

int catalog_transfer_begin(struct catalog *catalog, const char *protocol, const char *requester,
                           int64_t revision_id, const char *method, const char *sid,
                           int64_t offset, int64_t length, int64_t *id)
{
    char rev[24], off[24], len[24];
    const char *params[7] = { requester, revision_id > 0 ? rev : NULL, method, sid, off,
                              length >= 0 ? len : NULL, protocol };
    PGresult *res;
    int error;

    snprintf(rev, sizeof(rev), "%" PRId64, revision_id);
    snprintf(off, sizeof(off), "%" PRId64, offset);
    snprintf(len, sizeof(len), "%" PRId64, length);
    res = catalog_query_found(catalog,
        "INSERT INTO transfer (requester, revision_id, protocol, method, sid, range_offset,"
        " range_length) VALUES ($1, $2, $7, $3, $4, $5, $6) RETURNING id",
        7, params, &error);
    if (!res)
        return error;
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int catalog_transfer_end(struct catalog *catalog, int64_t id, int64_t bytes, const char *outcome)
{
    char ids[24], sent[24];
    const char *params[3] = { ids, sent, outcome };
    PGresult *res;

    snprintf(ids, sizeof(ids), "%" PRId64, id);
    snprintf(sent, sizeof(sent), "%" PRId64, bytes);
    res = catalog_query(catalog,
        "UPDATE transfer SET bytes_sent = $2, outcome = $3, finished_at = now() WHERE id = $1",
        3, params, PGRES_COMMAND_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}

int catalog_transfer_method(struct catalog *catalog, int64_t id, const char *method,
                            int64_t offset, int64_t length)
{
    char ids[24], off[24], len[24];
    const char *params[4] = { ids, method, offset >= 0 ? off : NULL,
                              length >= 0 ? len : NULL };
    PGresult *res;

    catalog_int64_text(ids, sizeof(ids), id);
    catalog_int64_text(off, sizeof(off), offset);
    catalog_int64_text(len, sizeof(len), length);
    res = catalog_query(catalog,
        "UPDATE transfer SET method = $2,"
        " range_offset = coalesce($3::bigint, range_offset),"
        " range_length = CASE WHEN $3::bigint IS NULL THEN range_length ELSE $4::bigint END"
        " WHERE id = $1", 4, params, PGRES_COMMAND_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}

int catalog_transfer_refused(struct catalog *catalog, const char *protocol,
                             const char *requester, const char *sid)
{
    const char *params[] = { requester, sid, protocol };
    PGresult *res = catalog_query(catalog,
        "INSERT INTO transfer (requester, protocol, sid, outcome, finished_at)"
        " VALUES ($1, $3, $2, 'refused', now())",
        3, params, PGRES_COMMAND_OK);

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}
