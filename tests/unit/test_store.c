/*
 * test_store.c - the content store in each mode: the bytes read back are the
 * bytes put in, an existing object is kept, an abort or a replaced file
 * leaves nothing, and reflink says whether it cloned or copied.  Hard-link
 * mode: test_store_hardlink.c.
 */
#include "store_fixture.h"

static void test_store__mode_names(void **state)
{
    (void)state;
    const char *names[] = { "reflink", "copy", "hardlink", "none" };
    const enum store_mode modes[] = { STORE_REFLINK, STORE_COPY, STORE_HARDLINK, STORE_NONE };
    enum store_mode mode;

    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(store_mode_parse(&mode, names[i]), 0);
        assert_int_equal(mode, modes[i]);
        assert_string_equal(store_mode_name(mode), names[i]);
    }
    assert_int_equal(store_mode_parse(&mode, "Copy"), FR_EINVAL);
    assert_int_equal(store_mode_parse(&mode, "symlink"), FR_EINVAL);
    assert_int_equal(store_mode_parse(&mode, ""), FR_EINVAL);
    assert_int_equal(store_mode_parse(&mode, NULL), FR_EINVAL);
    assert_null(store_mode_name((enum store_mode)42));
    assert_string_equal(store_method_name(STORE_METHOD_COPY), "copy");
}

static void test_store__open_makes_the_directories(void **state)
{
    (void)state;
    const char *subs[] = { "", "/objects", "/tmp" };
    struct store *store;
    struct stat st;
    char path[400], stale[400];

    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(store_get_mode(store), STORE_COPY);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s%s", store_dir, subs[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);
    }
    store_free(store);

    /* A hard-link commit that died left a name in tmp/: the next open removes it. */
    snprintf(stale, sizeof(stale), "%s/tmp/link.1234.5", store_dir);
    close(open(stale, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    assert_int_equal(store_open(&store, store_dir, STORE_HARDLINK), 0);
    assert_int_equal(access(stale, F_OK), -1);
    store_free(store);
    store_free(NULL);

    assert_int_equal(store_open(&store, store_dir, (enum store_mode)9), FR_EINVAL);
    assert_null(store);
    assert_int_equal(store_open(&store, "/proc/version/store", STORE_COPY), FR_ERROR);
    assert_null(store);
}

static void test_store__copy_keeps_the_bytes(void **state)
{
    (void)state;
    const size_t size = 2 * HASH_BUFFER_SIZE + 5000;
    unsigned char *data = testfiles_bytes(size, 11);
    struct store_report report = { .existed = true };
    unsigned char sha256[32];
    char path[512], hex[65];
    struct stat st, by_path;
    struct store *store;

    publish("a.tar", data, size);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(ingest(store, "a.tar", sha256, &report), 0);
    assert_int_equal(report.method, STORE_METHOD_COPY);
    assert_false(report.existed);

    st = assert_object_holds(store, sha256, data, size);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0444);
    assert_int_equal(st.st_nlink, 1);

    /* objects/ab/cdef…, and it is that file. */
    assert_int_equal(store_object_path(store, sha256, path, sizeof(path)), 0);
    hash_hex(hex, sha256, 32);
    assert_true(strstr(path, store_dir) == path);
    assert_string_equal(path + strlen(store_dir) + strlen("/objects/") + 3, hex + 2);
    assert_int_equal(path[strlen(store_dir) + strlen("/objects/") + 2], '/');
    assert_int_equal(stat(path, &by_path), 0);
    assert_int_equal(by_path.st_ino, st.st_ino);
    assert_int_equal(count_in_store("tmp"), 0);
    assert_int_equal(count_in_store("objects"), 2);
    store_free(store);
    free(data);
}

static void test_store__reflink_clones_or_says_it_copied(void **state)
{
    (void)state;
    const size_t size = HASH_BUFFER_SIZE + 1;
    unsigned char *data = testfiles_bytes(size, 12);
    struct store_report report;
    struct store_ingest *in;
    struct hash_result r;
    struct store *store;
    bool can_clone;
    int fd, read_fd, copy_fd;

    publish("r.bin", data, size);
    assert_int_equal(store_open(&store, store_dir, STORE_REFLINK), 0);
    can_clone = can_reflink_in(src_dir);
    print_message("reflink in %s: %s\n", src_dir, can_clone ? "cloned" : "not supported, copied");

    fd = open_published("r.bin");
    assert_int_equal(store_ingest_begin(&in, store, fd, &read_fd, &copy_fd), 0);
    if (can_clone) {
        assert_int_not_equal(read_fd, fd);
        assert_int_equal(copy_fd, -1);
    } else {
        assert_int_equal(read_fd, fd);
        assert_true(copy_fd >= 0);
    }
    assert_int_equal(hash_fd(&r, read_fd, HASH_SHA256, copy_fd), 0);
    assert_int_equal(store_ingest_commit_report(&report, in, r.sha256, src_dirfd, "r.bin"), 0);
    assert_int_equal(report.method, can_clone ? STORE_METHOD_REFLINK : STORE_METHOD_COPY);
    assert_false(report.existed);
    assert_object_holds(store, r.sha256, data, size);
    assert_int_equal(count_in_store("tmp"), 0);
    close(fd);

    /* A file whose last change is long enough ago is read where it is (its
     * pages are cached); the clone still holds the bytes. */
    if (can_clone) {
        data[0] ^= 1;
        publish("settled.bin", data, size);
        usleep((useconds_t)(STORE_SETTLED_NS / 1000 + 20000));
        fd = open_published("settled.bin");
        assert_int_equal(store_ingest_begin(&in, store, fd, &read_fd, &copy_fd), 0);
        assert_int_equal(read_fd, fd);
        assert_int_equal(copy_fd, -1);
        assert_int_equal(hash_fd(&r, read_fd, HASH_SHA256, copy_fd), 0);
        assert_int_equal(store_ingest_commit_report(&report, in, r.sha256, src_dirfd,
                                                    "settled.bin"), 0);
        assert_int_equal(report.method, STORE_METHOD_REFLINK);
        close(fd);
        /* The published file changes; the object does not. */
        data[1] ^= 1;
        publish("settled.bin", data, size);
        data[1] ^= 1;
        assert_object_holds(store, r.sha256, data, size);
    }
    store_free(store);
    free(data);
}

/* Across file systems a clone is impossible (EXDEV): it must copy. */
static void test_store__reflink_from_another_file_system_copies(void **state)
{
    (void)state;
    char other[] = "/dev/shm/filerepo-test-store-XXXXXX";
    char path[512];
    struct store_report report;
    unsigned char sha256[32];
    unsigned char *data;
    struct store *store;
    int saved_src = src_dirfd;
    int error;

    if (!mkdtemp_elsewhere(other))
        skip();
    data = testfiles_bytes(70000, 13);
    testfiles_write(path, sizeof(path), other, "f", data, 70000);
    src_dirfd = open(other, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_int_equal(store_open(&store, store_dir, STORE_REFLINK), 0);
    error = ingest(store, "f", sha256, &report);
    close(src_dirfd);
    src_dirfd = saved_src;
    testfiles_remove_tree(other);
    assert_int_equal(error, 0);
    assert_int_equal(report.method, STORE_METHOD_COPY);
    assert_object_holds(store, sha256, data, 70000);
    store_free(store);
    free(data);
}

static void test_store__none_keeps_nothing(void **state)
{
    (void)state;
    struct store_report report;
    unsigned char sha256[32];
    struct store *store;

    publish("n", "nothing kept", 12);
    assert_int_equal(store_open(&store, store_dir, STORE_NONE), 0);
    assert_int_equal(ingest(store, "n", sha256, &report), 0);
    assert_int_equal(report.method, STORE_METHOD_NONE);
    assert_int_equal(store_object_open(store, sha256), FR_ENOTFOUND);
    assert_int_equal(count_in_store("objects"), 0);
    assert_int_equal(count_in_store("tmp"), 0);
    store_free(store);
}

static void test_store__existing_object_is_kept(void **state)
{
    (void)state;
    unsigned char *data = testfiles_bytes(123456, 15);
    struct store_report report;
    unsigned char first[32], again[32];
    struct stat before, after, published;
    struct store *store;

    publish("one", data, 123456);
    publish("two", data, 123456);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(ingest(store, "one", first, &report), 0);
    assert_false(report.existed);
    before = assert_object_holds(store, first, data, 123456);

    assert_int_equal(ingest(store, "two", again, &report), 0);
    assert_memory_equal(first, again, 32);
    assert_true(report.existed);
    after = assert_object_holds(store, first, data, 123456);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    store_free(store);

    /* The same in hard-link mode: the copy stays, the file is not linked. */
    assert_int_equal(store_open(&store, store_dir, STORE_HARDLINK), 0);
    assert_int_equal(ingest(store, "two", again, &report), 0);
    assert_true(report.existed);
    after = assert_object_holds(store, first, data, 123456);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(fstatat(src_dirfd, "two", &published, 0), 0);
    assert_int_equal(published.st_nlink, 1);
    assert_int_equal(count_in_store("objects"), 2);
    assert_int_equal(count_in_store("tmp"), 0);
    store_free(store);
    free(data);
}

/* A power loss before store_sync() can leave a name with no data: the next
 * ingest of the same bytes puts them back. */
static void test_store__damaged_object_is_replaced(void **state)
{
    (void)state;
    /* Larger than a packed object: kept as a file of its own. */
    enum { SIZE = STORE_PACK_OBJECT_MAX + 1 };
    unsigned char *data = testfiles_bytes(SIZE, 16);
    enum store_mode modes[] = { STORE_COPY, STORE_HARDLINK };
    struct store_report report;
    unsigned char sha256[32];
    char path[PATH_MAX];
    struct store *store;

    publish("whole", data, SIZE);
    for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++) {
        assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
        assert_int_equal(ingest(store, "whole", sha256, &report), 0);
        assert_int_equal(store_object_path(store, sha256, path, sizeof(path)), 0);
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(truncate(path, 0), 0);
        store_free(store);

        assert_int_equal(store_open(&store, store_dir, modes[i]), 0);
        assert_int_equal(ingest(store, "whole", sha256, &report), 0);
        assert_false(report.existed);
        assert_object_holds(store, sha256, data, SIZE);
        assert_int_equal(count_in_store("tmp"), 0);
        store_free(store);
        /* Hard-link mode linked the published file itself: start over. */
        testfiles_remove_tree(store_dir);
    }
    free(data);
}

/* A few objects are made durable one by one (packed ones by their pack);
 * a missing one is said so. */
static void test_store__sync_objects(void **state)
{
    (void)state;
    unsigned char sha256[3][32];
    const unsigned char (*objects)[32] = (const unsigned char (*)[32])sha256;
    struct store_report report;
    struct store *store;

    publish("s1", "first", 5);
    publish("s2", "second", 6);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(ingest(store, "s1", sha256[0], &report), 0);
    assert_int_equal(ingest(store, "s2", sha256[1], &report), 0);
    assert_int_equal(store_sync_objects(store, objects, 2, SIZE_MAX), 0);
    assert_int_equal(store_sync_objects(store, objects, 0, SIZE_MAX), 0);
    /* Both are packed: no loose object to count against the limit. */
    assert_int_equal(store_sync_objects(store, objects, 2, 0), 0);
    memset(sha256[2], 0xab, 32);
    assert_int_equal(store_sync_objects(store, objects, 3, SIZE_MAX), FR_ENOTFOUND);
    store_free(store);
}

static void test_store__abort_leaves_nothing(void **state)
{
    (void)state;
    const enum store_mode modes[] = { STORE_REFLINK, STORE_COPY, STORE_HARDLINK, STORE_NONE };
    unsigned char *data = testfiles_bytes(HASH_BUFFER_SIZE * 2, 16);

    publish("big", data, HASH_BUFFER_SIZE * 2);
    for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++) {
        struct store_ingest *in;
        struct hash_result r;
        struct store *store;
        int fd = open_published("big");
        int read_fd, copy_fd;

        assert_int_equal(store_open(&store, store_dir, modes[i]), 0);
        assert_int_equal(store_ingest_begin(&in, store, fd, &read_fd, &copy_fd), 0);
        assert_int_equal(hash_fd(&r, read_fd, HASH_SHA256, copy_fd), 0);
        store_ingest_abort(in);
        assert_int_equal(store_object_open(store, r.sha256), FR_ENOTFOUND);
        assert_int_equal(count_in_store("objects"), 0);
        assert_int_equal(count_in_store("tmp"), 0);
        close(fd);
        store_free(store);
    }
    store_ingest_abort(NULL);
    free(data);
}

static void test_store__begin_refuses_what_is_not_a_file(void **state)
{
    (void)state;
    struct store_ingest *in = (struct store_ingest *)&in; /* not NULL: must be reset */
    struct store *store;
    int read_fd = 7, copy_fd = 7;

    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(store_ingest_begin(&in, store, src_dirfd, &read_fd, &copy_fd), FR_EINVAL);
    assert_null(in);
    assert_int_equal(copy_fd, -1);
    store_free(store);
}

static void test_store__missing_object(void **state)
{
    (void)state;
    unsigned char sha256[32];
    char path[512], tiny[16];
    struct store *store;

    memset(sha256, 0xab, sizeof(sha256));
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(store_object_open(store, sha256), FR_ENOTFOUND);
    assert_int_equal(store_object_path(store, sha256, path, sizeof(path)), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(store_object_path(store, sha256, tiny, sizeof(tiny)), FR_EINVAL);
    assert_string_equal(tiny, "");
    /* Exactly the room it needs is enough. */
    assert_int_equal(store_object_path(store, sha256, path, strlen(path) + 1), 0);
    assert_int_equal(store_object_path(store, sha256, path, strlen(path)), FR_EINVAL);
    store_free(store);
}

/* Workers ingest the same contents at once: one object each, all complete. */
static void test_store__parallel_ingests(void **state)
{
    (void)state;
    enum { FILES = 12, CONTENTS = 3 };
    struct pipeline_job jobs[FILES];
    unsigned char *data[CONTENTS];
    struct workpool *pool;
    struct store *store;
    int fresh = 0, taken = 0;

    for (int c = 0; c < CONTENTS; c++)
        data[c] = testfiles_bytes(HASH_BUFFER_SIZE / 2, 100u + (uint32_t)c);
    assert_int_equal(store_open(&store, store_dir, STORE_REFLINK), 0);
    assert_int_equal(workpool_new(&pool, 4), 0);
    for (int i = 0; i < FILES; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].store = store;
        snprintf(jobs[i].name, sizeof(jobs[i].name), "p%d", i);
        publish(jobs[i].name, data[i % CONTENTS], HASH_BUFFER_SIZE / 2);
        assert_int_equal(workpool_submit(pool, pipeline_job_run, &jobs[i]), 0);
    }
    while (taken < FILES) {
        struct pipeline_job *job;

        while (!(job = workpool_take_done(pool)))
            usleep(1000);
        assert_int_equal(job->error, 0);
        fresh += !job->report.existed;
        taken++;
    }
    assert_int_equal(fresh, CONTENTS);
    for (int c = 0; c < CONTENTS; c++)
        assert_object_holds(store, jobs[c].sha256, data[c], HASH_BUFFER_SIZE / 2);
    assert_int_equal(count_in_store("tmp"), 0);
    workpool_free(pool);
    store_free(store);
    for (int c = 0; c < CONTENTS; c++)
        free(data[c]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store__mode_names),
        cmocka_unit_test_setup(test_store__open_makes_the_directories, clean),
        cmocka_unit_test_setup(test_store__copy_keeps_the_bytes, clean),
        cmocka_unit_test_setup(test_store__reflink_clones_or_says_it_copied, clean),
        cmocka_unit_test_setup(test_store__reflink_from_another_file_system_copies, clean),
        cmocka_unit_test_setup(test_store__none_keeps_nothing, clean),
        cmocka_unit_test_setup(test_store__existing_object_is_kept, clean),
        cmocka_unit_test_setup(test_store__damaged_object_is_replaced, clean),
        cmocka_unit_test_setup(test_store__sync_objects, clean),
        cmocka_unit_test_setup(test_store__abort_leaves_nothing, clean),
        cmocka_unit_test_setup(test_store__begin_refuses_what_is_not_a_file, clean),
        cmocka_unit_test_setup(test_store__missing_object, clean),
        cmocka_unit_test_setup(test_store__parallel_ingests, clean),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
