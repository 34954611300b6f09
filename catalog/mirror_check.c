/*
 * mirror_check.c - SQL of the mirror checker: which checks are due, and
 * recording what one found (the copy, the mirror's health, and the
 * republishing of items whose advertised mirrors changed).
 */
#include "catalog_internal.h"
#include "index.h"
#include "mirror.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int catalog_mirror_listen(struct catalog *catalog)
{
    int error = catalog_command(catalog, "LISTEN " CATALOG_MIRROR_CHANNEL);

    /* New revisions come with outbox rows: the same wake-up serves. */
    return error ? error : catalog_command(catalog, "LISTEN " CATALOG_OUTBOX_CHANNEL);
}

/* Two 32-bit keys: a space apart from the migrations' single 64-bit key. */
#define MIRROR_CHECKER_LOCK "1718775143, 6"

int catalog_mirror_checker_lock(struct catalog *catalog, bool *held)
{
    PGresult *res = catalog_exec(catalog, "SELECT pg_try_advisory_lock(" MIRROR_CHECKER_LOCK ")",
                                 PGRES_TUPLES_OK);

    *held = false;
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    *held = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

int catalog_mirror_due(struct catalog *catalog, int interval_seconds, int limit, bool new_pairs,
                       const struct catalog_mirror_busy *busy,
                       int (*fn)(const struct catalog_mirror_check *check, void *data),
                       void *data, int *rows)
{
    char interval[16], limit_text[16];
    char *busy_mirrors = catalog_int64_array_text(busy->mirror_ids, busy->count);
    char *busy_revisions = catalog_int64_array_text(busy->revision_ids, busy->count);
    const char *params[] = { interval, limit_text, busy_mirrors, busy_revisions };
    PGresult *res = NULL;
    int rc = 0;

    *rows = 0;
    if (!busy_mirrors || !busy_revisions) {
        catalog_set_error(catalog, "out of memory");
        rc = FR_ENOMEM;
        goto done;
    }
    snprintf(interval, sizeof(interval), "%d", interval_seconds);
    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    /* A row per new (mirror, current revision) pair: its first check. */
    if (new_pairs) {
        res = catalog_exec(catalog,
            /* Mirror by mirror (LATERAL): without a mirror nothing else is
             * read, where a join could read every entry first. */
            "INSERT INTO mirror_copy (mirror_id, revision_id)"
            " SELECT m.id, x.revision_id FROM mirror m CROSS JOIN LATERAL ("
            "   SELECT e.current_revision_id AS revision_id FROM entry e"
            "   JOIN revision v ON v.id = e.current_revision_id AND v.withdrawn_at IS NULL"
            "   WHERE e.repository_id = m.repository_id AND e.kind = 'file'"
            "     AND e.deleted_at IS NULL AND e.current_revision_id IS NOT NULL"
            "     AND NOT EXISTS (SELECT 1 FROM mirror_copy c WHERE c.mirror_id = m.id"
            "       AND c.revision_id = e.current_revision_id)) x"
            " WHERE m.state <> 'disabled'"
            " ON CONFLICT DO NOTHING",
            PGRES_COMMAND_OK);
        if (!res)
            goto fail;
        PQclear(res);
    }
    /* The mirrors whose round has come: what their round checks is made due. */
    res = catalog_query(catalog,
        "WITH due AS (UPDATE mirror SET next_check_at = now() + $1::int * interval '1 second'"
        "   WHERE state <> 'disabled' AND (next_check_at IS NULL OR next_check_at <= now())"
        "   RETURNING id),"
        " probe AS (SELECT DISTINCT ON (c.mirror_id) c.mirror_id, c.revision_id"
        "   FROM mirror_copy c JOIN revision v ON v.id = c.revision_id"
        "   JOIN entry e ON e.current_revision_id = v.id AND e.deleted_at IS NULL"
        "   WHERE c.state = 'verified' AND c.mirror_id IN (SELECT id FROM due)"
        "   ORDER BY c.mirror_id, random())"
        " UPDATE mirror_copy c SET checked_at = NULL FROM revision v, entry e"
        " WHERE v.id = c.revision_id AND e.id = v.entry_id AND c.mirror_id IN (SELECT id FROM due)"
        "   AND ((c.state <> 'verified' AND e.current_revision_id = v.id)"
        "        OR (c.state = 'verified' AND e.current_revision_id IS DISTINCT FROM v.id)"
        "        OR (c.mirror_id, c.revision_id) IN (SELECT mirror_id, revision_id FROM probe))",
        1, params, PGRES_COMMAND_OK);
    if (!res)
        goto fail;
    PQclear(res);
    res = catalog_query(catalog,
        "SELECT c.mirror_id, c.revision_id, m.type, m.url, m.username, m.password_file,"
        "  e.path, v.size, encode(v.sha256, 'hex'), r.access = 'whitelist',"
        "  coalesce((SELECT string_agg(DISTINCT a.jid, E'\\n') FROM acl a"
        "    WHERE a.repository_id = r.id), ''),"
        "  c.state = 'verified' AND e.current_revision_id = v.id, c.state = 'verified'"
        " FROM mirror_copy c JOIN mirror m ON m.id = c.mirror_id AND m.state <> 'disabled'"
        " JOIN repository r ON r.id = m.repository_id"
        " JOIN revision v ON v.id = c.revision_id AND v.withdrawn_at IS NULL"
        " JOIN entry e ON e.id = v.entry_id AND e.deleted_at IS NULL"
        " WHERE c.checked_at IS NULL"
        "   AND (e.current_revision_id = v.id OR c.state = 'verified')"
        "   AND (c.mirror_id, c.revision_id) NOT IN"
        "     (SELECT * FROM unnest($2::bigint[], $3::bigint[]))"
        " ORDER BY c.state = 'verified' DESC, c.mirror_id, c.revision_id LIMIT $1::int",
        3, params + 1, PGRES_TUPLES_OK);
    if (!res)
        goto fail;
    *rows = PQntuples(res);
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        const struct catalog_mirror_check check = {
            .mirror_id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .revision_id = strtoll(PQgetvalue(res, i, 1), NULL, 10),
            .type = PQgetvalue(res, i, 2),
            .url = PQgetvalue(res, i, 3),
            .username = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4),
            .password_file = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5),
            .path = PQgetvalue(res, i, 6),
            .size = strtoll(PQgetvalue(res, i, 7), NULL, 10),
            .sha256_hex = PQgetvalue(res, i, 8),
            .whitelist = PQgetvalue(res, i, 9)[0] == 't',
            .jids = PQgetvalue(res, i, 10),
            .probe = PQgetvalue(res, i, 11)[0] == 't',
            .verified = PQgetvalue(res, i, 12)[0] == 't',
        };
        rc = fn(&check, data);
    }
    PQclear(res);
    goto done;
fail:
    rc = catalog_failure_code(catalog, FR_ERROR);
done:
    free(busy_mirrors);
    free(busy_revisions);
    return rc;
}

/* Runs one statement of the record transaction; 0 or FR_E*. */
static int mirror_step(struct catalog *catalog, const char *sql, int count,
                       const char *const *params, PGresult **out)
{
    PGresult *res = catalog_query(catalog, sql, count, params,
                                  out ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

int catalog_mirror_record(struct catalog *catalog, const struct catalog_mirror_result *result,
                          int failures_max, struct catalog_mirror_change *change)
{
    char mirror_id[24], revision_id[24], failures_text[16];
    const char *params[6];
    PGresult *res = NULL;
    bool copy_before, copy_after, failure, advertised_before, advertised_after;
    const char *new_state, *state_reason = NULL;
    int failures, error;

    memset(change, 0, sizeof(*change));
    catalog_int64_text(mirror_id, sizeof(mirror_id), result->mirror_id);
    catalog_int64_text(revision_id, sizeof(revision_id), result->revision_id);
    params[0] = mirror_id;
    params[1] = revision_id;
    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    if ((error = mirror_step(catalog,
            "SELECT m.state, m.consecutive_failures, m.url, coalesce(c.state = 'verified', false),"
            " coalesce(c.state, '')"
            " FROM mirror m LEFT JOIN mirror_copy c ON c.mirror_id = m.id"
            "   AND c.revision_id = $2::bigint"
            " WHERE m.id = $1::bigint FOR UPDATE OF m",
            2, params, &res)) != 0)
        goto fail;
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "disabled") == 0) {
        /* Removed or disabled while it was being checked: nothing to say. */
        PQclear(res);
        catalog_rollback(catalog);
        return 0;
    }
    snprintf(change->old_state, sizeof(change->old_state), "%s", PQgetvalue(res, 0, 0));
    snprintf(change->url, sizeof(change->url), "%s", PQgetvalue(res, 0, 2));
    failures = atoi(PQgetvalue(res, 0, 1));
    copy_before = PQgetvalue(res, 0, 3)[0] == 't';
    snprintf(change->copy_before, sizeof(change->copy_before), "%s", PQgetvalue(res, 0, 4));
    PQclear(res);

    failure = result->transient || (result->probe && strcmp(result->state, "verified") != 0);
    failures = failure ? failures + 1 : 0;
    new_state = change->old_state;
    if (failure && failures >= failures_max && strcmp(change->old_state, "failing") != 0) {
        new_state = "failing";
        state_reason = result->reason;
    } else if (!failure && strcmp(change->old_state, "ok") != 0) {
        new_state = "ok";
        state_reason = strcmp(change->old_state, "failing") == 0 ? "a check passed again"
                                                                  : "first check passed";
    }
    snprintf(change->new_state, sizeof(change->new_state), "%s", new_state);
    if (state_reason)
        snprintf(change->reason, sizeof(change->reason), "%s", state_reason);
    change->failures = failures;
    copy_after = result->transient ? copy_before : strcmp(result->state, "verified") == 0;
    snprintf(change->copy_after, sizeof(change->copy_after), "%s",
             !result->transient ? result->state
             : copy_before       ? "verified"
                                 : "error");
    advertised_before = copy_before && strcmp(change->old_state, "ok") == 0;
    advertised_after = copy_after && strcmp(new_state, "ok") == 0;

    /* The copy: a mirror that failed to answer says nothing of the file. */
    params[2] = result->transient ? NULL : result->state;
    params[3] = result->reason;
    if ((error = mirror_step(catalog,
            "UPDATE mirror_copy SET checked_at = now(),"
            " state = coalesce($3, CASE WHEN state = 'verified' THEN 'verified' ELSE 'error' END),"
            " reason = CASE WHEN coalesce($3, state) = 'verified' THEN NULL ELSE $4 END"
            " WHERE mirror_id = $1::bigint AND revision_id = $2::bigint",
            4, params, NULL)) != 0)
        goto fail;
    snprintf(failures_text, sizeof(failures_text), "%d", failures);
    params[1] = failures_text;
    params[2] = failure ? result->reason : NULL;
    params[3] = new_state;
    params[4] = state_reason;
    if ((error = mirror_step(catalog,
            "UPDATE mirror SET last_check_at = now(), consecutive_failures = $2::int,"
            " last_error = coalesce($3, last_error),"
            " state_changed_at = CASE WHEN state <> $4 THEN now() ELSE state_changed_at END,"
            " state_reason = CASE WHEN state <> $4 THEN $5 ELSE state_reason END,"
            " state = $4, updated_at = now() WHERE id = $1::bigint",
            5, params, NULL)) != 0)
        goto fail;

    /* Items: every one of the mirror when it starts or stops being shown,
     * else this revision's when its copy did. */
    params[1] = revision_id;
    if ((strcmp(change->old_state, "ok") == 0) != (strcmp(new_state, "ok") == 0) ||
        advertised_before != advertised_after) {
        bool whole = (strcmp(change->old_state, "ok") == 0) != (strcmp(new_state, "ok") == 0);

        params[2] = whole ? "t" : "f";
        if ((error = mirror_step(catalog,
                "WITH q AS (INSERT INTO outbox (repository_id, node, action, entry_id,"
                "   revision_id, payload)"
                " SELECT r.id, r.name || '/' || e.path, 'publish_item', e.id, v.id,"
                "   jsonb_build_object('path', e.path, 'revision', v.number)"
                " FROM mirror_copy c JOIN mirror m ON m.id = c.mirror_id"
                " JOIN repository r ON r.id = m.repository_id"
                " JOIN revision v ON v.id = c.revision_id AND v.withdrawn_at IS NULL"
                " JOIN entry e ON e.id = v.entry_id AND e.deleted_at IS NULL"
                " WHERE c.mirror_id = $1::bigint"
                "   AND CASE WHEN $3::boolean THEN c.state = 'verified'"
                "       ELSE c.revision_id = $2::bigint END"
                " ORDER BY v.id RETURNING 1)"
                " SELECT count(*), pg_notify('" CATALOG_OUTBOX_CHANNEL "', 'mirror')"
                " FROM q",
                3, params, &res)) != 0)
            goto fail;
        change->republished = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    return catalog_command(catalog, "COMMIT");
fail:
    catalog_rollback(catalog);
    return error;
}
