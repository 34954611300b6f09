/*
 * test_store_hardlink.c - the content store in hard-link mode: the object is
 * the published inode, a file replaced between hashing and commit is never
 * stored under the old digest, a link across file systems becomes a checked
 * copy, and a published symbolic link is stored as the file it leads to.
 */
#include "store_fixture.h"

static void test_store__hardlink_links_the_published_inode(void **state)
{
    (void)state;
    unsigned char *data = testfiles_bytes(300000, 14);
    struct store_report report;
    unsigned char sha256[32];
    struct stat published, object;
    struct store *store;

    publish("h.iso", data, 300000);
    assert_int_equal(store_open(&store, store_dir, STORE_HARDLINK), 0);
    assert_int_equal(ingest(store, "h.iso", sha256, &report), 0);
    assert_int_equal(report.method, STORE_METHOD_HARDLINK);
    assert_false(report.existed);
    object = assert_object_holds(store, sha256, data, 300000);
    assert_int_equal(fstatat(src_dirfd, "h.iso", &published, 0), 0);
    assert_int_equal(object.st_ino, published.st_ino);
    assert_int_equal(published.st_nlink, 2);
    /* The published file's mode is not the store's to change. */
    assert_int_equal(published.st_mode & 07777, 0644);
    assert_int_equal(count_in_store("tmp"), 0);
    store_free(store);
    free(data);
}

static void test_store__hardlink_refuses_a_replaced_file(void **state)
{
    (void)state;
    struct store_ingest *in;
    struct hash_result r;
    struct store *store;
    int fd, read_fd, copy_fd;

    publish("v.txt", "version 1", 9);
    publish("v.txt.new", "version 2", 9);
    assert_int_equal(store_open(&store, store_dir, STORE_HARDLINK), 0);
    fd = open_published("v.txt");
    assert_int_equal(store_ingest_begin(&in, store, fd, &read_fd, &copy_fd), 0);
    assert_int_equal(read_fd, fd);
    assert_int_equal(copy_fd, -1);
    assert_int_equal(hash_fd(&r, read_fd, HASH_SHA256, copy_fd), 0);
    /* A release tool renames the next version into place before the commit. */
    assert_int_equal(renameat(src_dirfd, "v.txt.new", src_dirfd, "v.txt"), 0);
    assert_int_equal(store_ingest_commit(in, r.sha256, src_dirfd, "v.txt"), FR_EINVAL);
    assert_int_equal(store_object_open(store, r.sha256), FR_ENOTFOUND);
    assert_int_equal(count_in_store("objects"), 0);
    assert_int_equal(count_in_store("tmp"), 0);
    close(fd);
    store_free(store);
}

/* Hard links cannot cross file systems: copy, and check the copy's digest. */
static void test_store__hardlink_across_file_systems_copies_and_checks(void **state)
{
    (void)state;
    char other[] = "/dev/shm/filerepo-test-store-XXXXXX";
    char path[512];
    struct store_report report;
    struct stat object;
    struct store_ingest *in;
    struct hash_result r;
    struct store *store;
    int other_fd, fd, read_fd, copy_fd;

    if (!mkdtemp_elsewhere(other))
        skip();
    other_fd = open(other, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(other_fd >= 0);
    testfiles_write(path, sizeof(path), other, "x", "cross", 5);
    assert_int_equal(store_open(&store, store_dir, STORE_HARDLINK), 0);

    fd = openat(other_fd, "x", O_RDONLY | O_CLOEXEC);
    assert_int_equal(store_ingest_begin(&in, store, fd, &read_fd, &copy_fd), 0);
    assert_int_equal(hash_fd(&r, read_fd, HASH_SHA256, copy_fd), 0);
    assert_int_equal(store_ingest_commit_report(&report, in, r.sha256, other_fd, "x"), 0);
    assert_int_equal(report.method, STORE_METHOD_COPY);
    object = assert_object_holds(store, r.sha256, "cross", 5);
    assert_int_equal(object.st_mode & 07777, 0444);
    close(fd);

    /* Rewritten in place after hashing: same inode, other bytes. */
    testfiles_write(path, sizeof(path), other, "y", "before", 6);
    fd = openat(other_fd, "y", O_RDONLY | O_CLOEXEC);
    assert_int_equal(store_ingest_begin(&in, store, fd, &read_fd, &copy_fd), 0);
    assert_int_equal(hash_fd(&r, read_fd, HASH_SHA256, copy_fd), 0);
    testfiles_write(path, sizeof(path), other, "y", "after!", 6);
    assert_int_equal(store_ingest_commit(in, r.sha256, other_fd, "y"), FR_EINVAL);
    assert_int_equal(store_object_open(store, r.sha256), FR_ENOTFOUND);
    close(fd);

    close(other_fd);
    testfiles_remove_tree(other);
    store_free(store);
}

/* A published name that is a symbolic link (inside the repository) is
 * stored as the file it leads to, not refused as "changed". */
static void test_store__hardlink_follows_a_published_symlink(void **state)
{
    (void)state;
    struct store_report report;
    struct stat target, object;
    struct store_ingest *in;
    struct hash_result r;
    unsigned char sha256[32];
    char path[PATH_MAX];
    struct store *store;
    int fd, read_fd, copy_fd;

    publish("target.bin", "linked through a symlink", 24);
    assert_int_equal(symlinkat("target.bin", src_dirfd, "alias.bin"), 0);
    assert_int_equal(store_open(&store, store_dir, STORE_HARDLINK), 0);
    /* Opened through the link, as the indexer opens one that stays inside. */
    fd = openat(src_dirfd, "alias.bin", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(store_ingest_begin(&in, store, fd, &read_fd, &copy_fd), 0);
    assert_int_equal(hash_fd(&r, read_fd, HASH_SHA256, copy_fd), 0);
    assert_int_equal(store_ingest_commit_report(&report, in, r.sha256, src_dirfd, "alias.bin"), 0);
    close(fd);
    memcpy(sha256, r.sha256, 32);
    assert_int_equal(report.method, STORE_METHOD_HARDLINK);
    assert_object_holds(store, sha256, "linked through a symlink", 24);
    assert_int_equal(store_object_path(store, sha256, path, sizeof(path)), 0);
    assert_int_equal(lstat(path, &object), 0);
    assert_int_equal(fstatat(src_dirfd, "target.bin", &target, 0), 0);
    assert_true(S_ISREG(object.st_mode));
    assert_int_equal(object.st_ino, target.st_ino);
    assert_int_equal(count_in_store("tmp"), 0);
    store_free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_store__hardlink_links_the_published_inode, clean),
        cmocka_unit_test_setup(test_store__hardlink_refuses_a_replaced_file, clean),
        cmocka_unit_test_setup(test_store__hardlink_across_file_systems_copies_and_checks, clean),
        cmocka_unit_test_setup(test_store__hardlink_follows_a_published_symlink, clean),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
