/*
 * index.c - SQL of indexing: repositories and the directory listings the
 * scanner compares with the disk.
 *
 * The batch transaction itself is in batch.c.
 */
#include "catalog_internal.h"
#include "index.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void catalog_int64_text(char *out, size_t len, int64_t v)
{
    snprintf(out, len, "%" PRId64, v);
}

int catalog_repository_upsert(struct catalog *catalog, int64_t *out_id,
                              const struct catalog_repository_spec *spec)
{
    char members[16384];
    size_t len = 0;
    const char *params[6];
    PGresult *res = NULL;
    char id[24];
    int error;

    /* The members as a text[] literal: {"a@b","c@d"}. */
    len += (size_t)snprintf(members + len, sizeof(members) - len, "{");
    for (size_t i = 0; i < spec->members_count && len < sizeof(members); i++) {
        len += (size_t)snprintf(members + len, sizeof(members) - len, "%s\"", i ? "," : "");
        for (const char *c = spec->members[i]; *c && len + 3 < sizeof(members); c++) {
            if (*c == '"' || *c == '\\')
                members[len++] = '\\';
            members[len++] = *c;
        }
        len += (size_t)snprintf(members + len, sizeof(members) - len, "\"");
    }
    if (len + 2 >= sizeof(members)) {
        catalog_set_error(catalog, "repository %s: member list too long", spec->name);
        return FR_EINVAL;
    }
    snprintf(members + len, sizeof(members) - len, "}");

    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    params[0] = spec->name;
    params[1] = spec->path;
    params[2] = spec->title;
    params[3] = spec->description;
    params[4] = spec->whitelist ? "whitelist" : "open";
    /* xmax = 0 tells a fresh insert from an update. */
    res = catalog_query(catalog,
        "WITH up AS ("
        "  INSERT INTO repository (name, path, title, description, access)"
        "  VALUES ($1, $2, $3, $4, $5)"
        "  ON CONFLICT (name) DO UPDATE SET path = $2, title = $3, description = $4,"
        "    access = $5, updated_at = now()"
        "  WHERE (repository.path, repository.title, repository.description, repository.access)"
        "    IS DISTINCT FROM ($2, $3, $4, $5)"
        "  RETURNING id, xmax = 0 AS created)"
        " SELECT id, created, true FROM up"
        " UNION ALL SELECT id, false, false FROM repository WHERE name = $1"
        "   AND NOT EXISTS (SELECT 1 FROM up)",
        5, params, PGRES_TUPLES_OK);
    if (!res || PQntuples(res) != 1)
        goto fail;
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    bool created = PQgetvalue(res, 0, 1)[0] == 't';
    bool changed = PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    res = NULL;

    params[0] = id;
    params[1] = spec->name;
    if (created) {
        res = catalog_query(catalog,
            "WITH root AS ("
            "  INSERT INTO entry (repository_id, parent_id, name, path, kind)"
            "  VALUES ($1, NULL, '', '', 'directory') RETURNING id)"
            " INSERT INTO outbox (repository_id, node, action, entry_id, payload)"
            " SELECT $1, $2, 'create_collection', id, jsonb_build_object('path', '') FROM root",
            2, params, PGRES_COMMAND_OK);
    } else if (changed) {
        res = catalog_query(catalog,
            "INSERT INTO outbox (repository_id, node, action, entry_id, payload)"
            " SELECT $1, $2, 'configure_node', id, jsonb_build_object('path', '')"
            " FROM entry WHERE repository_id = $1 AND parent_id IS NULL",
            2, params, PGRES_COMMAND_OK);
    }
    if ((created || changed) && !res)
        goto fail;
    PQclear(res);

    /* The whitelist: exactly the configured members; a change is news for
     * the publisher (node affiliations). */
    params[2] = members;
    res = catalog_query(catalog,
        "WITH gone AS ("
        "  DELETE FROM acl WHERE repository_id = $1 AND role = 'member'"
        "  AND jid <> ALL ($3::text[]) RETURNING jid),"
        " came AS ("
        "  INSERT INTO acl (repository_id, jid, role)"
        "  SELECT $1, m, 'member' FROM unnest($3::text[]) m"
        "  ON CONFLICT DO NOTHING RETURNING jid)"
        " INSERT INTO outbox (repository_id, node, action, payload)"
        " SELECT $1, $2, 'set_affiliations', '{}'"
        " WHERE EXISTS (SELECT 1 FROM gone) OR EXISTS (SELECT 1 FROM came)",
        3, params, PGRES_COMMAND_OK);
    if (!res)
        goto fail;
    PQclear(res);
    res = catalog_query(catalog, "SELECT pg_notify('" CATALOG_OUTBOX_CHANNEL "', $1)", 1,
                        params, PGRES_TUPLES_OK);
    if (!res)
        goto fail;
    PQclear(res);
    if ((error = catalog_command(catalog, "COMMIT")) != 0)
        return error;
    *out_id = strtoll(id, NULL, 10);
    return 0;

fail:
    PQclear(res);
    error = catalog_failure_code(catalog, FR_ERROR);
    catalog_rollback(catalog);
    return error;
}

int catalog_dir_children(struct catalog *catalog, int64_t repo_id, const char *dir_path,
                         int (*fn)(const struct catalog_entry_stat *entry, void *data),
                         void *data)
{
    char id[24];
    const char *params[] = { id, dir_path };
    PGresult *res;
    int rc = 0;

    catalog_int64_text(id, sizeof(id), repo_id);
    /* The directory itself comes first (a row with a NULL name) so that a
     * missing directory is told apart from an empty one. */
    res = catalog_query_prepared(catalog, CATALOG_STMT_DIR_CHILDREN,
        "SELECT NULL, NULL, NULL, NULL, NULL, NULL FROM entry"
        "  WHERE repository_id = $1 AND path = $2 AND kind = 'directory'"
        "  AND deleted_at IS NULL"
        " UNION ALL (SELECT c.name, c.kind = 'directory', c.size, c.mtime_ns, c.ctime_ns, c.inode"
        "  FROM entry d JOIN entry c ON c.parent_id = d.id AND c.deleted_at IS NULL"
        "  WHERE d.repository_id = $1 AND d.path = $2 AND d.deleted_at IS NULL"
        "  ORDER BY c.name)",
        2, params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    if (PQntuples(res) == 0 || !PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return FR_ENOTFOUND;
    }
    for (int row = 1; row < PQntuples(res) && rc == 0; row++) {
        struct catalog_entry_stat e = {
            .name = PQgetvalue(res, row, 0),
            .is_dir = PQgetvalue(res, row, 1)[0] == 't',
            .size = strtoll(PQgetvalue(res, row, 2), NULL, 10),
            .mtime_ns = strtoll(PQgetvalue(res, row, 3), NULL, 10),
            .ctime_ns = strtoll(PQgetvalue(res, row, 4), NULL, 10),
            .inode = strtoll(PQgetvalue(res, row, 5), NULL, 10),
        };
        rc = fn(&e, data);
    }
    PQclear(res);
    return rc;
}

int catalog_entry_lookup(struct catalog *catalog, int64_t repo_id, const char *path,
                         struct catalog_entry_stat *out)
{
    char id[24];
    const char *params[] = { id, path };
    PGresult *res;
    int error;

    catalog_int64_text(id, sizeof(id), repo_id);
    res = catalog_query_found(catalog,
                              "SELECT kind = 'directory', size, mtime_ns, ctime_ns, inode"
                              " FROM entry WHERE repository_id = $1 AND path = $2"
                              " AND deleted_at IS NULL",
                              2, params, &error);
    if (!res)
        return error;
    *out = (struct catalog_entry_stat){
        .is_dir = PQgetvalue(res, 0, 0)[0] == 't',
        .size = strtoll(PQgetvalue(res, 0, 1), NULL, 10),
        .mtime_ns = strtoll(PQgetvalue(res, 0, 2), NULL, 10),
        .ctime_ns = strtoll(PQgetvalue(res, 0, 3), NULL, 10),
        .inode = strtoll(PQgetvalue(res, 0, 4), NULL, 10),
    };
    PQclear(res);
    return 0;
}
