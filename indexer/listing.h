/*
 * listing.h - the query service: what the catalog says about the published
 * tree, answered over XMPP to whoever may see it.
 *
 * Served (each a handler for service.c's route table):
 *   XEP-0329 <query xmlns='urn:xmpp:fis:0' [node='repo/dir…']/> with
 *     XEP-0059 <set/>: the repositories (no node), a directory's entries,
 *     or one file's details;
 *   XEP-0214 <fileshare xmlns='http://jabber.org/protocol/si/profile/fileshare'>
 *     <list/>: the repositories and their pubsub nodes;
 *   XEP-0030 disco#items: the repositories as nodes of the daemon's JID;
 *     and, for disco#info, whether a node exists for the requester.
 * Paths are resolved in the catalog only.  A whitelist repository is
 * invisible (item-not-found) to a requester not on its list.
 */
#ifndef FILEREPO_LISTING_H
#define FILEREPO_LISTING_H

#include <stdbool.h>
#include <strophe.h>

#include "catalog.h"

/** How listings are shaped. */
struct listing_settings {
    const char *pubsub;        /* pubsub service named in XEP-0214 <repo address=…/> */
    int page_max;              /* most entries in one reply, asked for or not */
    int verbose_max;           /* pages up to this size carry files' details */
};

struct listing;

/** Creates the service (settings copied).  Returns 0 and *out, or FR_ENOMEM. */
int listing_new(struct listing **out, const struct listing_settings *settings);

/** Frees it; NULL is fine. */
void listing_free(struct listing *listing);

/**
 * Sets the catalog connection to read (borrowed; NULL: none).  While it is
 * missing or down, requests get a `wait` internal-server-error.
 */
void listing_set_catalog(struct listing *listing, struct catalog *catalog);

/** Answers a urn:xmpp:fis:0 listing; returns the reply (caller releases). */
xmpp_stanza_t *listing_fis(struct listing *listing, xmpp_stanza_t *iq, xmpp_stanza_t *payload);

/** Answers an XEP-0214 repository list request. */
xmpp_stanza_t *listing_fileshare(struct listing *listing, xmpp_stanza_t *iq, xmpp_stanza_t *payload);

/** Answers disco#items (no node: the repositories). */
xmpp_stanza_t *listing_disco_items(struct listing *listing, xmpp_stanza_t *iq,
                                 xmpp_stanza_t *payload);

/**
 * For disco#info on `node`: returns NULL when the node is a path the
 * requester of `iq` may see, else the error reply to send (bad-request,
 * item-not-found, or a wait error while the catalog is away).
 */
xmpp_stanza_t *listing_node_check(struct listing *listing, xmpp_stanza_t *iq, const char *node);

#endif
