/*
 * hash.c - one read, every digest.
 *
 * hash_fd() reads HASH_BUFFER_SIZE bytes at a time and hands each block to
 * the digests in slices of HASH_SLICE_SIZE bytes: a slice is small enough to
 * stay in the CPU's cache while every digest (and crc32) walks over it, so a
 * file costs one trip through memory however many digests are asked for,
 * while the large block keeps the number of read() and write() calls low.
 * The digests themselves are libcrypto's and zlib's; none is written here.
 */
#include "hash.h"
#include "fr_error.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes given to every digest in turn; fits in a core's L2 cache. */
#define HASH_SLICE_SIZE (64u * 1024u)

struct hash_algo_info {
    enum hash_algo algo;          /* its bit */
    const char *name;             /* XEP-0300 name */
    size_t size;                  /* digest length in bytes */
    const EVP_MD *(*md)(void);    /* libcrypto digest; NULL for crc32 */
    const char *fetch_name;       /* its name for EVP_MD_fetch() */
    size_t offset;                /* where the digest goes in struct hash_result */
};

#define HASH_FIELD(f) offsetof(struct hash_result, f)

static const struct hash_algo_info hash_algos[] = {
    { HASH_SHA256, "sha-256", 32, EVP_sha256, "SHA2-256", HASH_FIELD(sha256) },
    { HASH_SHA1, "sha-1", 20, EVP_sha1, "SHA1", HASH_FIELD(sha1) },
    { HASH_MD5, "md5", 16, EVP_md5, "MD5", HASH_FIELD(md5) },
    { HASH_SHA512, "sha-512", 64, EVP_sha512, "SHA2-512", HASH_FIELD(sha512) },
    { HASH_CRC32, "crc32", 4, NULL, NULL, 0 },
};

#define HASH_ALGO_COUNT (sizeof(hash_algos) / sizeof(*hash_algos))

/*
 * The digests fetched from libcrypto's default provider once per process:
 * EVP_sha256() and the like name a digest that libcrypto looks up again in
 * its provider store (under a lock) at every EVP_DigestInit_ex(), which
 * for a small file costs more than hashing it.  Kept until exit.
 */
static const EVP_MD *hash_fetched[HASH_ALGO_COUNT];
static pthread_once_t hash_fetch_once = PTHREAD_ONCE_INIT;

static void hash_fetch(void)
{
    for (size_t i = 0; i < HASH_ALGO_COUNT; i++) {
        if (!hash_algos[i].fetch_name)
            continue;
        hash_fetched[i] = EVP_MD_fetch(NULL, hash_algos[i].fetch_name, NULL);
        if (!hash_fetched[i]) /* refused (md5 under FIPS): Init says so */
            hash_fetched[i] = hash_algos[i].md();
    }
}

/* The digests of `algos` started in ctx[]: 0, FR_ENOMEM, or FR_ERROR with
 * errno EPROTO when libcrypto refuses one. */
static int hash_start(EVP_MD_CTX *ctx[HASH_ALGO_COUNT], unsigned algos)
{
    pthread_once(&hash_fetch_once, hash_fetch);
    for (size_t i = 0; i < HASH_ALGO_COUNT; i++) {
        if (!(algos & hash_algos[i].algo) || !hash_algos[i].md)
            continue;
        ctx[i] = EVP_MD_CTX_new();
        if (!ctx[i]) {
            errno = ENOMEM;
            return FR_ENOMEM;
        }
        if (!EVP_DigestInit_ex(ctx[i], hash_fetched[i], NULL)) {
            errno = EPROTO;
            return FR_ERROR;
        }
    }
    return 0;
}

/* Hands len bytes to every digest started, and to crc32. */
static int hash_update(EVP_MD_CTX *ctx[HASH_ALGO_COUNT], unsigned algos, uLong *crc,
                       const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < HASH_ALGO_COUNT; i++) {
        if (ctx[i] && !EVP_DigestUpdate(ctx[i], buf, len)) {
            errno = EPROTO;
            return FR_ERROR;
        }
    }
    if (algos & HASH_CRC32)
        *crc = crc32(*crc, buf, (uInt)len);
    return 0;
}

/* Writes every digest into *out. */
static int hash_finish(EVP_MD_CTX *ctx[HASH_ALGO_COUNT], unsigned algos, uLong crc,
                       uint64_t size, struct hash_result *out)
{
    for (size_t i = 0; i < HASH_ALGO_COUNT; i++) {
        if (ctx[i] && !EVP_DigestFinal_ex(ctx[i], (unsigned char *)out + hash_algos[i].offset,
                                          NULL)) {
            errno = EPROTO;
            return FR_ERROR;
        }
    }
    out->crc32 = (algos & HASH_CRC32) ? (uint32_t)crc : 0;
    out->algos = algos;
    out->size = size;
    return 0;
}

static void hash_ctx_free(EVP_MD_CTX *ctx[HASH_ALGO_COUNT])
{
    for (size_t i = 0; i < HASH_ALGO_COUNT; i++)
        EVP_MD_CTX_free(ctx[i]);
}

static const struct hash_algo_info *hash_algo_info(enum hash_algo algo)
{
    for (size_t i = 0; i < HASH_ALGO_COUNT; i++)
        if (hash_algos[i].algo == algo)
            return &hash_algos[i];
    return NULL;
}

int hash_algo_parse(unsigned *out, const char *name)
{
    *out = 0;
    if (!name)
        return FR_EINVAL;
    for (size_t i = 0; i < HASH_ALGO_COUNT; i++) {
        if (strcmp(hash_algos[i].name, name) == 0) {
            *out = hash_algos[i].algo;
            return 0;
        }
    }
    return FR_EINVAL;
}

const char *hash_algo_name(enum hash_algo algo)
{
    const struct hash_algo_info *info = hash_algo_info(algo);

    return info ? info->name : NULL;
}

size_t hash_algo_digest_size(enum hash_algo algo)
{
    const struct hash_algo_info *info = hash_algo_info(algo);

    return info ? info->size : 0;
}

size_t hash_result_digest(unsigned char out[64], const struct hash_result *result,
                          enum hash_algo algo)
{
    const struct hash_algo_info *info = hash_algo_info(algo);

    if (!info || !(result->algos & algo))
        return 0;
    if (algo == HASH_CRC32) {
        out[0] = (unsigned char)(result->crc32 >> 24);
        out[1] = (unsigned char)(result->crc32 >> 16);
        out[2] = (unsigned char)(result->crc32 >> 8);
        out[3] = (unsigned char)result->crc32;
    } else {
        memcpy(out, (const unsigned char *)result + info->offset, info->size);
    }
    return info->size;
}

/* Writes all of buf, through short writes and signals; -1 with errno set. */
static int hash_write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            /* A regular file or pipe never does this; do not spin on it. */
            errno = EIO;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int hash_fd(struct hash_result *out, int fd, unsigned algos, int copy_fd)
{
    EVP_MD_CTX *ctx[HASH_ALGO_COUNT] = { NULL };
    unsigned char *buf = NULL;
    uLong crc = crc32(0L, Z_NULL, 0);
    size_t buf_size = HASH_BUFFER_SIZE;
    uint64_t size = 0;
    struct stat st;
    int saved_errno = 0;
    int error = FR_ERROR;

    memset(out, 0, sizeof(*out));
    if (algos & ~(unsigned)HASH_ALL)
        return FR_EINVAL;
    algos |= HASH_SHA256;

    /* A small file needs no big buffer (a big one is a fresh mapping to
     * fault in and unmap for every file). */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (off_t)HASH_BUFFER_SIZE)
        buf_size = (size_t)st.st_size + 1; /* + 1: the end is seen in one read */
    buf = malloc(buf_size);
    if (!buf) {
        error = FR_ENOMEM;
        saved_errno = ENOMEM;
        goto done;
    }
    if ((error = hash_start(ctx, algos)) != 0) {
        saved_errno = errno;
        goto done;
    }
    error = FR_ERROR;
    /* Only a hint to read ahead further; pipes refuse it, which is fine. */
    if (buf_size == HASH_BUFFER_SIZE)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    for (;;) {
        ssize_t n = read(fd, buf, buf_size);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            saved_errno = errno;
            goto done;
        }
        if (n == 0)
            break;
        for (size_t at = 0; at < (size_t)n; at += HASH_SLICE_SIZE) {
            size_t len = (size_t)n - at < HASH_SLICE_SIZE ? (size_t)n - at : HASH_SLICE_SIZE;

            if (hash_update(ctx, algos, &crc, buf + at, len) != 0) {
                saved_errno = errno;
                goto done;
            }
        }
        if (copy_fd >= 0) {
            if (hash_write_all(copy_fd, buf, (size_t)n) != 0) {
                saved_errno = errno;
                goto done;
            }
            /* A big file's copy starts going out now, while the rest is
             * hashed, rather than all at once when the batch is made
             * durable; a small one's waits for that, so many small copies
             * go out together.  Only a hint: without it, the sync waits. */
            if ((size_t)n == HASH_BUFFER_SIZE)
                (void)sync_file_range(copy_fd, (off64_t)size, n, SYNC_FILE_RANGE_WRITE);
        }
        size += (uint64_t)n;
    }
    if (hash_finish(ctx, algos, crc, size, out) != 0) {
        saved_errno = errno;
        goto done;
    }
    error = 0;

done:
    hash_ctx_free(ctx);
    free(buf);
    if (error) {
        memset(out, 0, sizeof(*out));
        errno = saved_errno;
    }
    return error;
}

int hash_buffer(struct hash_result *out, const void *buf, size_t len, unsigned algos)
{
    EVP_MD_CTX *ctx[HASH_ALGO_COUNT] = { NULL };
    uLong crc = crc32(0L, Z_NULL, 0);
    int saved_errno = 0;
    int error;

    memset(out, 0, sizeof(*out));
    if (algos & ~(unsigned)HASH_ALL)
        return FR_EINVAL;
    algos |= HASH_SHA256;
    error = hash_start(ctx, algos);
    for (size_t at = 0; !error && at < len; at += HASH_SLICE_SIZE)
        error = hash_update(ctx, algos, &crc, (const unsigned char *)buf + at,
                            len - at < HASH_SLICE_SIZE ? len - at : HASH_SLICE_SIZE);
    if (!error)
        error = hash_finish(ctx, algos, crc, len, out);
    saved_errno = errno;
    hash_ctx_free(ctx);
    if (error) {
        memset(out, 0, sizeof(*out));
        errno = saved_errno;
    }
    return error;
}

void hash_hex(char *out, const unsigned char *digest, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    out[2 * len] = '\0';
}
