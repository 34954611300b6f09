/*
 * store.h - the content store: every revision's bytes, named by their sha-256.
 *
 * A published file changes; its old revisions must stay downloadable.  The
 * store keeps each revision's content under DIR/objects/ab/cdef… (the sha-256
 * in hexadecimal, its first two digits as a directory), written once and
 * never changed, so the same bytes are kept once however many files or
 * revisions share them.  DIR/tmp holds files on their way in.  In the copy
 * and reflink modes, a file of at most STORE_PACK_OBJECT_MAX bytes is
 * appended to a pack in DIR/packs instead (store_pack.h): one inode per
 * small file would cost more than the file.  store_object_open() finds
 * either kind.
 *
 * How the bytes get there is the store's mode:
 *   reflink   clone the file (ioctl FICLONE: shared extents, no data copied,
 *             a consistent snapshot) where the file system can; otherwise
 *             copy it, as `copy` does, and say so in the report;
 *   copy      write the bytes the hasher reads into a new file as it reads
 *             them, so the file is read once;
 *   hardlink  link the published file itself into objects/ (nothing copied;
 *             copies instead when the link is impossible, e.g. across file
 *             systems).  The object IS the published inode: a release tool
 *             that rewrites a file in place rewrites the stored revision too,
 *             and its mode is left as published.  Only replace-by-rename keeps
 *             the history right.  Use it knowingly;
 *   none      keep nothing; old revisions are not downloadable.
 *
 * One file goes in as an ingest, in the indexer's worker:
 *
 *     fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC); fstat(fd)
 *     store_ingest_begin(&in, store, fd, &read_fd, &copy_fd)
 *     hash_fd(&r, read_fd, algos, copy_fd)
 *     fstat(fd) again: changed while hashed?  store_ingest_abort(in), retry later
 *     store_ingest_commit(in, r.sha256, dirfd, name)
 *     close(fd)
 *
 * Crash safety: an object appears under its final name only complete
 * (written to an unnamed O_TMPFILE, then linked into place), so a process
 * that dies leaves either the whole object or none.  Objects and names
 * become durable together with store_sync() (one sync of the file system)
 * or store_sync_objects() (an fsync of each, for a few), which the caller
 * runs once per batch before recording anything that refers to them.  A power loss before that
 * sync can leave a name whose data is missing; such an object is shorter
 * than its bytes, and the next ingest of the same bytes replaces it.  The
 * only names ever left behind in tmp/ are those of the hard-link path
 * (tmp/link.*) and of a replacement (tmp/repair.*), removed by the next
 * store_open().
 *
 * The store directory needs a file system with O_TMPFILE (ext4, xfs, btrfs,
 * tmpfs, …); store_open() checks.  One struct store per directory per process.
 * After store_open() a store is read-only, so any number of threads may run
 * ingests and open objects at once.
 */
#ifndef FILEREPO_STORE_H
#define FILEREPO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Objects of at most this many bytes are packed (copy and reflink modes). */
#define STORE_PACK_OBJECT_MAX (64 * 1024)

/** How the store keeps revisions (the configuration's choice). */
enum store_mode {
    STORE_REFLINK,  /* "reflink": clone where possible, else copy */
    STORE_COPY,     /* "copy": always copy while hashing */
    STORE_HARDLINK, /* "hardlink": link the published inode (see above) */
    STORE_NONE,     /* "none": keep nothing */
};

/** How one ingest actually kept the bytes. */
enum store_method {
    STORE_METHOD_NONE,     /* nothing kept (mode none) */
    STORE_METHOD_REFLINK,  /* cloned */
    STORE_METHOD_COPY,     /* copied (mode copy, or the fallback of the others) */
    STORE_METHOD_HARDLINK, /* the published file was linked */
    STORE_METHOD_PACK,     /* a small file, appended to a pack (store_pack.h) */
};

/** What store_ingest_commit_report() did. */
struct store_report {
    enum store_method method; /* how the bytes were kept */
    bool existed;             /* the object was already there and was kept as it was */
};

struct store;
struct store_ingest;

/**
 * Parses "reflink", "copy", "hardlink" or "none" into *out.
 * Returns 0, or FR_EINVAL for any other name or NULL.
 */
int store_mode_parse(enum store_mode *out, const char *name);

/** Returns the name of a mode (a static string), or NULL for no mode. */
const char *store_mode_name(enum store_mode mode);

/** Returns the name of a method ("none", "reflink", "copy", "hardlink"). */
const char *store_method_name(enum store_method method);

/**
 * Opens the store in `dir` (copied), creating dir, dir/objects and dir/tmp
 * with mode 0750 where they are missing (not dir's parents), and removes
 * what an interrupted hard-link ingest left in tmp/.  In modes reflink and
 * copy it checks that tmp/ takes O_TMPFILE files.
 * Returns 0 and hands the store to *out; FR_EINVAL for an unknown mode;
 * FR_ENOMEM; or FR_ERROR with errno kept (EACCES, ENOTDIR, EOPNOTSUPP when
 * the file system has no O_TMPFILE, …).
 */
int store_open(struct store **out, const char *dir, enum store_mode mode);

/** Closes the store; NULL is fine; errno is kept.  Every ingest must be finished first. */
void store_free(struct store *store);

/** Returns the store's mode. */
enum store_mode store_get_mode(const struct store *store);

/**
 * Starts keeping the file open as src_fd (borrowed; a regular file, opened
 * read-only and still at offset 0).  Sets *read_fd to the descriptor to hash
 * and *copy_fd to the one hash_fd() must copy into, or -1:
 *   reflink: the file is cloned into tmp/ (a snapshot), *copy_fd = -1, and
 *            *read_fd is src_fd itself when the file's last change is old
 *            enough (STORE_SETTLED_NS) that any later write would show in
 *            its ctime, so the caller's stat comparison after hashing
 *            proves the clone holds the bytes hashed; its pages are then
 *            read from the page cache, where an upload just left them, not
 *            the clone's from disk.  Otherwise *read_fd is the clone (a
 *            snapshot, whatever happens to the file meanwhile).
 *            If the file system cannot clone (EOPNOTSUPP,
 *            EXDEV, EINVAL, …) it falls back to copy, below, and the first
 *            such fallback is logged once per store;
 *   copy:    *read_fd = src_fd, *copy_fd = a new unnamed file in tmp/;
 *   hardlink, none: *read_fd = src_fd, *copy_fd = -1.
 *   reflink or copy, for a file of at most STORE_PACK_OBJECT_MAX bytes:
 *            *read_fd = src_fd, *copy_fd = -1; the commit reads the file
 *            again, checks its bytes against the digest and packs them.
 * Both descriptors are borrowed: *read_fd stays valid while the caller keeps
 * src_fd open and until the ingest is committed or aborted, *copy_fd until
 * then; the caller closes neither.  src_fd must stay open until the ingest
 * is committed or aborted (a small file is read again then; hardlink mode
 * records its inode).
 * Returns 0 and hands the ingest to *out (finish it with exactly one of
 * store_ingest_commit*() or store_ingest_abort()); FR_EINVAL when src_fd is
 * not a regular file; FR_ENOMEM; or FR_ERROR with errno kept.
 */
int store_ingest_begin(struct store_ingest **out, struct store *store, int src_fd,
                       int *read_fd, int *copy_fd);

/**
 * How long ago a file's ctime must be for a write after now to change it
 * (file timestamps come from a clock that ticks at most every 10 ms).
 */
#define STORE_SETTLED_NS (50 * 1000000LL)

/**
 * Finishes the ingest and frees it, whatever it returns.  `sha256` is the
 * digest hash_fd() computed over *read_fd; it names the object.
 *   reflink, copy: the new file is flushed, made read-only (0444) and linked
 *     as objects/ab/cdef…; src_dirfd and src_name are not used.
 *   hardlink: src_dirfd/src_name (the name the file was opened by) is linked
 *     into objects/, after checking it is still the inode given to begin().
 *     When a link is impossible (EXDEV, EPERM, EMLINK) the file is copied
 *     instead, and the copy is checked against `sha256`.
 *   pack (a small file): src_fd is read again; bytes that no longer hash to
 *     `sha256` (the file changed) fail with FR_EINVAL.
 *   none: nothing.
 * An object already stored under that digest is kept untouched (it holds the
 * same bytes) and the new copy dropped.
 * Returns 0; FR_EINVAL when, in hardlink mode, src_name is no longer the file
 * that was hashed, or its bytes no longer match (hash it again); or FR_ERROR
 * with errno kept.  On failure no object is created.
 */
int store_ingest_commit(struct store_ingest *ingest, const unsigned char sha256[32],
                        int src_dirfd, const char *src_name);

/**
 * As store_ingest_commit(), and on success fills *out with how the bytes
 * were kept and whether the object was already there.
 */
int store_ingest_commit_report(struct store_report *out, struct store_ingest *ingest,
                               const unsigned char sha256[32], int src_dirfd,
                               const char *src_name);

/**
 * Whether the store packs a file of `size` bytes (copy and reflink modes, at
 * most STORE_PACK_OBJECT_MAX bytes).  Such a file may skip the ingest: the
 * caller reads it whole, hashes those bytes (hash_buffer()) and hands them
 * to store_put_small(), so it is read once and opened once.
 */
bool store_takes_small(const struct store *store, uint64_t size);

/**
 * Packs the len bytes at `bytes`, whose sha-256 the caller computed over
 * these very bytes (they are not hashed again).  An object already stored
 * under that digest is kept.  Fills *out when not NULL, as
 * store_ingest_commit_report() does.  Made durable by store_sync_objects().
 * Returns 0; FR_EINVAL when store_takes_small() says no for len; or
 * FR_ERROR with errno kept.
 */
int store_put_small(struct store *store, const unsigned char sha256[32], const void *bytes,
                    size_t len, struct store_report *out);

/** Drops the ingest: nothing is stored, its temporary file goes.  NULL is fine. */
void store_ingest_abort(struct store_ingest *ingest);

/**
 * Opens the object with that digest for reading, at offset 0: a loose object
 * read-only (O_RDONLY | O_CLOEXEC), a packed one as a sealed memory file
 * holding its bytes (checked against the pack's crc32).  The descriptor is
 * the caller's to close.
 * Returns it (>= 0), FR_ENOTFOUND when the store has no such object, or
 * FR_ERROR with errno kept.
 */
int store_object_open(struct store *store, const unsigned char sha256[32]);

/**
 * Writes the path a loose object with that digest has, "DIR/objects/ab/cdef…",
 * into out (len bytes, NUL included), whether or not it exists (a packed
 * object has none).
 * Returns 0, or FR_EINVAL when len is too small (out is then "").
 */
int store_object_path(struct store *store, const unsigned char sha256[32], char *out,
                      size_t len);

/**
 * Makes every object named so far durable (syncfs of the store's file
 * system).  Returns 0, or FR_ERROR with errno kept.
 */
int store_sync(struct store *store);

/**
 * Makes the `count` objects named by `sha256` durable, and their names:
 * an fsync of each pack holding one, and of each loose object and each
 * directory holding one -- or, when more than `loose_max` of them are
 * loose, one store_sync() instead.  Cheaper than store_sync() on a file
 * system busy with other writes (a big upload in progress), which a
 * syncfs waits for too: thousands of small files packed cost an fsync of
 * one or two packs.
 * Returns 0, FR_ENOTFOUND if an object is missing, or FR_ERROR (errno kept).
 */
int store_sync_objects(struct store *store, const unsigned char (*sha256)[32], size_t count,
                       size_t loose_max);

#endif
