/*
 * store_fixture.h - what the content store's tests share: a scratch
 * directory per test binary with a "published" source directory and a store
 * directory (emptied before each test), and helpers to publish, ingest and
 * check objects.
 */
#ifndef FILEREPO_TEST_STORE_FIXTURE_H
#define FILEREPO_TEST_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "fr_error.h"
#include "hash.h"
#include "store.h"
#include "workpool.h"
#include "testfiles.h"

static char dir[256];       /* this test's scratch directory */
static char store_dir[300]; /* dir/store */
static char src_dir[300];   /* dir/src: the "published" files */
static int src_dirfd = -1;

static inline int setup(void **state)
{
    (void)state;
    umask(022);
    testfiles_mkdtemp(dir, sizeof(dir), "store");
    snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
    snprintf(src_dir, sizeof(src_dir), "%s/src", dir);
    assert_int_equal(mkdir(src_dir, 0755), 0);
    src_dirfd = open(src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(src_dirfd >= 0);
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    close(src_dirfd);
    testfiles_remove_tree(dir);
    return 0;
}

/* Each test starts from an empty store directory and source directory. */
static inline int clean(void **state)
{
    char cmd[700];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && rm -rf '%s'/*", store_dir, src_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Counts the entries of path and of its subdirectories (not . and ..). */
static inline int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d))) {
        char sub[PATH_MAX];

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
            fail_msg("path too long under %s", path);
        if (e->d_type == DT_DIR)
            n += count_entries(sub);
    }
    closedir(d);
    return n;
}

static inline int count_in_store(const char *sub)
{
    char path[400];

    snprintf(path, sizeof(path), "%s/%s", store_dir, sub);
    return count_entries(path);
}

/* Publishes `len` bytes as src/name. */
static inline void publish(const char *name, const void *data, size_t len)
{
    char path[512];

    testfiles_write(path, sizeof(path), src_dir, name, data, len);
}

static inline int open_published(const char *name)
{
    int fd = openat(src_dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    assert_true(fd >= 0);
    return fd;
}

/*
 * The indexer's sequence for one file: open, begin, hash, commit.  Runs on
 * workers too, so it reports instead of asserting.
 */
static inline int ingest(struct store *store, const char *name, unsigned char sha256[32],
                  struct store_report *report)
{
    struct store_ingest *in;
    struct hash_result r;
    int fd = openat(src_dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int read_fd, copy_fd;
    int error;

    if (fd < 0)
        return FR_ERROR;
    error = store_ingest_begin(&in, store, fd, &read_fd, &copy_fd);
    if (!error) {
        error = hash_fd(&r, read_fd, HASH_DEFAULT, copy_fd);
        if (error)
            store_ingest_abort(in);
        else
            error = store_ingest_commit_report(report, in, r.sha256, src_dirfd, name);
    }
    if (!error)
        memcpy(sha256, r.sha256, 32);
    close(fd);
    return error;
}

/* One ingest run on a worker (test_store*__parallel_ingests). */
struct pipeline_job {
    struct store *store;        /* shared by every job */
    char name[16];              /* published file */
    unsigned char sha256[32];   /* its digest */
    struct store_report report; /* what the commit did */
    int error;                  /* what the ingest returned */
};

static inline void pipeline_job_run(void *arg)
{
    struct pipeline_job *job = arg;

    job->error = ingest(job->store, job->name, job->sha256, &job->report);
}

/* The object's bytes must be `data`; returns its stat. */
static inline struct stat assert_object_holds(struct store *store, const unsigned char sha256[32],
                                       const void *data, size_t len)
{
    struct stat st;
    unsigned char *bytes;
    size_t got;
    int fd = store_object_open(store, sha256);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    bytes = testfiles_read_all(fd, &got);
    assert_int_equal(got, len);
    assert_memory_equal(bytes, data, len);
    free(bytes);
    close(fd);
    return st;
}

/* Whether this machine can clone a file in `path`, asked directly. */
static inline bool can_reflink_in(const char *path)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int a = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    int b = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    bool can;

    assert_true(dfd >= 0 && a >= 0 && b >= 0);
    assert_int_equal(write(a, "probe", 5), 5);
    can = ioctl(b, FICLONE, a) == 0;
    close(a);
    close(b);
    close(dfd);
    return can;
}

/* Makes `other` (a mkdtemp template) on /dev/shm when that is another file system. */
static inline bool mkdtemp_elsewhere(char *other)
{
    struct stat shm, here;

    return stat("/dev/shm", &shm) == 0 && stat(dir, &here) == 0 && shm.st_dev != here.st_dev &&
           mkdtemp(other) != NULL;
}

#endif
