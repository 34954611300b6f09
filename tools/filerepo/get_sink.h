/*
 * get_sink.h - where `filerepo get` puts the bytes it receives: written to
 * the output file in order by the caller's thread, hashed (sha-256) by a
 * thread of its own so hashing overlaps receiving and writing.  As with
 * curl or wget, writing the file back to the disk is the kernel's business:
 * what is checked is the bytes.  Memory is bounded: GET_SINK_CHUNKS
 * buffers of GET_SINK_CHUNK bytes.
 */
#ifndef FILEREPO_CLI_GET_SINK_H
#define FILEREPO_CLI_GET_SINK_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GET_SINK_CHUNK (256 * 1024)
#define GET_SINK_CHUNKS 16

struct get_sink;

/**
 * Creates a sink writing to `fd` (borrowed; its position is where the next
 * byte goes, `offset` in the file) and updating `sha` (borrowed, already
 * initialised).  Returns 0 and hands it to *out, or FR_ENOMEM / FR_ERROR.
 */
int get_sink_new(struct get_sink **out, int fd, EVP_MD_CTX *sha, int64_t offset);

/**
 * Returns a free buffer of GET_SINK_CHUNK bytes to fill (waiting for the
 * hasher to free one if need be).  The next get_sink_commit() hands it back.
 */
unsigned char *get_sink_buffer(struct get_sink *sink);

/**
 * Writes the first `len` bytes of the buffer from get_sink_buffer() to the
 * file and queues them for hashing.  Returns 0, or -errno of a failed write.
 */
int get_sink_commit(struct get_sink *sink, size_t len);

/** Copies `len` bytes through buffers and commits them; as get_sink_commit(). */
int get_sink_write(struct get_sink *sink, const unsigned char *buf, size_t len);

/** Waits until every byte committed is hashed. */
void get_sink_drain(struct get_sink *sink);

/** Drains, stops the hasher and frees; NULL is fine. */
void get_sink_free(struct get_sink *sink);

#endif
