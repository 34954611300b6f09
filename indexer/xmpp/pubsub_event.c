/*
 * xmpp/pubsub_event.c - reading pubsub notifications of file revisions:
 * the XEP-0214 entry of a file's node, or the change-feed item around it.
 * Whatever a server or a stranger sends, nothing is trusted beyond what is
 * checked here: missing parts read as absent, never as a crash.
 */
#include "xmpp/pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static xmpp_stanza_t *pubsub_child_ns(xmpp_stanza_t *parent, const char *name, const char *ns)
{
    for (xmpp_stanza_t *c = parent ? xmpp_stanza_get_children(parent) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *cns = xmpp_stanza_get_ns(c);

        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), name) == 0 &&
            (!ns || (cns && strcmp(cns, ns) == 0)))
            return c;
    }
    return NULL;
}

/* Appends s to the notice's buffer; returns the stored copy or "". */
static const char *pubsub_notice_store(struct pubsub_notice *n, size_t *used, const char *s)
{
    size_t len = strlen(s);
    char *at;

    if (*used + len + 1 > sizeof(n->buf))
        return "";
    at = n->buf + *used;
    memcpy(at, s, len + 1);
    *used += len + 1;
    return at;
}

static void pubsub_notice_read_entry(struct pubsub_notice *n, size_t *used, xmpp_stanza_t *entry)
{
    xmpp_stanza_t *el, *mirrors;
    char *text;

    if ((el = pubsub_child_ns(entry, "size", NULL)) && (text = xmpp_stanza_get_text(el))) {
        char *end;
        long long v = strtoll(text, &end, 10);

        if (end != text && *end == '\0' && v >= 0)
            n->size = v;
        xmpp_free(xmpp_stanza_get_context(entry), text);
    }
    for (el = xmpp_stanza_get_children(entry); el; el = xmpp_stanza_get_next(el)) {
        const char *type = xmpp_stanza_is_tag(el) ? xmpp_stanza_get_attribute(el, "type") : NULL;

        if (type && strcmp(xmpp_stanza_get_name(el), "checksum") == 0 &&
            strcmp(type, "sha256") == 0 && (text = xmpp_stanza_get_text(el))) {
            n->sha256_hex = pubsub_notice_store(n, used, text);
            xmpp_free(xmpp_stanza_get_context(entry), text);
        }
    }
    mirrors = pubsub_child_ns(entry, "mirrors", NULL);
    for (el = mirrors ? xmpp_stanza_get_children(mirrors) : NULL;
         el && n->mirrors_count < sizeof(n->mirrors) / sizeof(*n->mirrors);
         el = xmpp_stanza_get_next(el)) {
        const char *type, *address, *ref;
        char line[1024];

        if (!xmpp_stanza_is_tag(el) || strcmp(xmpp_stanza_get_name(el), "mirror") != 0 ||
            !(type = xmpp_stanza_get_attribute(el, "type")))
            continue;
        if (strcmp(type, "sipub") == 0) {
            xmpp_stanza_t *sipub = pubsub_child_ns(el, "sipub", XMPP_NS_SIPUB);
            const char *from = sipub ? xmpp_stanza_get_attribute(sipub, "from") : NULL;

            snprintf(line, sizeof(line), "xmpp:%s", from ? from : "?");
        } else {
            const char *port = xmpp_stanza_get_attribute(el, "port");

            address = xmpp_stanza_get_attribute(el, "address");
            ref = xmpp_stanza_get_attribute(el, "ref");
            snprintf(line, sizeof(line), "%s://%s%s%s/%s", type, address ? address : "",
                     port ? ":" : "", port ? port : "", ref ? ref : "");
        }
        n->mirrors[n->mirrors_count++] = pubsub_notice_store(n, used, line);
    }
}

int pubsub_event_items(xmpp_stanza_t *msg,
                       void (*fn)(const struct pubsub_notice *notice, void *data), void *data)
{
    xmpp_stanza_t *event = pubsub_child_ns(msg, "event", XMPP_NS_PUBSUB_EVENT);

    if (!event) /* an items result: <iq><pubsub><items/></pubsub></iq> */
        event = pubsub_child_ns(msg, "pubsub", XMPP_NS_PUBSUB);
    int seen = 0;

    for (xmpp_stanza_t *items = event ? xmpp_stanza_get_children(event) : NULL; items;
         items = xmpp_stanza_get_next(items)) {
        const char *node;

        if (!xmpp_stanza_is_tag(items) || strcmp(xmpp_stanza_get_name(items), "items") != 0 ||
            !(node = xmpp_stanza_get_attribute(items, "node")))
            continue;
        for (xmpp_stanza_t *item = xmpp_stanza_get_children(items); item;
             item = xmpp_stanza_get_next(item)) {
            struct pubsub_notice *n;
            xmpp_stanza_t *entry, *change;
            size_t used = 0;

            if (!xmpp_stanza_is_tag(item) || strcmp(xmpp_stanza_get_name(item), "item") != 0)
                continue;
            if (!(n = calloc(1, sizeof(*n))))
                return seen;
            n->node = node;
            n->item = xmpp_stanza_get_id(item) ? xmpp_stanza_get_id(item) : "";
            n->size = -1;
            entry = pubsub_child_ns(item, "entry", XMPP_NS_FILESHARE_ITEM);
            change = pubsub_child_ns(item, "change", XMPP_NS_FILEREPO_CHANGE);
            if (change) {
                const char *cnode = xmpp_stanza_get_attribute(change, "node");
                const char *rev = xmpp_stanza_get_attribute(change, "revision");

                n->path = xmpp_stanza_get_attribute(change, "path");
                if (cnode)
                    n->node = cnode;
                if (rev)
                    n->item = rev;
                entry = pubsub_child_ns(change, "entry", XMPP_NS_FILESHARE_ITEM);
            }
            if (entry)
                pubsub_notice_read_entry(n, &used, entry);
            fn(n, data);
            free(n);
            seen++;
        }
    }
    return seen;
}
