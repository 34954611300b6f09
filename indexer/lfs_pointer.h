/*
 * lfs_pointer.h - the git-lfs pointer file: what stands in git for a file.
 *
 * Exactly three lines, each ending in "\n":
 *
 *     version https://git-lfs.github.com/spec/v1
 *     oid sha256:<64 lower-case hex>
 *     size <decimal bytes, no leading zeros>
 *
 * the canonical form of https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md
 * without extension lines.  Only this form is written and only this form is
 * read back, so a pointer's text and its (digest, size) map one to one.
 */
#ifndef FILEREPO_LFS_POINTER_H
#define FILEREPO_LFS_POINTER_H

#include <stddef.h>
#include <stdint.h>

/** Room for the longest pointer text (a 20-digit size) and a NUL. */
#define LFS_POINTER_MAX 160

/**
 * Writes the pointer of a file with digest `sha256` and `size` bytes, and a
 * NUL, into `out`.  Returns the length of the text (without the NUL).
 */
size_t lfs_pointer_format(char out[LFS_POINTER_MAX], const unsigned char sha256[32],
                          uint64_t size);

/**
 * Reads the `len` bytes of `text` (no NUL needed) as a pointer into
 * `out_sha256` and *out_size.  Returns 0, or FR_EINVAL when the text is not
 * exactly the form lfs_pointer_format() writes (outputs then unspecified).
 */
int lfs_pointer_parse(unsigned char out_sha256[32], uint64_t *out_size, const char *text,
                      size_t len);

#endif
