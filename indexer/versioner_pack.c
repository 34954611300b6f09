/*
 * versioner_pack.c - a batch's objects written as one git pack, plainly.
 *
 * A batch's objects are small (lfs pointer blobs, trees, one commit) and
 * written once; libgit2's packbuilder would search each for a delta against
 * its neighbours and then index its own output again, which for a batch of
 * thousands of pointers costs more than everything else the commit does.
 * This writes the pack (format 2, every object whole and deflated) and its
 * index (format 2) in one pass, from the ids the batch recorded:
 *
 *   pack: "PACK" 2 n, then per object a type+size header and the zlib
 *         stream, then the SHA-1 of all that;
 *   idx:  "\377tOc" 2, fanout[256], the sorted ids, their CRC-32s (of the
 *         header and stream as stored), their 31-bit offsets (or, with the
 *         top bit set, an index into the 64-bit offsets that follow), the
 *         pack's SHA-1 and the SHA-1 of the index itself.
 *
 * Both are written to temporary names in objects/pack/ and renamed to
 * pack-<pack SHA-1>.{pack,idx}, the index last: git and libgit2 only look
 * at a pack that has its index, so a reader never sees half of one.
 */
#include "versioner_internal.h"
#include "fr_error.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define PACK_BUFFER_SIZE (256 * 1024)

/* A file being written through a buffer, hashed as it goes. */
struct pack_out {
    int fd;
    EVP_MD_CTX *sha;            /* SHA-1 of everything put */
    unsigned char *buf;
    size_t used;
    uint64_t offset;            /* bytes written so far, buffered or not */
    int error;                  /* errno of the first failure, 0 */
};

static void pack_flush(struct pack_out *out)
{
    size_t done = 0;

    while (!out->error && done < out->used) {
        ssize_t n = write(out->fd, out->buf + done, out->used - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            out->error = n < 0 ? errno : EIO;
        else
            done += (size_t)n;
    }
    out->used = 0;
}

static void pack_put(struct pack_out *out, const void *data, size_t len)
{
    const unsigned char *p = data;

    EVP_DigestUpdate(out->sha, data, len);
    out->offset += len;
    while (len > 0) {
        size_t room = PACK_BUFFER_SIZE - out->used, n = len < room ? len : room;

        memcpy(out->buf + out->used, p, n);
        out->used += n;
        p += n;
        len -= n;
        if (out->used == PACK_BUFFER_SIZE)
            pack_flush(out);
    }
}

static void pack_put_be32(struct pack_out *out, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v };

    pack_put(out, b, 4);
}

/* Ends the file with the SHA-1 of what it holds (kept in sha1). */
static void pack_finish(struct pack_out *out, unsigned char sha1[20])
{
    unsigned char digest[EVP_MAX_MD_SIZE];

    EVP_DigestFinal_ex(out->sha, digest, NULL);
    pack_put(out, digest, 20);
    pack_flush(out);
    memcpy(sha1, digest, 20);
}

static int pack_oid_compare(const void *a, const void *b)
{
    return git_oid_cmp(a, b);
}

struct pack_entry {
    uint64_t offset;
    uint32_t crc;
};

/* The object's pack entry header: type and inflated size. */
static size_t pack_entry_header(unsigned char *out, git_object_t type, size_t size)
{
    size_t n = 0;
    unsigned char c = (unsigned char)(((unsigned)type & 7) << 4 | (size & 15));

    size >>= 4;
    while (size) {
        out[n++] = c | 0x80;
        c = size & 0x7f;
        size >>= 7;
    }
    out[n++] = c;
    return n;
}

/* Deflates and writes one object; fills its entry. */
static int pack_write_object(struct versioner *versioner, struct pack_out *out,
                             z_stream *z, const git_oid *id, struct pack_entry *entry)
{
    unsigned char header[16], chunk[16384];
    git_odb_object *object;
    size_t header_len;
    int zrc;

    if (git_odb_read(&object, versioner->odb, id) < 0)
        return versioner_git_error(versioner, "reading a new object");
    entry->offset = out->offset;
    header_len = pack_entry_header(header, git_odb_object_type(object),
                                   git_odb_object_size(object));
    pack_put(out, header, header_len);
    entry->crc = (uint32_t)crc32(0, header, (uInt)header_len);
    deflateReset(z);
    z->next_in = (Bytef *)git_odb_object_data(object);
    z->avail_in = (uInt)git_odb_object_size(object);
    do {
        size_t have;

        z->next_out = chunk;
        z->avail_out = sizeof(chunk);
        zrc = deflate(z, Z_FINISH);
        if (zrc == Z_STREAM_ERROR) {
            git_odb_object_free(object);
            versioner_set_error(versioner, "deflating an object");
            return FR_ERROR;
        }
        have = sizeof(chunk) - z->avail_out;
        pack_put(out, chunk, have);
        entry->crc = (uint32_t)crc32(entry->crc, chunk, (uInt)have);
    } while (zrc != Z_STREAM_END);
    git_odb_object_free(object);
    return 0;
}

/* Writes the index of the sorted ids to out. */
static void pack_write_index(struct pack_out *out, const git_oid *ids,
                             const struct pack_entry *entries, size_t count,
                             const unsigned char pack_sha1[20], unsigned char idx_sha1[20])
{
    static const unsigned char magic[4] = { 0xff, 't', 'O', 'c' };
    uint32_t large = 0;
    size_t at = 0;

    pack_put(out, magic, 4);
    pack_put_be32(out, 2);
    for (unsigned b = 0; b < 256; b++) {
        while (at < count && ids[at].id[0] == b)
            at++;
        pack_put_be32(out, (uint32_t)at);
    }
    for (size_t i = 0; i < count; i++)
        pack_put(out, ids[i].id, GIT_OID_RAWSZ);
    for (size_t i = 0; i < count; i++)
        pack_put_be32(out, entries[i].crc);
    for (size_t i = 0; i < count; i++) {
        if (entries[i].offset < 0x80000000u)
            pack_put_be32(out, (uint32_t)entries[i].offset);
        else
            pack_put_be32(out, 0x80000000u | large++);
    }
    for (size_t i = 0; i < count; i++) {
        if (entries[i].offset >= 0x80000000u) {
            pack_put_be32(out, (uint32_t)(entries[i].offset >> 32));
            pack_put_be32(out, (uint32_t)entries[i].offset);
        }
    }
    pack_put(out, pack_sha1, 20);
    pack_finish(out, idx_sha1);
}

static int pack_open_temp(struct versioner *versioner, const char *dir, char *path, size_t len,
                          const char *what)
{
    int fd;

    snprintf(path, len, "%s/tmp_%s_XXXXXX", dir, what);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        versioner_set_error(versioner, "creating %s: %s", path, strerror(errno));
    else
        fchmod(fd, 0444);
    return fd;
}

int versioner_pack_objects(struct versioner *versioner, const git_oid *written, size_t count)
{
    char dir[4096], pack_tmp[4200], idx_tmp[4200], name[4200], hex[41];
    struct pack_out out = { .fd = -1 };
    struct pack_entry *entries = NULL;
    git_oid *ids = NULL;
    git_buf objects = { 0 };
    unsigned char pack_sha1[20], idx_sha1[20];
    z_stream z = { 0 };
    bool z_ready = false;
    size_t n = 0;
    int error = FR_ERROR;

    pack_tmp[0] = idx_tmp[0] = '\0';
    if (git_repository_item_path(&objects, versioner->repo, GIT_REPOSITORY_ITEM_OBJECTS) < 0) {
        versioner_git_error(versioner, "finding the objects directory");
        goto done;
    }
    snprintf(dir, sizeof(dir), "%spack", objects.ptr);
    ids = malloc((count + 1) * sizeof(*ids));
    entries = calloc(count + 1, sizeof(*entries));
    out.buf = malloc(PACK_BUFFER_SIZE);
    out.sha = EVP_MD_CTX_new();
    if (!ids || !entries || !out.buf || !out.sha) {
        error = FR_ENOMEM;
        goto done;
    }
    /* Sorted, each once: an index names every object a single time. */
    memcpy(ids, written, count * sizeof(*ids));
    qsort(ids, count, sizeof(*ids), pack_oid_compare);
    for (size_t i = 0; i < count; i++)
        if (n == 0 || !git_oid_equal(&ids[n - 1], &ids[i]))
            git_oid_cpy(&ids[n++], &ids[i]);
    /* Objects of a few hundred bytes each: a small hash table keeps the
     * reset between two of them cheap. */
    if (deflateInit2(&z, Z_NO_COMPRESSION, Z_DEFLATED, 15, 1, Z_DEFAULT_STRATEGY) != Z_OK) {
        error = FR_ENOMEM;
        goto done;
    }
    z_ready = true;

    if ((out.fd = pack_open_temp(versioner, dir, pack_tmp, sizeof(pack_tmp), "pack")) < 0)
        goto done;
    EVP_DigestInit_ex(out.sha, EVP_sha1(), NULL);
    pack_put(&out, "PACK", 4);
    pack_put_be32(&out, 2);
    pack_put_be32(&out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        if ((error = pack_write_object(versioner, &out, &z, &ids[i], &entries[i])) < 0)
            goto done;
    error = FR_ERROR;
    pack_finish(&out, pack_sha1);
    if (out.error || close(out.fd) != 0) {
        versioner_set_error(versioner, "writing %s: %s", pack_tmp,
                            strerror(out.error ? out.error : errno));
        out.fd = -1;
        goto done;
    }

    if ((out.fd = pack_open_temp(versioner, dir, idx_tmp, sizeof(idx_tmp), "idx")) < 0)
        goto done;
    EVP_DigestInit_ex(out.sha, EVP_sha1(), NULL);
    out.offset = 0;
    pack_write_index(&out, ids, entries, n, pack_sha1, idx_sha1);
    if (out.error || close(out.fd) != 0) {
        versioner_set_error(versioner, "writing %s: %s", idx_tmp,
                            strerror(out.error ? out.error : errno));
        out.fd = -1;
        goto done;
    }
    out.fd = -1;

    for (int i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", pack_sha1[i]);
    snprintf(name, sizeof(name), "%s/pack-%s.pack", dir, hex);
    if (rename(pack_tmp, name) != 0) {
        versioner_set_error(versioner, "naming %s: %s", name, strerror(errno));
        goto done;
    }
    pack_tmp[0] = '\0';
    snprintf(name, sizeof(name), "%s/pack-%s.idx", dir, hex);
    if (rename(idx_tmp, name) != 0) {
        versioner_set_error(versioner, "naming %s: %s", name, strerror(errno));
        goto done;
    }
    idx_tmp[0] = '\0';
    error = 0;
done:
    if (out.fd >= 0)
        close(out.fd);
    if (pack_tmp[0])
        unlink(pack_tmp);
    if (idx_tmp[0])
        unlink(idx_tmp);
    if (z_ready)
        deflateEnd(&z);
    git_buf_dispose(&objects);
    EVP_MD_CTX_free(out.sha);
    free(out.buf);
    free(entries);
    free(ids);
    return error;
}
