/*
 * fis.c - the catalog's side of XEP-0329 listings.
 *
 * A page is one prepared statement: the directory's size, the position of
 * the page's key and whether the key exists (scalar subqueries), joined with
 * the page itself (keyset on the entry_listing_kind index), so a request
 * costs one round trip to PostgreSQL.  Pages before a key are read
 * backwards and handed out in listing order.
 */
#include "catalog_internal.h"
#include "fis.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Who may see repository r (with $A, $B the requester's bare and full JID). */
#define FIS_VISIBLE(a, b) \
    "(r.access = 'open' OR EXISTS (SELECT 1 FROM acl a WHERE a.repository_id = r.id" \
    " AND a.jid IN (" a ", " b ")))"

/* Base64 without the line breaks PostgreSQL puts after 76 characters. */
#define FIS_B64(col) "replace(encode(" col ", 'base64'), E'\\n', '')"

/* An entry c and its current revision v, as struct catalog_fis_entry. */
#define FIS_ENTRY_COLUMNS \
    "c.kind = 'directory', c.name, v.id IS NOT NULL, v.size," \
    " to_char(v.mtime AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), v.mime," \
    " v.description, " FIS_B64("v.sha256") ", " FIS_B64("v.sha1") ", " FIS_B64("v.md5") ", " \
    FIS_B64("v.sha512")

#define FIS_LIVE "parent_id = $1 AND deleted_at IS NULL"

/* The counts for a page: entries, entries up to the key, the key found. */
#define FIS_COUNTS(pos, found) \
    "SELECT k.n, k.pos, k.found, p.* FROM (SELECT" \
    " (SELECT count(*) FROM entry WHERE " FIS_LIVE ") AS n, " pos " AS pos, " found " AS found" \
    ") k LEFT JOIN LATERAL (SELECT " FIS_ENTRY_COLUMNS \
    " FROM entry c LEFT JOIN revision v ON v.id = c.current_revision_id" \
    " WHERE c.parent_id = $1 AND c.deleted_at IS NULL"

#define FIS_KEY_POS(op) \
    "(SELECT count(*) FROM entry WHERE " FIS_LIVE " AND (kind, name) " op " ($2::text, $3::text))"
#define FIS_KEY_FOUND \
    "EXISTS (SELECT 1 FROM entry WHERE " FIS_LIVE " AND kind = $2::text AND name = $3::text)"

static const struct {
    enum catalog_statement stmt; /* its prepared name */
    int params;                  /* how many */
    const char *sql;             /* its text */
} fis_page_sql[] = {
    [CATALOG_FIS_START] = { CATALOG_STMT_FIS_START, 2,
        FIS_COUNTS("0", "true")
        " ORDER BY c.kind, c.name LIMIT $2) p ON true" },
    [CATALOG_FIS_AFTER] = { CATALOG_STMT_FIS_AFTER, 4,
        FIS_COUNTS(FIS_KEY_POS("<="), FIS_KEY_FOUND)
        " AND (c.kind, c.name) > ($2::text, $3::text)"
        " ORDER BY c.kind, c.name LIMIT $4) p ON true" },
    [CATALOG_FIS_BEFORE] = { CATALOG_STMT_FIS_BEFORE, 4,
        FIS_COUNTS(FIS_KEY_POS("<"), FIS_KEY_FOUND)
        " AND (c.kind, c.name) < ($2::text, $3::text)"
        " ORDER BY c.kind DESC, c.name DESC LIMIT $4) p ON true" },
    [CATALOG_FIS_END] = { CATALOG_STMT_FIS_END, 2,
        FIS_COUNTS("0", "true")
        " ORDER BY c.kind DESC, c.name DESC LIMIT $2) p ON true" },
    [CATALOG_FIS_INDEX] = { CATALOG_STMT_FIS_INDEX, 3,
        FIS_COUNTS("0", "true")
        " ORDER BY c.kind, c.name OFFSET $3 LIMIT $2) p ON true" },
};

static int64_t fis_int(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Reads the entry whose columns start at `col`. */
static struct catalog_fis_entry fis_entry(PGresult *res, int row, int col)
{
    return (struct catalog_fis_entry){
        .is_dir = PQgetvalue(res, row, col)[0] == 't',
        .name = PQgetvalue(res, row, col + 1),
        .has_revision = PQgetvalue(res, row, col + 2)[0] == 't',
        .size = fis_int(res, row, col + 3),
        .date = PQgetvalue(res, row, col + 4),
        .mime = PQgetvalue(res, row, col + 5),
        .description = PQgetvalue(res, row, col + 6),
        .sha256 = PQgetvalue(res, row, col + 7),
        .sha1 = PQgetvalue(res, row, col + 8),
        .md5 = PQgetvalue(res, row, col + 9),
        .sha512 = PQgetvalue(res, row, col + 10),
    };
}

int catalog_fis_repos(struct catalog *catalog, const struct catalog_fis_requester *who,
                      int (*fn)(const struct catalog_fis_repo *repo, void *data), void *data)
{
    const char *params[] = { who->bare, who->full };
    PGresult *res = catalog_query_prepared(catalog, CATALOG_STMT_FIS_REPOS,
        "SELECT r.name, r.title, r.description, coalesce(r.pubsub_node, r.name)"
        " FROM repository r WHERE " FIS_VISIBLE("$1", "$2") " ORDER BY r.name",
        2, params, PGRES_TUPLES_OK);
    int rc = 0;

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        struct catalog_fis_repo repo = {
            .name = PQgetvalue(res, i, 0), .title = PQgetvalue(res, i, 1),
            .description = PQgetvalue(res, i, 2), .node = PQgetvalue(res, i, 3),
        };

        rc = fn(&repo, data);
    }
    PQclear(res);
    return rc;
}

int catalog_fis_resolve(struct catalog *catalog, const struct catalog_fis_requester *who,
                        const char *repo, const char *path, int64_t *out_id, bool *out_is_dir)
{
    const char *params[] = { repo, path, who->bare, who->full };
    PGresult *res = catalog_query_prepared(catalog, CATALOG_STMT_FIS_RESOLVE,
        "SELECT e.id, e.kind = 'directory' FROM repository r"
        " JOIN entry e ON e.repository_id = r.id"
        " WHERE r.name = $1 AND e.path = $2 AND e.deleted_at IS NULL"
        " AND " FIS_VISIBLE("$3", "$4"),
        4, params, PGRES_TUPLES_OK);
    int rc = FR_ENOTFOUND;

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    if (PQntuples(res) == 1) {
        *out_id = fis_int(res, 0, 0);
        *out_is_dir = PQgetvalue(res, 0, 1)[0] == 't';
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int catalog_fis_file(struct catalog *catalog, int64_t id,
                     int (*fn)(const struct catalog_fis_entry *entry, void *data), void *data)
{
    char idtext[24];
    const char *params[] = { idtext };
    PGresult *res;
    int rc = FR_ENOTFOUND;

    snprintf(idtext, sizeof(idtext), "%" PRId64, id);
    res = catalog_query_prepared(catalog, CATALOG_STMT_FIS_FILE,
        "SELECT " FIS_ENTRY_COLUMNS " FROM entry c"
        " LEFT JOIN revision v ON v.id = c.current_revision_id"
        " WHERE c.id = $1 AND c.deleted_at IS NULL",
        1, params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    if (PQntuples(res) == 1) {
        struct catalog_fis_entry entry = fis_entry(res, 0, 0);

        rc = fn(&entry, data);
    }
    PQclear(res);
    return rc;
}

int catalog_fis_children(struct catalog *catalog, int64_t dir_id,
                         const struct catalog_fis_page *page,
                         int (*fn)(const struct catalog_fis_entry *entry, void *data),
                         void *data, struct catalog_fis_page_info *info)
{
    char idtext[24], max[24], index[24];
    const char *params[4] = { idtext, max, NULL, NULL };
    bool keyed = page->from == CATALOG_FIS_AFTER || page->from == CATALOG_FIS_BEFORE;
    bool backwards = page->from == CATALOG_FIS_BEFORE || page->from == CATALOG_FIS_END;
    PGresult *res;
    int64_t pos;
    int n, rc = 0;

    snprintf(idtext, sizeof(idtext), "%" PRId64, dir_id);
    snprintf(max, sizeof(max), "%d", page->max);
    if (keyed) {
        params[1] = page->key_is_dir ? "directory" : "file";
        params[2] = page->key_name;
        params[3] = max;
    } else if (page->from == CATALOG_FIS_INDEX) {
        snprintf(index, sizeof(index), "%" PRId64, page->index);
        params[2] = index;
    }
    res = catalog_query_prepared(catalog, fis_page_sql[page->from].stmt,
                                 fis_page_sql[page->from].sql, fis_page_sql[page->from].params,
                                 params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    if (PQntuples(res) < 1 || PQgetvalue(res, 0, 2)[0] != 't') {
        PQclear(res);
        return FR_ENOTFOUND;
    }
    /* One row with NULL entry columns when the page is empty. */
    n = PQgetisnull(res, 0, 3) ? 0 : PQntuples(res);
    info->count = fis_int(res, 0, 0);
    info->rows = n;
    pos = fis_int(res, 0, 1);
    switch (page->from) {
    case CATALOG_FIS_START:
        info->first_index = 0;
        break;
    case CATALOG_FIS_AFTER:
        info->first_index = pos;
        break;
    case CATALOG_FIS_BEFORE:
        info->first_index = pos - n;
        break;
    case CATALOG_FIS_END:
        info->first_index = info->count - n;
        break;
    case CATALOG_FIS_INDEX:
        info->first_index = page->index;
        break;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        struct catalog_fis_entry entry = fis_entry(res, backwards ? n - 1 - i : i, 3);

        rc = fn(&entry, data);
    }
    PQclear(res);
    return rc;
}
