/*
 * xmpp/disco.h - XEP-0030 Service Discovery: building disco#info answers.
 */
#ifndef FILEREPO_XMPP_DISCO_H
#define FILEREPO_XMPP_DISCO_H

#include <stddef.h>
#include <strophe.h>

#define XMPP_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define XMPP_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

struct disco_identity {
    const char *category; /* XEP-0030 registry category, e.g. "store" */
    const char *type;     /* its type, e.g. "file" */
    const char *name;     /* human-readable name, or NULL */
};

/**
 * Builds `<query xmlns='…disco#info' [node=…]>` with the identities and the
 * features given (features in the order given; duplicates are the caller's
 * business).  `node` may be NULL.  Returns a new stanza (the caller releases
 * it) or NULL when out of memory.
 */
xmpp_stanza_t *disco_info_build(xmpp_ctx_t *ctx, const char *node,
                                const struct disco_identity *identities, size_t identities_count,
                                const char *const *features, size_t features_count);

#endif
