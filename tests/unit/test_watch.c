/*
 * test_watch.c - inotify events as the indexer sees them, on real files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch.h"

static const char *const kinds[] = { "written", "linked", "dir", "removed", "lost" };

struct fixture {
    char root[64];          /* the repository */
    char outside[64];       /* a directory beside it */
    struct watch *watch;
    char seen[8192];        /* "kind:repo:path" lines */
};

static void record(const struct watch_event *ev, void *data)
{
    struct fixture *f = data;
    size_t len = strlen(f->seen);

    snprintf(f->seen + len, sizeof(f->seen) - len, "%s:%d:%s\n", kinds[ev->kind], ev->repo,
             ev->path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    snprintf(f->root, sizeof(f->root), "/tmp/filerepo-test-watch-XXXXXX");
    snprintf(f->outside, sizeof(f->outside), "/tmp/filerepo-test-outside-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    assert_non_null(mkdtemp(f->outside));
    assert_int_equal(watch_new(&f->watch), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];

    watch_free(f->watch);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->root, f->outside);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Reads what is pending (waiting briefly for it); returns the lines. */
static const char *drain(struct fixture *f)
{
    struct pollfd p = { .fd = watch_fd(f->watch), .events = POLLIN };

    f->seen[0] = '\0';
    while (poll(&p, 1, 100) > 0)
        assert_int_equal(watch_read(f->watch, record, f), 0);
    return f->seen;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void in(struct fixture *f, char *out, const char *rel)
{
    snprintf(out, 256, "%s/%s", f->root, rel);
}

static void test_watch__files(void **state)
{
    struct fixture *f = *state;
    char a[256], b[256];
    int fd;

    assert_int_equal(watch_add_tree(f->watch, 3, f->root, "", record, f), 0);
    assert_int_equal(watch_count(f->watch), 1);

    /* Opening for writing is not enough: only the close counts. */
    in(f, a, "slow.tar.xz");
    fd = open(a, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "part", 4), 4);
    assert_string_equal(drain(f), "");
    close(fd);
    assert_string_equal(drain(f), "written:3:slow.tar.xz\n");

    /* Write to a temporary name, rename into place. */
    write_file(f->root, "proj.tar.xz.part", "bytes");
    in(f, a, "proj.tar.xz.part");
    in(f, b, "proj.tar.xz");
    assert_int_equal(rename(a, b), 0);
    assert_string_equal(drain(f), "written:3:proj.tar.xz.part\nremoved:3:proj.tar.xz.part\n"
                                  "written:3:proj.tar.xz\n");

    /* Reading is invisible. */
    fd = open(b, O_RDONLY);
    char buf[8];
    assert_true(read(fd, buf, sizeof(buf)) > 0);
    close(fd);
    assert_string_equal(drain(f), "");

    /* A symlink is complete when it appears. */
    in(f, a, "latest");
    assert_int_equal(symlink("proj.tar.xz", a), 0);
    assert_string_equal(drain(f), "linked:3:latest\n");

    assert_int_equal(unlink(b), 0);
    assert_string_equal(drain(f), "removed:3:proj.tar.xz\n");
}

static void test_watch__directories(void **state)
{
    struct fixture *f = *state;
    char a[256], b[256];

    in(f, a, "old");
    assert_int_equal(mkdir(a, 0755), 0);
    in(f, a, "old/deep");
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(watch_add_tree(f->watch, 0, f->root, "", record, f), 0);
    assert_int_equal(watch_count(f->watch), 3);

    write_file(a, "x.txt", "x");
    assert_string_equal(drain(f), "written:0:old/deep/x.txt\n");

    /* A new directory is watched at once, with what is below it. */
    in(f, a, "new");
    assert_int_equal(mkdir(a, 0755), 0);
    assert_string_equal(drain(f), "dir:0:new\n");
    write_file(a, "y.txt", "y");
    assert_string_equal(drain(f), "written:0:new/y.txt\n");

    /* A tree moved in from outside: watched whole. */
    snprintf(a, sizeof(a), "%s/tree", f->outside);
    assert_int_equal(mkdir(a, 0755), 0);
    snprintf(a, sizeof(a), "%s/tree/sub", f->outside);
    assert_int_equal(mkdir(a, 0755), 0);
    snprintf(a, sizeof(a), "%s/tree", f->outside);
    in(f, b, "tree");
    assert_int_equal(rename(a, b), 0);
    assert_string_equal(drain(f), "dir:0:tree\n");
    assert_int_equal(watch_count(f->watch), 6);
    in(f, a, "tree/sub");
    write_file(a, "z.txt", "z");
    assert_string_equal(drain(f), "written:0:tree/sub/z.txt\n");

    /* Renamed within: the old name goes, the new one comes. */
    in(f, a, "old");
    in(f, b, "archive");
    assert_int_equal(rename(a, b), 0);
    assert_string_equal(drain(f), "removed:0:old\ndir:0:archive\n");
    in(f, a, "archive/deep");
    write_file(a, "w.txt", "w");
    assert_string_equal(drain(f), "written:0:archive/deep/w.txt\n");

    /* Moved out of the tree: gone, and its watches with it. */
    in(f, a, "archive");
    snprintf(b, sizeof(b), "%s/archive", f->outside);
    assert_int_equal(rename(a, b), 0);
    assert_string_equal(drain(f), "removed:0:archive\n");
    assert_int_equal(watch_count(f->watch), 4);
    snprintf(a, sizeof(a), "%s/archive/deep", f->outside);
    write_file(a, "v.txt", "v");
    assert_string_equal(drain(f), "");
}

static void test_watch__symlinked_directory_not_followed(void **state)
{
    struct fixture *f = *state;
    char a[256];

    in(f, a, "escape");
    assert_int_equal(symlink(f->outside, a), 0);
    assert_int_equal(watch_add_tree(f->watch, 0, f->root, "", record, f), 0);
    assert_int_equal(watch_count(f->watch), 1);
    write_file(f->outside, "secret.txt", "s");
    assert_string_equal(drain(f), "");
}

static void test_watch__root_removed(void **state)
{
    struct fixture *f = *state;
    char cmd[256];

    assert_int_equal(watch_add_tree(f->watch, 1, f->root, "", record, f), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
    assert_int_equal(system(cmd), 0);
    assert_string_equal(drain(f), "lost:1:\n");
    assert_int_equal(watch_count(f->watch), 0);
    assert_int_equal(mkdir(f->root, 0755), 0);
}

static void test_watch__root_moved_away(void **state)
{
    struct fixture *f = *state;
    char a[512], moved[256];

    in(f, a, "sub");
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(watch_add_tree(f->watch, 2, f->root, "", record, f), 0);
    assert_int_equal(watch_count(f->watch), 2);
    snprintf(moved, sizeof(moved), "%s/moved-root", f->outside);
    assert_int_equal(rename(f->root, moved), 0);
    assert_string_equal(drain(f), "lost:2:\n");
    /* Nothing of the moved tree is reported any more. */
    assert_int_equal(watch_count(f->watch), 0);
    snprintf(a, sizeof(a), "%s/sub", moved);
    write_file(a, "late.txt", "l");
    assert_string_equal(drain(f), "");
    assert_int_equal(rename(moved, f->root), 0);
}

static void test_watch__missing_root(void **state)
{
    struct fixture *f = *state;
    char a[256];

    in(f, a, "nonexistent");
    f->seen[0] = '\0';
    assert_int_equal(watch_add_tree(f->watch, 0, a, "", record, f), FR_ERROR);
    assert_int_equal(watch_count(f->watch), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_watch__files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch__directories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch__symlinked_directory_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_watch__root_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch__root_moved_away, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch__missing_root, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
