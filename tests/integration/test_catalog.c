/*
 * test_catalog.c - the catalog schema against the real PostgreSQL: migrations
 * applied once, atomically, refused when the database is newer; the tables,
 * constraints and the indexes the later queries rely on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "outbox.h"
#include "testenv.h"

/* Each test: a fresh, empty (not migrated) database. */
struct fixture {
    struct testenv_db db;   /* its catalog connection and side connection */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(testenv_db_open(&f->db, false), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    testenv_db_close(&f->db);
    free(f);
    return 0;
}

/* Runs a query on the side connection; returns the first value (static). */
static const char *value(struct fixture *f, const char *sql)
{
    static char buf[4096];
    PGresult *res = PQexec(f->db.sql, sql);

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    snprintf(buf, sizeof(buf), "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return buf;
}

static void exec_ok(struct fixture *f, const char *sql)
{
    PGresult *res = PQexec(f->db.sql, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

/* Returns the SQLSTATE of a statement expected to fail. */
static const char *exec_fails(struct fixture *f, const char *sql)
{
    static char state[8];
    PGresult *res = PQexec(f->db.sql, sql);

    if (PQresultStatus(res) == PGRES_COMMAND_OK)
        fail_msg("expected failure: %s", sql);
    snprintf(state, sizeof(state), "%s", PQresultErrorField(res, PG_DIAG_SQLSTATE));
    PQclear(res);
    return state;
}

static void migrate_ok(struct fixture *f, int expect_applied)
{
    int applied = -1, version = -1;

    if (catalog_migrate(f->db.catalog, &applied, &version) != 0)
        fail_msg("migrate: %s", catalog_last_error(f->db.catalog));
    assert_int_equal(applied, expect_applied);
    assert_int_equal(version, catalog_schema_version_known());
}

/* A fingerprint of every column and index of the public schema. */
static const char *schema_fingerprint(struct fixture *f)
{
    return value(f, "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM ("
                    " SELECT table_name || '.' || column_name || ':' || data_type AS x"
                    " FROM information_schema.columns WHERE table_schema = 'public'"
                    " UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public') s");
}

static void test_catalog__migrate_fresh_database(void **state)
{
    struct fixture *f = *state;
    int version = -1;

    assert_int_equal(catalog_schema_version(f->db.catalog, &version), 0);
    assert_int_equal(version, 0);
    migrate_ok(f, (int)catalog_schema_version_known());
    assert_int_equal(catalog_schema_version(f->db.catalog, &version), 0);
    assert_int_equal(version, catalog_schema_version_known());

    assert_string_equal(value(f, "SELECT string_agg(tablename, ',' ORDER BY tablename)"
                                 " FROM pg_tables WHERE schemaname = 'public'"),
                        "acl,entry,entry_listing_stats,indexer_progress,mirror,mirror_copy,"
                        "outbox,repository,"
                        "revision,schema_migration,transfer");
    assert_string_equal(value(f, "SELECT name FROM schema_migration WHERE version = 1"),
                        "catalog");
}

static void test_catalog__migrate_twice_changes_nothing(void **state)
{
    struct fixture *f = *state;
    char before[64], applied_at[512];

    migrate_ok(f, (int)catalog_schema_version_known());
    snprintf(before, sizeof(before), "%s", schema_fingerprint(f));
    snprintf(applied_at, sizeof(applied_at), "%s",
             value(f, "SELECT string_agg(applied_at::text, ',') FROM schema_migration"));
    migrate_ok(f, 0);
    assert_string_equal(schema_fingerprint(f), before);
    assert_string_equal(value(f, "SELECT string_agg(applied_at::text, ',') FROM schema_migration"),
                        applied_at);
}

static void test_catalog__newer_schema_is_refused(void **state)
{
    struct fixture *f = *state;
    char before[64];

    migrate_ok(f, (int)catalog_schema_version_known());
    exec_ok(f, "INSERT INTO schema_migration (version, name) VALUES (999, 'from_the_future')");
    snprintf(before, sizeof(before), "%s", schema_fingerprint(f));

    assert_int_equal(catalog_migrate(f->db.catalog, NULL, NULL), FR_ESCHEMA);
    assert_non_null(strstr(catalog_last_error(f->db.catalog), "schema version 999"));
    assert_non_null(strstr(catalog_last_error(f->db.catalog), "newer"));
    assert_string_equal(schema_fingerprint(f), before);
    /* The connection is still usable after the refusal. */
    int version = 0;
    assert_int_equal(catalog_schema_version(f->db.catalog, &version), 0);
    assert_int_equal(version, 999);
}

static void test_catalog__foreign_schema_is_refused(void **state)
{
    struct fixture *f = *state;

    exec_ok(f, "CREATE TABLE schema_migration (version integer PRIMARY KEY, name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT now());"
               "INSERT INTO schema_migration (version, name) VALUES (1, 'something_else')");
    assert_int_equal(catalog_migrate(f->db.catalog, NULL, NULL), FR_ESCHEMA);
    assert_non_null(strstr(catalog_last_error(f->db.catalog), "something_else"));
    assert_string_equal(value(f, "SELECT count(*) FROM pg_tables WHERE tablename = 'entry'"), "0");
}

static void test_catalog__failed_migration_leaves_nothing(void **state)
{
    struct fixture *f = *state;

    /* A table in the way makes migration 001 fail half-way. */
    exec_ok(f, "CREATE TABLE transfer (x integer)");
    assert_int_equal(catalog_migrate(f->db.catalog, NULL, NULL), FR_ERROR);
    assert_non_null(strstr(catalog_last_error(f->db.catalog), "migration 001_catalog failed"));
    assert_non_null(strstr(catalog_last_error(f->db.catalog), "already exists"));
    assert_string_equal(value(f, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
                        "1");
    assert_string_equal(value(f, "SELECT to_regclass('schema_migration') IS NULL"), "t");
}

struct racer {
    const char *conninfo;
    int applied;
    int error;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct catalog *c = NULL;

    r->error = catalog_new(&c, r->conninfo, NULL);
    if (r->error == 0)
        r->error = catalog_connect(c);
    if (r->error == 0)
        r->error = catalog_migrate(c, &r->applied, NULL);
    catalog_free(c);
    return NULL;
}

static void test_catalog__concurrent_migrations_apply_once(void **state)
{
    struct fixture *f = *state;
    struct racer racers[4];
    pthread_t threads[4];
    int total = 0;

    for (int i = 0; i < 4; i++) {
        racers[i] = (struct racer){ .conninfo = f->db.conninfo };
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(racers[i].error, 0);
        total += racers[i].applied;
    }
    assert_int_equal(total, catalog_schema_version_known());
    char known[16];

    snprintf(known, sizeof(known), "%d", catalog_schema_version_known());
    assert_string_equal(value(f, "SELECT count(*) FROM schema_migration"), known);
}

static void test_catalog__constraints_refuse_bad_rows(void **state)
{
    struct fixture *f = *state;

    migrate_ok(f, (int)catalog_schema_version_known());
    exec_ok(f, "INSERT INTO repository (name, path) VALUES ('releases', '/srv/releases');"
               "INSERT INTO entry (repository_id, parent_id, name, path, kind)"
               " VALUES (1, NULL, '', '', 'directory');"
               "INSERT INTO entry (repository_id, parent_id, name, path, kind)"
               " VALUES (1, 1, 'a.tar.xz', 'a.tar.xz', 'file')");
    /* check_violation: 23514; unique_violation: 23505; foreign key: 23503 */
    assert_string_equal(exec_fails(f, "INSERT INTO repository (name, path)"
                                      " VALUES ('../etc', '/x')"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO repository (name, path)"
                                      " VALUES ('rel', 'relative')"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO entry (repository_id, parent_id, name, path,"
                                      " kind) VALUES (1, 1, 'a/b', 'a/b', 'file')"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO entry (repository_id, parent_id, name, path,"
                                      " kind) VALUES (1, 1, '..', '..', 'directory')"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO entry (repository_id, parent_id, name, path,"
                                      " kind) VALUES (1, NULL, '', 'x', 'directory')"), "23505");
    assert_string_equal(exec_fails(f, "INSERT INTO entry (repository_id, parent_id, name, path,"
                                      " kind) VALUES (1, 1, 'a.tar.xz', 'other', 'file')"), "23505");
    exec_ok(f, "INSERT INTO revision (entry_id, number, commit_id, size, mtime, sha256)"
               " VALUES (2, 1, repeat('a', 40), 10, now(), sha256('x'))");
    assert_string_equal(exec_fails(f, "INSERT INTO revision (entry_id, number, commit_id, size,"
                                      " mtime, sha256) VALUES (2, 1, repeat('b', 40), 1, now(),"
                                      " sha256('y'))"), "23505");
    assert_string_equal(exec_fails(f, "INSERT INTO revision (entry_id, number, commit_id, size,"
                                      " mtime, sha256) VALUES (2, 0, repeat('b', 40), 1, now(),"
                                      " sha256('y'))"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO revision (entry_id, number, commit_id, size,"
                                      " mtime, sha256) VALUES (2, 2, 'nothex', 1, now(),"
                                      " sha256('y'))"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO revision (entry_id, number, commit_id, size,"
                                      " mtime, sha256) VALUES (2, 2, repeat('b', 40), 1, now(),"
                                      " '\\x00')"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO outbox (repository_id, node, action)"
                                      " VALUES (1, 'releases', 'explode')"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO acl (repository_id, jid, role)"
                                      " VALUES (1, 'a@b', 'king')"), "23514");
    assert_string_equal(exec_fails(f, "INSERT INTO mirror_copy (mirror_id, revision_id)"
                                      " VALUES (1, 999)"), "23503");
}

/* A repository removed by hand takes its tree and its history along. */
static void test_catalog__repository_delete_takes_its_tree(void **state)
{
    struct fixture *f = *state;

    migrate_ok(f, (int)catalog_schema_version_known());
    exec_ok(f, "INSERT INTO repository (name, path) VALUES ('releases', '/srv/releases'),"
               " ('other', '/srv/other');"
               "INSERT INTO entry (repository_id, parent_id, name, path, kind)"
               " VALUES (1, NULL, '', '', 'directory'), (2, NULL, '', '', 'directory');"
               "INSERT INTO entry (repository_id, parent_id, name, path, kind)"
               " VALUES (1, 1, 'a.tar.xz', 'a.tar.xz', 'file'),"
               " (2, 2, 'b.tar.xz', 'b.tar.xz', 'file');"
               "INSERT INTO revision (entry_id, number, commit_id, size, mtime, sha256)"
               " VALUES (3, 1, repeat('a', 40), 10, now(), sha256('x')),"
               " (4, 1, repeat('b', 40), 10, now(), sha256('y'));"
               "UPDATE entry SET current_revision_id = id - 2 WHERE kind = 'file';"
               "INSERT INTO mirror (repository_id, url, type) VALUES (1, 'http://m/', 'http');"
               "INSERT INTO mirror_copy (mirror_id, revision_id) VALUES (1, 1);"
               "DELETE FROM repository WHERE name = 'releases'");
    assert_string_equal(value(f, "SELECT string_agg(path || '@' || repository_id, ',' ORDER BY id)"
                                  " FROM entry"), "@2,b.tar.xz@2");
    assert_string_equal(value(f, "SELECT string_agg(entry_id::text, ',') FROM revision"), "4");
    assert_string_equal(value(f, "SELECT count(*) FROM mirror_copy"), "0");
}

/* The plan of a query, one line. */
static const char *plan(struct fixture *f, const char *sql)
{
    static char buf[8192];
    char explain[2048];
    PGresult *res;
    size_t len = 0;

    snprintf(explain, sizeof(explain), "EXPLAIN (COSTS OFF) %s", sql);
    res = PQexec(f->db.sql, explain);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", explain, PQresultErrorMessage(res));
    buf[0] = '\0';
    for (int i = 0; i < PQntuples(res) && len < sizeof(buf) - 1; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s|", PQgetvalue(res, i, 0));
    PQclear(res);
    return buf;
}

static void test_catalog__listing_and_outbox_use_indexes(void **state)
{
    struct fixture *f = *state;
    const char *p;

    migrate_ok(f, (int)catalog_schema_version_known());
    /* A directory of 50,000 files, a few deleted; an outbox of 20,000 rows. */
    exec_ok(f, "INSERT INTO repository (name, path) VALUES ('big', '/srv/big');"
               "INSERT INTO entry (repository_id, parent_id, name, path, kind)"
               " VALUES (1, NULL, '', '', 'directory');"
               "INSERT INTO entry (repository_id, parent_id, name, path, kind, deleted_at)"
               " SELECT 1, 1, 'f' || i, 'f' || i, 'file', CASE WHEN i % 100 = 0 THEN now() END"
               " FROM generate_series(1, 50000) i;"
               "INSERT INTO outbox (repository_id, node, action, state)"
               " SELECT 1, 'big/f' || i, 'publish_item', CASE WHEN i < 19900 THEN 'done'"
               " ELSE 'pending' END FROM generate_series(1, 20000) i;"
               "ANALYZE");

    /* Keyset page after a name: an index range scan, no sort. */
    p = plan(f, "SELECT name FROM entry WHERE parent_id = 1 AND deleted_at IS NULL"
                " AND name > 'f25000' ORDER BY name LIMIT 100");
    if (!strstr(p, "Index") || strstr(p, "Sort"))
        fail_msg("listing after: %s", p);
    /* The last page (RSM before): the same index backwards. */
    p = plan(f, "SELECT name FROM entry WHERE parent_id = 1 AND deleted_at IS NULL"
                " ORDER BY name DESC LIMIT 100");
    if (!strstr(p, "Index") || strstr(p, "Sort"))
        fail_msg("listing before: %s", p);
    /* The next outbox rows in id order: no sort, no scan of done rows. */
    p = plan(f, "SELECT id FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 50");
    if (!strstr(p, "outbox_pending") || strstr(p, "Sort"))
        fail_msg("outbox: %s", p);
    /* A path resolved in the catalog. */
    p = plan(f, "SELECT id FROM entry WHERE repository_id = 1 AND path = 'f777'");
    if (!strstr(p, "Index"))
        fail_msg("path lookup: %s", p);
}

static int collect_id(const struct catalog_outbox_row *row, void *data)
{
    char *ids = data;
    size_t len = strlen(ids);

    snprintf(ids + len, 256 - len, "%s%" PRId64, len ? "," : "", row->id);
    return 0;
}

/* A row waiting for its retry holds back the later rows of its node and of
 * the nodes below it (a leaf is not created before its collection), and
 * nothing else. */
static void test_catalog__outbox_rows_wait_for_a_retrying_ancestor(void **state)
{
    struct fixture *f = *state;
    char ids[256] = "";
    bool more = true;
    int retry_in = -1;

    migrate_ok(f, (int)catalog_schema_version_known());
    exec_ok(f, "INSERT INTO repository (name, path) VALUES ('r', '/srv/r');"
               "INSERT INTO outbox (repository_id, node, action, state, attempts, next_attempt_at)"
               " OVERRIDING SYSTEM VALUE VALUES"
               " (1, 'r/d', 'create_collection', 'pending', 1, now() + interval '1 hour'),"
               " (1, 'r/d/f', 'create_leaf', 'pending', 0, now()),"
               " (1, 'r/d/sub/g', 'create_leaf', 'pending', 0, now()),"
               " (1, 'r/dx/f', 'create_leaf', 'pending', 0, now()),"
               " (1, 'r/d', 'publish_item', 'pending', 0, now()),"
               " (1, 'r', 'configure_node', 'pending', 0, now()),"
               " (1, 'r/p', 'create_collection', 'parked', 1, now()),"
               " (1, 'r/p/f', 'create_leaf', 'pending', 0, now()),"
               /* Failed once and due again: holds nothing back. */
               " (1, 'r/q', 'create_collection', 'pending', 2, now() - interval '1 second'),"
               " (1, 'r/q/f', 'create_leaf', 'pending', 0, now())");
    if (catalog_outbox_fetch(f->db.catalog, NULL, 0, 10, collect_id, ids, &more, &retry_in) != 0)
        fail_msg("fetch: %s", catalog_last_error(f->db.catalog));
    /* Row 1 waits; 2, 3 (below r/d) and 5 (r/d again) wait with it.  4 is
     * r/dx, not below r/d; 6 is above r/d, not below; 8's collection is
     * parked, which holds nothing back; 9 failed before but is due, so
     * it goes, and 10 after it. */
    assert_string_equal(ids, "4,6,8,9,10");
    assert_false(more);
    assert_true(retry_in > 3500 * 1000 && retry_in <= 3600 * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalog__migrate_fresh_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__migrate_twice_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog__newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog__repository_delete_takes_its_tree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog__foreign_schema_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog__failed_migration_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog__concurrent_migrations_apply_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog__constraints_refuse_bad_rows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog__listing_and_outbox_use_indexes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog__outbox_rows_wait_for_a_retrying_ancestor,
                                        setup, teardown),
    };

    if (testenv_load() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
