/*
 * xmpp/stanza.c - reply and element helpers over libstrophe.
 */
#include "xmpp/stanza.h"

#include <string.h>

xmpp_stanza_t *stanza_first_element(xmpp_stanza_t *stanza)
{
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(stanza); c; c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_is_tag(c))
            return c;
    return NULL;
}

xmpp_stanza_t *stanza_add_element(xmpp_stanza_t *parent, const char *name, const char *ns)
{
    xmpp_stanza_t *child = xmpp_stanza_new(xmpp_stanza_get_context(parent));

    if (!child)
        return NULL;
    if (xmpp_stanza_set_name(child, name) != XMPP_EOK ||
        (ns && xmpp_stanza_set_ns(child, ns) != XMPP_EOK) ||
        xmpp_stanza_add_child(parent, child) != XMPP_EOK) {
        xmpp_stanza_release(child);
        return NULL;
    }
    /* add_child took its own reference. */
    xmpp_stanza_release(child);
    return child;
}

static xmpp_stanza_t *stanza_iq_reply(xmpp_ctx_t *ctx, xmpp_stanza_t *request, const char *type)
{
    xmpp_stanza_t *reply = xmpp_iq_new(ctx, type, xmpp_stanza_get_id(request));
    const char *from = xmpp_stanza_get_from(request);
    const char *to = xmpp_stanza_get_to(request);

    if (!reply)
        return NULL;
    if (from)
        xmpp_stanza_set_to(reply, from);
    if (to)
        xmpp_stanza_set_from(reply, to);
    return reply;
}

xmpp_stanza_t *stanza_iq_result(xmpp_ctx_t *ctx, xmpp_stanza_t *request)
{
    return stanza_iq_reply(ctx, request, "result");
}

xmpp_stanza_t *stanza_iq_error(xmpp_ctx_t *ctx, xmpp_stanza_t *request, const char *type,
                               const char *condition, const char *text)
{
    xmpp_stanza_t *reply = stanza_iq_reply(ctx, request, "error");
    xmpp_stanza_t *error, *cond, *text_el, *body;

    if (!reply)
        return NULL;
    error = stanza_add_element(reply, "error", NULL);
    if (!error)
        goto fail;
    xmpp_stanza_set_type(error, type);
    cond = stanza_add_element(error, condition, XMPP_NS_STANZAS);
    if (!cond)
        goto fail;
    if (text) {
        text_el = stanza_add_element(error, "text", XMPP_NS_STANZAS);
        body = xmpp_stanza_new(ctx);
        if (!text_el || !body) {
            xmpp_stanza_release(body);
            goto fail;
        }
        xmpp_stanza_set_text(body, text);
        xmpp_stanza_add_child(text_el, body);
        xmpp_stanza_release(body);
    }
    return reply;
fail:
    xmpp_stanza_release(reply);
    return NULL;
}

const char *stanza_error_condition(xmpp_stanza_t *stanza)
{
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(stanza, "error");

    if (!error)
        return NULL;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(error); c; c = xmpp_stanza_get_next(c)) {
        const char *ns = xmpp_stanza_get_ns(c);

        if (xmpp_stanza_is_tag(c) && ns && strcmp(ns, XMPP_NS_STANZAS) == 0 &&
            strcmp(xmpp_stanza_get_name(c), "text") != 0)
            return xmpp_stanza_get_name(c);
    }
    return NULL;
}
