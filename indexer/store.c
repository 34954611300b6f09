/*
 * store.c - content-addressed objects: begin, hash, commit.
 *
 * Every object is born nameless: an O_TMPFILE in tmp/, filled by a clone
 * (FICLONE) or by the hasher's copy, then made read-only and linked under
 * its digest in one linkat().  linkat() never replaces a name, so an object
 * that is already there (EEXIST) is kept as it is (same digest, same bytes)
 * unless it is short, the mark of a power loss before store_sync().  An ingest that is aborted, or a process that dies, leaves nothing:
 * the unnamed file goes with its last descriptor.
 *
 * Hard-link mode has a name to start from instead, the published file's; it
 * is linked first to a private name in tmp/ and that link's inode compared
 * with the inode that was hashed, so a file replaced (renamed over) between
 * hashing and commit is never stored under the old file's digest.  Only then
 * does it get its object name.
 *
 * An O_TMPFILE is linked by its /proc/self/fd path (any user) or, without
 * /proc, with AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH).
 */
#include "store.h"
#include "fr_error.h"
#include "hash.h"
#include "log.h"
#include "store_pack.h"

#include <openssl/evp.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_DIR_MODE 0750
#define STORE_OBJECT_MODE 0444
#define STORE_LINK_PREFIX "link."
#define STORE_REPAIR_PREFIX "repair."

/* "ab/" + 62 hex digits + NUL */
#define STORE_REL_SIZE 66

struct store {
    char *dir;                  /* the store's directory, as given */
    enum store_mode mode;       /* how revisions are kept */
    int dir_fd;                 /* dir */
    int objects_fd;             /* dir/objects */
    int tmp_fd;                 /* dir/tmp */
    struct store_packs *packs;  /* the small objects */
    atomic_uint link_serial;    /* makes hard-link staging names unique */
    atomic_bool clone_fallback_logged; /* the reflink fallback was logged */
};

struct store_ingest {
    struct store *store;        /* borrowed */
    enum store_method method;   /* how the bytes are being kept */
    int tmp_fd;                 /* the unnamed file in tmp/, or -1 */
    int src_fd;                 /* the file itself (borrowed), for a pack */
    off_t src_size;             /* its size when the ingest began */
    dev_t src_dev;              /* the hashed file's inode, for hardlink mode */
    ino_t src_ino;              /* ditto */
};

static const char *const store_mode_names[] = {
    [STORE_REFLINK] = "reflink",
    [STORE_COPY] = "copy",
    [STORE_HARDLINK] = "hardlink",
    [STORE_NONE] = "none",
};

static const char *const store_method_names[] = {
    [STORE_METHOD_NONE] = "none",
    [STORE_METHOD_REFLINK] = "reflink",
    [STORE_METHOD_COPY] = "copy",
    [STORE_METHOD_HARDLINK] = "hardlink",
    [STORE_METHOD_PACK] = "pack",
};

#define STORE_MODE_COUNT (sizeof(store_mode_names) / sizeof(*store_mode_names))
#define STORE_METHOD_COUNT (sizeof(store_method_names) / sizeof(*store_method_names))

int store_mode_parse(enum store_mode *out, const char *name)
{
    *out = STORE_REFLINK;
    if (!name)
        return FR_EINVAL;
    for (size_t i = 0; i < STORE_MODE_COUNT; i++) {
        if (strcmp(store_mode_names[i], name) == 0) {
            *out = (enum store_mode)i;
            return 0;
        }
    }
    return FR_EINVAL;
}

const char *store_mode_name(enum store_mode mode)
{
    return (unsigned)mode < STORE_MODE_COUNT ? store_mode_names[mode] : NULL;
}

const char *store_method_name(enum store_method method)
{
    return (unsigned)method < STORE_METHOD_COUNT ? store_method_names[method] : NULL;
}

/* Closes fd (if any) without disturbing errno. */
static void store_close(int fd)
{
    int saved_errno = errno;

    if (fd >= 0)
        close(fd);
    errno = saved_errno;
}

/* Creates dirfd/name as a directory if missing and opens it; -1 with errno. */
static int store_open_dir(int dirfd, const char *name)
{
    if (mkdirat(dirfd, name, STORE_DIR_MODE) != 0 && errno != EEXIST)
        return -1;
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int store_tmpfile(const struct store *store)
{
    return openat(store->tmp_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

/* Removes tmp/link.* and tmp/repair.* that an interrupted commit left behind. */
static int store_sweep_tmp(struct store *store)
{
    int fd = openat(store->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *entry;
    DIR *dir;

    if (fd < 0)
        return -1;
    dir = fdopendir(fd);
    if (!dir) {
        store_close(fd);
        return -1;
    }
    while ((entry = readdir(dir))) {
        if (strncmp(entry->d_name, STORE_LINK_PREFIX, strlen(STORE_LINK_PREFIX)) == 0 ||
            strncmp(entry->d_name, STORE_REPAIR_PREFIX, strlen(STORE_REPAIR_PREFIX)) == 0)
            (void)unlinkat(store->tmp_fd, entry->d_name, 0);
    }
    closedir(dir);
    return 0;
}

int store_open(struct store **out, const char *dir, enum store_mode mode)
{
    struct store *store = NULL;
    int error = FR_ERROR;

    *out = NULL;
    if ((unsigned)mode >= STORE_MODE_COUNT)
        return FR_EINVAL;
    store = calloc(1, sizeof(*store));
    if (!store)
        return FR_ENOMEM;
    store->mode = mode;
    store->dir_fd = store->objects_fd = store->tmp_fd = -1;
    atomic_init(&store->link_serial, 0);
    atomic_init(&store->clone_fallback_logged, false);
    store->dir = strdup(dir);
    if (!store->dir) {
        error = FR_ENOMEM;
        goto done;
    }
    store->dir_fd = store_open_dir(AT_FDCWD, dir);
    if (store->dir_fd < 0)
        goto done;
    store->objects_fd = store_open_dir(store->dir_fd, "objects");
    if (store->objects_fd < 0)
        goto done;
    store->tmp_fd = store_open_dir(store->dir_fd, "tmp");
    if (store->tmp_fd < 0)
        goto done;
    if (store_sweep_tmp(store) != 0)
        goto done;
    if ((error = store_packs_open(&store->packs, store->dir_fd, dir)) != 0)
        goto done;
    error = FR_ERROR;
    if (mode == STORE_REFLINK || mode == STORE_COPY) {
        int probe = store_tmpfile(store);

        if (probe < 0)
            goto done;
        close(probe);
    }
    *out = store;
    store = NULL;
    error = 0;

done:
    store_free(store); /* keeps errno */
    return error;
}

void store_free(struct store *store)
{
    if (!store)
        return;
    store_packs_free(store->packs);
    store_close(store->tmp_fd);
    store_close(store->objects_fd);
    store_close(store->dir_fd);
    free(store->dir);
    free(store);
}

enum store_mode store_get_mode(const struct store *store)
{
    return store->mode;
}

/* "ab/cdef…" for a digest; rel has STORE_REL_SIZE bytes. */
static void store_object_rel(char *rel, const unsigned char sha256[32])
{
    char hex[65];

    hash_hex(hex, sha256, 32);
    rel[0] = hex[0];
    rel[1] = hex[1];
    rel[2] = '/';
    memcpy(rel + 3, hex + 2, 63);
}

/* Opens (creating if needed) objects/ab; store_sync() makes it durable. */
static int store_open_fanout(struct store *store, const char *rel)
{
    char name[3] = { rel[0], rel[1], '\0' };

    if (mkdirat(store->objects_fd, name, STORE_DIR_MODE) != 0 && errno != EEXIST)
        return -1;
    return openat(store->objects_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/*
 * An object found under its name when a new one arrives is kept only if it
 * is whole.  Objects are not flushed one by one (store_sync() flushes a
 * batch's at once, before the catalog names them), so a machine that lost
 * power mid-batch can leave a name whose data never reached the disk: such
 * an object is shorter than the bytes that hash to its name (ext4 and xfs
 * leave it empty), and the new one replaces it.
 */
static int store_keep_or_replace(struct store *store, int fanout_fd, const char *rel,
                                 int fd, const char *stage, bool *existed)
{
    const char *name = rel + 3;
    char repair[64];
    struct stat have, want;
    char proc_path[64];
    int rc;

    if (fstatat(fanout_fd, name, &have, AT_SYMLINK_NOFOLLOW) != 0)
        return FR_ERROR;
    rc = stage ? fstatat(store->tmp_fd, stage, &want, AT_SYMLINK_NOFOLLOW) : fstat(fd, &want);
    if (rc != 0)
        return FR_ERROR;
    if (S_ISREG(have.st_mode) && have.st_size == want.st_size) {
        *existed = true;
        return 0;
    }
    log_warn("store", "object %s/objects/%s is damaged (%lld bytes, not %lld); replacing it",
             store->dir, rel, (long long)have.st_size, (long long)want.st_size);
    snprintf(repair, sizeof(repair), STORE_REPAIR_PREFIX "%ld.%u", (long)getpid(),
             atomic_fetch_add(&store->link_serial, 1));
    if (stage) {
        rc = linkat(store->tmp_fd, stage, store->tmp_fd, repair, 0);
    } else {
        snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd);
        rc = linkat(AT_FDCWD, proc_path, store->tmp_fd, repair, AT_SYMLINK_FOLLOW);
        if (rc != 0 && errno == ENOENT)
            rc = linkat(fd, "", store->tmp_fd, repair, AT_EMPTY_PATH);
    }
    if (rc != 0)
        return FR_ERROR;
    if (renameat(store->tmp_fd, repair, fanout_fd, name) != 0) {
        (void)unlinkat(store->tmp_fd, repair, 0);
        return FR_ERROR;
    }
    return 0;
}

/*
 * Gives an object its name objects/ab/cdef…: links tmp/stage, or the
 * unnamed file fd when stage is NULL.  A whole object already there is kept
 * and *existed set.
 */
static int store_name_object(struct store *store, const unsigned char sha256[32], int fd,
                             const char *stage, bool *existed)
{
    char rel[STORE_REL_SIZE];
    char proc_path[64];
    int fanout_fd;
    int rc;
    int error = FR_ERROR;

    *existed = false;
    store_object_rel(rel, sha256);
    fanout_fd = store_open_fanout(store, rel);
    if (fanout_fd < 0)
        return FR_ERROR;
    if (stage) {
        rc = linkat(store->tmp_fd, stage, fanout_fd, rel + 3, 0);
    } else {
        snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd);
        rc = linkat(AT_FDCWD, proc_path, fanout_fd, rel + 3, AT_SYMLINK_FOLLOW);
        if (rc != 0 && errno == ENOENT) /* no /proc */
            rc = linkat(fd, "", fanout_fd, rel + 3, AT_EMPTY_PATH);
    }
    if (rc != 0) {
        if (errno != EEXIST)
            goto done;
        if (store_keep_or_replace(store, fanout_fd, rel, fd, stage, existed) != 0)
            goto done;
    }
    /* The data and the new name are made durable by store_sync(), once per
     * batch, before anything refers to them. */
    error = 0;

done:
    store_close(fanout_fd);
    return error;
}

/* Makes the unnamed file fd in tmp/ read-only, then names it. */
static int store_link_tmpfile(struct store *store, int fd, const unsigned char sha256[32],
                              bool *existed)
{
    *existed = false;
    if (fchmod(fd, STORE_OBJECT_MODE) != 0)
        return FR_ERROR;
    return store_name_object(store, sha256, fd, NULL, existed);
}

/* Whether a FICLONE error means "cannot clone this here" (so copy instead). */
static bool store_clone_impossible(int err)
{
    switch (err) {
    case EOPNOTSUPP: /* the file system cannot clone */
    case EXDEV:      /* the source is on another file system */
    case EINVAL:     /* this pair of files cannot be cloned */
    case ENOTTY:     /* no such ioctl here */
    case ENOSYS:
    case EPERM:      /* an immutable or append-only source, … */
    case ETXTBSY:    /* an active swap file */
        return true;
    default:
        return false;
    }
}

/* Whether st's last change is so long ago that a write now would change
 * its ctime (see STORE_SETTLED_NS); a clock set back answers no. */
static bool store_settled(const struct stat *st)
{
    struct timespec now;
    long long age;

    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return false;
    age = ((long long)now.tv_sec - (long long)st->st_ctim.tv_sec) * 1000000000LL +
          (now.tv_nsec - st->st_ctim.tv_nsec);
    return age >= STORE_SETTLED_NS;
}

int store_ingest_begin(struct store_ingest **out, struct store *store, int src_fd,
                       int *read_fd, int *copy_fd)
{
    struct store_ingest *ingest = NULL;
    struct stat st;
    int error = FR_ERROR;

    *out = NULL;
    *read_fd = src_fd;
    *copy_fd = -1;
    if (fstat(src_fd, &st) != 0)
        return FR_ERROR;
    if (!S_ISREG(st.st_mode))
        return FR_EINVAL;
    ingest = calloc(1, sizeof(*ingest));
    if (!ingest)
        return FR_ENOMEM;
    ingest->store = store;
    ingest->tmp_fd = -1;
    ingest->src_fd = -1;
    ingest->src_size = st.st_size;
    ingest->src_dev = st.st_dev;
    ingest->src_ino = st.st_ino;

    if (store->mode == STORE_NONE || store->mode == STORE_HARDLINK) {
        ingest->method = store->mode == STORE_NONE ? STORE_METHOD_NONE : STORE_METHOD_HARDLINK;
    } else if (st.st_size <= STORE_PACK_OBJECT_MAX) {
        /* Read again at commit, from the page cache the hasher just filled. */
        ingest->method = STORE_METHOD_PACK;
        ingest->src_fd = src_fd;
    } else {
        ingest->tmp_fd = store_tmpfile(store);
        if (ingest->tmp_fd < 0)
            goto done;
        ingest->method = STORE_METHOD_COPY;
        if (store->mode == STORE_REFLINK) {
            if (ioctl(ingest->tmp_fd, FICLONE, src_fd) == 0)
                ingest->method = STORE_METHOD_REFLINK;
            else if (!store_clone_impossible(errno))
                goto done;
            else if (!atomic_exchange(&store->clone_fallback_logged, true))
                log_info("store", "cannot reflink into %s (%s); copying instead", store->dir,
                         strerror(errno));
            /* A failed clone wrote nothing: the file serves as the copy. */
        }
        if (ingest->method == STORE_METHOD_REFLINK && !store_settled(&st))
            *read_fd = ingest->tmp_fd;
        else if (ingest->method != STORE_METHOD_REFLINK)
            *copy_fd = ingest->tmp_fd;
    }
    *out = ingest;
    ingest = NULL;
    error = 0;

done:
    store_ingest_abort(ingest);
    return error;
}

/*
 * Copies src_dirfd/src_name into a new object, for hard-link mode when the
 * link is impossible.  It must be the hashed inode and hash to `sha256`.
 */
static int store_copy_by_name(struct store_ingest *ingest, const unsigned char sha256[32],
                              int src_dirfd, const char *src_name, bool *existed)
{
    struct hash_result result;
    struct stat st;
    int src_fd = -1;
    int tmp_fd = -1;
    int error = FR_ERROR;

    src_fd = openat(src_dirfd, src_name, O_RDONLY | O_CLOEXEC); /* inode checked below */
    if (src_fd < 0 || fstat(src_fd, &st) != 0)
        goto done;
    if (st.st_dev != ingest->src_dev || st.st_ino != ingest->src_ino) {
        error = FR_EINVAL;
        goto done;
    }
    tmp_fd = store_tmpfile(ingest->store);
    if (tmp_fd < 0)
        goto done;
    error = hash_fd(&result, src_fd, HASH_SHA256, tmp_fd);
    if (error)
        goto done;
    if (memcmp(result.sha256, sha256, sizeof(result.sha256)) != 0) {
        error = FR_EINVAL;
        goto done;
    }
    error = store_link_tmpfile(ingest->store, tmp_fd, sha256, existed);
    if (!error)
        ingest->method = STORE_METHOD_COPY;

done:
    store_close(src_fd);
    store_close(tmp_fd);
    return error;
}

/*
 * Pack: the file is read again (it is small, and in the page cache) and
 * appended to a pack, if it still holds exactly the bytes that were hashed.
 */
static int store_commit_pack(struct store_ingest *ingest, const unsigned char sha256[32],
                             bool *existed)
{
    size_t want = (size_t)ingest->src_size;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned char *buf;
    size_t got = 0;
    int error = FR_ERROR;

    *existed = false;
    if (!(buf = malloc(want + 1)))
        return FR_ENOMEM;
    /* One byte more than expected: a file that grew is caught. */
    while (got < want + 1) {
        ssize_t n = pread(ingest->src_fd, buf + got, want + 1 - got, (off_t)got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto done;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != want || !EVP_Digest(buf, got, digest, NULL, EVP_sha256(), NULL) ||
        memcmp(digest, sha256, 32) != 0) {
        error = FR_EINVAL;
        goto done;
    }
    error = store_packs_put(ingest->store->packs, sha256, buf, got, existed);

done:
    free(buf);
    return error;
}

/* Hard-link mode: stage a link in tmp/, check its inode, name it. */
static int store_commit_hardlink(struct store_ingest *ingest, const unsigned char sha256[32],
                                 int src_dirfd, const char *src_name, bool *existed)
{
    struct store *store = ingest->store;
    char stage[64];
    struct stat st;
    bool staged = false;
    int error = FR_ERROR;

    *existed = false;
    for (int attempt = 0; attempt < 16 && !staged; attempt++) {
        snprintf(stage, sizeof(stage), STORE_LINK_PREFIX "%ld.%u", (long)getpid(),
                 atomic_fetch_add(&store->link_serial, 1));
        /* A published symbolic link is followed, as the hasher did; the
         * inode check below proves it still leads to the file hashed. */
        if (linkat(src_dirfd, src_name, store->tmp_fd, stage, AT_SYMLINK_FOLLOW) == 0)
            staged = true;
        else if (errno != EEXIST)
            break;
    }
    if (!staged) {
        if (errno == EXDEV || errno == EPERM || errno == EMLINK)
            return store_copy_by_name(ingest, sha256, src_dirfd, src_name, existed);
        return FR_ERROR;
    }
    if (fstatat(store->tmp_fd, stage, &st, AT_SYMLINK_NOFOLLOW) != 0)
        goto done;
    if (st.st_dev != ingest->src_dev || st.st_ino != ingest->src_ino) {
        error = FR_EINVAL;
        goto done;
    }
    error = store_name_object(store, sha256, -1, stage, existed);

done:
    if (unlinkat(store->tmp_fd, stage, 0) != 0 && !error)
        error = FR_ERROR;
    return error;
}

int store_ingest_commit_report(struct store_report *out, struct store_ingest *ingest,
                               const unsigned char sha256[32], int src_dirfd,
                               const char *src_name)
{
    bool existed = false;
    int error = FR_ERROR;

    switch (ingest->method) {
    case STORE_METHOD_NONE:
        error = 0;
        break;
    case STORE_METHOD_REFLINK:
    case STORE_METHOD_COPY:
        error = store_link_tmpfile(ingest->store, ingest->tmp_fd, sha256, &existed);
        break;
    case STORE_METHOD_HARDLINK:
        error = store_commit_hardlink(ingest, sha256, src_dirfd, src_name, &existed);
        break;
    case STORE_METHOD_PACK:
        error = store_commit_pack(ingest, sha256, &existed);
        break;
    }
    if (!error && out) {
        out->method = ingest->method;
        out->existed = existed;
    }
    store_ingest_abort(ingest);
    return error;
}

int store_ingest_commit(struct store_ingest *ingest, const unsigned char sha256[32],
                        int src_dirfd, const char *src_name)
{
    return store_ingest_commit_report(NULL, ingest, sha256, src_dirfd, src_name);
}

bool store_takes_small(const struct store *store, uint64_t size)
{
    return (store->mode == STORE_COPY || store->mode == STORE_REFLINK) &&
           size <= STORE_PACK_OBJECT_MAX;
}

int store_put_small(struct store *store, const unsigned char sha256[32], const void *bytes,
                    size_t len, struct store_report *out)
{
    bool existed = false;
    int error;

    if (!store_takes_small(store, len))
        return FR_EINVAL;
    error = store_packs_put(store->packs, sha256, bytes, len, &existed);
    if (!error && out) {
        out->method = STORE_METHOD_PACK;
        out->existed = existed;
    }
    return error;
}

void store_ingest_abort(struct store_ingest *ingest)
{
    if (!ingest)
        return;
    store_close(ingest->tmp_fd);
    free(ingest);
}

int store_object_open(struct store *store, const unsigned char sha256[32])
{
    char rel[STORE_REL_SIZE];
    int fd;

    fd = store_packs_open_object(store->packs, sha256);
    if (fd != FR_ENOTFOUND)
        return fd;
    store_object_rel(rel, sha256);
    fd = openat(store->objects_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? FR_ENOTFOUND : FR_ERROR;
    return fd;
}

int store_object_path(struct store *store, const unsigned char sha256[32], char *out,
                      size_t len)
{
    char rel[STORE_REL_SIZE];
    int n;

    store_object_rel(rel, sha256);
    n = snprintf(out, len, "%s/objects/%s", store->dir, rel);
    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            out[0] = '\0';
        return FR_EINVAL;
    }
    return 0;
}

int store_sync(struct store *store)
{
    return syncfs(store->objects_fd) == 0 ? 0 : FR_ERROR;
}

int store_sync_objects(struct store *store, const unsigned char (*sha256)[32], size_t count,
                       size_t loose_max)
{
    bool fanout_synced[256] = { false };
    char rel[STORE_REL_SIZE];
    size_t loose = 0;
    int error;

    for (size_t i = 0; i < count && loose <= loose_max; i++)
        if (!store_packs_contains(store->packs, sha256[i]))
            loose++;
    if (loose > loose_max)
        return store_sync(store); /* the packs too */
    if ((error = store_packs_sync_objects(store->packs, sha256, count)) != 0)
        return error;
    for (size_t i = 0; i < count; i++) {
        int fd;

        if (store_packs_contains(store->packs, sha256[i]))
            continue;
        store_object_rel(rel, sha256[i]);
        fd = openat(store->objects_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return errno == ENOENT ? FR_ENOTFOUND : FR_ERROR;
        if (fsync(fd) != 0) {
            store_close(fd);
            return FR_ERROR;
        }
        close(fd);
        if (!fanout_synced[sha256[i][0]]) {
            char name[3] = { rel[0], rel[1], '\0' };

            fd = openat(store->objects_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0 || fsync(fd) != 0) {
                store_close(fd);
                return FR_ERROR;
            }
            close(fd);
            fanout_synced[sha256[i][0]] = true;
        }
    }
    /* A fanout directory made for this batch is a name in objects/. */
    return count == 0 || fsync(store->objects_fd) == 0 ? 0 : FR_ERROR;
}
