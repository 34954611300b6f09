/*
 * lfs_pointer.c - writing and strictly reading git-lfs pointer text.
 *
 * Reading accepts nothing but the canonical form (lower-case hex, no leading
 * zeros, no extension lines, nothing after the size), so that a pointer read
 * back is always the one that was written.
 */
#include "lfs_pointer.h"
#include "fr_error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define LFS_POINTER_HEAD "version https://git-lfs.github.com/spec/v1\noid sha256:"
#define LFS_POINTER_SIZE "\nsize "

_Static_assert(sizeof(LFS_POINTER_HEAD) - 1 + 64 + sizeof(LFS_POINTER_SIZE) - 1 + 20 + 1 <
                   LFS_POINTER_MAX, "LFS_POINTER_MAX holds the longest pointer");

size_t lfs_pointer_format(char out[LFS_POINTER_MAX], const unsigned char sha256[32],
                          uint64_t size)
{
    static const char hex[] = "0123456789abcdef";
    char digest[65];
    int len;

    for (size_t i = 0; i < 32; i++) {
        digest[2 * i] = hex[sha256[i] >> 4];
        digest[2 * i + 1] = hex[sha256[i] & 0xf];
    }
    digest[64] = '\0';
    len = snprintf(out, LFS_POINTER_MAX, "%s%s%s%" PRIu64 "\n", LFS_POINTER_HEAD, digest,
                   LFS_POINTER_SIZE, size);
    return (size_t)len;
}

int lfs_pointer_parse(unsigned char out_sha256[32], uint64_t *out_size, const char *text,
                      size_t len)
{
    const size_t head_len = sizeof(LFS_POINTER_HEAD) - 1, size_len = sizeof(LFS_POINTER_SIZE) - 1;
    size_t at = head_len + 64 + size_len, digits = 0;
    uint64_t value = 0;

    if (len < at + 2 || memcmp(text, LFS_POINTER_HEAD, head_len) != 0 ||
        memcmp(text + head_len + 64, LFS_POINTER_SIZE, size_len) != 0)
        return FR_EINVAL;
    for (size_t i = 0; i < 64; i++) {
        char c = text[head_len + i];
        int nibble = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

        if (nibble < 0)
            return FR_EINVAL;
        if (i % 2 == 0)
            out_sha256[i / 2] = (unsigned char)(nibble << 4);
        else
            out_sha256[i / 2] |= (unsigned char)nibble;
    }
    for (; at < len && text[at] >= '0' && text[at] <= '9'; at++, digits++) {
        unsigned digit = (unsigned)(text[at] - '0');

        if (value > (UINT64_MAX - digit) / 10)
            return FR_EINVAL;
        value = value * 10 + digit;
    }
    if (digits == 0 || (digits > 1 && text[at - digits] == '0') || at + 1 != len ||
        text[at] != '\n')
        return FR_EINVAL;
    *out_size = value;
    return 0;
}
