/*
 * xmpp/rsm.h - XEP-0059 Result Set Management: reading a request's <set/>
 * and writing a reply's, for filerepod's listings and the filerepo client.
 */
#ifndef FILEREPO_XMPP_RSM_H
#define FILEREPO_XMPP_RSM_H

#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#define XMPP_NS_RSM "http://jabber.org/protocol/rsm"

/** Longest UID a request may carry (filerepo's own are shorter). */
#define RSM_UID_MAX 1024

/** Which page a request asks for. */
enum rsm_from {
    RSM_FROM_START,  /* no <after/>, <before/> or <index/>: the first page */
    RSM_FROM_AFTER,  /* <after>UID</after>: the page after that item */
    RSM_FROM_BEFORE, /* <before>UID</before>: the page before that item */
    RSM_FROM_END,    /* <before/> (empty): the last page */
    RSM_FROM_INDEX,  /* <index>N</index>: the page starting at item N */
};

/** A request's <set/>, as read. */
struct rsm_request {
    bool present;      /* the request carried a <set/> */
    int64_t max;       /* <max/>, or -1 when not given */
    enum rsm_from from; /* which page */
    char uid[RSM_UID_MAX + 1]; /* AFTER, BEFORE: the item's UID */
    int64_t index;     /* INDEX: the position, from 0 */
};

/**
 * Reads the <set xmlns='http://jabber.org/protocol/rsm'/> child of
 * `query` (none: present = false, a first page of unspecified size) into
 * *out.
 * Returns 0, or FR_EINVAL with *why set to a static text for the
 * bad-request reply (a non-numeric or negative max or index, several
 * after/before/index, an empty or overlong after, an element given twice).
 */
int rsm_request_parse(struct rsm_request *out, const char **why, xmpp_stanza_t *query);

/** What a reply's <set/> says. */
struct rsm_reply {
    const char *first;   /* UID of the first item; NULL when the page is empty */
    int64_t first_index; /* its position from 0 (-1: not said) */
    const char *last;    /* UID of the last item; NULL when the page is empty */
    int64_t count;       /* items in the whole result set (-1: not said) */
};

/**
 * Appends <set xmlns='http://jabber.org/protocol/rsm'> with first (and its
 * index), last and count to `parent`.  Returns 0 or FR_ENOMEM.
 */
int rsm_reply_add(xmpp_stanza_t *parent, const struct rsm_reply *reply);

/**
 * Reads a reply's <set/> below `query` into *out (strings borrowed; absent
 * parts NULL or -1).  Returns 0, or FR_ENOTFOUND when there is none.
 */
int rsm_reply_parse(struct rsm_reply *out, xmpp_stanza_t *query);

/**
 * Appends a request <set/> to `parent`: max (-1: none) and, depending on
 * `from`, <after/>, <before/> (empty for RSM_FROM_END) or <index/>.
 * Returns 0 or FR_ENOMEM.
 */
int rsm_request_add(xmpp_stanza_t *parent, int64_t max, enum rsm_from from, const char *uid,
                    int64_t index);

#endif
