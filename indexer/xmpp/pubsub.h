/*
 * xmpp/pubsub.h - XEP-0060 / XEP-0248 / XEP-0214 stanzas of a file
 * repository, shared by filerepod (which publishes) and the filerepo client
 * (which subscribes).
 *
 * Builders return a new stanza (the caller releases it) or NULL when out of
 * memory.  Nothing here sends or waits: the publisher owns the connection.
 */
#ifndef FILEREPO_XMPP_PUBSUB_H
#define FILEREPO_XMPP_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

#define XMPP_NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define XMPP_NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define XMPP_NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define XMPP_NS_PUBSUB_NODE_CONFIG "http://jabber.org/protocol/pubsub#node_config"
#define XMPP_NS_DATA "jabber:x:data"
/* XEP-0214's publication example names the revision payload's namespace
 * so ("#item_metadata"); its notification examples say "#item_config",
 * which the text never defines.  The example of publishing is followed. */
#define XMPP_NS_FILESHARE_ITEM "http://jabber.org/protocol/fileshare#item_metadata"
#define XMPP_NS_SIPUB "http://jabber.org/protocol/sipub"
#define XMPP_NS_SI_FILE_TRANSFER "http://jabber.org/protocol/si/profile/file-transfer"
#define XMPP_NS_HASHES "urn:xmpp:hashes:2"
/* The change feed's item: filerepo's own, not a XEP. */
#define XMPP_NS_FILEREPO_CHANGE "urn:x-filerepo:change:0"

/** Suffix of a repository's change-feed node ("REPO#changes"). */
#define PUBSUB_FEED_SUFFIX "#changes"

/** What a node is configured with. */
struct pubsub_node_config {
    bool collection;          /* a collection (else a leaf) */
    const char *parent;       /* pubsub#collection, NULL for none */
    const char *title;        /* pubsub#title */
    const char *description;  /* pubsub#description */
    bool whitelist;           /* access model whitelist (else open) */
    const char *max_items;    /* leaves: pubsub#max_items, NULL for "max" (keep all) */
};

/**
 * Writes the pubsub node id of `path` ("" for the root) in repository
 * `repo` into out (len bytes): "repo/dir/file", with '%', control
 * characters and DEL written as %XX so every name survives XML and two
 * names never share a node.  `suffix` (NULL for none) is appended as is.
 * Returns the length, or -1 when it does not fit.
 */
int pubsub_node_id(char *out, size_t len, const char *repo, const char *path, const char *suffix);

/**
 * Writes the node id of the parent collection of `path` (the repository's
 * root for a top-level name) into out; as pubsub_node_id.  Returns -1 for
 * the root itself (it has no parent) or when it does not fit.
 */
int pubsub_parent_node_id(char *out, size_t len, const char *repo, const char *path);

/** <iq type='set'> creating `node` with `config` (the node_config form). */
xmpp_stanza_t *pubsub_create_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                const char *node, const struct pubsub_node_config *config);

/** <iq type='set'> (re)configuring an existing `node` (owner namespace). */
xmpp_stanza_t *pubsub_configure_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                   const char *node, const struct pubsub_node_config *config);

/** <iq type='set'> deleting `node`. */
xmpp_stanza_t *pubsub_delete_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                const char *node);

/** <iq type='set'> retracting item `item` of `node`, subscribers notified. */
xmpp_stanza_t *pubsub_retract_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                 const char *node, const char *item);

/**
 * <iq type='set'> publishing `payload` (borrowed; a copy is added) as item
 * `item` of `node`.
 */
xmpp_stanza_t *pubsub_publish_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                 const char *node, const char *item, xmpp_stanza_t *payload);

/** <iq type='get'> of the affiliations of `node` (owner namespace). */
xmpp_stanza_t *pubsub_affiliations_get_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                          const char *node);

/** One affiliation to set. */
struct pubsub_affiliation {
    const char *jid;          /* bare or full JID */
    const char *affiliation;  /* "owner", "publisher", "member", "none" */
};

/** <iq type='set'> of `count` affiliations of `node` (owner namespace). */
xmpp_stanza_t *pubsub_affiliations_set_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                          const char *node,
                                          const struct pubsub_affiliation *affiliations,
                                          size_t count);

/** A mirror of a revision (XEP-0214 "Mirror Settings"); NULL fields are left out. */
struct pubsub_mirror {
    const char *type;         /* http, https, ftp, sftp, smb */
    const char *address;      /* host */
    const char *port;         /* NULL: the protocol's default */
    const char *ref;          /* the file's path on the server, without the leading '/' */
    const char *description;  /* NULL or "": none */
    const char *user, *pass;  /* only when the admin made them public */
};

/** A revision of a file, as published. */
struct pubsub_revision {
    const char *name;         /* file name (the si file element's name) */
    int64_t size;             /* bytes */
    const char *modified;     /* XEP-0082 DateTime, UTC */
    const char *mime;         /* media type */
    const char *description;  /* may be "" */
    const char *sha256_hex, *sha1_hex, *md5_hex, *sha512_hex; /* NULL: not recorded */
    const char *crc32_hex;    /* 8 hex digits, NULL: not recorded */
    const char *sha256_b64, *sha1_b64, *sha512_b64; /* XEP-0300 values, NULL: none */
    const char *sipub_from;   /* the daemon's JID: the sipub mirror */
    const char *sipub_id;     /* the sipub id of this revision */
    const struct pubsub_mirror *mirrors; /* verified mirrors, after the sipub one */
    size_t mirrors_count;     /* how many */
};

/**
 * Builds the XEP-0214 revision payload: <entry xmlns=XMPP_NS_FILESHARE_ITEM>
 * with size, modified, one checksum per digest, mime, description, mirrors
 * (the sipub mirror with its si file element) and XEP-0300 hashes.
 */
xmpp_stanza_t *pubsub_revision_entry(xmpp_ctx_t *ctx, const struct pubsub_revision *rev);

/**
 * Builds a change-feed item payload: <change xmlns=XMPP_NS_FILEREPO_CHANGE
 * path=… node=… revision=…> holding `entry` (borrowed; copied).
 */
xmpp_stanza_t *pubsub_change_entry(xmpp_ctx_t *ctx, const char *path, const char *node,
                                   const char *revision, xmpp_stanza_t *entry);

/** <iq type='set'> subscribing `jid` to `node`. */
xmpp_stanza_t *pubsub_subscribe_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                   const char *node, const char *jid);

/** What a notification says of one published revision. */
struct pubsub_notice {
    const char *node;         /* the leaf (for a change-feed item: the file's node) */
    const char *item;         /* item id (the revision) */
    const char *path;         /* change feed: the file's path; else NULL */
    int64_t size;             /* -1 when absent */
    const char *sha256_hex;   /* NULL when absent */
    const char *mirrors[8];   /* "sipub:JID" or the mirror's type:address/ref */
    size_t mirrors_count;     /* how many */
    char buf[2048];           /* storage of composed strings */
};

/**
 * Calls fn for every published item in pubsub event <message/> `msg`, or
 * in the result <iq/> of an items request (strings are borrowed for the call).  Items without a revision payload
 * are reported with size -1.  Returns how many items were seen.
 */
int pubsub_event_items(xmpp_stanza_t *msg,
                       void (*fn)(const struct pubsub_notice *notice, void *data), void *data);

#endif
