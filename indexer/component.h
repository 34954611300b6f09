/*
 * component.h - filerepod's XEP-0114 component connection, kept up.
 *
 * The component connects to the XMPP server, re-registers the service's
 * handlers on every connect, and after a loss reconnects with exponential
 * back-off (250 ms doubling up to xmpp.reconnect_max_seconds).  It is driven
 * from the daemon's poll loop: component_fd() is the socket to watch,
 * component_timeout_ms() how soon it needs a turn, component_run() its turn.
 */
#ifndef FILEREPO_COMPONENT_H
#define FILEREPO_COMPONENT_H

#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#include "config.h"
#include "service.h"

struct component;

/**
 * Creates the component for `config` (borrowed: must outlive it), serving
 * `service` (borrowed).  It does not connect until component_run().
 * Returns 0 and hands it to *out, or FR_ENOMEM.  One per process.
 */
int component_new(struct component **out, const struct config *config, struct service *service);

/**
 * Sets who is told that the stream came up (fn(data, conn): register
 * handlers on conn) or went down (fn(data, NULL)); one listener, replaced
 * by a later call.
 */
void component_set_listener(struct component *component,
                            void (*fn)(void *data, xmpp_conn_t *conn), void *data);

/** Frees the component and its libstrophe context; NULL is fine. */
void component_free(struct component *component);

/**
 * Returns the socket to poll, or -1 when there is none, and sets *events
 * (POLLIN, and POLLOUT while stanzas wait to be written).
 */
int component_fd(const struct component *component, short *events);

/** Returns how many ms may pass before component_run() must be called. */
int component_timeout_ms(const struct component *component, uint64_t now_ms);

/** Does what is due: connection attempts, reading and writing stanzas. */
void component_run(struct component *component, uint64_t now_ms);

/** Returns whether the stream is up and authenticated. */
bool component_is_connected(const struct component *component);

/** Starts a clean disconnect; no reconnect follows. */
void component_stop(struct component *component);

/** Returns whether the component is stopped (after component_stop). */
bool component_is_stopped(const struct component *component);

#endif
