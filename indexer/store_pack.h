/*
 * store_pack.h - the content store's packs: small objects kept side by side
 * in a few large files instead of one file each.
 *
 * A first index of 100,000 small files would otherwise create 100,000
 * inodes in objects/, and on ext4 making an inode and naming it costs more
 * than reading and hashing a small file.  So objects of at most
 * STORE_PACK_OBJECT_MAX bytes are appended to a pack instead:
 *
 *     DIR/packs/pack-NNNNNNNN.data   the objects' bytes, one after another
 *     DIR/packs/pack-NNNNNNNN.idx    one 64-byte record per object:
 *         0  sha-256 of the bytes (32)
 *        32  offset in the .data file, little-endian (8)
 *        40  length, little-endian (4)
 *        44  crc32 (zlib) of the bytes, little-endian (4)
 *        48  zero (12)
 *        60  crc32 of bytes 0-59 of the record, little-endian (4)
 *
 * Both files only grow; each process that stores writes packs of its own
 * (the next number), never one it found, and starts another once a pack
 * holds STORE_PACK_BYTES.  A record is written after the bytes it names.
 * Every record of every pack is read into memory when the store is opened
 * (a table of 56-byte slots, kept at most 70% full: 80 to 160 bytes of
 * memory per object, 15 MB for 100,000); a later record of the same digest
 * replaces an earlier one.
 *
 * Crash safety is the loose objects': nothing is flushed per object, the
 * store's sync makes a batch's packs durable before the catalog names what
 * is in them.  After a power loss a record may survive its bytes: records
 * that fail their own crc or point past the end of their .data file are
 * skipped when loading, and an object's bytes are checked against the
 * record's crc32 whenever they are read, so damaged bytes are never served
 * (the object is then missing) and the next ingest of the same content
 * stores it again.
 *
 * Thread-safe: any number of threads may put and open objects at once.
 */
#ifndef FILEREPO_STORE_PACK_H
#define FILEREPO_STORE_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h" /* STORE_PACK_OBJECT_MAX */

/** A pack's .data file that reached this size takes no more objects. */
#define STORE_PACK_BYTES (256LL * 1024 * 1024)

struct store_packs;

/**
 * Opens the packs of the store whose directory is open as dir_fd (borrowed;
 * `dir` is its name, for log lines): creates packs/ if missing and reads
 * every index.  Returns 0 and the packs in *out (free with
 * store_packs_free()), FR_ENOMEM, or FR_ERROR with errno kept.
 */
int store_packs_open(struct store_packs **out, int dir_fd, const char *dir);

/** Closes the packs; NULL is fine; errno is kept. */
void store_packs_free(struct store_packs *packs);

/**
 * Stores `len` bytes (at most STORE_PACK_OBJECT_MAX) whose sha-256 is
 * `sha256` (the caller has checked).  When an object of that digest is
 * already packed with these very bytes, nothing is written and *existed is
 * set.  Returns 0, FR_EINVAL when len is too large, or FR_ERROR with errno
 * kept (nothing is recorded then).
 */
int store_packs_put(struct store_packs *packs, const unsigned char sha256[32],
                    const void *data, size_t len, bool *existed);

/**
 * Opens the packed object of that digest as a new, sealed, read-only
 * memory file holding its bytes at offset 0 (the caller's to close).
 * Returns the descriptor (>= 0), FR_ENOTFOUND when no intact object of that
 * digest is packed (damaged bytes are logged), or FR_ERROR with errno kept.
 */
int store_packs_open_object(struct store_packs *packs, const unsigned char sha256[32]);

/** Whether an object of that digest is packed (its bytes unchecked). */
bool store_packs_contains(struct store_packs *packs, const unsigned char sha256[32]);

/**
 * Makes the packs holding the `count` objects named by `sha256` durable
 * (an fsync of each such .data and .idx file, and of packs/), skipping
 * digests that are not packed.  Returns 0, or FR_ERROR with errno kept.
 */
int store_packs_sync_objects(struct store_packs *packs, const unsigned char (*sha256)[32],
                             size_t count);

#endif
