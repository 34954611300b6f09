/*
 * test_scan.c - the scanner against real files and the real catalog: what
 * it reports on a first scan, after the catalog recorded it, after changes,
 * and what it refuses to follow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "index.h"
#include "scan.h"
#include "testenv.h"

static const char *const kinds[] = { "file", "dir+", "file-", "dir-" };

struct fixture {
    struct testenv_db db;   /* a migrated database */
    char root[64];
    char outside[64];
    int64_t repo;
    int root_fd;
    struct config_strings ignore;
};

static char *ignore_patterns[] = { ".*", "*.part", "*.tmp", "*~" };

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    static const char *const none[] = { NULL };
    struct catalog_repository_spec spec = { .name = "r", .path = "/x", .title = "r",
                                            .description = "", .members = none };

    assert_int_equal(testenv_db_open(&f->db, true), 0);
    assert_int_equal(catalog_repository_upsert(f->db.catalog, &f->repo, &spec), 0);
    snprintf(f->root, sizeof(f->root), "/tmp/filerepo-test-scan-XXXXXX");
    snprintf(f->outside, sizeof(f->outside), "/tmp/filerepo-test-scan-out-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    assert_non_null(mkdtemp(f->outside));
    f->root_fd = scan_open_root(f->root);
    assert_true(f->root_fd >= 0);
    f->ignore = (struct config_strings){ ignore_patterns, 4 };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];

    close(f->root_fd);
    testenv_db_close(&f->db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->root, f->outside);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void put(struct fixture *f, const char *rel, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", f->root, rel);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void dir(struct fixture *f, const char *rel)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", f->root, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

/* Scans `path` and returns "kind path" lines joined by '|' (static). */
static const char *scan(struct fixture *f, const char *path, struct scan *keep)
{
    static char buf[4096];
    struct scan s = { 0 };
    size_t len = 0;

    if (scan_reconcile(&s, f->db.catalog, f->repo, "r", f->root_fd, path, &f->ignore) != 0)
        fail_msg("scan: %s", catalog_last_error(f->db.catalog));
    buf[0] = '\0';
    for (size_t i = 0; i < s.count; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s %s", i ? "|" : "",
                                kinds[s.items[i].kind], s.items[i].path);
    if (keep)
        *keep = s;
    else
        scan_clear(&s);
    return buf;
}

/* Records a scan in the catalog as the indexer would (digests stand-ins). */
static void record(struct fixture *f, struct scan *s)
{
    struct catalog_change *c = calloc(s->count + 1, sizeof(*c));

    for (size_t i = 0; i < s->count; i++) {
        const struct scan_item *it = &s->items[i];

        c[i] = (struct catalog_change){
            .path = it->path, .is_dir = it->kind == SCAN_DIR_ADDED || it->kind == SCAN_DIR_REMOVED,
            .deleted = it->kind == SCAN_FILE_REMOVED || it->kind == SCAN_DIR_REMOVED,
            .size = it->size, .mtime_ns = it->mtime_ns, .ctime_ns = it->ctime_ns,
            .inode = it->inode,
        };
        c[i].sha256[0] = (unsigned char)it->size;
    }
    if (catalog_batch_apply(f->db.catalog, f->repo, "r", "0123456789012345678901234567890123456789",
                            c, s->count, NULL) != 0)
        fail_msg("batch: %s", catalog_last_error(f->db.catalog));
    free(c);
    scan_clear(s);
}

static void test_scan__first_scan_then_quiet(void **state)
{
    struct fixture *f = *state;
    struct scan s;

    put(f, "b.tar.xz", "bb");
    put(f, "a.tar.xz", "a");
    dir(f, "old");
    dir(f, "old/deep");
    put(f, "old/deep/c.txt", "ccc");
    dir(f, "empty");
    put(f, "upload.tar.xz.part", "partial");
    put(f, ".hidden", "h");
    dir(f, ".git");
    put(f, ".git/config", "x");

    assert_string_equal(scan(f, "", &s),
                        "file a.tar.xz|file b.tar.xz|dir+ empty|dir+ old|dir+ old/deep|"
                        "file old/deep/c.txt");
    assert_int_equal(s.files, 3);
    assert_int_equal(s.bytes, 6);
    record(f, &s);
    /* Recorded: nothing changed. */
    assert_string_equal(scan(f, "", NULL), "");
    assert_string_equal(scan(f, "old", NULL), "");
    assert_string_equal(scan(f, "a.tar.xz", NULL), "");
    /* Ignored names are never reported, even when asked for. */
    assert_string_equal(scan(f, "upload.tar.xz.part", NULL), "");
}

static void test_scan__changes(void **state)
{
    struct fixture *f = *state;
    struct scan s;
    char a[256], b[256];

    put(f, "keep.txt", "k");
    put(f, "change.txt", "v1");
    dir(f, "gone");
    put(f, "gone/x", "x");
    put(f, "file-then-dir", "f");
    scan(f, "", &s);
    record(f, &s);

    put(f, "change.txt", "v2!");
    snprintf(a, sizeof(a), "%s/gone/x", f->root);
    unlink(a);
    snprintf(a, sizeof(a), "%s/gone", f->root);
    rmdir(a);
    snprintf(a, sizeof(a), "%s/file-then-dir", f->root);
    unlink(a);
    dir(f, "file-then-dir");
    put(f, "file-then-dir/inside", "i");
    put(f, "new.txt", "n");
    assert_string_equal(scan(f, "", &s),
                        "file change.txt|file- file-then-dir|dir+ file-then-dir|dir- gone|"
                        "file new.txt|file file-then-dir/inside");
    record(f, &s);
    assert_string_equal(scan(f, "", NULL), "");

    /* A single path, as an inotify event names it. */
    put(f, "keep.txt", "k2");
    assert_string_equal(scan(f, "keep.txt", NULL), "file keep.txt");
    snprintf(a, sizeof(a), "%s/keep.txt", f->root);
    snprintf(b, sizeof(b), "%s/kept.txt", f->root);
    rename(a, b);
    assert_string_equal(scan(f, "keep.txt", NULL), "file- keep.txt");
    assert_string_equal(scan(f, "kept.txt", NULL), "file kept.txt");
    assert_string_equal(scan(f, "never-was", NULL), "");
    /* A moved-in directory, by its name. */
    snprintf(a, sizeof(a), "%s/tree", f->outside);
    mkdir(a, 0755);
    snprintf(a, sizeof(a), "%s/tree/t.txt", f->outside);
    FILE *fp = fopen(a, "w");
    fputs("t", fp);
    fclose(fp);
    snprintf(a, sizeof(a), "%s/tree", f->outside);
    snprintf(b, sizeof(b), "%s/tree", f->root);
    assert_int_equal(rename(a, b), 0);
    assert_string_equal(scan(f, "tree", NULL), "dir+ tree|file tree/t.txt");
}

static void test_scan__symlinks(void **state)
{
    struct fixture *f = *state;
    char a[256], b[256];
    struct stat st;
    int fd;

    put(f, "real.tar.xz", "real bytes");
    snprintf(a, sizeof(a), "%s/secret", f->outside);
    FILE *fp = fopen(a, "w");
    fputs("do not publish", fp);
    fclose(fp);
    snprintf(b, sizeof(b), "%s/escape", f->root);
    assert_int_equal(symlink(a, b), 0);
    snprintf(b, sizeof(b), "%s/escape-relative", f->root);
    assert_int_equal(symlink("../../../../../../etc/passwd", b), 0);
    snprintf(b, sizeof(b), "%s/latest.tar.xz", f->root);
    assert_int_equal(symlink("real.tar.xz", b), 0);
    snprintf(b, sizeof(b), "%s/outdir", f->root);
    assert_int_equal(symlink(f->outside, b), 0);

    /* Inside: indexed as the file it names; outside: never. */
    assert_string_equal(scan(f, "", NULL), "file latest.tar.xz|file real.tar.xz");
    assert_string_equal(scan(f, "escape", NULL), "");
    assert_string_equal(scan(f, "outdir", NULL), "");
    assert_int_equal(scan_open_file(f->root_fd, "escape", &st), -EXDEV);
    assert_int_equal(scan_open_file(f->root_fd, "escape-relative", &st), -EXDEV);
    assert_int_equal(scan_open_file(f->root_fd, "outdir/secret", &st), -EXDEV);
    assert_int_equal(scan_open_file(f->root_fd, "../etc/passwd", &st), -EXDEV);
    fd = scan_open_file(f->root_fd, "latest.tar.xz", &st);
    assert_true(fd >= 0);
    assert_int_equal(st.st_size, 10);
    close(fd);
}

static void test_scan__unpublishable_names(void **state)
{
    struct fixture *f = *state;

    put(f, "good-\xc3\xa9t\xc3\xa9.txt", "ok");
    put(f, "latin1-\xe9t\xe9.txt", "not utf-8");
    put(f, "GIT~1", "a .git look-alike");
    dir(f, "overlong-\xc0\xaf");
    put(f, "overlong-\xc0\xaf/inside.txt", "x");
    /* Reported and skipped, never a batch the catalog or git would refuse. */
    assert_string_equal(scan(f, "", NULL), "file good-\xc3\xa9t\xc3\xa9.txt");
    assert_string_equal(scan(f, "latin1-\xe9t\xe9.txt", NULL), "");
    assert_string_equal(scan(f, "overlong-\xc0\xaf/inside.txt", NULL), "");
    assert_true(scan_name_publishable("caf\xc3\xa9"));
    assert_true(scan_name_publishable("\xf0\x9f\x93\xa6.tar.xz"));
    assert_false(scan_name_publishable("\xed\xa0\x80"));  /* a surrogate */
    assert_false(scan_name_publishable("\xf4\x90\x80\x80")); /* past U+10FFFF */
    assert_false(scan_name_publishable(".git"));
    assert_false(scan_name_publishable("Git~1 . "));
}

static void test_scan__ignored(void **state)
{
    struct fixture *f = *state;

    assert_true(scan_ignored(&f->ignore, "a/.git/config"));
    assert_true(scan_ignored(&f->ignore, "x.tar.xz.part"));
    assert_true(scan_ignored(&f->ignore, "dir/x~"));
    assert_true(scan_ignored(&f->ignore, "dir.tmp/x"));
    assert_false(scan_ignored(&f->ignore, "x.tar.xz"));
    assert_false(scan_ignored(&f->ignore, "part/x.partial"));
    assert_true(scan_ignored(&f->ignore, "dir/.hidden~"));

    /* Patterns beyond a literal with one '*' go the long way, alike. */
    char *patterns[] = { "core", "build-*", "*.t?z", "[Tt]humbs.db", "*cache*", "ab*ba" };
    struct config_strings more = { patterns, sizeof(patterns) / sizeof(*patterns) };

    assert_true(scan_ignored(&more, "x/core"));
    assert_false(scan_ignored(&more, "cores"));
    assert_true(scan_ignored(&more, "build-1/x"));
    assert_false(scan_ignored(&more, "rebuild-1"));
    assert_true(scan_ignored(&more, "a.tgz"));
    assert_false(scan_ignored(&more, "a.tar"));
    assert_true(scan_ignored(&more, "Thumbs.db"));
    assert_true(scan_ignored(&more, "d/mycache.d/f"));
    assert_true(scan_ignored(&more, "abba"));
    assert_true(scan_ignored(&more, "ab-ba"));
    assert_false(scan_ignored(&more, "aba"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan__first_scan_then_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan__changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan__symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan__unpublishable_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan__ignored, setup, teardown),
    };

    if (testenv_load() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
