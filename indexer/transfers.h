/*
 * transfers.h - files sent to requesters over Jingle (XEP-0166, XEP-0234),
 * in-band (XEP-0261 over XEP-0047).
 *
 * A requester sends a session-initiate naming a file (by path in the
 * repository, by sha-256, or both: see catalog_transfer_find()); the daemon
 * looks it up in the catalog with the access list applied, answers the IQ
 * (item-not-found when there is no such file for this requester), then
 * sends session-accept.  The requester, the Jingle initiator, opens the IBB
 * bytestream (XEP-0261 §2); the daemon sends the revision's bytes from the
 * content store (or the requested <range/>), closes the bytestream, sends a
 * session-info <checksum/> with the sha-256 and a session-terminate with
 * <success/>.  Every other way out ends with session-terminate and its
 * reason, and every transfer is recorded in the catalog.
 *
 * The transfers have a catalog connection of their own, kept up by a keeper,
 * and are driven from the daemon's loop: transfers_fd(),
 * transfers_timeout_ms(), transfers_run().  IQs for them reach them through
 * service.c's route table (transfers_on_jingle(), transfers_on_ibb()).
 */
#ifndef FILEREPO_TRANSFERS_H
#define FILEREPO_TRANSFERS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

#include "config.h"

struct transfers;
struct store;

/**
 * Creates the transfers for `config` (borrowed) reading from `store`
 * (borrowed; may be NULL: every file is then unavailable).  Returns 0 and
 * hands it to *out, or FR_ENOMEM.
 */
int transfers_new(struct transfers **out, const struct config *config, struct store *store);

/** Ends every session (recording it) and frees; NULL is fine. */
void transfers_free(struct transfers *transfers);

/** The stream came up (conn) or went down (NULL: every session fails). */
void transfers_on_stream(void *transfers, xmpp_conn_t *conn);

/** Answers an IQ set with a <jingle xmlns='urn:xmpp:jingle:1'/> payload. */
xmpp_stanza_t *transfers_on_jingle(struct transfers *transfers, xmpp_stanza_t *iq,
                                   xmpp_stanza_t *jingle);

/** Answers an IQ set with an IBB (XEP-0047) payload. */
xmpp_stanza_t *transfers_on_ibb(struct transfers *transfers, xmpp_stanza_t *iq,
                                xmpp_stanza_t *payload);

/**
 * The daemon is stopping: every session under way ends with a
 * session-terminate <cancel/> (sent before the stream closes) and is recorded.
 */
void transfers_stop(struct transfers *transfers, uint64_t now_ms);

/** The most sockets transfers_pollfds() may add. */
size_t transfers_pollfds_max(const struct transfers *transfers);

/**
 * Adds the sockets to poll (its catalog connection, the SOCKS5 listener,
 * SOCKS5 handshakes and streams) to fds, at most max; returns how many.
 */
size_t transfers_pollfds(const struct transfers *transfers, struct pollfd *fds, size_t max);

/** Returns how many ms may pass before transfers_run() must be called (-1: none). */
int transfers_timeout_ms(const struct transfers *transfers, uint64_t now_ms);

/** Does what is due; fds[0..count) are the poll results of transfers_pollfds(). */
void transfers_run(struct transfers *transfers, const struct pollfd *fds, size_t count,
                   uint64_t now_ms);

#endif
