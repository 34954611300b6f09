/*
 * outbox.c - SQL of publishing: handing out outbox rows in order and
 * recording their outcome.  The admin changes that queue rows are in
 * outbox_admin.c.
 */
#include "catalog_internal.h"
#include "index.h"
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *outbox_value(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

int catalog_outbox_listen(struct catalog *catalog)
{
    return catalog_command(catalog, "LISTEN " CATALOG_OUTBOX_CHANNEL);
}

/* base64 without the line breaks encode() puts every 76 characters. */
#define OUTBOX_B64(col) "replace(encode(" col ", 'base64'), E'\\n', '')"

int catalog_outbox_fetch(struct catalog *catalog, const int64_t *skip, size_t skip_count,
                         int limit, int (*fn)(const struct catalog_outbox_row *row, void *data),
                         void *data, bool *more, int *retry_in_ms)
{
    char *skip_text = catalog_int64_array_text(skip, skip_count);
    char limit_text[16];
    const char *params[2];
    PGresult *res = NULL;
    int rc = 0;

    *more = false;
    *retry_in_ms = -1;
    if (!skip_text) {
        catalog_set_error(catalog, "out of memory");
        return FR_ENOMEM;
    }
    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    params[0] = skip_text;
    params[1] = limit_text;

    res = catalog_query(catalog,
        /* The rows waiting for a retry (few: only failed rows wait, and
         * schema 009 indexes those alone).  A row waits while an earlier
         * row of its node, or of a node above it, waits: a leaf is not
         * created before the collection it goes into (that create would
         * fail for good with item-not-found). */
        "WITH waiting AS MATERIALIZED ("
        "  SELECT id, node FROM outbox"
        "  WHERE state = 'pending' AND attempts > 0 AND next_attempt_at > now()),"
        /* The page, in id order, picked before anything is joined: only
         * its rows are looked up, however long the backlog and whatever
         * the planner believes of the outbox (its statistics lag behind a
         * first index that just filled it). */
        " page AS MATERIALIZED ("
        "  SELECT o.id FROM outbox o"
        "  WHERE o.state = 'pending' AND o.next_attempt_at <= now()"
        "    AND o.id <> ALL ($1::bigint[])"
        "    AND NOT EXISTS (SELECT 1 FROM waiting w WHERE w.id < o.id"
        "      AND (w.node = o.node OR starts_with(o.node, w.node || '/')))"
        "  ORDER BY o.id LIMIT $2::int)"
        " SELECT o.id, o.action, o.node, o.attempts, o.payload ? 'expanded',"
        "  r.name, r.access = 'whitelist', r.title, r.description,"
        "  coalesce(o.payload->>'path', e.path, ''), coalesce(e.name, ''),"
        "  coalesce(e.kind = 'directory', o.payload->>'kind' = 'directory', true),"
        "  coalesce(o.entry_id, 0), coalesce(o.revision_id, 0),"
        "  coalesce(v.number, (o.payload->>'revision')::int, 0), v.withdrawn_at IS NOT NULL,"
        "  coalesce(v.size, 0),"
        "  " CATALOG_SQL_XEP0082("v.mtime") ","
        "  v.mime, v.description,"
        "  encode(v.sha256, 'hex'), encode(v.sha1, 'hex'), encode(v.md5, 'hex'),"
        "  encode(v.sha512, 'hex'), lpad(to_hex(v.crc32), 8, '0'),"
        "  " OUTBOX_B64("v.sha256") ", " OUTBOX_B64("v.sha1") ", " OUTBOX_B64("v.sha512") ","
        "  (SELECT string_agg(a.role || ' ' || a.jid, E'\\n' ORDER BY a.jid, a.role)"
        "     FROM acl a WHERE a.repository_id = r.id),"
        /* The advertised mirrors (mirror.h): verified copies on mirrors in
         * state ok; credentials only where the admin made them public. */
        "  (SELECT string_agg(m.type || E'\\t' || m.url || E'\\t' || m.description || E'\\t'"
        "       || CASE WHEN m.credentials_public THEN coalesce(m.username, '') || E'\\t'"
        "          || coalesce(m.password_file, '') ELSE E'\\t' END, E'\\n' ORDER BY m.id)"
        "     FROM mirror_copy c JOIN mirror m ON m.id = c.mirror_id"
        "     WHERE c.revision_id = o.revision_id AND c.state = 'verified' AND m.state = 'ok')"
        " FROM page JOIN outbox o ON o.id = page.id"
        " JOIN repository r ON r.id = o.repository_id"
        " LEFT JOIN entry e ON e.id = o.entry_id"
        " LEFT JOIN revision v ON v.id = o.revision_id"
        " ORDER BY o.id",
        2, params, PGRES_TUPLES_OK);
    free(skip_text);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    *more = PQntuples(res) >= limit;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        const struct catalog_outbox_row row = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .action = PQgetvalue(res, i, 1),
            .node = PQgetvalue(res, i, 2),
            .attempts = atoi(PQgetvalue(res, i, 3)),
            .expanded = PQgetvalue(res, i, 4)[0] == 't',
            .repo = PQgetvalue(res, i, 5),
            .whitelist = PQgetvalue(res, i, 6)[0] == 't',
            .repo_title = PQgetvalue(res, i, 7),
            .repo_description = PQgetvalue(res, i, 8),
            .path = PQgetvalue(res, i, 9),
            .name = PQgetvalue(res, i, 10),
            .is_dir = PQgetvalue(res, i, 11)[0] == 't',
            .entry_id = strtoll(PQgetvalue(res, i, 12), NULL, 10),
            .revision_id = strtoll(PQgetvalue(res, i, 13), NULL, 10),
            .revision = atoi(PQgetvalue(res, i, 14)),
            .withdrawn = PQgetvalue(res, i, 15)[0] == 't',
            .size = strtoll(PQgetvalue(res, i, 16), NULL, 10),
            .modified = outbox_value(res, i, 17),
            .mime = outbox_value(res, i, 18),
            .description = outbox_value(res, i, 19),
            .sha256_hex = outbox_value(res, i, 20),
            .sha1_hex = outbox_value(res, i, 21),
            .md5_hex = outbox_value(res, i, 22),
            .sha512_hex = outbox_value(res, i, 23),
            .crc32_hex = outbox_value(res, i, 24),
            .sha256_b64 = outbox_value(res, i, 25),
            .sha1_b64 = outbox_value(res, i, 26),
            .sha512_b64 = outbox_value(res, i, 27),
            .acl = outbox_value(res, i, 28) ? outbox_value(res, i, 28) : "",
            .mirrors = outbox_value(res, i, 29) ? outbox_value(res, i, 29) : "",
        };
        rc = fn(&row, data);
    }
    PQclear(res);
    if (rc != 0)
        return rc;

    res = catalog_exec(catalog,
                       "SELECT ceil(extract(epoch FROM min(next_attempt_at) - now()) * 1000)"
                       " FROM outbox WHERE state = 'pending' AND attempts > 0"
                       "   AND next_attempt_at > now()",
                       PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    if (!PQgetisnull(res, 0, 0)) {
        double ms = strtod(PQgetvalue(res, 0, 0), NULL);

        *retry_in_ms = ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
    }
    PQclear(res);
    return 0;
}

/* The ids of the done rows as one bigint[] parameter; NULL when out of memory. */
static char *outbox_done_ids(const struct catalog_outbox_done *done, size_t count)
{
    int64_t *ids = malloc(count * sizeof(*ids));
    char *text;

    if (!ids)
        return NULL;
    for (size_t i = 0; i < count; i++)
        ids[i] = done[i].id;
    text = catalog_int64_array_text(ids, count);
    free(ids);
    return text;
}

int catalog_outbox_finish(struct catalog *catalog, const struct catalog_outbox_done *done,
                          size_t count)
{
    char entry[24];
    bool effects = false;
    char *ids;
    PGresult *res;
    int error;

    if (count == 0)
        return 0;
    for (size_t i = 0; i < count && !effects; i++)
        effects = done[i].entry_id != 0 && done[i].effect != CATALOG_OUTBOX_NONE;
    if (!(ids = outbox_done_ids(done, count))) {
        catalog_set_error(catalog, "out of memory");
        return FR_ENOMEM;
    }
    /* Most rows (items published) record nothing else: one statement marks
     * them all, one round trip per pass of the publisher instead of one per
     * row, which a busy machine would make it wait for each time. */
    if (effects && (error = catalog_command(catalog, "BEGIN")) != 0) {
        free(ids);
        return error;
    }
    res = catalog_query(catalog,
                        "UPDATE outbox SET state = 'done', done_at = now(), last_error = NULL"
                        " WHERE id = ANY ($1::bigint[])",
                        1, (const char *const[]){ ids }, PGRES_COMMAND_OK);
    free(ids);
    if (!res)
        goto fail;
    PQclear(res);
    for (size_t i = 0; i < count && effects; i++) {
        const char *params[] = { entry, done[i].node };

        if (done[i].entry_id == 0 || done[i].effect == CATALOG_OUTBOX_NONE)
            continue;
        catalog_int64_text(entry, sizeof(entry), done[i].entry_id);
        if (done[i].effect == CATALOG_OUTBOX_CREATED) {
            /* A node id held by an entry whose node is gone is freed first. */
            res = catalog_query(catalog,
                                "WITH freed AS (UPDATE entry SET pubsub_node = NULL"
                                "   WHERE pubsub_node = $2 AND id <> $1::bigint RETURNING id)"
                                " UPDATE entry SET pubsub_node = $2 WHERE id = $1::bigint",
                                2, params, PGRES_COMMAND_OK);
            if (res && done[i].root) {
                PQclear(res);
                res = catalog_query(catalog,
                                    "UPDATE repository SET pubsub_node = $2 WHERE id ="
                                    " (SELECT repository_id FROM entry WHERE id = $1::bigint)"
                                    " AND pubsub_node IS DISTINCT FROM $2",
                                    2, params, PGRES_COMMAND_OK);
            }
        } else {
            res = catalog_query(catalog,
                                "UPDATE entry SET pubsub_node = NULL WHERE id = $1::bigint"
                                " AND deleted_at IS NOT NULL",
                                1, params, PGRES_COMMAND_OK);
        }
        if (!res)
            goto fail;
        PQclear(res);
    }
    return effects ? catalog_command(catalog, "COMMIT") : 0;
fail:
    error = catalog_failure_code(catalog, FR_ERROR);
    if (effects)
        catalog_rollback(catalog);
    return error;
}

int catalog_outbox_retry(struct catalog *catalog, int64_t id, unsigned delay_ms,
                         const char *error)
{
    char id_text[24], delay[16];
    const char *params[] = { id_text, delay, error };
    PGresult *res;

    catalog_int64_text(id_text, sizeof(id_text), id);
    snprintf(delay, sizeof(delay), "%u", delay_ms);
    res = catalog_query(catalog,
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $3,"
                        " next_attempt_at = now() + $2::int * interval '1 millisecond'"
                        " WHERE id = $1 AND state = 'pending'",
                        3, params, PGRES_COMMAND_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}

int catalog_outbox_park(struct catalog *catalog, int64_t id, const char *error)
{
    char id_text[24];
    const char *params[] = { id_text, error };
    PGresult *res;

    catalog_int64_text(id_text, sizeof(id_text), id);
    res = catalog_query(catalog,
                        "UPDATE outbox SET state = 'parked', attempts = attempts + 1,"
                        " last_error = $2, done_at = now() WHERE id = $1 AND state = 'pending'",
                        2, params, PGRES_COMMAND_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}

int catalog_outbox_expand(struct catalog *catalog, int64_t id)
{
    char id_text[24];
    const char *params[] = { id_text };
    PGresult *res;
    int error;

    catalog_int64_text(id_text, sizeof(id_text), id);
    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    res = catalog_query(catalog,
        "WITH row AS (UPDATE outbox SET state = 'done', done_at = now()"
        "   WHERE id = $1 AND state = 'pending' RETURNING repository_id, action)"
        " INSERT INTO outbox (repository_id, node, action, entry_id, payload)"
        " SELECT e.repository_id,"
        "   r.name || CASE WHEN e.path = '' THEN '' ELSE '/' || e.path END,"
        "   row.action, e.id, jsonb_build_object('path', e.path, 'kind', e.kind, 'expanded', true)"
        " FROM row JOIN entry e ON e.repository_id = row.repository_id"
        " JOIN repository r ON r.id = e.repository_id"
        " WHERE e.deleted_at IS NULL ORDER BY e.path",
        1, params, PGRES_COMMAND_OK);
    if (!res)
        goto fail;
    PQclear(res);
    return catalog_command(catalog, "COMMIT");
fail:
    error = catalog_failure_code(catalog, FR_ERROR);
    catalog_rollback(catalog);
    return error;
}
