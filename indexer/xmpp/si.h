/*
 * xmpp/si.h - sipub (XEP-0137) and SI file transfer (XEP-0095, XEP-0096):
 * the parser of a requester's <start/>, the builders of the daemon's
 * <starting/> and SI offer, and the parser of the requester's answer to
 * that offer (the chosen stream method and an optional <range/>).
 *
 * The parsers check the shape only; what a sipub id names is the catalog's
 * business (sipub_id_revision() reads the daemon's own "rev-N" ids).
 */
#ifndef FILEREPO_XMPP_SI_H
#define FILEREPO_XMPP_SI_H

#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#define XMPP_NS_SIPUB "http://jabber.org/protocol/sipub"
#define XMPP_NS_SI "http://jabber.org/protocol/si"
#define XMPP_NS_SI_FILE_TRANSFER "http://jabber.org/protocol/si/profile/file-transfer"
#define XMPP_NS_FEATURE_NEG "http://jabber.org/protocol/feature-neg"
#define XMPP_NS_DATA "jabber:x:data"
#define XMPP_NS_BYTESTREAMS "http://jabber.org/protocol/bytestreams"
#define XMPP_NS_IBB "http://jabber.org/protocol/ibb"

#define SI_TEXT_MAX 256   /* longest sipub id accepted */

/** Stream methods an offer may carry (a bit each). */
enum si_method {
    SI_METHOD_NONE = 0,
    SI_METHOD_S5B = 1, /* XEP-0065, http://jabber.org/protocol/bytestreams */
    SI_METHOD_IBB = 2, /* XEP-0047, http://jabber.org/protocol/ibb */
};

/** Why a stanza was refused, in the terms of the reply. */
struct si_refusal {
    const char *type;       /* IQ error type ("modify", "cancel") */
    const char *condition;  /* RFC 6120 condition */
    const char *text;       /* what was wrong, for people */
};

/**
 * Parses <start xmlns='http://jabber.org/protocol/sipub' id=…/> into `id`
 * (len bytes, NUL-terminated).  Returns true, or false with *why set
 * (bad-request: no id, an empty one, one too long or not text).
 */
bool sipub_start_parse(xmpp_stanza_t *start, char *id, size_t len, struct si_refusal *why);

/**
 * Reads the daemon's sipub id "rev-N" (N a revision id: decimal, no sign,
 * no leading zero, 1 to INT64_MAX).  Returns N, or 0 for any other id.
 */
int64_t sipub_id_revision(const char *id);

/** Creates <starting xmlns='http://jabber.org/protocol/sipub' sid=…/>, or NULL. */
xmpp_stanza_t *sipub_starting_new(xmpp_ctx_t *ctx, const char *sid);

/** What an SI file-transfer offer says (strings borrowed; NULL: left out). */
struct si_offer {
    const char *sid;        /* the SI id, also the bytestream's sid */
    const char *mime_type;  /* <si mime-type> */
    const char *name;       /* <file name>: required */
    int64_t size;           /* <file size>: required */
    const char *md5_hex;    /* <file hash>: XEP-0096's hash is MD5 */
    const char *date;       /* <file date>: XEP-0082 */
    const char *desc;       /* <desc/>, or NULL / "" for none */
    bool ranged;            /* <range/>: the sender can send a part */
    unsigned methods;       /* enum si_method bits, in preference order s5b, ibb */
};

/**
 * Creates <iq type='set' to=… id=…><si …><file …/><feature …><x type='form'>
 * <field var='stream-method' type='list-single'>… options …</field></x>
 * </feature></si></iq>.  Returns the new IQ or NULL.
 */
xmpp_stanza_t *si_offer_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                               const struct si_offer *offer);

/** The requester's answer to an offer. */
struct si_choice {
    enum si_method method;  /* the stream method chosen */
    bool has_range;         /* a <range/> with an attribute was given */
    int64_t offset;         /* its offset (0 by default) */
    int64_t length;         /* its length, -1: to the end */
};

/**
 * Parses the result `iq` to an offer that carried the methods `offered`.
 * Returns true, or false with *why set: no <si/>, no stream-method, one not
 * offered (or several values), a malformed <range/>.
 */
bool si_result_parse(xmpp_stanza_t *iq, unsigned offered, struct si_choice *out,
                     struct si_refusal *why);

/** The namespace of a method (one bit), or NULL. */
const char *si_method_ns(enum si_method method);

/** A streamhost the daemon offers (XEP-0065 §5.3.1); strings borrowed. */
struct bytestreams_host {
    const char *jid;   /* the host's JID: the daemon's own, or the proxy's */
    const char *host;  /* an IP literal */
    int port;
};

/**
 * Creates <iq type='set' to id><query xmlns=bytestreams sid mode='tcp'>
 * <streamhost jid host port/>…</query></iq>, the hosts in preference
 * order.  Returns the new IQ or NULL.
 */
xmpp_stanza_t *bytestreams_offer_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                                        const char *sid, const struct bytestreams_host *hosts,
                                        size_t count);

/**
 * Reads the <streamhost-used jid/> of the target's result `iq` into `jid`
 * (len bytes).  Returns true, or false when there is none (or it is too
 * long).
 */
bool bytestreams_used_parse(xmpp_stanza_t *iq, char *jid, size_t len);

/**
 * Creates <iq type='set' to=proxy id><query xmlns=bytestreams sid>
 * <activate>target</activate></query></iq> (XEP-0065 §6.3.5), or NULL.
 */
xmpp_stanza_t *bytestreams_activate_iq_new(xmpp_ctx_t *ctx, const char *proxy, const char *id,
                                           const char *sid, const char *target);

#endif
