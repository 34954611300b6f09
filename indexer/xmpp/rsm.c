/*
 * xmpp/rsm.c - XEP-0059 <set/> elements, read and written.
 *
 * Numbers are read strictly (digits only, no sign, no spaces, at most 18
 * digits): a request the daemon cannot read exactly gets bad-request, never
 * a guess.
 */
#include "xmpp/rsm.h"
#include "fr_error.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a non-negative decimal integer of at most 18 digits. */
static int rsm_number(int64_t *out, const char *text)
{
    int64_t v = 0;
    size_t n = 0;

    if (!text)
        return FR_EINVAL;
    for (; text[n]; n++) {
        if (text[n] < '0' || text[n] > '9' || n >= 18)
            return FR_EINVAL;
        v = v * 10 + (text[n] - '0');
    }
    if (n == 0)
        return FR_EINVAL;
    *out = v;
    return 0;
}

int rsm_request_parse(struct rsm_request *out, const char **why, xmpp_stanza_t *query)
{
    xmpp_stanza_t *set = xmpp_stanza_get_child_by_ns(query, XMPP_NS_RSM);
    bool seen_max = false, seen_page = false;

    memset(out, 0, sizeof(*out));
    out->max = -1;
    out->from = RSM_FROM_START;
    out->index = -1;
    *why = NULL;
    if (!set)
        return 0;
    if (strcmp(xmpp_stanza_get_name(set), "set") != 0) {
        *why = "the RSM element must be <set/>";
        return FR_EINVAL;
    }
    out->present = true;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(set); c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        const char *ns = xmpp_stanza_get_ns(c);
        char *text;
        int error = 0;

        if (!xmpp_stanza_is_tag(c))
            continue;
        if (ns && strcmp(ns, XMPP_NS_RSM) != 0)
            continue; /* extensions are not ours to judge */
        text = xmpp_stanza_get_text(c);
        if (strcmp(name, "max") == 0) {
            if (seen_max)
                *why = "<max/> given twice";
            else if (rsm_number(&out->max, text) != 0)
                *why = "<max/> must be a non-negative integer";
            seen_max = true;
        } else if (strcmp(name, "after") == 0 || strcmp(name, "before") == 0 ||
                   strcmp(name, "index") == 0) {
            if (seen_page) {
                *why = "only one of <after/>, <before/> and <index/> may be given";
            } else if (name[0] == 'i') {
                out->from = RSM_FROM_INDEX;
                if (rsm_number(&out->index, text) != 0)
                    *why = "<index/> must be a non-negative integer";
            } else {
                bool empty = !text || !*text;

                if (name[0] == 'a' && empty) {
                    *why = "<after/> needs an item's UID";
                } else if (name[0] == 'b' && empty) {
                    out->from = RSM_FROM_END;
                } else {
                    out->from = name[0] == 'a' ? RSM_FROM_AFTER : RSM_FROM_BEFORE;
                    if (strlen(text) > RSM_UID_MAX)
                        *why = "the UID is longer than any this service hands out";
                    else
                        strcpy(out->uid, text);
                }
            }
            seen_page = true;
        }
        if (text)
            xmpp_free(xmpp_stanza_get_context(c), text);
        if (*why)
            error = FR_EINVAL;
        if (error)
            return error;
    }
    return 0;
}

static int rsm_add_text(xmpp_stanza_t *parent, const char *name, const char *text)
{
    return stanza_add_text_element(parent, name, NULL, text) ? 0 : FR_ENOMEM;
}

int rsm_reply_add(xmpp_stanza_t *parent, const struct rsm_reply *reply)
{
    xmpp_stanza_t *set = stanza_add_element(parent, "set", XMPP_NS_RSM);
    char num[24];

    if (!set)
        return FR_ENOMEM;
    if (reply->first) {
        xmpp_stanza_t *first = stanza_add_text_element(set, "first", NULL, reply->first);

        if (!first)
            return FR_ENOMEM;
        if (reply->first_index >= 0) {
            snprintf(num, sizeof(num), "%" PRId64, reply->first_index);
            if (xmpp_stanza_set_attribute(first, "index", num) != XMPP_EOK)
                return FR_ENOMEM;
        }
    }
    if (reply->last && rsm_add_text(set, "last", reply->last) != 0)
        return FR_ENOMEM;
    if (reply->count >= 0) {
        snprintf(num, sizeof(num), "%" PRId64, reply->count);
        if (rsm_add_text(set, "count", num) != 0)
            return FR_ENOMEM;
    }
    return 0;
}

/* The text of child `name` of `set`, borrowed, or NULL. */
static const char *rsm_child_text(xmpp_stanza_t *set, const char *name, xmpp_stanza_t **el)
{
    xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(set, name);

    if (el)
        *el = c;
    if (!c)
        return NULL;
    c = xmpp_stanza_get_children(c);
    return c ? xmpp_stanza_get_text_ptr(c) : "";
}

int rsm_reply_parse(struct rsm_reply *out, xmpp_stanza_t *query)
{
    xmpp_stanza_t *set = xmpp_stanza_get_child_by_ns(query, XMPP_NS_RSM);
    xmpp_stanza_t *first;
    const char *count;

    *out = (struct rsm_reply){ .first_index = -1, .count = -1 };
    if (!set)
        return FR_ENOTFOUND;
    out->first = rsm_child_text(set, "first", &first);
    out->last = rsm_child_text(set, "last", NULL);
    count = rsm_child_text(set, "count", NULL);
    if (count && rsm_number(&out->count, count) != 0)
        out->count = -1;
    if (first && rsm_number(&out->first_index, xmpp_stanza_get_attribute(first, "index")) != 0)
        out->first_index = -1;
    return 0;
}

int rsm_request_add(xmpp_stanza_t *parent, int64_t max, enum rsm_from from, const char *uid,
                    int64_t index)
{
    xmpp_stanza_t *set = stanza_add_element(parent, "set", XMPP_NS_RSM);
    char num[24];

    if (!set)
        return FR_ENOMEM;
    if (max >= 0) {
        snprintf(num, sizeof(num), "%" PRId64, max);
        if (rsm_add_text(set, "max", num) != 0)
            return FR_ENOMEM;
    }
    switch (from) {
    case RSM_FROM_START:
        return 0;
    case RSM_FROM_AFTER:
        return rsm_add_text(set, "after", uid);
    case RSM_FROM_BEFORE:
        return rsm_add_text(set, "before", uid);
    case RSM_FROM_END:
        return stanza_add_element(set, "before", NULL) ? 0 : FR_ENOMEM;
    case RSM_FROM_INDEX:
        snprintf(num, sizeof(num), "%" PRId64, index);
        return rsm_add_text(set, "index", num);
    }
    return FR_EINVAL;
}
