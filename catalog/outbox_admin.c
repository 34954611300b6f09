/*
 * outbox_admin.c - the admin changes that queue publisher work: access
 * lists, withdrawn revisions, republishing; and the parked rows people are
 * shown.  Each change is one transaction ending with a NOTIFY on
 * CATALOG_OUTBOX_CHANNEL, so a running daemon applies it at once.
 */
#include "catalog_internal.h"
#include "index.h"
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int catalog_outbox_parked(struct catalog *catalog, bool parked, int limit,
                          int (*fn)(const struct catalog_parked_row *row, void *data), void *data)
{
    char limit_text[16];
    const char *params[] = { limit_text, parked ? "t" : "f" };
    PGresult *res;
    int rc = 0;

    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    res = catalog_query(catalog,
        "SELECT * FROM (SELECT o.id, r.name, o.action, o.node, o.attempts,"
        "   coalesce(o.last_error, ''),"
        "   " CATALOG_SQL_XEP0082(
                "CASE WHEN $2::boolean THEN o.done_at ELSE o.next_attempt_at END")
        "  FROM outbox o JOIN repository r ON r.id = o.repository_id"
        "  WHERE CASE WHEN $2::boolean THEN o.state = 'parked'"
        "    ELSE o.state = 'pending' AND o.attempts > 0 END"
        "  ORDER BY o.id DESC LIMIT $1::int) p ORDER BY id",
        2, params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        const struct catalog_parked_row row = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .repo = PQgetvalue(res, i, 1),
            .action = PQgetvalue(res, i, 2),
            .node = PQgetvalue(res, i, 3),
            .attempts = atoi(PQgetvalue(res, i, 4)),
            .error = PQgetvalue(res, i, 5),
            .when = PQgetvalue(res, i, 6),
        };
        rc = fn(&row, data);
    }
    PQclear(res);
    return rc;
}

/* Runs `sql` that returns one row (or none: FR_ENOTFOUND) in an open
 * transaction; *first gets its first column's truth. */
static int outbox_admin_step(struct catalog *catalog, const char *sql, int count,
                             const char *const *params, bool *first)
{
    int error;
    PGresult *res = catalog_query_found(catalog, sql, count, params, &error);

    if (!res)
        return error;
    if (first)
        *first = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

static int outbox_notify_commit(struct catalog *catalog)
{
    PGresult *res = catalog_exec(catalog, "SELECT pg_notify('" CATALOG_OUTBOX_CHANNEL "', 'admin')",
                                 PGRES_TUPLES_OK);

    if (!res) {
        int error = catalog_failure_code(catalog, FR_ERROR);

        catalog_rollback(catalog);
        return error;
    }
    PQclear(res);
    return catalog_command(catalog, "COMMIT");
}

/* [local@]domain[/resource], no blanks: enough to catch a slip of the
 * keyboard; the server judges the rest. */
static bool outbox_jid_plausible(const char *jid)
{
    const char *at = strchr(jid, '@');
    const char *slash = strchr(jid, '/');
    const char *domain = at && (!slash || at < slash) ? at + 1 : jid;

    if (!*jid || strlen(jid) > 3071 || strpbrk(jid, " \t\r\n\"'<>&") || jid[0] == '@')
        return false;
    if (at && slash && slash < at)
        at = NULL;
    if (at && strchr(at + 1, '@') && (!slash || strchr(at + 1, '@') < slash))
        return false;
    return *domain && *domain != '/' && domain[0] != '.';
}

int catalog_acl_set(struct catalog *catalog, const char *repo, const char *jid, const char *role,
                    bool grant, bool *changed)
{
    const char *params[] = { repo, jid, role };
    int error;

    *changed = false;
    if (strcmp(role, "owner") != 0 && strcmp(role, "publisher") != 0 &&
        strcmp(role, "member") != 0) {
        catalog_set_error(catalog, "role \"%s\": expected owner, publisher or member", role);
        return FR_EINVAL;
    }
    if (!outbox_jid_plausible(jid)) {
        catalog_set_error(catalog, "\"%s\" is not a JID", jid);
        return FR_EINVAL;
    }
    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    error = outbox_admin_step(catalog,
        grant ? "WITH r AS (SELECT id FROM repository WHERE name = $1),"
                " ins AS (INSERT INTO acl (repository_id, jid, role) SELECT id, $2, $3 FROM r"
                "   ON CONFLICT DO NOTHING RETURNING 1)"
                " SELECT EXISTS (SELECT 1 FROM ins) FROM r"
              : "WITH r AS (SELECT id FROM repository WHERE name = $1),"
                " del AS (DELETE FROM acl USING r WHERE acl.repository_id = r.id"
                "   AND acl.jid = $2 AND acl.role = $3 RETURNING 1)"
                " SELECT EXISTS (SELECT 1 FROM del) FROM r",
        3, params, changed);
    if (error == 0 && *changed)
        error = outbox_admin_step(catalog,
            "INSERT INTO outbox (repository_id, node, action, payload)"
            " SELECT id, name, 'set_affiliations', '{}' FROM repository WHERE name = $1"
            " RETURNING true",
            1, params, NULL);
    if (error != 0) {
        catalog_rollback(catalog);
        return error;
    }
    return outbox_notify_commit(catalog);
}

int catalog_acl_list(struct catalog *catalog, const char *repo,
                     int (*fn)(const struct catalog_acl_row *row, void *data), void *data)
{
    const char *params[] = { repo };
    PGresult *res;
    int rc = 0;

    res = catalog_query(catalog,
                        "SELECT a.jid, a.role FROM repository r"
                        " LEFT JOIN acl a ON a.repository_id = r.id WHERE r.name = $1"
                        " ORDER BY a.jid, a.role",
                        1, params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return FR_ENOTFOUND;
    }
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        const struct catalog_acl_row row = { PQgetvalue(res, i, 0), PQgetvalue(res, i, 1) };

        if (!PQgetisnull(res, i, 0))
            rc = fn(&row, data);
    }
    PQclear(res);
    return rc;
}

int catalog_revision_withdraw(struct catalog *catalog, const char *repo, const char *path,
                              int number, bool *changed)
{
    char number_text[16];
    const char *params[] = { repo, path, number_text };
    int error;

    *changed = false;
    snprintf(number_text, sizeof(number_text), "%d", number);
    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    error = outbox_admin_step(catalog,
        "WITH v AS (SELECT v.id, v.withdrawn_at IS NULL AS live, r.id AS repo_id, e.id AS entry_id"
        "   FROM repository r JOIN entry e ON e.repository_id = r.id AND e.path = $2"
        "   AND e.kind = 'file' JOIN revision v ON v.entry_id = e.id AND v.number = $3::int"
        "   WHERE r.name = $1),"
        " w AS (UPDATE revision SET withdrawn_at = now() FROM v"
        "   WHERE revision.id = v.id AND v.live RETURNING revision.id),"
        " q AS (INSERT INTO outbox (repository_id, node, action, entry_id, revision_id, payload)"
        "   SELECT v.repo_id, $1 || '/' || $2, 'retract_item', v.entry_id, v.id,"
        "     jsonb_build_object('path', $2::text, 'revision', $3::int)"
        "   FROM v WHERE v.live RETURNING 1)"
        " SELECT EXISTS (SELECT 1 FROM q) FROM v",
        3, params, changed);
    if (error != 0) {
        catalog_rollback(catalog);
        return error;
    }
    return outbox_notify_commit(catalog);
}

int catalog_republish(struct catalog *catalog, const char *repo, int64_t *rows)
{
    const char *params[] = { repo };
    PGresult *res;
    int error;

    *rows = 0;
    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    res = catalog_query(catalog, "SELECT id FROM repository WHERE name = $1 FOR UPDATE", 1,
                        params, PGRES_TUPLES_OK);
    if (!res)
        goto fail;
    if (PQntuples(res) == 0) {
        PQclear(res);
        catalog_rollback(catalog);
        return FR_ENOTFOUND;
    }
    PQclear(res);
    /* The rebuild supersedes what was given up on. */
    res = catalog_query(catalog,
        "DELETE FROM outbox o USING repository r WHERE r.name = $1"
        " AND o.repository_id = r.id AND o.state = 'parked'",
        1, params, PGRES_COMMAND_OK);
    if (!res)
        goto fail;
    PQclear(res);
    /* Nodes parents first (path order puts a directory before what it
     * holds), then every live revision in the order it was recorded. */
    res = catalog_query(catalog,
        "WITH nodes AS ("
        "  INSERT INTO outbox (repository_id, node, action, entry_id, payload)"
        "  SELECT r.id, r.name || CASE WHEN e.path = '' THEN '' ELSE '/' || e.path END,"
        "    CASE e.kind WHEN 'directory' THEN 'create_collection' ELSE 'create_leaf' END,"
        "    e.id, jsonb_build_object('path', e.path)"
        "  FROM repository r JOIN entry e ON e.repository_id = r.id"
        "  WHERE r.name = $1 AND e.deleted_at IS NULL ORDER BY e.path"
        "  RETURNING 1)"
        " SELECT count(*) FROM nodes",
        1, params, PGRES_TUPLES_OK);
    if (!res)
        goto fail;
    *rows += strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = catalog_query(catalog,
        "WITH items AS ("
        "  INSERT INTO outbox (repository_id, node, action, entry_id, revision_id, payload)"
        "  SELECT r.id, r.name || '/' || e.path, 'publish_item', e.id, v.id,"
        "    jsonb_build_object('path', e.path, 'revision', v.number)"
        "  FROM repository r JOIN entry e ON e.repository_id = r.id"
        "  JOIN revision v ON v.entry_id = e.id"
        "  WHERE r.name = $1 AND e.deleted_at IS NULL AND e.kind = 'file'"
        "    AND v.withdrawn_at IS NULL ORDER BY v.id"
        "  RETURNING 1)"
        " SELECT count(*) FROM items",
        1, params, PGRES_TUPLES_OK);
    if (!res)
        goto fail;
    *rows += strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return outbox_notify_commit(catalog);
fail:
    error = catalog_failure_code(catalog, FR_ERROR);
    catalog_rollback(catalog);
    return error;
}
