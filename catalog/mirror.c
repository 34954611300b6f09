/*
 * mirror.c - SQL of the admins' side of mirrors: add, list, disable,
 * enable, remove, check now; and the advertised copies of a revision.  The
 * checker's side is in mirror_check.c.
 */
#include "catalog_internal.h"
#include "index.h"
#include "mirror.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIRROR_TS(col) "coalesce(" CATALOG_SQL_XEP0082(col) ", '')"

/* Queues publish_item rows for every live revision with an advertised copy
 * on the mirrors chosen by `where` (SQL over m, parameters as given) and
 * returns how many through *rows.  Runs inside the caller's transaction. */
static int mirror_queue_republish(struct catalog *catalog, const char *where, int count,
                                  const char *const *params, int64_t *rows)
{
    char sql[2048];
    PGresult *res;

    snprintf(sql, sizeof(sql),
        "WITH q AS (INSERT INTO outbox (repository_id, node, action, entry_id, revision_id,"
        "   payload)"
        " SELECT DISTINCT ON (v.id) r.id, r.name || '/' || e.path, 'publish_item', e.id, v.id,"
        "   jsonb_build_object('path', e.path, 'revision', v.number)"
        " FROM mirror m JOIN repository r ON r.id = m.repository_id"
        " JOIN mirror_copy c ON c.mirror_id = m.id AND c.state = 'verified'"
        " JOIN revision v ON v.id = c.revision_id AND v.withdrawn_at IS NULL"
        " JOIN entry e ON e.id = v.entry_id AND e.deleted_at IS NULL"
        " WHERE m.state = 'ok' AND (%s) ORDER BY v.id RETURNING 1)"
        " SELECT count(*) FROM q", where);
    res = catalog_query(catalog, sql, count, params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    *rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

/* NOTIFYs the checker (and the publisher when rows were queued), commits. */
static int mirror_notify_commit(struct catalog *catalog, bool outbox)
{
    PGresult *res = catalog_exec(catalog,
        outbox ? "SELECT pg_notify('" CATALOG_MIRROR_CHANNEL "', 'admin'),"
                 " pg_notify('" CATALOG_OUTBOX_CHANNEL "', 'mirror')"
               : "SELECT pg_notify('" CATALOG_MIRROR_CHANNEL "', 'admin')",
        PGRES_TUPLES_OK);

    if (!res) {
        int error = catalog_failure_code(catalog, FR_ERROR);

        catalog_rollback(catalog);
        return error;
    }
    PQclear(res);
    return catalog_command(catalog, "COMMIT");
}

int catalog_mirror_add(struct catalog *catalog, const struct catalog_mirror_new *mirror,
                       int64_t *id)
{
    const char *params[] = { mirror->repo, mirror->url, mirror->type, mirror->description,
                             mirror->username, mirror->password_file,
                             mirror->credentials_public ? "t" : "f" };
    PGresult *res;
    int error;

    *id = 0;
    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    res = catalog_query_found(catalog, "SELECT id FROM repository WHERE name = $1", 1, params,
                              &error);
    if (!res)
        goto fail;
    PQclear(res);
    res = catalog_query(catalog,
        "INSERT INTO mirror (repository_id, url, type, description, username, password_file,"
        "   credentials_public, state_changed_at, state_reason)"
        " SELECT id, $2, $3, $4, $5, $6, $7::boolean, now(), 'added' FROM repository"
        " WHERE name = $1 ON CONFLICT (repository_id, url) DO NOTHING RETURNING id",
        7, params, PGRES_TUPLES_OK);
    if (!res) {
        error = catalog_failure_code(catalog, FR_EINVAL);
        goto fail;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        catalog_set_error(catalog, "%s is already a mirror of %s", mirror->url, mirror->repo);
        error = FR_EINVAL;
        goto fail;
    }
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return mirror_notify_commit(catalog, false);
fail:
    catalog_rollback(catalog);
    return error;
}

int catalog_mirror_list(struct catalog *catalog, const char *repo,
                        int (*fn)(const struct catalog_mirror_row *row, void *data), void *data)
{
    const char *params[] = { repo };
    PGresult *res;
    int rc = 0, error;

    if (repo) {
        res = catalog_query_found(catalog, "SELECT 1 FROM repository WHERE name = $1", 1,
                                  params, &error);
        if (!res)
            return error;
        PQclear(res);
    }
    res = catalog_query(catalog,
        "SELECT m.id, r.name, m.url, m.type, m.description, coalesce(m.username, ''),"
        "  m.credentials_public, m.state, coalesce(m.state_reason, ''),"
        "  " MIRROR_TS("m.state_changed_at") ", " MIRROR_TS("m.last_check_at") ","
        "  coalesce(m.last_error, ''), m.consecutive_failures,"
        "  count(c.*) FILTER (WHERE c.state = 'verified'),"
        "  count(c.*) FILTER (WHERE c.state = 'pending'),"
        "  count(c.*) FILTER (WHERE c.state IN ('missing', 'mismatch', 'error'))"
        " FROM mirror m JOIN repository r ON r.id = m.repository_id"
        " LEFT JOIN mirror_copy c ON c.mirror_id = m.id"
        " WHERE $1::text IS NULL OR r.name = $1"
        " GROUP BY m.id, r.name ORDER BY r.name, m.id",
        1, params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        const struct catalog_mirror_row row = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .repo = PQgetvalue(res, i, 1),
            .url = PQgetvalue(res, i, 2),
            .type = PQgetvalue(res, i, 3),
            .description = PQgetvalue(res, i, 4),
            .username = PQgetvalue(res, i, 5),
            .credentials_public = PQgetvalue(res, i, 6)[0] == 't',
            .state = PQgetvalue(res, i, 7),
            .state_reason = PQgetvalue(res, i, 8),
            .state_changed_at = PQgetvalue(res, i, 9),
            .last_check_at = PQgetvalue(res, i, 10),
            .last_error = PQgetvalue(res, i, 11),
            .consecutive_failures = atoi(PQgetvalue(res, i, 12)),
            .verified = strtoll(PQgetvalue(res, i, 13), NULL, 10),
            .pending = strtoll(PQgetvalue(res, i, 14), NULL, 10),
            .failed = strtoll(PQgetvalue(res, i, 15), NULL, 10),
        };
        rc = fn(&row, data);
    }
    PQclear(res);
    return rc;
}

/* SQL over m: the mirror(s) an admin names; $1 repository, $2 id or URL
 * (NULL: all of the repository's). */
#define MIRROR_NAMED \
    "m.repository_id = (SELECT id FROM repository WHERE name = $1)" \
    " AND ($2::text IS NULL OR m.id::text = $2 OR m.url = $2 OR m.url = $2 || '/')"

int catalog_mirror_apply(struct catalog *catalog, const char *repo, const char *mirror,
                         enum catalog_mirror_action action, int64_t *count)
{
    const char *params[] = { repo, mirror };
    int64_t queued = 0;
    PGresult *res;
    const char *sql = NULL;
    int error;

    *count = 0;
    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    res = catalog_query_found(catalog,
                              "SELECT count(m.id) FROM repository r"
                              " LEFT JOIN mirror m ON " MIRROR_NAMED " WHERE r.name = $1",
                              2, params, &error);
    if (!res)
        goto fail;
    if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        PQclear(res);
        catalog_set_error(catalog, "no such mirror");
        error = FR_ENOTFOUND;
        goto fail;
    }
    PQclear(res);
    /* Items showing a mirror that goes away are republished without it:
     * queued before the change, while the copies still say which. */
    if ((action == CATALOG_MIRROR_DISABLE || action == CATALOG_MIRROR_REMOVE) &&
        (error = mirror_queue_republish(catalog, MIRROR_NAMED, 2, params, &queued)) != 0)
        goto fail;
    switch (action) {
    case CATALOG_MIRROR_DISABLE:
        sql = "UPDATE mirror m SET state = 'disabled', state_reason = 'disabled by an admin',"
              " state_changed_at = now(), updated_at = now()"
              " WHERE " MIRROR_NAMED " AND m.state <> 'disabled'";
        break;
    case CATALOG_MIRROR_ENABLE:
        sql = "UPDATE mirror m SET state = 'new', state_reason = 'enabled by an admin',"
              " state_changed_at = now(), consecutive_failures = 0, next_check_at = NULL,"
              " updated_at = now() WHERE " MIRROR_NAMED " AND m.state = 'disabled'";
        break;
    case CATALOG_MIRROR_REMOVE:
        sql = "DELETE FROM mirror m WHERE " MIRROR_NAMED;
        break;
    case CATALOG_MIRROR_CHECK:
        sql = "UPDATE mirror m SET next_check_at = NULL"
              " WHERE " MIRROR_NAMED " AND m.state <> 'disabled'";
        break;
    }
    res = catalog_query(catalog, sql, 2, params, PGRES_COMMAND_OK);
    if (!res) {
        error = catalog_failure_code(catalog, FR_ERROR);
        goto fail;
    }
    *count = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (action == CATALOG_MIRROR_CHECK) {
        /* Now means every copy, verified ones too, not only the round's. */
        res = catalog_query(catalog,
            "UPDATE mirror_copy c SET checked_at = NULL FROM mirror m"
            " WHERE c.mirror_id = m.id AND " MIRROR_NAMED,
            2, params, PGRES_COMMAND_OK);
        if (!res) {
            error = catalog_failure_code(catalog, FR_ERROR);
            goto fail;
        }
        PQclear(res);
    }
    return mirror_notify_commit(catalog, queued > 0);
fail:
    catalog_rollback(catalog);
    return error;
}

int catalog_mirror_copies(struct catalog *catalog, int64_t revision_id,
                          int (*fn)(const struct catalog_mirror_copy_row *row, void *data),
                          void *data)
{
    char id[24];
    const char *params[] = { id };
    PGresult *res;
    int rc = 0;

    catalog_int64_text(id, sizeof(id), revision_id);
    res = catalog_query(catalog,
        "SELECT m.type, m.url, m.description FROM mirror_copy c"
        " JOIN mirror m ON m.id = c.mirror_id"
        " WHERE c.revision_id = $1::bigint AND c.state = 'verified' AND m.state = 'ok'"
        " ORDER BY m.id",
        1, params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        const struct catalog_mirror_copy_row row = { PQgetvalue(res, i, 0),
                                                     PQgetvalue(res, i, 1),
                                                     PQgetvalue(res, i, 2) };
        rc = fn(&row, data);
    }
    PQclear(res);
    return rc;
}

int catalog_mirror_revision(struct catalog *catalog, const char *repo, const char *path,
                            int number,
                            int (*fn)(const struct catalog_revision_info *info, void *data),
                            void *data)
{
    char number_text[16];
    const char *params[] = { repo, path, number_text };
    PGresult *res;
    int error;

    snprintf(number_text, sizeof(number_text), "%d", number);
    res = catalog_query_found(catalog,
        "SELECT v.id, v.number, v.size,"
        "  " CATALOG_SQL_XEP0082("v.mtime") ", v.description,"
        "  encode(v.sha256, 'hex'), encode(v.sha1, 'hex'), encode(v.md5, 'hex'),"
        "  encode(v.sha512, 'hex')"
        " FROM repository r JOIN entry e ON e.repository_id = r.id AND e.path = $2"
        "   AND e.kind = 'file'"
        " JOIN revision v ON v.entry_id = e.id AND v.withdrawn_at IS NULL"
        "   AND CASE WHEN $3::int = 0 THEN v.id = e.current_revision_id AND e.deleted_at IS NULL"
        "       ELSE v.number = $3::int END"
        " WHERE r.name = $1",
        3, params, &error);
    if (!res)
        return error;
    {
        const struct catalog_revision_info info = {
            .id = strtoll(PQgetvalue(res, 0, 0), NULL, 10),
            .number = atoi(PQgetvalue(res, 0, 1)),
            .size = strtoll(PQgetvalue(res, 0, 2), NULL, 10),
            .modified = PQgetvalue(res, 0, 3),
            .description = PQgetvalue(res, 0, 4),
            .sha256_hex = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5),
            .sha1_hex = PQgetisnull(res, 0, 6) ? NULL : PQgetvalue(res, 0, 6),
            .md5_hex = PQgetisnull(res, 0, 7) ? NULL : PQgetvalue(res, 0, 7),
            .sha512_hex = PQgetisnull(res, 0, 8) ? NULL : PQgetvalue(res, 0, 8),
        };

        error = fn(&info, data);
    }
    PQclear(res);
    return error;
}
