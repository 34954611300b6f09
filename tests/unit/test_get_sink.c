/*
 * test_get_sink.c - the output of `filerepo get`: every byte committed
 * reaches the file in order and the digest, whatever the sizes of the
 * pieces, and a caller that outruns the hasher waits instead of
 * overwriting a buffer still being hashed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "get_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Deterministic bytes that differ from block to block. */
static void fill(unsigned char *p, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

struct fixture {
    char path[64];
    int fd;
    EVP_MD_CTX *sha;
    EVP_MD_CTX *expect;
    unsigned char *data;
    size_t len;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    strcpy(f->path, "/tmp/filerepo-test-sink-XXXXXX");
    f->fd = mkstemp(f->path);
    f->sha = EVP_MD_CTX_new();
    f->expect = EVP_MD_CTX_new();
    /* More than the ring holds several times over. */
    f->len = 3 * GET_SINK_CHUNKS * GET_SINK_CHUNK + 12345;
    f->data = malloc(f->len);
    if (f->fd < 0 || !f->sha || !f->expect || !f->data)
        return -1;
    fill(f->data, f->len, 7);
    EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL);
    EVP_DigestInit_ex(f->expect, EVP_sha256(), NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    close(f->fd);
    unlink(f->path);
    EVP_MD_CTX_free(f->sha);
    EVP_MD_CTX_free(f->expect);
    free(f->data);
    free(f);
    return 0;
}

/* The file holds `data` from `offset` on, and the sink's digest is the
 * digest of what was committed. */
static void check(struct fixture *f, size_t offset)
{
    unsigned char got[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE];
    unsigned got_len = 0, want_len = 0;
    unsigned char *back = malloc(f->len);
    size_t done = 0;

    assert_non_null(back);
    while (done < f->len - offset) {
        ssize_t n = pread(f->fd, back + done, f->len - offset - done, (off_t)(offset + done));

        assert_true(n > 0);
        done += (size_t)n;
    }
    assert_memory_equal(back, f->data + offset, f->len - offset);
    free(back);
    EVP_DigestUpdate(f->expect, f->data + offset, f->len - offset);
    EVP_DigestFinal_ex(f->sha, got, &got_len);
    EVP_DigestFinal_ex(f->expect, want, &want_len);
    assert_int_equal(got_len, 32);
    assert_memory_equal(got, want, 32);
}

static void test_get_sink__pieces_of_every_size_arrive_in_order(void **state)
{
    struct fixture *f = *state;
    struct get_sink *sink;
    size_t at = 0;
    unsigned step = 0;

    assert_int_equal(get_sink_new(&sink, f->fd, f->sha, 0), 0);
    /* Pieces as recv() gives them: one byte, a few, a whole buffer. */
    while (at < f->len) {
        static const size_t sizes[] = { 1, 1000, GET_SINK_CHUNK, 65536, 7, GET_SINK_CHUNK - 1 };
        size_t n = sizes[step++ % (sizeof(sizes) / sizeof(*sizes))];
        unsigned char *buf = get_sink_buffer(sink);

        if (n > f->len - at)
            n = f->len - at;
        memcpy(buf, f->data + at, n);
        assert_int_equal(get_sink_commit(sink, n), 0);
        at += n;
    }
    get_sink_drain(sink);
    get_sink_free(sink);
    check(f, 0);
}

static void test_get_sink__copies_what_spans_buffers(void **state)
{
    struct fixture *f = *state;
    struct get_sink *sink;

    assert_int_equal(get_sink_new(&sink, f->fd, f->sha, 0), 0);
    assert_int_equal(get_sink_write(sink, f->data, f->len), 0);
    get_sink_free(sink); /* drains first */
    check(f, 0);
}

static void test_get_sink__resumes_at_the_offset_given(void **state)
{
    struct fixture *f = *state;
    struct get_sink *sink;
    size_t offset = 5 * GET_SINK_CHUNK + 3;

    /* A partial file: the caller hashed what it had and positioned fd. */
    assert_int_equal(lseek(f->fd, (off_t)offset, SEEK_SET), (off_t)offset);
    assert_int_equal(get_sink_new(&sink, f->fd, f->sha, (int64_t)offset), 0);
    assert_int_equal(get_sink_write(sink, f->data + offset, f->len - offset), 0);
    get_sink_free(sink);
    check(f, offset);
}

static void test_get_sink__a_failed_write_is_reported(void **state)
{
    struct fixture *f = *state;
    struct get_sink *sink;
    int ro = open(f->path, O_RDONLY);

    assert_true(ro >= 0);
    assert_int_equal(get_sink_new(&sink, ro, f->sha, 0), 0);
    assert_int_equal(get_sink_write(sink, f->data, 100), -EBADF);
    get_sink_free(sink);
    close(ro);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_sink__pieces_of_every_size_arrive_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_sink__copies_what_spans_buffers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_sink__resumes_at_the_offset_given, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_sink__a_failed_write_is_reported, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
