/*
 * testfiles.h - scratch directories and files for the unit tests that touch
 * the file system (hash, store).  Include after <cmocka.h>.
 */
#ifndef FILEREPO_TESTFILES_H
#define FILEREPO_TESTFILES_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/** Makes a fresh directory /tmp/filerepo-test-NAME-XXXXXX into dir (>= 256 bytes). */
static inline void testfiles_mkdtemp(char *dir, size_t len, const char *name)
{
    /* FILEREPO_TEST_TMPDIR: a file system with other abilities (reflink). */
    const char *base = getenv("FILEREPO_TEST_TMPDIR");

    snprintf(dir, len, "%s/filerepo-test-%s-XXXXXX", base && *base ? base : "/tmp", name);
    assert_non_null(mkdtemp(dir));
}

/** Removes a tree made by testfiles_mkdtemp() (objects are read-only). */
static inline void testfiles_remove_tree(const char *dir)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/** Returns `size` bytes of a repeatable pseudo-random sequence (malloc'd). */
static inline unsigned char *testfiles_bytes(size_t size, uint32_t seed)
{
    unsigned char *bytes = malloc(size ? size : 1);
    uint32_t x = seed ? seed : 1;

    assert_non_null(bytes);
    for (size_t i = 0; i < size; i++) {
        /* xorshift32: fast, and no two blocks alike */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes[i] = (unsigned char)(x >> 24);
    }
    return bytes;
}

/** Writes len bytes to dir/name (created or truncated); its path goes to path. */
static inline void testfiles_write(char *path, size_t path_len, const char *dir,
                                   const char *name, const void *data, size_t len)
{
    int fd;

    snprintf(path, path_len, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/** Reads fd from its offset to EOF into a malloc'd buffer; *len gets its size. */
static inline unsigned char *testfiles_read_all(int fd, size_t *len)
{
    size_t size = 0, room = 65536;
    unsigned char *buf = malloc(room);
    ssize_t n;

    assert_non_null(buf);
    while ((n = read(fd, buf + size, room - size)) > 0) {
        size += (size_t)n;
        if (size == room) {
            room *= 2;
            buf = realloc(buf, room);
            assert_non_null(buf);
        }
    }
    assert_true(n == 0);
    *len = size;
    return buf;
}

#endif
