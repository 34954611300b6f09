/*
 * test_lfs_pointer.c - the pointer text, byte for byte, and a reader that
 * takes nothing but that text back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fr_error.h"
#include "lfs_pointer.h"

static const char example[] =
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n";

static const unsigned char example_sha256[32] = {
    0x4d, 0x7a, 0x21, 0x46, 0x14, 0xab, 0x29, 0x35, 0xc9, 0x43, 0xf9, 0xe0, 0xff, 0x69, 0xd2, 0x2e,
    0xad, 0xbb, 0x8f, 0x32, 0xb1, 0x25, 0x8d, 0xaa, 0xa5, 0xe2, 0xca, 0x24, 0xd1, 0x7e, 0x23, 0x93,
};

static void test_lfs_pointer__format(void **state)
{
    (void)state;
    char text[LFS_POINTER_MAX];
    size_t len;

    assert_int_equal(lfs_pointer_format(text, example_sha256, 12345), strlen(example));
    assert_string_equal(text, example);
    len = lfs_pointer_format(text, example_sha256, UINT64_MAX);
    assert_int_equal(len, strlen(text));
    assert_non_null(strstr(text, "\nsize 18446744073709551615\n"));
    lfs_pointer_format(text, example_sha256, 0);
    assert_non_null(strstr(text, "\nsize 0\n"));
}

static void test_lfs_pointer__parse_round_trip(void **state)
{
    (void)state;
    const uint64_t sizes[] = { 0, 1, 10, 12345, UINT64_MAX };
    unsigned char sha256[32];
    char text[LFS_POINTER_MAX];
    uint64_t size = 7;

    assert_int_equal(lfs_pointer_parse(sha256, &size, example, strlen(example)), 0);
    assert_memory_equal(sha256, example_sha256, 32);
    assert_int_equal(size, 12345);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = lfs_pointer_format(text, example_sha256, sizes[i]);

        assert_int_equal(lfs_pointer_parse(sha256, &size, text, len), 0);
        assert_true(size == sizes[i]);
    }
}

/* `example` with `find` replaced by `replace` must be refused. */
static void assert_refused(const char *find, const char *replace)
{
    char text[2 * LFS_POINTER_MAX];
    const char *at = strstr(example, find);
    unsigned char sha256[32];
    uint64_t size;
    size_t head;

    assert_non_null(at);
    head = (size_t)(at - example);
    memcpy(text, example, head);
    strcpy(text + head, replace);
    strcat(text, at + strlen(find));
    if (lfs_pointer_parse(sha256, &size, text, strlen(text)) != FR_EINVAL)
        fail_msg("accepted: %s", text);
}

static void test_lfs_pointer__parse_refuses_other_texts(void **state)
{
    (void)state;
    unsigned char sha256[32];
    uint64_t size;

    assert_refused("4d7a", "4D7A");                     /* upper-case hex */
    assert_refused("4d7a", "4d7");                      /* short digest */
    assert_refused("2393\n", "23933\n");                /* long digest */
    assert_refused("sha256", "sha512");
    assert_refused("v1\n", "v1\next-0-foo sha256:00\n"); /* extension line */
    assert_refused("12345", "012345");                  /* leading zero */
    assert_refused("12345", "");                        /* no size */
    assert_refused("12345", "-1");
    assert_refused("12345", "18446744073709551616");    /* UINT64_MAX + 1 */
    assert_refused("12345\n", "12345");                 /* no final newline */
    assert_refused("12345\n", "12345\n\n");             /* something after */
    assert_refused("12345\n", "12345 \n");
    assert_refused("\nsize", "\r\nsize");
    assert_int_equal(lfs_pointer_parse(sha256, &size, example, strlen(example) - 1), FR_EINVAL);
    assert_int_equal(lfs_pointer_parse(sha256, &size, example, 0), FR_EINVAL);
    assert_int_equal(lfs_pointer_parse(sha256, &size, "", 0), FR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lfs_pointer__format),
        cmocka_unit_test(test_lfs_pointer__parse_round_trip),
        cmocka_unit_test(test_lfs_pointer__parse_refuses_other_texts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
