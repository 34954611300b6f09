/*
 * hash.h - every configured digest of a file in one read.
 *
 * The hasher reads a file once, block by block through one fixed buffer, and
 * feeds each block to every requested digest (libcrypto EVP for sha-256,
 * sha-1, md5 and sha-512, zlib for crc32), optionally writing the same block
 * to a second file: that copy is how the content store keeps a revision
 * without reading the file twice.  Memory stays bounded whatever the file
 * weighs.  The names are those of XEP-0300 and XEP-0214.
 *
 * Thread-safe: hash_fd() keeps its state on the stack and in its own buffer,
 * so the workers of a workpool may hash different files at once.
 */
#ifndef FILEREPO_HASH_H
#define FILEREPO_HASH_H

#include <stddef.h>
#include <stdint.h>

/** One digest algorithm; a set of them is a bitwise or of these. */
enum hash_algo {
    HASH_SHA256 = 1u << 0, /* "sha-256", always computed: it keys the content store */
    HASH_SHA1 = 1u << 1,   /* "sha-1" */
    HASH_MD5 = 1u << 2,    /* "md5" */
    HASH_SHA512 = 1u << 3, /* "sha-512" */
    HASH_CRC32 = 1u << 4,  /* "crc32" (the zlib / IEEE 802.3 polynomial) */
};

/** The digests computed when the configuration names none. */
#define HASH_DEFAULT (HASH_SHA256 | HASH_SHA1)

/** Every algorithm this module knows. */
#define HASH_ALL (HASH_SHA256 | HASH_SHA1 | HASH_MD5 | HASH_SHA512 | HASH_CRC32)

/** Bytes read (and copied) per step of hash_fd(). */
#define HASH_BUFFER_SIZE (1024u * 1024u)

/** The digests of one file; a digest not in `algos` is all zero. */
struct hash_result {
    unsigned algos;            /* the algorithms computed (always has HASH_SHA256) */
    uint64_t size;             /* bytes read, from the starting offset to EOF */
    unsigned char sha256[32];  /* SHA-256 */
    unsigned char sha1[20];    /* SHA-1 */
    unsigned char md5[16];     /* MD5 */
    unsigned char sha512[64];  /* SHA-512 */
    uint32_t crc32;            /* CRC-32 as a number; big-endian when written out */
};

/**
 * Parses one algorithm name ("sha-256", "sha-1", "md5", "sha-512", "crc32";
 * exact, lower case, as XEP-0300 and XEP-0214 spell them) and sets *out to
 * its bit (it does not or it in: callers build a set themselves).
 * Returns 0, or FR_EINVAL for any other name or NULL (*out is then 0).
 */
int hash_algo_parse(unsigned *out, const char *name);

/**
 * Returns the XEP-0300 name of one algorithm (a static string), or NULL when
 * `algo` is not exactly one known bit.
 */
const char *hash_algo_name(enum hash_algo algo);

/**
 * Returns the length in bytes of one algorithm's digest (4 for crc32, written
 * big-endian as by hash_result_digest()), or 0 for an unknown value.
 */
size_t hash_algo_digest_size(enum hash_algo algo);

/**
 * Writes one digest of `result` into out (room for 64 bytes is always enough)
 * as bytes: the digest itself, or crc32 as 4 bytes big-endian, so every
 * algorithm can be printed with hash_hex() or base64 alike.
 * Returns the number of bytes written, or 0 when `algo` is unknown or was not
 * computed.
 */
size_t hash_result_digest(unsigned char out[64], const struct hash_result *result,
                          enum hash_algo algo);

/**
 * Reads fd from its current offset to end of file through one buffer of
 * HASH_BUFFER_SIZE bytes (allocated for this call), updating every digest in
 * `algos` plus sha-256 from each block, and fills *out.  When copy_fd >= 0,
 * every block is also written to copy_fd at its current offset, so copy_fd
 * ends up holding exactly the bytes that were hashed; short writes and EINTR
 * are handled, copy_fd must be blocking.  fd may be a pipe.  Neither fd is
 * closed; both are left at the end of what was read or written.
 *
 * Returns 0; FR_EINVAL when `algos` has a bit this module does not know;
 * FR_ENOMEM; or FR_ERROR with errno kept from the failing read() or write()
 * (EISDIR, EBADF, EIO, ENOSPC, …) or from libcrypto's refusal (EPROTO, when
 * an algorithm is disabled, as md5 is under a FIPS provider).  On failure
 * *out is zeroed and whatever reached copy_fd is a partial copy.
 */
int hash_fd(struct hash_result *out, int fd, unsigned algos, int copy_fd);

/**
 * As hash_fd(), over the len bytes at buf (a small file read whole).
 * Returns 0; FR_EINVAL for an unknown bit in `algos`; FR_ENOMEM; or
 * FR_ERROR with errno EPROTO when libcrypto refuses an algorithm.
 */
int hash_buffer(struct hash_result *out, const void *buf, size_t len, unsigned algos);

/**
 * Writes `digest` (len bytes) as lower-case hexadecimal and a terminating
 * NUL into out, which must have room for 2 * len + 1 characters.
 */
void hash_hex(char *out, const unsigned char *digest, size_t len);

#endif
