/*
 * test_hash.c - digests in one pass: published test vectors, a file of
 * several buffers against the coreutils tools and gzip's crc32, the copy,
 * signals in the middle of it, and read and write errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "fr_error.h"
#include "hash.h"
#include "testfiles.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    testfiles_mkdtemp(dir, sizeof(dir), "hash");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testfiles_remove_tree(dir);
    return 0;
}

/* Opens a file holding `data`, for reading, at offset 0. */
static int open_with(const char *name, const void *data, size_t len)
{
    char path[512];
    int fd;

    testfiles_write(path, sizeof(path), dir, name, data, len);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static void assert_hex(const unsigned char *digest, size_t len, const char *expect)
{
    char hex[129];

    hash_hex(hex, digest, len);
    assert_string_equal(hex, expect);
}

static void test_hash__algo_names_round_trip(void **state)
{
    (void)state;
    const char *names[] = { "sha-256", "sha-1", "md5", "sha-512", "crc32" };
    const size_t sizes[] = { 32, 20, 16, 64, 4 };
    unsigned seen = 0;

    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
        unsigned bit;

        assert_int_equal(hash_algo_parse(&bit, names[i]), 0);
        assert_true(bit & HASH_ALL);
        assert_int_equal(bit & (bit - 1), 0);
        assert_int_equal(seen & bit, 0);
        seen |= bit;
        assert_string_equal(hash_algo_name((enum hash_algo)bit), names[i]);
        assert_int_equal(hash_algo_digest_size((enum hash_algo)bit), sizes[i]);
    }
    assert_int_equal(seen, HASH_ALL);
}

static void test_hash__unknown_names_are_refused(void **state)
{
    (void)state;
    const char *bad[] = { "SHA-256", "sha256", "sha1", "sha-384", "", " md5" };
    unsigned bit = 99;

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(hash_algo_parse(&bit, bad[i]), FR_EINVAL);
        assert_int_equal(bit, 0);
    }
    assert_int_equal(hash_algo_parse(&bit, NULL), FR_EINVAL);
    assert_null(hash_algo_name((enum hash_algo)(HASH_SHA1 | HASH_MD5)));
    assert_null(hash_algo_name((enum hash_algo)0));
    assert_int_equal(hash_algo_digest_size((enum hash_algo)(1u << 7)), 0);
}

/* Published digests of short inputs (FIPS 180, RFC 1321, zlib's crc32). */
static const struct {
    const char *input;
    const char *sha256, *sha1, *md5, *sha512;
    uint32_t crc32;
} vectors[] = {
    { "",
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "da39a3ee5e6b4b0d3255bfef95601890afd80709",
      "d41d8cd98f00b204e9800998ecf8427e",
      "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
      "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
      0 },
    { "abc",
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "a9993e364706816aba3e25717850c26c9cd0d89d",
      "900150983cd24fb0d6963f7d28e17f72",
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
      0x352441c2 },
    { "The quick brown fox jumps over the lazy dog",
      "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592",
      "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
      "9e107d9d372bb6826bd81d3542a419d6",
      "07e547d9586f6a73f73fbac0435ed76951218fb7d0c8d788a309d785436bbb64"
      "2e93a252a954f23912547d1e8a3b5ed6e1bfd7097821233fa0538f3db854fee6",
      0x414fa339 },
};

static void test_hash__known_vectors(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(vectors) / sizeof(*vectors); i++) {
        size_t len = strlen(vectors[i].input);
        int fd = open_with("vector", vectors[i].input, len);
        unsigned char crc[64];
        struct hash_result r;

        assert_int_equal(hash_fd(&r, fd, HASH_ALL, -1), 0);
        assert_int_equal(r.algos, HASH_ALL);
        assert_int_equal(r.size, len);
        assert_hex(r.sha256, 32, vectors[i].sha256);
        assert_hex(r.sha1, 20, vectors[i].sha1);
        assert_hex(r.md5, 16, vectors[i].md5);
        assert_hex(r.sha512, 64, vectors[i].sha512);
        assert_int_equal(r.crc32, vectors[i].crc32);
        /* crc32 as bytes is big-endian, as it is printed. */
        assert_int_equal(hash_result_digest(crc, &r, HASH_CRC32), 4);
        assert_int_equal(((uint32_t)crc[0] << 24 | (uint32_t)crc[1] << 16 |
                          (uint32_t)crc[2] << 8 | crc[3]), vectors[i].crc32);
        close(fd);
    }
}

/* The same digests from memory, for inputs of one and of several slices. */
static void test_hash__buffer_matches_fd(void **state)
{
    (void)state;
    const size_t sizes[] = { 1, 65535, 65536, 65537, 300000 };
    struct hash_result from_fd, from_buffer;

    for (size_t i = 0; i < sizeof(vectors) / sizeof(*vectors); i++) {
        assert_int_equal(hash_buffer(&from_buffer, vectors[i].input, strlen(vectors[i].input),
                                     HASH_ALL), 0);
        assert_int_equal(from_buffer.algos, HASH_ALL);
        assert_int_equal(from_buffer.size, strlen(vectors[i].input));
        assert_hex(from_buffer.sha256, 32, vectors[i].sha256);
        assert_hex(from_buffer.sha1, 20, vectors[i].sha1);
        assert_hex(from_buffer.md5, 16, vectors[i].md5);
        assert_hex(from_buffer.sha512, 64, vectors[i].sha512);
        assert_int_equal(from_buffer.crc32, vectors[i].crc32);
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
        unsigned char *data = testfiles_bytes(sizes[i], (uint32_t)i + 7);
        int fd = open_with("buffer", data, sizes[i]);

        assert_int_equal(hash_fd(&from_fd, fd, HASH_ALL, -1), 0);
        assert_int_equal(hash_buffer(&from_buffer, data, sizes[i], HASH_ALL), 0);
        assert_memory_equal(&from_fd, &from_buffer, sizeof(from_fd));
        close(fd);
        free(data);
    }
    assert_int_equal(hash_buffer(&from_buffer, "x", 1, 1u << 20), FR_EINVAL);
}

static void test_hash__crc32_check_value(void **state)
{
    (void)state;
    struct hash_result r;
    int fd = open_with("check", "123456789", 9);

    /* The CRC-32 catalogue's check value for this polynomial. */
    assert_int_equal(hash_fd(&r, fd, HASH_CRC32, -1), 0);
    assert_int_equal(r.crc32, 0xcbf43926);
    close(fd);
}

static void test_hash__sha256_always_computed(void **state)
{
    (void)state;
    struct hash_result r;
    unsigned char digest[64];
    int fd = open_with("md5only", "abc", 3);

    assert_int_equal(hash_fd(&r, fd, HASH_MD5, -1), 0);
    assert_int_equal(r.algos, HASH_MD5 | HASH_SHA256);
    assert_hex(r.sha256, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_hex(r.md5, 16, "900150983cd24fb0d6963f7d28e17f72");
    /* Not asked for: zero, and not offered as a digest. */
    assert_hex(r.sha1, 20, "0000000000000000000000000000000000000000");
    assert_int_equal(hash_result_digest(digest, &r, HASH_SHA1), 0);
    assert_int_equal(hash_result_digest(digest, &r, HASH_MD5), 16);
    close(fd);
}

static void test_hash__reads_from_the_current_offset(void **state)
{
    (void)state;
    struct hash_result r;
    int fd = open_with("xyzabc", "xyzabc", 6);

    assert_int_equal(lseek(fd, 3, SEEK_SET), 3);
    assert_int_equal(hash_fd(&r, fd, HASH_DEFAULT, -1), 0);
    assert_int_equal(r.size, 3);
    assert_hex(r.sha1, 20, "a9993e364706816aba3e25717850c26c9cd0d89d");
    close(fd);
}

/* Runs `command` (one line of output) and returns its first word in out. */
static void first_word_of(char *out, size_t len, const char *command)
{
    FILE *p = popen(command, "r");
    char line[512];

    assert_non_null(p);
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(pclose(p), 0);
    assert_int_equal(sscanf(line, "%255s", out), 1);
    assert_true(strlen(out) < len);
}

static void test_hash__large_file_matches_coreutils(void **state)
{
    (void)state;
    /* Several buffers, and a last one that is not full. */
    const size_t size = 5 * HASH_BUFFER_SIZE + 12345;
    unsigned char *data = testfiles_bytes(size, 2024);
    const struct { const char *tool; unsigned char *digest; size_t len; } tools[] = {
        { "sha256sum", NULL, 32 }, { "sha1sum", NULL, 20 },
        { "md5sum", NULL, 16 }, { "sha512sum", NULL, 64 },
    };
    struct hash_result r;
    char path[512], cmd[700], want[256], got[129];
    unsigned crc;
    int fd;

    testfiles_write(path, sizeof(path), dir, "large", data, size);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(hash_fd(&r, fd, HASH_ALL, -1), 0);
    assert_int_equal(r.size, size);

    unsigned char *digests[] = { r.sha256, r.sha1, r.md5, r.sha512 };
    for (size_t i = 0; i < sizeof(tools) / sizeof(*tools); i++) {
        snprintf(cmd, sizeof(cmd), "%s '%s'", tools[i].tool, path);
        first_word_of(want, sizeof(want), cmd);
        hash_hex(got, digests[i], tools[i].len);
        assert_string_equal(got, want);
    }
    /* gzip's trailer carries the crc32 of its input, little-endian. */
    snprintf(cmd, sizeof(cmd), "gzip -1 -c '%s' | tail -c 8 | od -An -tx4", path);
    first_word_of(want, sizeof(want), cmd);
    assert_int_equal(sscanf(want, "%x", &crc), 1);
    assert_int_equal(r.crc32, crc);
    close(fd);
    free(data);
}

static void test_hash__copy_is_identical(void **state)
{
    (void)state;
    const size_t size = 3 * HASH_BUFFER_SIZE + 7;
    unsigned char *data = testfiles_bytes(size, 7);
    unsigned char *copied;
    struct hash_result r;
    char path[512];
    size_t copied_len;
    int fd = open_with("to-copy", data, size);
    int copy_fd;

    snprintf(path, sizeof(path), "%s/copy", dir);
    copy_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(copy_fd >= 0);
    assert_int_equal(hash_fd(&r, fd, HASH_DEFAULT, copy_fd), 0);
    assert_int_equal(r.size, size);
    assert_int_equal(lseek(copy_fd, 0, SEEK_CUR), (off_t)size);

    assert_int_equal(lseek(copy_fd, 0, SEEK_SET), 0);
    copied = testfiles_read_all(copy_fd, &copied_len);
    assert_int_equal(copied_len, size);
    assert_memory_equal(copied, data, size);
    close(copy_fd);
    close(fd);
    free(copied);
    free(data);
}

static volatile sig_atomic_t interruptions;

static void on_signal(int signo)
{
    (void)signo;
    interruptions++;
}

struct pipe_reader {
    int fd;                /* read end */
    pthread_t writer;      /* the thread in hash_fd(), signalled after each read */
    unsigned char *bytes;  /* everything read, up to room bytes */
    size_t room;           /* one more than expected: a longer copy shows */
    size_t len;            /* bytes read */
};

/*
 * Reads the pipe in small steps and signals the writer after each one: it
 * is then inside write() with room in the pipe, so the signal cuts its write
 * short.  Signals follow progress, so this cannot livelock however slow the
 * machine (valgrind) is.
 */
static void *pipe_reader_run(void *arg)
{
    struct pipe_reader *reader = arg;
    const struct timespec nap = { 0, 100 * 1000 };
    ssize_t n;

    while (reader->len < reader->room) {
        size_t want = reader->room - reader->len;

        n = read(reader->fd, reader->bytes + reader->len, want < 16384 ? want : 16384);
        if (n <= 0)
            break;
        reader->len += (size_t)n;
        pthread_kill(reader->writer, SIGUSR1);
        nanosleep(&nap, NULL);
    }
    return NULL;
}

/* Signals without SA_RESTART make write() to a pipe return short or EINTR. */
static void test_hash__copy_survives_signals(void **state)
{
    (void)state;
    const size_t size = 4 * HASH_BUFFER_SIZE + 99;
    unsigned char *data = testfiles_bytes(size, 99);
    struct sigaction sa = { .sa_handler = on_signal }, old_sa;
    struct pipe_reader reader = { .fd = -1 };
    struct hash_result r;
    pthread_t thread;
    int fd = open_with("to-pipe", data, size);
    int p[2];

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    reader.fd = p[0];
    reader.writer = pthread_self();
    reader.room = size + 1;
    reader.bytes = malloc(reader.room);
    assert_non_null(reader.bytes);
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old_sa), 0);
    interruptions = 0;
    assert_int_equal(pthread_create(&thread, NULL, pipe_reader_run, &reader), 0);

    assert_int_equal(hash_fd(&r, fd, HASH_SHA256, p[1]), 0);
    close(p[1]);
    pthread_join(thread, NULL);
    assert_int_equal(sigaction(SIGUSR1, &old_sa, NULL), 0);

    assert_true(interruptions > 0);
    assert_int_equal(r.size, size);
    assert_int_equal(reader.len, size);
    assert_memory_equal(reader.bytes, data, size);
    close(p[0]);
    close(fd);
    free(reader.bytes);
    free(data);
}

static void test_hash__read_errors(void **state)
{
    (void)state;
    struct hash_result r;
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int closed_fd = open_with("closed", "abc", 3);
    char path[512];
    int write_only;

    assert_true(dir_fd >= 0);
    assert_int_equal(hash_fd(&r, dir_fd, HASH_DEFAULT, -1), FR_ERROR);
    assert_int_equal(errno, EISDIR);
    assert_int_equal(r.algos, 0);
    assert_int_equal(r.size, 0);
    close(dir_fd);

    close(closed_fd);
    assert_int_equal(hash_fd(&r, closed_fd, HASH_DEFAULT, -1), FR_ERROR);
    assert_int_equal(errno, EBADF);

    snprintf(path, sizeof(path), "%s/write-only", dir);
    write_only = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(write_only >= 0);
    assert_int_equal(hash_fd(&r, write_only, HASH_DEFAULT, -1), FR_ERROR);
    assert_int_equal(errno, EBADF);
    close(write_only);
}

static void test_hash__write_error(void **state)
{
    (void)state;
    unsigned char *data = testfiles_bytes(100000, 3);
    struct hash_result r;
    int fd = open_with("to-full", data, 100000);
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);

    assert_true(full >= 0);
    assert_int_equal(hash_fd(&r, fd, HASH_DEFAULT, full), FR_ERROR);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(r.algos, 0);
    close(full);
    close(fd);
    free(data);
}

static void test_hash__unknown_algorithm_bits(void **state)
{
    (void)state;
    struct hash_result r;
    int fd = open_with("bits", "abc", 3);

    assert_int_equal(hash_fd(&r, fd, HASH_DEFAULT | (1u << 9), -1), FR_EINVAL);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash__algo_names_round_trip),
        cmocka_unit_test(test_hash__unknown_names_are_refused),
        cmocka_unit_test(test_hash__known_vectors),
        cmocka_unit_test(test_hash__buffer_matches_fd),
        cmocka_unit_test(test_hash__crc32_check_value),
        cmocka_unit_test(test_hash__sha256_always_computed),
        cmocka_unit_test(test_hash__reads_from_the_current_offset),
        cmocka_unit_test(test_hash__large_file_matches_coreutils),
        cmocka_unit_test(test_hash__copy_is_identical),
        cmocka_unit_test(test_hash__copy_survives_signals),
        cmocka_unit_test(test_hash__read_errors),
        cmocka_unit_test(test_hash__write_error),
        cmocka_unit_test(test_hash__unknown_algorithm_bits),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
