/*
 * xmpp/fis.h - XEP-0329 File Information Sharing stanzas: the <file/>
 * elements of listings (XEP-0234 with XEP-0300 hashes) and the node paths
 * requests name, for filerepod and the filerepo client alike.
 */
#ifndef FILEREPO_XMPP_FIS_H
#define FILEREPO_XMPP_FIS_H

#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

#define XMPP_NS_FIS "urn:xmpp:fis:0"
#define XMPP_NS_JINGLE_FT "urn:xmpp:jingle:apps:file-transfer:5"
#define XMPP_NS_HASHES "urn:xmpp:hashes:2"
#define XMPP_NS_FILESHARE "http://jabber.org/protocol/si/profile/fileshare"

/** Longest path a request may name, and longest segment (a file name). */
#define FIS_PATH_MAX 4096
#define FIS_NAME_MAX 255

/** Hashes a <file/> may carry (XEP-0300 algorithm names). */
#define FIS_HASHES_MAX 4

/** A file as a listing shows it; NULL / -1 fields are left out. */
struct fis_file {
    const char *name;          /* required */
    int64_t size;              /* bytes, or -1 */
    const char *date;          /* XEP-0082 date-time, or NULL */
    const char *media_type;    /* or NULL */
    const char *desc;          /* or NULL */
    struct {
        const char *algo;      /* "sha-256", "sha-1", "md5", "sha-512" */
        const char *value;     /* base64 of the digest */
    } hashes[FIS_HASHES_MAX];  /* hashes_count of them */
    size_t hashes_count;       /* how many */
};

/**
 * Appends <file xmlns='urn:xmpp:jingle:apps:file-transfer:5'> for `file`
 * to `parent`.  Returns the element (borrowed) or NULL when out of memory.
 */
xmpp_stanza_t *fis_file_add(xmpp_stanza_t *parent, const struct fis_file *file);

/**
 * Reads a <file/> element into *out; strings are borrowed from `el` (their
 * text nodes), absent fields NULL or -1.  Returns 0, or FR_EINVAL when it
 * has no <name/>.
 */
int fis_file_parse(struct fis_file *out, xmpp_stanza_t *el);

/**
 * Checks a request's node: "repo" or "repo/dir/…/name".  Refuses an empty
 * path or segment (leading, trailing or doubled '/'), "." and "..", control
 * characters, segments over FIS_NAME_MAX bytes and paths over
 * FIS_PATH_MAX.  On success copies the repository name into repo and the
 * rest ("" for the root) into path (each at least FIS_PATH_MAX + 1 bytes).
 * Returns 0, or FR_EINVAL with *why set to a static text.
 */
int fis_node_split(const char *node, char *repo, char *path, const char **why);

#endif
