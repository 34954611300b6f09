/*
 * sipub.h - files sent to requesters over sipub (XEP-0137) and SI file
 * transfer (XEP-0095, XEP-0096).
 *
 * Each published revision carries a sipub mirror <sipub from=COMPONENT
 * id='rev-N'/> (publisher_op.c).  A requester sends <start id='rev-N'/>;
 * the daemon looks revision N up in the catalog with the access list
 * applied (item-not-found when there is no such revision for this
 * requester), answers <starting sid=…/>, and offers the file with an SI
 * <si/> carrying the XEP-0096 <file/> and the stream methods it can use.
 * The requester's answer chooses one; with in-band bytestreams (XEP-0047)
 * the daemon, the stream's initiator, opens it, sends the revision's bytes
 * from the content store (or the <range/> asked for) and closes it.
 *
 * The sipub sessions belong to the transfers (transfers.c owns one struct
 * sipub, shares its catalog connection, store and stream, and calls the
 * functions below from its own); transfer.max_sessions bounds Jingle and
 * sipub sessions together (transfers_in_use()).
 */
#ifndef FILEREPO_SIPUB_H
#define FILEREPO_SIPUB_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

struct sipub;
struct transfers;
struct s5_stream;

/**
 * Creates the sipub sessions of `transfers` (borrowed: its config, store,
 * catalog and stream are used).  Returns 0 and hands it to *out, or
 * FR_ENOMEM.
 */
int sipub_new(struct sipub **out, struct transfers *transfers);

/** Ends every session still under way (recorded as lost) and frees; NULL is fine. */
void sipub_free(struct sipub *sipub);

/** The stream came up (conn) or went down (NULL: every session fails). */
void sipub_on_stream(struct sipub *sipub, xmpp_conn_t *conn);

/**
 * Answers an IQ with a <start xmlns='http://jabber.org/protocol/sipub'/>
 * payload sent to the daemon (service.c's route): <starting/> or an error.
 */
xmpp_stanza_t *transfers_on_sipub(struct transfers *transfers, xmpp_stanza_t *iq,
                                  xmpp_stanza_t *start);

/** Whether `sid` from `peer` names one of the sipub bytestreams under way. */
int sipub_has_bytestream(const struct sipub *sipub, const char *peer, const char *sid);

/**
 * Answers the requester's IQ with an IBB payload for one of the sipub
 * bytestreams (see sipub_has_bytestream()): a <close/> ends the session,
 * anything else is refused; an unknown sid is item-not-found.
 */
xmpp_stanza_t *sipub_on_ibb(struct sipub *sipub, xmpp_stanza_t *iq, xmpp_stanza_t *payload);

/** The daemon is stopping: every session closes its bytestream and is recorded. */
void sipub_stop(struct sipub *sipub, uint64_t now_ms);

/** Sessions under way (Jingle's are counted by the transfers). */
size_t sipub_count(const struct sipub *sipub);

/** Sessions under way for the requester whose bare JID is `bare`. */
size_t sipub_count_of(const struct sipub *sipub, const char *bare);

/** Returns how many ms may pass before sipub_run() must be called (-1: none). */
int sipub_timeout_ms(const struct sipub *sipub, uint64_t now_ms);

/**
 * Does what is due; `fds` (count entries) are this turn's poll results,
 * those of the sipub sockets among them (see sipub_pollfds()).
 */
void sipub_run(struct sipub *sipub, const struct pollfd *fds, size_t count, uint64_t now_ms);

/**
 * Writes the sockets of the SOCKS5 bytestreams under way, with the events
 * they wait for, into fds (at most max); returns how many.
 */
size_t sipub_pollfds(const struct sipub *sipub, struct pollfd *fds, size_t max);

/**
 * A connection to the daemon's SOCKS5 listener that no Jingle session
 * claimed, in S5_REQUESTED: when its DST.ADDR is that of a sipub
 * bytestream offered with the listener as a streamhost, grants it, takes
 * it (pending->fd becomes -1) and returns 1; else returns 0.
 */
int sipub_s5b_claim(struct sipub *sipub, struct s5_stream *pending);

#endif
