/*
 * fis.c - the catalog's side of XEP-0329 listings.
 *
 * A page is one prepared statement: the directory's size and version (from
 * entry_listing_stats, kept by triggers), the position of the page's key
 * and whether the key exists (scalar subqueries), joined with the page
 * itself (keyset on the entry_listing_kind index), so a request costs one
 * round trip to PostgreSQL.  Positions are counted from a base key the
 * caller knows the rank of (a checkpoint), never from the directory's
 * start, so they cost the distance to the nearest checkpoint.  Pages before
 * a key are read backwards and handed out in listing order.
 */
#include "catalog_internal.h"
#include "fis.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIS_VISIBLE(a, b) CATALOG_SQL_READABLE(a, b)

/* Base64 without the line breaks PostgreSQL puts after 76 characters. */
#define FIS_B64(col) "replace(encode(" col ", 'base64'), E'\\n', '')"

/* An entry c and its current revision v, as struct catalog_fis_entry. */
#define FIS_ENTRY_COLUMNS \
    "c.kind = 'directory', c.name, v.id IS NOT NULL, v.size," \
    " " CATALOG_SQL_XEP0082("v.mtime") ", v.mime," \
    " v.description, " FIS_B64("v.sha256") ", " FIS_B64("v.sha1") ", " FIS_B64("v.md5") ", " \
    FIS_B64("v.sha512")

#define FIS_LIVE "parent_id = $1 AND deleted_at IS NULL"

/* A directory's live entries and their version, from entry_listing_stats. */
#define FIS_STAT(col) \
    "coalesce((SELECT " col " FROM entry_listing_stats WHERE parent_id = $1), 0)"

/* The counts for a page (entries, entries before the page's key, whether
 * the key exists, the version they belong to) joined with the page. */
#define FIS_COUNTS(pos, found) \
    "SELECT k.n, k.pos, k.found, k.version, p.* FROM (SELECT " FIS_STAT("live") " AS n, " \
    pos " AS pos, " found " AS found, " FIS_STAT("version") " AS version" \
    ") k LEFT JOIN LATERAL (SELECT " FIS_ENTRY_COLUMNS \
    " FROM entry c LEFT JOIN revision v ON v.id = c.current_revision_id" \
    " WHERE c.parent_id = $1 AND c.deleted_at IS NULL"

/* Entries from the base key ($5, $6; rank $7) up to the page's key: at
 * most $8, the distance between two of the caller's checkpoints.  Written
 * as an ordered walk from the base with a limit, which the planner always
 * takes through the index: a range between two row comparisons it would
 * misjudge as a large part of the table and scan whole. */
#define FIS_KEY_POS(op) \
    "($7::bigint + (SELECT count(*) FROM (SELECT kind, name FROM entry WHERE " FIS_LIVE \
    " AND (kind, name) >= ($5::text, $6::text) ORDER BY kind, name LIMIT $8) w" \
    " WHERE (w.kind, w.name) " op " ($3::text, $4::text)))"
#define FIS_KEY_FOUND \
    "EXISTS (SELECT 1 FROM entry WHERE " FIS_LIVE " AND kind = $3::text AND name = $4::text)"

static const struct {
    enum catalog_statement stmt; /* its prepared name */
    int params;                  /* how many */
    const char *sql;             /* its text */
} fis_page_sql[] = {
    [CATALOG_FIS_START] = { CATALOG_STMT_FIS_START, 2,
        FIS_COUNTS("0", "true")
        " ORDER BY c.kind, c.name LIMIT $2) p ON true" },
    [CATALOG_FIS_AFTER] = { CATALOG_STMT_FIS_AFTER, 8,
        FIS_COUNTS(FIS_KEY_POS("<="), FIS_KEY_FOUND)
        " AND (c.kind, c.name) > ($3::text, $4::text)"
        " ORDER BY c.kind, c.name LIMIT $2) p ON true" },
    [CATALOG_FIS_BEFORE] = { CATALOG_STMT_FIS_BEFORE, 8,
        FIS_COUNTS(FIS_KEY_POS("<"), FIS_KEY_FOUND)
        " AND (c.kind, c.name) < ($3::text, $4::text)"
        " ORDER BY c.kind DESC, c.name DESC LIMIT $2) p ON true" },
    [CATALOG_FIS_END] = { CATALOG_STMT_FIS_END, 2,
        FIS_COUNTS("0", "true")
        " ORDER BY c.kind DESC, c.name DESC LIMIT $2) p ON true" },
    [CATALOG_FIS_INDEX] = { CATALOG_STMT_FIS_INDEX, 5,
        FIS_COUNTS("0", "true")
        " AND (c.kind, c.name) >= ($3::text, $4::text)"
        " ORDER BY c.kind, c.name OFFSET $5 LIMIT $2) p ON true" },
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

int catalog_fis_dir_stats(struct catalog *catalog, int64_t dir_id, int64_t *count,
                          int64_t *version)
{
    char idtext[24];
    const char *params[] = { idtext };
    PGresult *res;

    snprintf(idtext, sizeof(idtext), "%" PRId64, dir_id);
    res = catalog_query_prepared(catalog, CATALOG_STMT_FIS_STATS,
                                 "SELECT " FIS_STAT("live") ", " FIS_STAT("version"), 1, params,
                                 PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    *count = fis_int(res, 0, 0);
    *version = fis_int(res, 0, 1);
    PQclear(res);
    return 0;
}

int catalog_fis_checkpoints(struct catalog *catalog, int64_t dir_id, int every,
                            int (*fn)(bool is_dir, const char *name, void *data), void *data,
                            int64_t *version)
{
    char idtext[24], everytext[24];
    const char *params[] = { idtext, everytext };
    PGresult *res;
    int rc = 0;

    snprintf(idtext, sizeof(idtext), "%" PRId64, dir_id);
    snprintf(everytext, sizeof(everytext), "%d", every);
    /* One statement: the keys and the version belong to one snapshot. */
    res = catalog_query(catalog,
        "SELECT " FIS_STAT("version") ", x.kind = 'directory', x.name FROM"
        " (SELECT kind, name, row_number() OVER (ORDER BY kind, name) - 1 AS rn"
        "  FROM entry WHERE " FIS_LIVE ") x WHERE x.rn % $2 = 0 ORDER BY x.kind, x.name",
        2, params, PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    *version = PQntuples(res) > 0 ? fis_int(res, 0, 0) : -1;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++)
        rc = fn(PQgetvalue(res, i, 1)[0] == 't', PQgetvalue(res, i, 2), data);
    PQclear(res);
    return rc;
}

int catalog_fis_children(struct catalog *catalog, int64_t dir_id,
                         const struct catalog_fis_page *page,
                         int (*fn)(const struct catalog_fis_entry *entry, void *data),
                         void *data, struct catalog_fis_page_info *info)
{
    char idtext[24], max[24], rank[24], span[24] = "9223372036854775807";
    const char *params[8] = { idtext, max, "", "", "", "", "0", span };
    const char *base_kind = page->base_name ? (page->base_is_dir ? "directory" : "file") : "";
    const char *base_name = page->base_name ? page->base_name : "";
    bool keyed = page->from == CATALOG_FIS_AFTER || page->from == CATALOG_FIS_BEFORE;
    bool backwards = page->from == CATALOG_FIS_BEFORE || page->from == CATALOG_FIS_END;
    PGresult *res;
    int64_t pos;
    int n, rc = 0;

    snprintf(idtext, sizeof(idtext), "%" PRId64, dir_id);
    snprintf(max, sizeof(max), "%d", page->max);
    if (keyed) {
        snprintf(rank, sizeof(rank), "%" PRId64, page->base_name ? page->base_rank : 0);
        params[2] = page->key_is_dir ? "directory" : "file";
        params[3] = page->key_name;
        params[4] = base_kind;
        params[5] = base_name;
        params[6] = rank;
        if (page->base_name && page->base_span > 0)
            snprintf(span, sizeof(span), "%" PRId64, page->base_span);
    } else if (page->from == CATALOG_FIS_INDEX) {
        /* From the base key, skip what lies between it and the index. */
        snprintf(rank, sizeof(rank), "%" PRId64,
                 page->index - (page->base_name ? page->base_rank : 0));
        params[2] = base_kind;
        params[3] = base_name;
        params[4] = rank;
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
    n = PQgetisnull(res, 0, 4) ? 0 : PQntuples(res);
    info->count = fis_int(res, 0, 0);
    info->version = fis_int(res, 0, 3);
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
        struct catalog_fis_entry entry = fis_entry(res, backwards ? n - 1 - i : i, 4);

        rc = fn(&entry, data);
    }
    PQclear(res);
    return rc;
}
