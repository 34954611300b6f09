/*
 * test_catalog_index.c - the indexing side of the catalog against the real
 * PostgreSQL: repositories from the configuration, the scanner's directory
 * listings, and batches (entries, revisions, deletions, the outbox in the
 * order the publisher needs, the NOTIFY).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "catalog.h"
#include "index.h"
#include "testenv.h"

struct fixture {
    struct testenv_db db;   /* a migrated database; its side connection LISTENs */
    int64_t repo;           /* "releases" */
};

static const char *const no_members[] = { NULL };

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const struct catalog_repository_spec spec = {
        .name = "releases", .path = "/srv/releases", .title = "Releases",
        .description = "All of them", .members = no_members,
    };

    assert_non_null(f);
    assert_int_equal(testenv_db_open(&f->db, true), 0);
    PQclear(PQexec(f->db.sql, "LISTEN " CATALOG_OUTBOX_CHANNEL));
    if (catalog_repository_upsert(f->db.catalog, &f->repo, &spec) != 0)
        fail_msg("upsert: %s", catalog_last_error(f->db.catalog));
    *state = f;
    return 0;
}

/* What foreign keys checked until schema 008, checked after every test:
 * each entry's repository and parent (an entry of the same repository),
 * each revision's entry, each file's current revision (one of its own). */
static const char references_broken[] =
    "SELECT 'entry ' || e.id FROM entry e"
    " WHERE NOT EXISTS (SELECT 1 FROM repository r WHERE r.id = e.repository_id)"
    "    OR (e.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entry p"
    "        WHERE p.id = e.parent_id AND p.repository_id = e.repository_id))"
    "    OR (e.current_revision_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM revision v"
    "        WHERE v.id = e.current_revision_id AND v.entry_id = e.id))"
    " UNION ALL SELECT 'revision ' || v.id FROM revision v"
    " WHERE NOT EXISTS (SELECT 1 FROM entry e WHERE e.id = v.entry_id)";

static const char *rows(struct fixture *f, const char *sql);

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_string_equal(rows(f, references_broken), "");
    testenv_db_close(&f->db);
    free(f);
    return 0;
}

/* All rows of a query, fields joined by ' ' and rows by '|' (static). */
static const char *rows(struct fixture *f, const char *sql)
{
    static char buf[65536];
    PGresult *res = PQexec(f->db.sql, sql);
    size_t len = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    buf[0] = '\0';
    for (int r = 0; r < PQntuples(res); r++)
        for (int c = 0; c < PQnfields(res); c++)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s%s",
                                    c == 0 && r > 0 ? "|" : "", c > 0 ? " " : "",
                                    PQgetisnull(res, r, c) ? "NULL" : PQgetvalue(res, r, c));
    PQclear(res);
    return buf;
}

/* The outbox rows added after id `after`, as "action node" lines, with the
 * number of the revision a row publishes after them. */
static const char *outbox_since(struct fixture *f, int after)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT concat_ws(' ', action, node, (SELECT number FROM revision v"
             "                                     WHERE v.id = o.revision_id))"
             " FROM outbox o WHERE id > %d ORDER BY id", after);
    return rows(f, sql);
}

static int outbox_last(struct fixture *f)
{
    return atoi(rows(f, "SELECT coalesce(max(id), 0) FROM outbox"));
}

static int notifications(struct fixture *f)
{
    PGnotify *n;
    int count = 0;

    PQconsumeInput(f->db.sql);
    while ((n = PQnotifies(f->db.sql)) != NULL) {
        count++;
        PQfreemem(n);
    }
    return count;
}

static struct catalog_change file_change(const char *path, const char *content, int64_t mtime)
{
    struct catalog_change c = { .path = path, .size = (int64_t)strlen(content),
                                .mtime_ns = mtime * 1000000000LL, .ctime_ns = mtime,
                                .inode = 42, .mime = "application/x-xz",
                                .digests = CATALOG_DIGEST_SHA1 | CATALOG_DIGEST_CRC32 };

    /* Stand-in digests derived from the content: equal content, equal
     * digests; the catalog does not hash. */
    for (size_t i = 0; i < sizeof(c.sha256); i++)
        c.sha256[i] = (unsigned char)(content[i % strlen(content)] + i);
    memset(c.sha1, 0xab, sizeof(c.sha1));
    c.crc32 = 0xdeadbeef;
    return c;
}

#define COMMIT1 "1111111111111111111111111111111111111111"
#define COMMIT2 "2222222222222222222222222222222222222222"
#define COMMIT3 "3333333333333333333333333333333333333333"

static void apply(struct fixture *f, const char *commit, struct catalog_change *changes,
                  size_t count, struct catalog_batch_result *r)
{
    if (catalog_batch_apply(f->db.catalog, f->repo, "releases", commit, changes, count, r) != 0)
        fail_msg("batch: %s", catalog_last_error(f->db.catalog));
}

static void test_index__repository_upsert(void **state)
{
    struct fixture *f = *state;
    const char *members[] = { "ci@example.org", "alice@example.org/build" };
    struct catalog_repository_spec spec = {
        .name = "releases", .path = "/srv/releases", .title = "Releases",
        .description = "All of them", .members = no_members,
    };
    int64_t id = 0;
    int mark;

    assert_string_equal(rows(f, "SELECT name, path, title, description, access FROM repository"),
                        "releases /srv/releases Releases All of them open");
    assert_string_equal(rows(f, "SELECT kind, path, parent_id FROM entry"), "directory  NULL");
    assert_string_equal(outbox_since(f, 0), "create_collection releases");
    assert_true(notifications(f) >= 1);

    /* The same again: nothing to do. */
    mark = outbox_last(f);
    assert_int_equal(catalog_repository_upsert(f->db.catalog, &id, &spec), 0);
    assert_int_equal(id, f->repo);
    assert_string_equal(outbox_since(f, mark), "");

    /* A new title, whitelist with members: reconfigure, affiliations. */
    spec.title = "All releases";
    spec.whitelist = true;
    spec.members = members;
    spec.members_count = 2;
    assert_int_equal(catalog_repository_upsert(f->db.catalog, &id, &spec), 0);
    assert_string_equal(outbox_since(f, mark), "configure_node releases|set_affiliations releases");
    assert_string_equal(rows(f, "SELECT jid, role FROM acl ORDER BY jid"),
                        "alice@example.org/build member|ci@example.org member");

    /* One member less. */
    mark = outbox_last(f);
    spec.members_count = 1;
    assert_int_equal(catalog_repository_upsert(f->db.catalog, &id, &spec), 0);
    assert_string_equal(outbox_since(f, mark), "set_affiliations releases");
    assert_string_equal(rows(f, "SELECT jid FROM acl"), "ci@example.org");
    assert_string_equal(rows(f, "SELECT count(*) FROM repository"), "1");
}

static void test_index__first_batch(void **state)
{
    struct fixture *f = *state;
    struct catalog_change changes[] = {
        file_change("proj-1.0.tar.xz", "one", 1700000000),
        file_change("old/proj-0.9.tar.xz", "nine", 1600000000),
        file_change("old/very/deep/x.txt", "x", 1600000001),
        { .path = "empty-dir", .is_dir = true },
    };
    struct catalog_batch_result r;
    int mark = outbox_last(f);

    notifications(f);
    apply(f, COMMIT1, changes, 4, &r);
    assert_int_equal(r.revisions, 3);
    assert_int_equal(r.entries, 7);   /* 4 directories + 3 files */
    assert_int_equal(r.deleted, 0);

    /* Parents before children: collections by depth, then the leaves, each
     * row a new leaf and its first item. */
    assert_string_equal(outbox_since(f, mark),
                        "create_collection releases/empty-dir|create_collection releases/old|"
                        "create_collection releases/old/very|"
                        "create_collection releases/old/very/deep|"
                        "create_leaf releases/old/proj-0.9.tar.xz 1|"
                        "create_leaf releases/old/very/deep/x.txt 1|"
                        "create_leaf releases/proj-1.0.tar.xz 1");
    assert_int_equal(notifications(f), 1);

    assert_string_equal(rows(f,
        "SELECT e.path, r.number, r.commit_id = '" COMMIT1 "', r.size, r.mime,"
        " extract(epoch FROM r.mtime)::bigint, r.sha1 IS NOT NULL, r.md5 IS NULL, r.crc32"
        " FROM entry e JOIN revision r ON r.id = e.current_revision_id ORDER BY e.path"),
        "old/proj-0.9.tar.xz 1 t 4 application/x-xz 1600000000 t t 3735928559|"
        "old/very/deep/x.txt 1 t 1 application/x-xz 1600000001 t t 3735928559|"
        "proj-1.0.tar.xz 1 t 3 application/x-xz 1700000000 t t 3735928559");
    /* The tree: every entry's parent is its directory. */
    assert_string_equal(rows(f,
        "SELECT count(*) FROM entry c JOIN entry p ON p.id = c.parent_id"
        " WHERE p.path <> CASE WHEN strpos(c.path, '/') = 0 THEN ''"
        "  ELSE regexp_replace(c.path, '/[^/]*$', '') END"), "0");
}

static int collect(const struct catalog_entry_stat *e, void *data)
{
    char *out = data;
    size_t len = strlen(out);

    snprintf(out + len, 1024 - len, "%s%s:%s:%lld", len ? "|" : "", e->name,
             e->is_dir ? "d" : "f", (long long)e->size);
    return 0;
}

static void test_index__dir_children(void **state)
{
    struct fixture *f = *state;
    struct catalog_change changes[] = {
        file_change("b.txt", "bb", 1),
        file_change("a.txt", "a", 1),
        file_change("sub/c.txt", "ccc", 1),
        file_change("gone.txt", "g", 1),
    };
    struct catalog_change del[] = { { .path = "gone.txt", .deleted = true } };
    char out[1024] = "";

    apply(f, COMMIT1, changes, 4, NULL);
    apply(f, COMMIT2, del, 1, NULL);
    assert_int_equal(catalog_dir_children(f->db.catalog, f->repo, "", collect, out), 0);
    assert_string_equal(out, "a.txt:f:1|b.txt:f:2|sub:d:0");
    out[0] = '\0';
    assert_int_equal(catalog_dir_children(f->db.catalog, f->repo, "sub", collect, out), 0);
    assert_string_equal(out, "c.txt:f:3");
    assert_int_equal(catalog_dir_children(f->db.catalog, f->repo, "nope", collect, out),
                     FR_ENOTFOUND);
    assert_int_equal(catalog_dir_children(f->db.catalog, f->repo, "a.txt", collect, out),
                     FR_ENOTFOUND);
}

static void test_index__changes_and_touches(void **state)
{
    struct fixture *f = *state;
    struct catalog_change one[] = { file_change("latest.txt", "v1", 100) };
    struct catalog_change two[] = { file_change("latest.txt", "v2", 200) };
    struct catalog_change touch[] = { file_change("latest.txt", "v2", 300) };
    struct catalog_batch_result r;
    int mark;

    apply(f, COMMIT1, one, 1, NULL);
    mark = outbox_last(f);
    apply(f, COMMIT2, two, 1, &r);
    assert_int_equal(r.revisions, 1);
    assert_int_equal(r.entries, 0);
    assert_string_equal(outbox_since(f, mark), "publish_item releases/latest.txt 2");
    assert_string_equal(rows(f, "SELECT number, commit_id = '" COMMIT2 "' FROM revision"
                                " ORDER BY number"), "1 f|2 t");

    /* Same content, new mtime: the stat is updated, no revision, no news. */
    mark = outbox_last(f);
    notifications(f);
    apply(f, COMMIT3, touch, 1, &r);
    assert_int_equal(r.revisions, 0);
    assert_string_equal(outbox_since(f, mark), "");
    assert_int_equal(notifications(f), 0);
    assert_string_equal(rows(f, "SELECT e.mtime_ns, r.number FROM entry e"
                                " JOIN revision r ON r.id = e.current_revision_id"
                                " WHERE e.path = 'latest.txt'"), "300000000000 2");
}

static void test_index__deletions_keep_history(void **state)
{
    struct fixture *f = *state;
    struct catalog_change add[] = {
        file_change("a/b/c.txt", "c", 1), file_change("a/d.txt", "d", 1),
        file_change("keep.txt", "k", 1),
    };
    struct catalog_change del[] = { { .path = "a", .is_dir = true, .deleted = true } };
    struct catalog_change back[] = { file_change("a/b/c.txt", "c", 2) };
    struct catalog_batch_result r;
    int mark;

    apply(f, COMMIT1, add, 3, NULL);
    mark = outbox_last(f);
    apply(f, COMMIT2, del, 1, &r);
    assert_int_equal(r.deleted, 4);
    /* Children first, so each delete finds its node. */
    assert_string_equal(outbox_since(f, mark),
                        "delete_node releases/a/d.txt|delete_node releases/a/b/c.txt|"
                        "delete_node releases/a/b|delete_node releases/a");
    assert_string_equal(rows(f, "SELECT path FROM entry WHERE deleted_at IS NULL ORDER BY path"),
                        "|keep.txt");
    assert_string_equal(rows(f, "SELECT count(*) FROM revision"), "3");

    /* The same bytes come back: the nodes are made again and the file gets
     * a new revision (its leaf was deleted). */
    mark = outbox_last(f);
    apply(f, COMMIT3, back, 1, &r);
    assert_int_equal(r.entries, 3);
    assert_int_equal(r.revisions, 1);
    assert_string_equal(outbox_since(f, mark),
                        "create_collection releases/a|create_collection releases/a/b|"
                        "create_leaf releases/a/b/c.txt 2");
    assert_string_equal(rows(f, "SELECT r.number FROM entry e JOIN revision r"
                                " ON r.id = e.current_revision_id WHERE e.path = 'a/b/c.txt'"),
                        "2");
    /* a/d.txt stays deleted. */
    assert_string_equal(rows(f, "SELECT deleted_at IS NOT NULL FROM entry WHERE path = 'a/d.txt'"),
                        "t");
}

static void test_index__file_becomes_directory(void **state)
{
    struct fixture *f = *state;
    struct catalog_change add[] = { file_change("docs", "a file called docs", 1) };
    struct catalog_change swap[] = {
        { .path = "docs", .deleted = true },
        file_change("docs/index.html", "<html>", 2),
    };
    int mark;

    apply(f, COMMIT1, add, 1, NULL);
    mark = outbox_last(f);
    apply(f, COMMIT2, swap, 2, NULL);
    assert_string_equal(outbox_since(f, mark),
                        "delete_node releases/docs|create_collection releases/docs|"
                        "create_leaf releases/docs/index.html 1");
    assert_string_equal(rows(f, "SELECT path, kind, current_revision_id IS NULL FROM entry"
                                " WHERE path LIKE 'docs%' ORDER BY path"),
                        "docs directory t|docs/index.html file f");
}

static void test_index__bad_batches_change_nothing(void **state)
{
    struct fixture *f = *state;
    const char *bad_paths[] = { "/etc/passwd", "a/../b", "a//b", "./a", "a/", "" };
    struct catalog_change twice[] = { file_change("x", "1", 1), file_change("x", "2", 1) };
    int mark = outbox_last(f);

    for (size_t i = 0; i < sizeof(bad_paths) / sizeof(*bad_paths); i++) {
        struct catalog_change c = file_change(bad_paths[i], "z", 1);

        assert_int_equal(catalog_batch_apply(f->db.catalog, f->repo, "releases", COMMIT1, &c, 1,
                                             NULL), FR_EINVAL);
    }
    assert_int_equal(catalog_batch_apply(f->db.catalog, f->repo, "releases", COMMIT1, twice, 2,
                                         NULL), FR_EINVAL);
    assert_non_null(strstr(catalog_last_error(f->db.catalog), "appears twice"));
    assert_int_equal(catalog_batch_apply(f->db.catalog, f->repo, "releases", "HEAD", twice, 1,
                                         NULL), FR_EINVAL);
    assert_string_equal(outbox_since(f, mark), "");
    assert_string_equal(rows(f, "SELECT count(*) FROM entry"), "1");
    /* The connection is fine afterwards. */
    apply(f, COMMIT1, twice, 1, NULL);
}

static void test_index__large_batch(void **state)
{
    struct fixture *f = *state;
    enum { FILES = 20000 };
    struct catalog_change *changes = calloc(FILES, sizeof(*changes));
    char (*paths)[64] = calloc(FILES, sizeof(*paths));
    struct catalog_batch_result r;

    for (int i = 0; i < FILES; i++) {
        snprintf(paths[i], sizeof(paths[i]), "dir%03d/file%05d\ttab\\slash.bin", i % 200, i);
        changes[i] = file_change(paths[i], paths[i], i);
    }
    apply(f, COMMIT1, changes, FILES, &r);
    assert_int_equal(r.revisions, FILES);
    assert_int_equal(r.entries, FILES + 200);
    assert_string_equal(rows(f, "SELECT count(*) FROM entry WHERE path LIKE '%\ttab\\\\slash.bin'"),
                        "20000");
    free(paths);
    free(changes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index__repository_upsert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index__first_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index__dir_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index__changes_and_touches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index__deletions_keep_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index__file_becomes_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index__bad_batches_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index__large_batch, setup, teardown),
    };

    if (testenv_load() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
