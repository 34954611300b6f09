/*
 * xmpp/jingle.h - Jingle (XEP-0166) file requests: the parser of a
 * requester's session-initiate and the builders of the daemon's answers.
 *
 * The request served is XEP-0234's "Requesting a File": one <content/> with
 * senders='responder', a file-transfer description whose <file/> names what
 * is wanted, and a transport.  The parser checks the shape only; whether the
 * file exists is the catalog's business.
 */
#ifndef FILEREPO_XMPP_JINGLE_H
#define FILEREPO_XMPP_JINGLE_H

#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#define XMPP_NS_JINGLE "urn:xmpp:jingle:1"
#define XMPP_NS_JINGLE_FT "urn:xmpp:jingle:apps:file-transfer:5"
#define XMPP_NS_JINGLE_FT_ERRORS "urn:xmpp:jingle:apps:file-transfer:errors:0"
#define XMPP_NS_JINGLE_IBB "urn:xmpp:jingle:transports:ibb:1"
#define XMPP_NS_JINGLE_S5B "urn:xmpp:jingle:transports:s5b:1"
#define XMPP_NS_IBB "http://jabber.org/protocol/ibb"
#define XMPP_NS_BYTESTREAMS "http://jabber.org/protocol/bytestreams"
#define XMPP_NS_HASHES "urn:xmpp:hashes:2"
#define XMPP_NS_HASH_SHA256 "urn:xmpp:hash-function-text-names:sha-256"

#define JINGLE_TEXT_MAX 256   /* longest sid, content name, IBB sid accepted */
#define JINGLE_NAME_MAX 1024  /* longest file <name> accepted */
#define JINGLE_CANDIDATES_MAX 8 /* SOCKS5 candidates kept from one offer */

/** A SOCKS5 candidate (XEP-0260 §2.2). */
struct jingle_candidate {
    char cid[JINGLE_TEXT_MAX];
    char host[64];          /* an IP literal or a name (names are not tried) */
    int port;
    char jid[JINGLE_TEXT_MAX];
    uint32_t priority;
    bool proxy;             /* type='proxy' */
};

/** An s5b <transport/> (XEP-0260): its sid and the candidates offered. */
struct jingle_s5b {
    char sid[JINGLE_TEXT_MAX];
    size_t count;
    struct jingle_candidate candidates[JINGLE_CANDIDATES_MAX];
};

/** What an s5b transport-info says (XEP-0260 §2.3-2.4). */
enum jingle_s5b_info {
    JINGLE_S5B_UNKNOWN,         /* none of the below, or malformed */
    JINGLE_S5B_CANDIDATE_USED,  /* <candidate-used cid/>: it reached our candidate */
    JINGLE_S5B_CANDIDATE_ERROR, /* <candidate-error/>: it reached none */
    JINGLE_S5B_ACTIVATED,       /* <activated cid/>: its proxy is activated */
    JINGLE_S5B_PROXY_ERROR,     /* <proxy-error/> */
};

/** A requester's session-initiate asking for a file. */
struct jingle_request {
    char sid[JINGLE_TEXT_MAX];          /* Jingle session id */
    char content_name[JINGLE_TEXT_MAX]; /* <content name=…> */
    char creator[16];                   /* <content creator=…>: "initiator" */
    char name[JINGLE_NAME_MAX];         /* <file><name>: "repo/dir/file", "" if none */
    bool has_sha256;                    /* a sha-256 <hash/> was given */
    unsigned char sha256[32];           /* its value */
    bool has_range;                     /* a <range/> was given */
    int64_t offset;                     /* its offset (0 by default) */
    int64_t length;                     /* its length, -1: to the end */
    bool transport_ibb;                 /* the transport is XEP-0261 IBB */
    char ibb_sid[JINGLE_TEXT_MAX];      /* its sid */
    unsigned block_size;                /* its block-size */
    bool transport_s5b;                 /* the transport is XEP-0260 SOCKS5 */
    struct jingle_s5b s5b;              /* its sid and candidates */
};

/** Why a request was refused, in the terms of the reply. */
struct jingle_refusal {
    const char *type;       /* IQ error type ("modify", "cancel") */
    const char *condition;  /* RFC 6120 condition */
    const char *text;       /* what was wrong, for people */
};

/**
 * Parses <jingle action='session-initiate'/> `jingle` into *out.  Returns
 * true, or false with *why set: bad-request for a malformed request,
 * feature-not-implemented for what is well-formed but not served (another
 * application, an offer rather than a request, a transport other than IBB).
 * Hashes other than sha-256 are ignored; a request must name a file by
 * <name/> or sha-256 <hash/>.
 */
bool jingle_request_parse(xmpp_stanza_t *jingle, struct jingle_request *out,
                          struct jingle_refusal *why);

/**
 * Parses an IBB <transport/> (XEP-0261): sid and block-size (1-65535).
 * Returns true, or false with *why set.
 */
bool jingle_ibb_parse(xmpp_stanza_t *transport, char sid[JINGLE_TEXT_MAX], unsigned *block_size,
                      struct jingle_refusal *why);

/**
 * Parses an s5b <transport/> of an offer (XEP-0260 §2.2): sid, mode (tcp
 * only), candidates (at most JINGLE_CANDIDATES_MAX kept, best first).
 */
bool jingle_s5b_parse(xmpp_stanza_t *transport, struct jingle_s5b *out,
                      struct jingle_refusal *why);

/**
 * Reads an s5b transport-info `jingle` for transport `sid`: what it says,
 * with the cid (for candidate-used and activated) copied into cid.
 */
enum jingle_s5b_info jingle_s5b_info_parse(xmpp_stanza_t *jingle, const char *sid,
                                           char cid[JINGLE_TEXT_MAX]);

/** The first <content/><transport/> of `jingle` and its namespace, or NULL. */
xmpp_stanza_t *jingle_transport(xmpp_stanza_t *jingle, const char **ns);

/**
 * Creates <iq type='set' to=… id=…><jingle xmlns=urn:xmpp:jingle:1
 * action=… sid=…/></iq> and points *jingle at the <jingle/> child
 * (borrowed).  Returns the new IQ or NULL.
 */
xmpp_stanza_t *jingle_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                             const char *action, const char *sid, xmpp_stanza_t **jingle);

/**
 * Adds <reason><`reason`/>[<`extra` xmlns=extra_ns/>]</reason> to `jingle`.
 * Returns 0, or -1 when out of memory.
 */
int jingle_add_reason(xmpp_stanza_t *jingle, const char *reason, const char *extra,
                      const char *extra_ns);

#endif
