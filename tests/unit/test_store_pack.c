/*
 * test_store_pack.c - small objects in packs: the bytes read back are the
 * bytes put in, the same bytes are packed once, a reopened store finds
 * them, damaged bytes are never served and are stored again, a damaged
 * index record is skipped, and a file that changed before the commit is
 * refused.
 */
#include "store_fixture.h"

/* The pack files in the store, by suffix ("data" or "idx"). */
static int count_packs(const char *suffix)
{
    char path[400];
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/packs", store_dir);
    assert_non_null(d = opendir(path));
    while ((e = readdir(d))) {
        const char *dot = strrchr(e->d_name, '.');

        n += dot && strcmp(dot + 1, suffix) == 0 && strncmp(e->d_name, "pack-", 5) == 0;
    }
    closedir(d);
    return n;
}

static off_t pack_file_size(unsigned number, const char *suffix)
{
    char path[400];
    struct stat st;

    snprintf(path, sizeof(path), "%s/packs/pack-%08x.%s", store_dir, number, suffix);
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Flips one byte of a pack file at `offset`. */
static void damage_pack(unsigned number, const char *suffix, off_t offset)
{
    char path[400];
    unsigned char b;
    int fd;

    snprintf(path, sizeof(path), "%s/packs/pack-%08x.%s", store_dir, number, suffix);
    assert_int_equal(chmod(path, 0640), 0);
    assert_true((fd = open(path, O_RDWR | O_CLOEXEC)) >= 0);
    assert_int_equal(pread(fd, &b, 1, offset), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, offset), 1);
    close(fd);
}

static void test_store_pack__small_files_are_packed(void **state)
{
    (void)state;
    const enum store_mode modes[] = { STORE_COPY, STORE_REFLINK };
    unsigned char *data = testfiles_bytes(STORE_PACK_OBJECT_MAX, 21);
    struct store_report report;
    unsigned char sha256[3][32];
    struct store *store;
    struct stat st;
    int fd;

    for (size_t m = 0; m < 2; m++) {
        publish("small", data, 1000);
        publish("largest", data, STORE_PACK_OBJECT_MAX);
        publish("empty", "", 0);
        assert_int_equal(store_open(&store, store_dir, modes[m]), 0);
        assert_int_equal(ingest(store, "small", sha256[0], &report), 0);
        assert_int_equal(report.method, STORE_METHOD_PACK);
        assert_false(report.existed);
        assert_int_equal(ingest(store, "largest", sha256[1], &report), 0);
        assert_int_equal(report.method, STORE_METHOD_PACK);
        assert_int_equal(ingest(store, "empty", sha256[2], &report), 0);
        assert_int_equal(report.method, STORE_METHOD_PACK);

        st = assert_object_holds(store, sha256[0], data, 1000);
        assert_int_equal(st.st_size, 1000);
        assert_object_holds(store, sha256[1], data, STORE_PACK_OBJECT_MAX);
        assert_object_holds(store, sha256[2], "", 0);
        /* Read-only: the memory file is sealed. */
        assert_true((fd = store_object_open(store, sha256[0])) >= 0);
        assert_int_equal(pwrite(fd, "x", 1, 0), -1);
        assert_int_equal(errno, EPERM);
        close(fd);
        /* No file of their own; one pack, durable on demand. */
        assert_int_equal(count_in_store("objects"), 0);
        assert_int_equal(count_in_store("tmp"), 0);
        assert_int_equal(count_packs("data"), 1);
        assert_int_equal(count_packs("idx"), 1);
        assert_int_equal(pack_file_size(1, "data"), 1000 + STORE_PACK_OBJECT_MAX);
        assert_int_equal(pack_file_size(1, "idx"), 3 * 64);
        assert_int_equal(store_sync_objects(store, (const unsigned char (*)[32])sha256, 3,
                                            SIZE_MAX), 0);
        store_free(store);
        clean(NULL);
    }

    /* One byte more is a file of its own. */
    free(data);
    data = testfiles_bytes(STORE_PACK_OBJECT_MAX + 1, 22);
    publish("loose", data, STORE_PACK_OBJECT_MAX + 1);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(ingest(store, "loose", sha256[0], &report), 0);
    assert_int_equal(report.method, STORE_METHOD_COPY);
    assert_int_equal(count_in_store("objects"), 2);
    store_free(store);
    free(data);
}

/* Bytes handed over whole (the indexer's small files): packed as they are,
 * kept once, and refused where the store does not pack. */
static void test_store_pack__put_small(void **state)
{
    (void)state;
    const enum store_mode refusing[] = { STORE_HARDLINK, STORE_NONE };
    unsigned char *data = testfiles_bytes(STORE_PACK_OBJECT_MAX + 1, 22);
    struct store_report report = { 0 };
    unsigned char sha256[32], big[32];
    struct hash_result r;
    struct store *store;

    assert_int_equal(hash_buffer(&r, data, 4000, HASH_SHA256), 0);
    memcpy(sha256, r.sha256, 32);
    assert_int_equal(hash_buffer(&r, data, STORE_PACK_OBJECT_MAX + 1, HASH_SHA256), 0);
    memcpy(big, r.sha256, 32);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_true(store_takes_small(store, STORE_PACK_OBJECT_MAX));
    assert_false(store_takes_small(store, STORE_PACK_OBJECT_MAX + 1));
    assert_int_equal(store_put_small(store, sha256, data, 4000, &report), 0);
    assert_int_equal(report.method, STORE_METHOD_PACK);
    assert_false(report.existed);
    assert_int_equal(store_put_small(store, sha256, data, 4000, &report), 0);
    assert_true(report.existed);
    assert_object_holds(store, sha256, data, 4000);
    assert_int_equal(store_put_small(store, big, data, STORE_PACK_OBJECT_MAX + 1, NULL),
                     FR_EINVAL);
    assert_int_equal(store_object_open(store, big), FR_ENOTFOUND);
    assert_int_equal(store_sync_objects(store, (const unsigned char (*)[32])sha256, 1, 0), 0);
    store_free(store);
    assert_int_equal(count_in_store("objects"), 0);

    for (size_t m = 0; m < 2; m++) {
        assert_int_equal(store_open(&store, store_dir, refusing[m]), 0);
        assert_false(store_takes_small(store, 1));
        assert_int_equal(store_put_small(store, big, data, 10, NULL), FR_EINVAL);
        store_free(store);
    }
    free(data);
}

static void test_store_pack__same_bytes_packed_once(void **state)
{
    (void)state;
    unsigned char first[32], again[32];
    struct store_report report;
    struct store *store;

    publish("a", "the same bytes", 14);
    publish("b", "the same bytes", 14);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(ingest(store, "a", first, &report), 0);
    assert_false(report.existed);
    assert_int_equal(ingest(store, "b", again, &report), 0);
    assert_true(report.existed);
    assert_memory_equal(first, again, 32);
    assert_int_equal(pack_file_size(1, "data"), 14);
    assert_int_equal(pack_file_size(1, "idx"), 64);
    store_free(store);

    /* Known after a restart too, which writes a pack of its own. */
    publish("c", "other bytes", 11);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_object_holds(store, first, "the same bytes", 14);
    assert_int_equal(ingest(store, "b", again, &report), 0);
    assert_true(report.existed);
    assert_int_equal(ingest(store, "c", again, &report), 0);
    assert_false(report.existed);
    assert_int_equal(count_packs("data"), 2);
    assert_int_equal(pack_file_size(2, "data"), 11);
    assert_object_holds(store, again, "other bytes", 11);
    store_free(store);

    /* Modes that write no packs still read them. */
    assert_int_equal(store_open(&store, store_dir, STORE_NONE), 0);
    assert_object_holds(store, first, "the same bytes", 14);
    store_free(store);
}

/* Bytes that no longer match their record (a power loss before the sync)
 * are not served, and the next ingest of that content stores it again. */
static void test_store_pack__damaged_bytes_are_stored_again(void **state)
{
    (void)state;
    unsigned char sha256[32], other[32];
    struct store_report report;
    struct store *store;

    publish("d", "soon damaged", 12);
    publish("e", "left alone", 10);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(ingest(store, "d", sha256, &report), 0);
    assert_int_equal(ingest(store, "e", other, &report), 0);
    store_free(store);
    damage_pack(1, "data", 3);

    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(store_object_open(store, sha256), FR_ENOTFOUND);
    assert_object_holds(store, other, "left alone", 10);
    assert_int_equal(ingest(store, "d", sha256, &report), 0);
    assert_false(report.existed);
    assert_object_holds(store, sha256, "soon damaged", 12);
    store_free(store);
    /* The newer record wins after a restart. */
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_object_holds(store, sha256, "soon damaged", 12);
    store_free(store);
}

/* A record that fails its crc, a torn last record, a record past the end
 * of its data: skipped, the others still found. */
static void test_store_pack__damaged_records_are_skipped(void **state)
{
    (void)state;
    unsigned char sha256[3][32];
    struct store_report report;
    struct store *store;
    char path[400];
    int fd;

    publish("r0", "record zero", 11);
    publish("r1", "record one", 10);
    publish("r2", "record two", 10);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    for (int i = 0; i < 3; i++) {
        char name[4] = { 'r', (char)('0' + i), '\0' };

        assert_int_equal(ingest(store, name, sha256[i], &report), 0);
    }
    store_free(store);
    damage_pack(1, "idx", 64 + 40);            /* record 1's length */
    snprintf(path, sizeof(path), "%s/packs/pack-00000001.idx", store_dir);
    assert_true((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) >= 0);
    assert_int_equal(write(fd, "torn", 4), 4);
    close(fd);
    snprintf(path, sizeof(path), "%s/packs/pack-00000001.data", store_dir);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(truncate(path, 21), 0);   /* record 2's bytes gone */

    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_object_holds(store, sha256[0], "record zero", 11);
    assert_int_equal(store_object_open(store, sha256[1]), FR_ENOTFOUND);
    assert_int_equal(store_object_open(store, sha256[2]), FR_ENOTFOUND);
    assert_int_equal(ingest(store, "r2", sha256[2], &report), 0);
    assert_false(report.existed);
    assert_object_holds(store, sha256[2], "record two", 10);
    store_free(store);
}

/* Written to between the hash and the commit: refused, nothing recorded. */
static void test_store_pack__changed_file_is_refused(void **state)
{
    (void)state;
    const char *bodies[] = { "BEFORE", "before, and more" };
    struct store_ingest *in;
    struct hash_result r;
    struct store *store;

    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    for (size_t i = 0; i < 2; i++) {
        int fd, wfd, read_fd, copy_fd;

        publish("moving", "before", 6);
        fd = open_published("moving");
        assert_int_equal(store_ingest_begin(&in, store, fd, &read_fd, &copy_fd), 0);
        assert_int_equal(copy_fd, -1);
        assert_int_equal(hash_fd(&r, read_fd, HASH_SHA256, copy_fd), 0);
        /* Same length, other bytes; then longer. */
        assert_true((wfd = openat(src_dirfd, "moving", O_WRONLY | O_CLOEXEC)) >= 0);
        assert_int_equal(pwrite(wfd, bodies[i], strlen(bodies[i]), 0),
                         (ssize_t)strlen(bodies[i]));
        close(wfd);
        assert_int_equal(store_ingest_commit(in, r.sha256, src_dirfd, "moving"), FR_EINVAL);
        assert_int_equal(store_object_open(store, r.sha256), FR_ENOTFOUND);
        close(fd);
    }
    store_free(store);
}

/* Workers pack side by side: every object whole, each content once. */
static void test_store_pack__parallel_ingests(void **state)
{
    (void)state;
    enum { FILES = 400, CONTENTS = 300 };
    struct pipeline_job *jobs = calloc(FILES, sizeof(*jobs));
    unsigned char *data = testfiles_bytes(CONTENTS * 11 + 10, 23);
    struct workpool *pool;
    struct store *store;
    int fresh = 0, taken = 0;

    assert_non_null(jobs);
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    assert_int_equal(workpool_new(&pool, 4), 0);
    for (int i = 0; i < FILES; i++) {
        jobs[i].store = store;
        snprintf(jobs[i].name, sizeof(jobs[i].name), "p%d", i);
        publish(jobs[i].name, data + (i % CONTENTS) * 10, 10 + (size_t)(i % CONTENTS));
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
    /* Two workers may race to pack the same new content: both copies are
     * whole, the index names one.  Mostly it is packed once. */
    assert_true(fresh >= CONTENTS && fresh < FILES);
    for (int i = 0; i < FILES; i++)
        assert_object_holds(store, jobs[i].sha256, data + (i % CONTENTS) * 10,
                            10 + (size_t)(i % CONTENTS));
    workpool_free(pool);
    store_free(store);
    /* And after a restart. */
    assert_int_equal(store_open(&store, store_dir, STORE_COPY), 0);
    for (int i = 0; i < CONTENTS; i++)
        assert_object_holds(store, jobs[i].sha256, data + i * 10, 10 + (size_t)i);
    store_free(store);
    free(data);
    free(jobs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_store_pack__small_files_are_packed, clean),
        cmocka_unit_test_setup(test_store_pack__put_small, clean),
        cmocka_unit_test_setup(test_store_pack__same_bytes_packed_once, clean),
        cmocka_unit_test_setup(test_store_pack__damaged_bytes_are_stored_again, clean),
        cmocka_unit_test_setup(test_store_pack__damaged_records_are_skipped, clean),
        cmocka_unit_test_setup(test_store_pack__changed_file_is_refused, clean),
        cmocka_unit_test_setup(test_store_pack__parallel_ingests, clean),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
