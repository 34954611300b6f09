/*
 * xmpp/stanza.h - small helpers over libstrophe stanzas, shared by filerepod
 * and the filerepo client.
 *
 * Stanzas follow libstrophe's ownership: a function that returns a new
 * stanza hands the caller one reference (xmpp_stanza_release() it); a child
 * added to a parent is owned by the parent, and the pointer returned for it is
 * borrowed.
 */
#ifndef FILEREPO_XMPP_STANZA_H
#define FILEREPO_XMPP_STANZA_H

#include <strophe.h>

#define XMPP_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

/** Returns the first element child of `stanza` (skipping text), or NULL. */
xmpp_stanza_t *stanza_first_element(xmpp_stanza_t *stanza);

/**
 * Creates element `name` in namespace `ns` (NULL: inherit) and appends it to
 * `parent`.  Returns the new child (borrowed), or NULL when out of memory.
 */
xmpp_stanza_t *stanza_add_element(xmpp_stanza_t *parent, const char *name, const char *ns);

/**
 * As stanza_add_element, with `text` (escaped by libstrophe) as the
 * element's content.  Returns the new child (borrowed), or NULL.
 */
xmpp_stanza_t *stanza_add_text_element(xmpp_stanza_t *parent, const char *name, const char *ns,
                                       const char *text);

/**
 * Returns whether `text` can travel in XML 1.0: valid UTF-8 without
 * control characters other than tab, newline and carriage return.
 */
int stanza_text_is_valid(const char *text);

/**
 * Creates the `type='result'` reply to an IQ request: same id, to = the
 * request's from, from = the request's to.  Returns a new stanza or NULL.
 */
xmpp_stanza_t *stanza_iq_result(xmpp_ctx_t *ctx, xmpp_stanza_t *request);

/**
 * Creates the `type='error'` reply to an IQ request, with the RFC 6120
 * `condition` (e.g. "service-unavailable"), error `type` ("cancel",
 * "modify", "auth", "wait") and an optional human-readable `text`.
 * Returns a new stanza or NULL.
 */
xmpp_stanza_t *stanza_iq_error(xmpp_ctx_t *ctx, xmpp_stanza_t *request, const char *type,
                               const char *condition, const char *text);

/**
 * Reads the defined condition of an `<error/>` reply into a borrowed name
 * (e.g. "item-not-found").  Returns it, or NULL when the stanza has none.
 */
const char *stanza_error_condition(xmpp_stanza_t *stanza);

#endif
