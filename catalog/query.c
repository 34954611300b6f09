/*
 * query.c - the catalog's answers for people (the filerepo CLI).
 *
 * Listings go page by page (keyset on name, 1,000 rows a page), so listing a
 * directory of a million files never holds more than a page.
 */
#include "catalog_internal.h"
#include "query.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_PAGE "1000"

static int64_t query_int(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int catalog_repo_list(struct catalog *catalog,
                      int (*fn)(const struct catalog_repo_row *row, void *data), void *data)
{
    PGresult *res = catalog_exec(catalog,
        "SELECT r.id, r.name, r.path, r.title, r.access,"
        "  (SELECT count(*) FROM entry e WHERE e.repository_id = r.id AND e.kind = 'file'"
        "     AND e.deleted_at IS NULL),"
        "  (SELECT coalesce(sum(v.size), 0) FROM entry e JOIN revision v"
        "     ON v.id = e.current_revision_id WHERE e.repository_id = r.id"
        "     AND e.deleted_at IS NULL),"
        "  (SELECT count(*) FROM revision v JOIN entry e ON e.id = v.entry_id"
        "     WHERE e.repository_id = r.id),"
        "  last.commit_id, " CATALOG_SQL_XEP0082("last.created_at") ","
        "  (SELECT count(*) FROM outbox o WHERE o.repository_id = r.id AND o.state = 'pending'),"
        "  (SELECT count(*) FROM outbox o WHERE o.repository_id = r.id AND o.state = 'parked'),"
        "  p.repository_id IS NOT NULL, p.files_total, p.files_done, p.bytes_total, p.bytes_done"
        " FROM repository r"
        " LEFT JOIN LATERAL (SELECT v.commit_id, v.created_at FROM revision v"
        "   JOIN entry e ON e.id = v.entry_id WHERE e.repository_id = r.id"
        "   ORDER BY v.id DESC LIMIT 1) last ON true"
        " LEFT JOIN indexer_progress p ON p.repository_id = r.id"
        " ORDER BY r.name",
        PGRES_TUPLES_OK);
    int rc = 0;

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        struct catalog_repo_row row = {
            .id = query_int(res, i, 0), .name = PQgetvalue(res, i, 1),
            .path = PQgetvalue(res, i, 2), .title = PQgetvalue(res, i, 3),
            .access = PQgetvalue(res, i, 4), .files = query_int(res, i, 5),
            .bytes = query_int(res, i, 6), .revisions = query_int(res, i, 7),
            .last_commit = PQgetvalue(res, i, 8), .last_change = PQgetvalue(res, i, 9),
            .outbox_pending = query_int(res, i, 10), .outbox_parked = query_int(res, i, 11),
            .indexing = PQgetvalue(res, i, 12)[0] == 't', .files_total = query_int(res, i, 13),
            .files_done = query_int(res, i, 14), .bytes_total = query_int(res, i, 15),
            .bytes_done = query_int(res, i, 16),
        };
        rc = fn(&row, data);
    }
    PQclear(res);
    return rc;
}

#define QUERY_FILE_COLUMNS \
    "v.size, v.number, " CATALOG_SQL_XEP0082("v.mtime") "," \
    " encode(v.sha256, 'hex'), v.mime"

static struct catalog_ls_row query_ls_row(PGresult *res, int i)
{
    return (struct catalog_ls_row){
        .name = PQgetvalue(res, i, 0), .path = PQgetvalue(res, i, 1),
        .is_dir = PQgetvalue(res, i, 2)[0] == 't', .size = query_int(res, i, 3),
        .revision = (int)query_int(res, i, 4), .modified = PQgetvalue(res, i, 5),
        .sha256 = PQgetvalue(res, i, 6), .mime = PQgetvalue(res, i, 7),
    };
}

int catalog_ls(struct catalog *catalog, const char *repo, const char *path,
               int (*fn)(const struct catalog_ls_row *row, void *data), void *data)
{
    char after[4096] = "";
    const char *params[] = { repo, path, after };
    PGresult *res;
    int rc = 0;

    /* The entry itself: a directory is listed, a file shown. */
    res = catalog_query_found(catalog,
        "SELECT e.name, e.path, e.kind = 'directory', " QUERY_FILE_COLUMNS
        " FROM entry e JOIN repository r ON r.id = e.repository_id"
        " LEFT JOIN revision v ON v.id = e.current_revision_id"
        " WHERE r.name = $1 AND e.path = $2 AND e.deleted_at IS NULL",
        2, params, &rc);
    if (!res)
        return rc;
    if (PQgetvalue(res, 0, 2)[0] != 't') {
        struct catalog_ls_row row = query_ls_row(res, 0);

        rc = fn(&row, data);
        PQclear(res);
        return rc;
    }
    PQclear(res);

    for (;;) {
        int n;

        res = catalog_query(catalog,
            "SELECT c.name, c.path, c.kind = 'directory', " QUERY_FILE_COLUMNS
            " FROM entry d JOIN repository r ON r.id = d.repository_id"
            " JOIN entry c ON c.parent_id = d.id AND c.deleted_at IS NULL"
            " LEFT JOIN revision v ON v.id = c.current_revision_id"
            " WHERE r.name = $1 AND d.path = $2 AND c.name > $3"
            " ORDER BY c.name LIMIT " QUERY_PAGE,
            3, params, PGRES_TUPLES_OK);
        if (!res)
            return catalog_failure_code(catalog, FR_ERROR);
        n = PQntuples(res);
        for (int i = 0; i < n && rc == 0; i++) {
            struct catalog_ls_row row = query_ls_row(res, i);

            rc = fn(&row, data);
        }
        if (n > 0)
            snprintf(after, sizeof(after), "%s", PQgetvalue(res, n - 1, 0));
        PQclear(res);
        if (rc != 0 || n < atoi(QUERY_PAGE))
            return rc;
    }
}

int catalog_log(struct catalog *catalog, const char *repo, const char *path,
                int (*fn)(const struct catalog_log_row *row, void *data), void *data)
{
    const char *params[] = { repo, path };
    int rc;
    PGresult *res = catalog_query_found(catalog,
        "SELECT v.number, v.commit_id, v.size,"
        "  " CATALOG_SQL_XEP0082("v.mtime") ","
        "  " CATALOG_SQL_XEP0082("v.created_at") ","
        "  encode(v.sha256, 'hex'), v.mime, v.id = e.current_revision_id,"
        "  v.withdrawn_at IS NOT NULL"
        " FROM entry e JOIN repository r ON r.id = e.repository_id"
        " JOIN revision v ON v.entry_id = e.id"
        " WHERE r.name = $1 AND e.path = $2 AND e.kind = 'file'"
        " ORDER BY v.number DESC",
        2, params, &rc);

    if (!res)
        return rc;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        struct catalog_log_row row = {
            .number = (int)query_int(res, i, 0), .commit = PQgetvalue(res, i, 1),
            .size = query_int(res, i, 2), .modified = PQgetvalue(res, i, 3),
            .recorded = PQgetvalue(res, i, 4), .sha256 = PQgetvalue(res, i, 5),
            .mime = PQgetvalue(res, i, 6), .current = PQgetvalue(res, i, 7)[0] == 't',
            .withdrawn = PQgetvalue(res, i, 8)[0] == 't',
        };
        rc = fn(&row, data);
    }
    PQclear(res);
    return rc;
}

int catalog_progress_set(struct catalog *catalog, int64_t repo_id, bool done,
                         int64_t files_total, int64_t files_done, int64_t bytes_total,
                         int64_t bytes_done)
{
    char v[5][24];
    const char *params[] = { v[0], v[1], v[2], v[3], v[4] };
    PGresult *res;

    snprintf(v[0], sizeof(v[0]), "%" PRId64, repo_id);
    snprintf(v[1], sizeof(v[1]), "%" PRId64, files_total);
    snprintf(v[2], sizeof(v[2]), "%" PRId64, files_done);
    snprintf(v[3], sizeof(v[3]), "%" PRId64, bytes_total);
    snprintf(v[4], sizeof(v[4]), "%" PRId64, bytes_done);
    if (done)
        res = catalog_query(catalog, "DELETE FROM indexer_progress WHERE repository_id = $1", 1,
                            params, PGRES_COMMAND_OK);
    else
        res = catalog_query(catalog,
            "INSERT INTO indexer_progress (repository_id, files_total, files_done, bytes_total,"
            "  bytes_done, started_at) VALUES ($1, $2, $3, $4, $5, now())"
            " ON CONFLICT (repository_id) DO UPDATE SET files_total = $2, files_done = $3,"
            "  bytes_total = $4, bytes_done = $5, updated_at = now()",
            5, params, PGRES_COMMAND_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}
