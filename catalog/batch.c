/*
 * batch.c - one settled batch of changes, recorded in one transaction.
 *
 * The changes are streamed with COPY into the temporary table fr_batch and
 * applied with a handful of set-based statements, so a first index of
 * 100,000 files costs a few statements, not a few per file.  Order inside
 * the transaction: deletions, directories (parents first, one statement per
 * depth), files, revisions; the outbox rows they add come out in that order
 * too, which is the order the publisher needs (a node's parent first).  fr_files
 * compares each file with what its path was just before (after this batch's
 * deletions), so a file brought back gets its node created again and a new
 * revision.
 */
#include "catalog_internal.h"
#include "index.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Relative, '/'-separated, no empty, "." or ".." segment. */
static bool catalog_path_valid(const char *path)
{
    if (!path || !*path || strlen(path) > 4096)
        return false;
    for (const char *seg = path;;) {
        size_t len = strcspn(seg, "/");

        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (seg[len] == '\0')
            return true;
        seg += len + 1;
    }
}

/* A growing buffer of COPY text. */
struct copybuf {
    char *data;   /* bytes */
    size_t len;   /* used */
    size_t cap;   /* allocated */
    bool failed;  /* out of memory */
};

static void copybuf_put(struct copybuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        char *grown;

        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(grown = realloc(b->data, cap))) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* The first len bytes of s (NUL-free). */
static void copybuf_text_n(struct copybuf *b, const char *s, size_t len)
{
    /* COPY's text format: backslash escapes for the separators. */
    for (const char *end = s + len; s < end; s++) {
        switch (*s) {
        case '\\': copybuf_put(b, "\\\\", 2); break;
        case '\t': copybuf_put(b, "\\t", 2); break;
        case '\n': copybuf_put(b, "\\n", 2); break;
        case '\r': copybuf_put(b, "\\r", 2); break;
        default: copybuf_put(b, s, 1); break;
        }
    }
}

static void copybuf_text(struct copybuf *b, const char *s)
{
    copybuf_text_n(b, s, strlen(s));
}

static void copybuf_field(struct copybuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void copybuf_field(struct copybuf *b, const char *fmt, ...)
{
    char tmp[160];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        copybuf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void copybuf_hex(struct copybuf *b, const unsigned char *digest, size_t len, bool present)
{
    static const char hex[] = "0123456789abcdef";

    copybuf_put(b, "\t", 1);
    if (!present) {
        copybuf_put(b, "\\N", 2);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        char pair[2] = { hex[digest[i] >> 4], hex[digest[i] & 15] };

        copybuf_put(b, pair, 2);
    }
}

/* One row of fr_batch per change: the path, split here into its parent
 * and its name once rather than by a regular expression per row in SQL. */
static void copybuf_change(struct copybuf *b, const struct catalog_change *c)
{
    bool file = !c->is_dir && !c->deleted;
    const char *slash = strrchr(c->path, '/');

    copybuf_text(b, c->path);
    copybuf_put(b, "\t", 1);
    copybuf_text_n(b, c->path, slash ? (size_t)(slash - c->path) : 0);
    copybuf_put(b, "\t", 1);
    copybuf_text(b, slash ? slash + 1 : c->path);
    copybuf_field(b, "\t%c\t%c", c->is_dir ? 't' : 'f', c->deleted ? 't' : 'f');
    if (file) {
        copybuf_field(b, "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t", c->size,
                      c->mtime_ns, c->ctime_ns, c->inode);
        copybuf_text(b, c->mime && *c->mime ? c->mime : "application/octet-stream");
    } else {
        copybuf_put(b, "\t\\N\t\\N\t\\N\t\\N\t\\N", 15);
    }
    copybuf_hex(b, c->sha256, sizeof(c->sha256), file);
    copybuf_hex(b, c->sha1, sizeof(c->sha1), file && (c->digests & CATALOG_DIGEST_SHA1));
    copybuf_hex(b, c->md5, sizeof(c->md5), file && (c->digests & CATALOG_DIGEST_MD5));
    copybuf_hex(b, c->sha512, sizeof(c->sha512), file && (c->digests & CATALOG_DIGEST_SHA512));
    if (file && (c->digests & CATALOG_DIGEST_CRC32))
        copybuf_field(b, "\t%" PRIu32 "\n", c->crc32);
    else
        copybuf_put(b, "\t\\N\n", 4);
}

static int catalog_batch_copy(struct catalog *catalog, const struct catalog_change *changes,
                              size_t count)
{
    struct copybuf b = { 0 };
    PGresult *res;
    int error = FR_ERROR;

    for (size_t i = 0; i < count; i++)
        copybuf_change(&b, &changes[i]);
    if (b.failed) {
        catalog_set_error(catalog, "out of memory");
        free(b.data);
        return FR_ENOMEM;
    }
    res = catalog_exec(catalog,
                       "COPY fr_batch (path, parent, name, is_dir, deleted, size, mtime_ns,"
                       " ctime_ns, inode,"
                       " mime, sha256, sha1, md5, sha512, crc32) FROM STDIN",
                       PGRES_COPY_IN);
    if (!res)
        goto done;
    PQclear(res);
    if ((b.len && PQputCopyData(catalog->conn, b.data, (int)b.len) != 1) ||
        PQputCopyEnd(catalog->conn, NULL) != 1) {
        catalog_set_error(catalog, "COPY: %s", PQerrorMessage(catalog->conn));
        goto done;
    }
    res = PQgetResult(catalog->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        catalog_set_error(catalog, "COPY: %s", PQresultErrorMessage(res));
        PQclear(res);
        goto done;
    }
    PQclear(res);
    while ((res = PQgetResult(catalog->conn)) != NULL)
        PQclear(res);
    error = 0;
done:
    free(b.data);
    return error ? catalog_failure_code(catalog, error) : 0;
}

/* Runs one statement of the batch and returns how many rows it touched. */
static int catalog_batch_step(struct catalog *catalog, const char *sql, int nparams,
                              const char *const *params, int *affected)
{
    PGresult *res = catalog_query(catalog, sql, nparams, params, PGRES_COMMAND_OK);

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    if (affected)
        *affected += atoi(PQcmdTuples(res));
    PQclear(res);
    return 0;
}

static const char catalog_batch_table[] =
    "CREATE TEMP TABLE fr_batch ("
    "  path text COLLATE \"C\" NOT NULL, parent text COLLATE \"C\" NOT NULL,"
    "  name text COLLATE \"C\" NOT NULL, is_dir boolean NOT NULL, deleted boolean NOT NULL,"
    "  size bigint, mtime_ns bigint, ctime_ns bigint, inode bigint, mime text,"
    "  sha256 text, sha1 text, md5 text, sha512 text, crc32 bigint) ON COMMIT DROP";

/* Deletions: a deleted directory takes everything below it along.  The
 * entries are found from the batch's deletions through the (repository_id,
 * path) index (a path, or the range of paths under "dir/"), then updated by
 * id: the planner has no statistics for fr_batch and would otherwise scan
 * the repository once per row. */
static const char catalog_batch_deletions[] =
    "WITH gone AS ("
    "  UPDATE entry e SET deleted_at = now(), updated_at = now()"
    "  WHERE e.id = ANY (ARRAY("
    "    SELECT x.id FROM fr_batch b CROSS JOIN LATERAL ("
    "      SELECT id FROM entry WHERE repository_id = $1 AND path = b.path"
    "        AND deleted_at IS NULL"
    "      UNION ALL"
    "      SELECT id FROM entry WHERE b.is_dir AND repository_id = $1"
    "        AND path > b.path || '/' AND path < b.path || '0' AND deleted_at IS NULL"
    "      OFFSET 0) x"
    "    WHERE b.deleted))"
    "  RETURNING e.id, e.path, e.kind)"
    " INSERT INTO outbox (repository_id, node, action, entry_id, payload)"
    " SELECT $1, $2 || '/' || path, 'delete_node', id,"
    "   jsonb_build_object('path', path, 'kind', kind)"
    " FROM gone ORDER BY path DESC";

/* Every directory the batch needs, with its parent and name: those it
 * names and every ancestor of what it adds.  Files share their
 * directories: each distinct directory is taken apart once, not once per
 * file. */
static const char catalog_batch_dirs[] =
    "CREATE TEMP TABLE fr_dirs ON COMMIT DROP AS"
    " SELECT DISTINCT array_to_string(b.parts[1:n], '/') COLLATE \"C\" AS path, n AS depth,"
    "   array_to_string(b.parts[1:n - 1], '/') COLLATE \"C\" AS parent, b.parts[n] AS name"
    " FROM (SELECT DISTINCT string_to_array(CASE WHEN is_dir THEN path ELSE parent END, '/')"
    "         AS parts FROM fr_batch WHERE NOT deleted) b,"
    "   generate_series(1, array_length(b.parts, 1)) n";

static const char catalog_batch_dir_level[] =
    "WITH up AS ("
    "  INSERT INTO entry (repository_id, parent_id, name, path, kind)"
    "  SELECT $1, p.id, d.name, d.path, 'directory'"
    "  FROM fr_dirs d CROSS JOIN LATERAL (SELECT id FROM entry WHERE repository_id = $1"
    "                                     AND path = d.parent LIMIT 1) p"
    "  WHERE d.depth = $3::int"
    "  ON CONFLICT (repository_id, path) DO UPDATE"
    "    SET deleted_at = NULL, kind = 'directory', current_revision_id = NULL,"
    "        size = NULL, mtime_ns = NULL, ctime_ns = NULL, inode = NULL, updated_at = now()"
    "    WHERE entry.deleted_at IS NOT NULL OR entry.kind <> 'directory'"
    "  RETURNING id, path)"
    " INSERT INTO outbox (repository_id, node, action, entry_id, payload)"
    " SELECT $1, $2 || '/' || path, 'create_collection', id, jsonb_build_object('path', path)"
    " FROM up ORDER BY path";

/*
 * The batch's files, with everything the next statements need worked out
 * once: the parent, whether the leaf is new (or back after a deletion, or
 * was a directory), whether the content is new, and the ids the entry and
 * its new revision will have.  Taking the ids up front lets the entry be
 * written once with its current revision, instead of inserted and then
 * updated (which would check its foreign keys twice).  The lookups are
 * per file through the (repository_id, path) index: the planner has no
 * statistics for fr_batch, nor for entry while a first index fills it
 * (LIMIT 1 keeps each lookup a lookup instead of a join it would misplan).
 */
static const char catalog_batch_file_plan[] =
    "CREATE TEMP TABLE fr_files ON COMMIT DROP AS"
    " SELECT x.*, coalesce(x.old_id, nextval('entry_id_seq')) AS entry_id,"
    "   CASE WHEN x.new_content THEN nextval('revision_id_seq') END AS revision_id,"
    "   CASE WHEN x.new_content AND x.old_id IS NOT NULL"
    "     THEN coalesce((SELECT max(r.number) FROM revision r WHERE r.entry_id = x.old_id), 0) + 1"
    "     ELSE 1 END AS number"
    " FROM (SELECT b.*, p.id AS parent_id, e.id AS old_id,"
    "         (e.id IS NULL OR e.deleted_at IS NOT NULL OR e.kind <> 'file') AS new_leaf,"
    "         (e.id IS NULL OR e.deleted_at IS NOT NULL OR e.kind <> 'file' OR cur.id IS NULL"
    "          OR cur.sha256 <> decode(b.sha256, 'hex') OR cur.size <> b.size) AS new_content"
    "       FROM fr_batch b"
    "       CROSS JOIN LATERAL (SELECT id FROM entry WHERE repository_id = $1"
    "                           AND path = b.parent LIMIT 1) p"
    "       LEFT JOIN LATERAL (SELECT id, deleted_at, kind, current_revision_id FROM entry"
    "                          WHERE repository_id = $1 AND path = b.path LIMIT 1) e ON true"
    "       LEFT JOIN revision cur ON cur.id = e.current_revision_id"
    "       WHERE NOT b.deleted AND NOT b.is_dir) x";

static const char catalog_batch_files[] =
    "INSERT INTO entry (id, repository_id, parent_id, name, path, kind, size, mtime_ns, ctime_ns,"
    "                   inode, current_revision_id)"
    " OVERRIDING SYSTEM VALUE"
    " SELECT entry_id, $1, parent_id, name, path, 'file', size, mtime_ns,"
    "   ctime_ns, inode, revision_id"
    " FROM fr_files"
    " ON CONFLICT (repository_id, path) DO UPDATE"
    "   SET kind = 'file', size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns,"
    "       ctime_ns = EXCLUDED.ctime_ns, inode = EXCLUDED.inode, deleted_at = NULL,"
    "       current_revision_id = coalesce(EXCLUDED.current_revision_id,"
    "                                      entry.current_revision_id),"
    "       updated_at = now()";

static const char catalog_batch_revisions[] =
    "INSERT INTO revision (id, entry_id, number, commit_id, size, mtime, mime, sha256, sha1, md5,"
    "                      sha512, crc32)"
    " OVERRIDING SYSTEM VALUE"
    " SELECT revision_id, entry_id, number, $1, size,"
    "   to_timestamp(mtime_ns::double precision / 1e9), mime, decode(sha256, 'hex'),"
    "   decode(sha1, 'hex'), decode(md5, 'hex'), decode(sha512, 'hex'), crc32"
    " FROM fr_files WHERE new_content";

/*
 * One outbox row per file with a new revision: a new leaf is created and
 * gets its first item in one row (create_leaf carrying the revision; the
 * publisher creates the node, sets its affiliations, then publishes), a
 * known leaf's new revision is published on its node (publish_item).  A
 * row fewer per new file than a create and a publish apart, and the node
 * still exists before anything is published in it.  Counted back as new
 * leaves and new revisions.
 */
static const char catalog_batch_outbox[] =
    "WITH queued AS ("
    "  INSERT INTO outbox (repository_id, node, action, entry_id, revision_id, payload)"
    "  SELECT $1, $2 || '/' || path,"
    "    CASE WHEN new_leaf THEN 'create_leaf' ELSE 'publish_item' END, entry_id, revision_id,"
    "    jsonb_build_object('path', path, 'revision', number)"
    "  FROM fr_files WHERE new_content ORDER BY path"
    "  RETURNING action)"
    " SELECT count(*) FILTER (WHERE action = 'create_leaf'), count(*) FROM queued";

int catalog_batch_begin(struct catalog *catalog, int64_t repo_id, const char *repo_name,
                        const struct catalog_change *changes, size_t count,
                        struct catalog_batch_result *out)
{
    struct catalog_batch_result r = { 0 };
    char id[24], depth[16];
    const char *params[] = { id, repo_name };
    PGresult *res = NULL;
    int max_depth;
    int error;

    *out = r;
    for (size_t i = 0; i < count; i++) {
        if (!catalog_path_valid(changes[i].path)) {
            catalog_set_error(catalog, "bad path in batch: \"%s\"",
                              changes[i].path ? changes[i].path : "(null)");
            return FR_EINVAL;
        }
    }
    snprintf(id, sizeof(id), "%" PRId64, repo_id);

    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        return error;
    if ((error = catalog_command(catalog, catalog_batch_table)) != 0 ||
        (error = catalog_batch_copy(catalog, changes, count)) != 0)
        goto fail;

    /* One row per path, but a path may be deleted and come back as
     * another kind in the same batch. */
    res = catalog_exec(catalog,
                       "SELECT path FROM fr_batch GROUP BY path, deleted HAVING count(*) > 1 LIMIT 1",
                       PGRES_TUPLES_OK);
    if (!res)
        goto fail_code;
    if (PQntuples(res) > 0) {
        catalog_set_error(catalog, "path \"%s\" appears twice in the batch", PQgetvalue(res, 0, 0));
        PQclear(res);
        error = FR_EINVAL;
        goto fail;
    }
    PQclear(res);

    if ((error = catalog_batch_step(catalog, catalog_batch_deletions, 2, params, &r.deleted)) != 0)
        goto fail;
    if ((error = catalog_command(catalog, catalog_batch_dirs)) != 0)
        goto fail;
    res = catalog_exec(catalog, "SELECT coalesce(max(depth), 0) FROM fr_dirs", PGRES_TUPLES_OK);
    if (!res)
        goto fail_code;
    max_depth = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    for (int d = 1; d <= max_depth; d++) {
        const char *level[] = { id, repo_name, depth };

        snprintf(depth, sizeof(depth), "%d", d);
        if ((error = catalog_batch_step(catalog, catalog_batch_dir_level, 3, level, &r.entries)))
            goto fail;
    }
    /* The revisions themselves wait for the commit id (catalog_batch_finish);
     * their ids are taken already, so everything else can be written. */
    if ((error = catalog_batch_step(catalog, catalog_batch_file_plan, 1, params, NULL)) != 0 ||
        (error = catalog_batch_step(catalog, catalog_batch_files, 1, params, NULL)) != 0)
        goto fail;
    res = catalog_query(catalog, catalog_batch_outbox, 2, params, PGRES_TUPLES_OK);
    if (!res)
        goto fail_code;
    r.entries += atoi(PQgetvalue(res, 0, 0));
    r.revisions += atoi(PQgetvalue(res, 0, 1));
    PQclear(res);
    *out = r;
    return 0;

fail_code:
    error = catalog_failure_code(catalog, FR_ERROR);
fail:
    catalog_rollback(catalog);
    return error;
}

int catalog_batch_finish(struct catalog *catalog, const char *repo_name, const char *commit_id,
                         const struct catalog_batch_result *begun)
{
    const char *commit[] = { commit_id };
    const char *channel[] = { repo_name };
    PGresult *res;
    int error;

    if (strlen(commit_id) != 40 || strspn(commit_id, "0123456789abcdef") != 40) {
        catalog_set_error(catalog, "bad commit id \"%s\"", commit_id);
        catalog_rollback(catalog);
        return FR_EINVAL;
    }
    if ((error = catalog_batch_step(catalog, catalog_batch_revisions, 1, commit, NULL)) != 0)
        goto fail;
    if (begun->entries + begun->revisions + begun->deleted > 0) {
        res = catalog_query(catalog, "SELECT pg_notify('" CATALOG_OUTBOX_CHANNEL "', $1)", 1,
                            channel, PGRES_TUPLES_OK);
        if (!res) {
            error = catalog_failure_code(catalog, FR_ERROR);
            goto fail;
        }
        PQclear(res);
    }
    return catalog_command(catalog, "COMMIT");
fail:
    catalog_rollback(catalog);
    return error;
}

void catalog_batch_abort(struct catalog *catalog)
{
    catalog_rollback(catalog);
}

int catalog_batch_apply(struct catalog *catalog, int64_t repo_id, const char *repo_name,
                        const char *commit_id, const struct catalog_change *changes,
                        size_t count, struct catalog_batch_result *out)
{
    struct catalog_batch_result r;
    int error;

    if (strlen(commit_id) != 40 || strspn(commit_id, "0123456789abcdef") != 40) {
        catalog_set_error(catalog, "bad commit id \"%s\"", commit_id);
        return FR_EINVAL;
    }
    if ((error = catalog_batch_begin(catalog, repo_id, repo_name, changes, count, &r)) != 0 ||
        (error = catalog_batch_finish(catalog, repo_name, commit_id, &r)) != 0)
        return error;
    if (out)
        *out = r;
    return 0;
}
