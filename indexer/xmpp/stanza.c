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

xmpp_stanza_t *stanza_add_text_element(xmpp_stanza_t *parent, const char *name, const char *ns,
                                       const char *text)
{
    xmpp_stanza_t *child = stanza_add_element(parent, name, ns);
    xmpp_stanza_t *body;

    if (!child)
        return NULL;
    body = xmpp_stanza_new(xmpp_stanza_get_context(parent));
    if (!body || xmpp_stanza_set_text(body, text) != XMPP_EOK ||
        xmpp_stanza_add_child(child, body) != XMPP_EOK) {
        xmpp_stanza_release(body);
        return NULL;
    }
    xmpp_stanza_release(body);
    return child;
}

int stanza_text_is_valid(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;

    while (*s) {
        unsigned c = *s, need, cp;

        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return 0;
            s++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (unsigned i = 1; i <= need; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        /* Overlong forms, surrogates, beyond U+10FFFF, U+FFFE/U+FFFF. */
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
            return 0;
        s += need + 1;
    }
    return 1;
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
