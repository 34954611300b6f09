/*
 * publisher.h - drains the catalog's outbox into the pubsub service.
 *
 * The publisher has a catalog connection of its own (kept up like the
 * daemon's, LISTENing on the outbox channel) and speaks on the component's
 * stream while it is up.  Rows go out in id order, several IQs in flight,
 * never two at once for one node or for a node and its ancestor.  A row is
 * marked done only on the service's result; on a lost stream it stays
 * pending and goes again after the reconnect; on a timeout or a transient
 * error it is retried with a growing delay; an error retrying cannot fix
 * parks it with the error's text.  Driven from the daemon's loop like the
 * keeper: publisher_fd(), publisher_timeout_ms(), publisher_run().
 */
#ifndef FILEREPO_PUBLISHER_H
#define FILEREPO_PUBLISHER_H

#include <stdint.h>
#include <strophe.h>

#include "config.h"

struct publisher;

/**
 * Creates the publisher for `config` (borrowed: must outlive it).  Nothing
 * connects before publisher_run().  Returns 0 and hands it to *out, or
 * FR_ENOMEM.
 */
int publisher_new(struct publisher **out, const struct config *config);

/** Frees the publisher and its catalog connection; NULL is fine. */
void publisher_free(struct publisher *publisher);

/**
 * The stream came up (conn: register handlers on it) or went down (NULL:
 * everything in flight is forgotten, to go again later).  Fits
 * component_set_listener().
 */
void publisher_on_stream(void *publisher, xmpp_conn_t *conn);

/** Returns its catalog socket to poll and sets *events, or -1. */
int publisher_fd(const struct publisher *publisher, short *events);

/** Returns how many ms may pass before publisher_run() must be called (-1: none). */
int publisher_timeout_ms(const struct publisher *publisher, uint64_t now_ms);

/** Does what is due; `revents` are the poll results for publisher_fd(). */
void publisher_run(struct publisher *publisher, short revents, uint64_t now_ms);

/**
 * Records the outcomes gathered since the last turn, if the catalog is
 * there: call once the loop has ended, so that rows acknowledged just
 * before a stop are not sent again at the next start.
 */
void publisher_flush(struct publisher *publisher);

#endif
