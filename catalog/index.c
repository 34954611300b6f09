/*
 * index.c - SQL of indexing: repositories and the directory listings the
 * scanner compares with the disk.
 *
 * The batch transaction itself is in batch.c.
 */
#include "catalog_internal.h"
#include "index.h"

#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define CATALOG_TREE_PAGE 4096
#define CATALOG_TREE_STR(n) CATALOG_TREE_XSTR(n)
#define CATALOG_TREE_XSTR(n) #n

/* A live entry's parent path in the walk's order: the expression of the
 * index entry_walk (schema/004), which the stream's ORDER BY must repeat
 * exactly for the index to serve it. */
#define SQL_WALK_KEY "translate(CASE WHEN strpos(path, '/') = 0 THEN '' " \
                     "ELSE left(path, length(path) - length(name) - 1) END, '/', E'\\x01')"

struct catalog_tree {
    struct catalog *catalog;         /* borrowed */
    PGresult *page;                  /* the rows fetched last */
    int row;                         /* the next row of page */
    bool pending;                    /* the next page is on its way */
    bool in_transaction;             /* BEGIN ran */
    char dir[4097];                  /* the current row's parent path */
};

int catalog_tree_order(const char *a, const char *b)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

    for (;; x++, y++) {
        unsigned cx = *x == '/' ? 1u : *x, cy = *y == '/' ? 1u : *y;

        if (cx != cy || cx == 0)
            return (int)cx - (int)cy;
    }
}

/* Asks for the next page; it is computed while the caller works. */
static int catalog_tree_request(struct catalog_tree *tree)
{
    int error = catalog_send(tree->catalog, "FETCH " CATALOG_TREE_STR(CATALOG_TREE_PAGE)
                                            " FROM fr_tree");

    tree->pending = error == 0;
    return error;
}

int catalog_tree_open(struct catalog_tree **out, struct catalog *catalog, int64_t repo_id,
                      const char *dir_path)
{
    struct catalog_tree *tree;
    char id[24];
    const char *params[] = { id, dir_path };
    PGresult *res;
    int error;

    *out = NULL;
    if (!(tree = calloc(1, sizeof(*tree)))) {
        catalog_set_error(catalog, "out of memory");
        return FR_ENOMEM;
    }
    tree->catalog = catalog;
    catalog_int64_text(id, sizeof(id), repo_id);
    if ((error = catalog_command(catalog, "BEGIN READ ONLY")) != 0) {
        free(tree);
        return error;
    }
    tree->in_transaction = true;
    /* A subtree is a range of the walk key: the directory itself, then
     * everything under "dir/" ('/' being 0x01, "dir" 0x02 ends it).
     * BINARY: the numbers arrive as they are, nothing to parse per row. */
    res = catalog_query(catalog,
        "DECLARE fr_tree BINARY NO SCROLL CURSOR FOR"
        " SELECT path, name, kind = 'directory', size, mtime_ns, ctime_ns, inode FROM entry"
        " WHERE repository_id = $1 AND deleted_at IS NULL AND parent_id IS NOT NULL"
        "   AND ($2 = '' OR (" SQL_WALK_KEY " >= translate($2, '/', E'\\x01')"
        "                AND " SQL_WALK_KEY " < translate($2, '/', E'\\x01') || E'\\x02'))"
        " ORDER BY repository_id, " SQL_WALK_KEY ", parent_id, name",
        2, params, PGRES_COMMAND_OK);
    if (!res) {
        error = catalog_failure_code(catalog, FR_ERROR);
        catalog_tree_close(tree);
        return error;
    }
    PQclear(res);
    if ((error = catalog_tree_request(tree)) != 0) {
        catalog_tree_close(tree);
        return error;
    }
    *out = tree;
    return 0;
}

/* A bigint of a binary row; NULL (a directory's stat) reads as 0. */
static int64_t catalog_tree_int8(const PGresult *res, int row, int col)
{
    uint64_t be;

    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != (int)sizeof(be))
        return 0;
    memcpy(&be, PQgetvalue(res, row, col), sizeof(be));
    return (int64_t)be64toh(be);
}

int catalog_tree_next(struct catalog_tree *tree, struct catalog_tree_entry *out)
{
    const char *path, *name;
    size_t path_len, name_len;
    PGresult *res = tree->page;
    int row = tree->row;

    if (!res || row >= PQntuples(res)) {
        PQclear(tree->page);
        tree->page = NULL;
        if (!tree->pending)
            return 0;
        tree->pending = false;
        if (!(res = catalog_receive(tree->catalog, PGRES_TUPLES_OK)))
            return catalog_failure_code(tree->catalog, FR_ERROR);
        tree->page = res;
        tree->row = row = 0;
        if (PQntuples(res) == CATALOG_TREE_PAGE && catalog_tree_request(tree) != 0)
            return catalog_failure_code(tree->catalog, FR_ERROR);
        if (PQntuples(res) == 0)
            return 0;
    }
    /* The parent's path is the entry's without its last segment. */
    path = PQgetvalue(res, row, 0);
    name = PQgetvalue(res, row, 1);
    path_len = (size_t)PQgetlength(res, row, 0);
    name_len = (size_t)PQgetlength(res, row, 1);
    if (path_len > name_len && path_len - name_len - 1 < sizeof(tree->dir)) {
        memcpy(tree->dir, path, path_len - name_len - 1);
        tree->dir[path_len - name_len - 1] = '\0';
    } else {
        tree->dir[0] = '\0';
    }
    *out = (struct catalog_tree_entry){
        .dir = tree->dir,
        .stat = {
            .name = name,
            .is_dir = PQgetlength(res, row, 2) == 1 && PQgetvalue(res, row, 2)[0] == 1,
            .size = catalog_tree_int8(res, row, 3),
            .mtime_ns = catalog_tree_int8(res, row, 4),
            .ctime_ns = catalog_tree_int8(res, row, 5),
            .inode = catalog_tree_int8(res, row, 6),
        },
    };
    tree->row = row + 1;
    return 1;
}

void catalog_tree_close(struct catalog_tree *tree)
{
    if (!tree)
        return;
    PQclear(tree->page);
    if (tree->pending && tree->catalog->conn) {
        /* Drained, so the connection is free again; a failure here says
         * nothing the caller needs. */
        PGresult *res;

        while ((res = PQgetResult(tree->catalog->conn)) != NULL)
            PQclear(res);
    }
    if (tree->in_transaction)
        catalog_rollback(tree->catalog); /* read only: nothing to keep */
    free(tree);
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
