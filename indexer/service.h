/*
 * service.h - what filerepod answers on its component JID.
 *
 * One table routes each IQ request by the namespace and type of its payload
 * to a handler; the features advertised in disco#info are derived from that
 * same table, so the daemon announces exactly what it serves.  Requests
 * nobody handles get service-unavailable (RFC 6120 §8.4).
 */
#ifndef FILEREPO_SERVICE_H
#define FILEREPO_SERVICE_H

#include <stddef.h>
#include <strophe.h>

#include "catalog.h"

struct service;

/** What the service is told at start (strings copied). */
struct service_settings {
    const char *name;          /* the disco identity's name */
    const char *pubsub;        /* pubsub service the repositories live on */
    int page_max;              /* query.page_max */
    int verbose_max;           /* query.verbose_max */
    int rate_per_second;       /* query.rate_per_second */
    int rate_burst;            /* query.rate_burst */
};

/**
 * Creates the service.  It answers listings once it has a catalog
 * (service_set_catalog).  Returns 0 and hands it to *out, or FR_ENOMEM.
 */
int service_new(struct service **out, const struct service_settings *settings);

/**
 * Gives the service the catalog connection its listings read (borrowed;
 * NULL: none).  Requests that need it get a `wait` error while it is down.
 */
void service_set_catalog(struct service *service, struct catalog *catalog);

struct transfers;

/**
 * Hands Jingle and IBB requests to `transfers` (borrowed; NULL: they get
 * service-unavailable).
 */
void service_set_transfers(struct service *service, struct transfers *transfers);

/** Frees the service; NULL is fine. */
void service_free(struct service *service);

/**
 * Registers the service's stanza handlers on `conn`; call on every
 * XMPP_CONN_CONNECT (libstrophe drops handlers with the connection).
 */
void service_attach(struct service *service, xmpp_conn_t *conn);

/**
 * Answers one stanza: returns the reply to send (a new stanza the caller
 * releases), or NULL when none is due (results, errors, non-IQ stanzas).
 */
xmpp_stanza_t *service_handle_iq(struct service *service, xmpp_stanza_t *iq);

/**
 * Points *out at the features served, in the order advertised, and returns
 * how many there are.  The array is static.
 */
size_t service_features(const char *const **out);

#endif
