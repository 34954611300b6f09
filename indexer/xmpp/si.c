/*
 * xmpp/si.c - sipub <start/> and <starting/>, the SI file-transfer offer
 * and the requester's answer to it (XEP-0137, XEP-0095, XEP-0096, with the
 * XEP-0020 stream-method form).
 */
#include "xmpp/si.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool si_refuse(struct si_refusal *why, const char *type, const char *condition,
                      const char *text)
{
    why->type = type;
    why->condition = condition;
    why->text = text;
    return false;
}

bool sipub_start_parse(xmpp_stanza_t *start, char *id, size_t len, struct si_refusal *why)
{
    const char *ns = xmpp_stanza_get_ns(start);
    const char *value = xmpp_stanza_get_attribute(start, "id");

    id[0] = '\0';
    if (!xmpp_stanza_is_tag(start) || strcmp(xmpp_stanza_get_name(start), "start") != 0 ||
        !ns || strcmp(ns, XMPP_NS_SIPUB) != 0)
        return si_refuse(why, "modify", "bad-request", "a sipub <start/> is needed");
    if (!value || !value[0])
        return si_refuse(why, "modify", "bad-request", "<start/> needs an id");
    if (strlen(value) >= len || strlen(value) >= SI_TEXT_MAX || !stanza_text_is_valid(value))
        return si_refuse(why, "modify", "bad-request", "the id is too long or not text");
    memcpy(id, value, strlen(value) + 1);
    return true;
}

int64_t sipub_id_revision(const char *id)
{
    int64_t n = 0;
    const char *p;

    if (!id || strncmp(id, "rev-", 4) != 0 || id[4] < '1' || id[4] > '9')
        return 0;
    for (p = id + 4; *p; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - (*p - '0')) / 10)
            return 0;
        n = n * 10 + (*p - '0');
    }
    return n;
}

xmpp_stanza_t *sipub_starting_new(xmpp_ctx_t *ctx, const char *sid)
{
    xmpp_stanza_t *starting = xmpp_stanza_new(ctx);

    if (!starting || xmpp_stanza_set_name(starting, "starting") != XMPP_EOK ||
        xmpp_stanza_set_ns(starting, XMPP_NS_SIPUB) != XMPP_EOK ||
        xmpp_stanza_set_attribute(starting, "sid", sid) != XMPP_EOK) {
        xmpp_stanza_release(starting);
        return NULL;
    }
    return starting;
}

const char *si_method_ns(enum si_method method)
{
    switch (method) {
    case SI_METHOD_S5B:
        return XMPP_NS_BYTESTREAMS;
    case SI_METHOD_IBB:
        return XMPP_NS_IBB;
    default:
        return NULL;
    }
}

static bool si_set_attr(xmpp_stanza_t *el, const char *name, const char *value)
{
    return !value || xmpp_stanza_set_attribute(el, name, value) == XMPP_EOK;
}

/* <x xmlns='jabber:x:data' type='form'> with the stream-method field. */
static bool si_add_methods(xmpp_stanza_t *si, unsigned methods)
{
    static const enum si_method order[] = { SI_METHOD_S5B, SI_METHOD_IBB };
    xmpp_stanza_t *feature = stanza_add_element(si, "feature", XMPP_NS_FEATURE_NEG);
    xmpp_stanza_t *x = feature ? stanza_add_element(feature, "x", XMPP_NS_DATA) : NULL;
    xmpp_stanza_t *field = x ? stanza_add_element(x, "field", NULL) : NULL;

    if (!field || xmpp_stanza_set_attribute(x, "type", "form") != XMPP_EOK ||
        xmpp_stanza_set_attribute(field, "var", "stream-method") != XMPP_EOK ||
        xmpp_stanza_set_attribute(field, "type", "list-single") != XMPP_EOK)
        return false;
    for (size_t i = 0; i < sizeof(order) / sizeof(*order); i++) {
        xmpp_stanza_t *option;

        if (!(methods & order[i]))
            continue;
        option = stanza_add_element(field, "option", NULL);
        if (!option || !stanza_add_text_element(option, "value", NULL, si_method_ns(order[i])))
            return false;
    }
    return true;
}

xmpp_stanza_t *si_offer_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                               const struct si_offer *offer)
{
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", id);
    xmpp_stanza_t *si, *file;
    char size[24];
    bool ok;

    snprintf(size, sizeof(size), "%" PRId64, offer->size);
    ok = iq && offer->sid && offer->name && offer->methods &&
         xmpp_stanza_set_to(iq, to) == XMPP_EOK &&
         (si = stanza_add_element(iq, "si", XMPP_NS_SI)) &&
         si_set_attr(si, "id", offer->sid) && si_set_attr(si, "mime-type", offer->mime_type) &&
         si_set_attr(si, "profile", XMPP_NS_SI_FILE_TRANSFER) &&
         (file = stanza_add_element(si, "file", XMPP_NS_SI_FILE_TRANSFER)) &&
         si_set_attr(file, "name", offer->name) && si_set_attr(file, "size", size) &&
         si_set_attr(file, "hash", offer->md5_hex) && si_set_attr(file, "date", offer->date) &&
         (!offer->desc || !offer->desc[0] ||
          stanza_add_text_element(file, "desc", NULL, offer->desc)) &&
         (!offer->ranged || stanza_add_element(file, "range", NULL)) &&
         si_add_methods(si, offer->methods);
    if (!ok) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

/* The first child element named `name` in `ns`, or NULL. */
static xmpp_stanza_t *si_child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
    for (xmpp_stanza_t *c = parent ? xmpp_stanza_get_children(parent) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *cns = xmpp_stanza_get_ns(c);

        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), name) == 0 && cns &&
            strcmp(cns, ns) == 0)
            return c;
    }
    return NULL;
}

/* A non-negative decimal that fits int64_t; false for anything else. */
static bool si_number(const char *text, int64_t *out)
{
    int64_t n = 0;

    if (!text || !*text)
        return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - (*p - '0')) / 10)
            return false;
        n = n * 10 + (*p - '0');
    }
    *out = n;
    return true;
}

/* The method a value names among those offered, or SI_METHOD_NONE. */
static enum si_method si_method_named(const char *value, unsigned offered)
{
    for (unsigned bit = SI_METHOD_S5B; bit <= SI_METHOD_IBB; bit <<= 1)
        if ((offered & bit) && value && strcmp(value, si_method_ns((enum si_method)bit)) == 0)
            return (enum si_method)bit;
    return SI_METHOD_NONE;
}

/* The one <value/> of the stream-method field in the submitted form. */
static bool si_chosen_method(xmpp_stanza_t *si, unsigned offered, enum si_method *out)
{
    xmpp_stanza_t *x = si_child(si_child(si, "feature", XMPP_NS_FEATURE_NEG), "x",
                                XMPP_NS_DATA);
    const char *type = x ? xmpp_stanza_get_attribute(x, "type") : NULL;
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(si);
    unsigned values = 0;

    *out = SI_METHOD_NONE;
    if (!x || (type && strcmp(type, "submit") != 0))
        return false;
    for (xmpp_stanza_t *f = xmpp_stanza_get_children(x); f; f = xmpp_stanza_get_next(f)) {
        const char *var = xmpp_stanza_get_attribute(f, "var");

        if (!xmpp_stanza_is_tag(f) || strcmp(xmpp_stanza_get_name(f), "field") != 0 || !var ||
            strcmp(var, "stream-method") != 0)
            continue;
        for (xmpp_stanza_t *v = xmpp_stanza_get_children(f); v; v = xmpp_stanza_get_next(v)) {
            char *text;

            if (!xmpp_stanza_is_tag(v) || strcmp(xmpp_stanza_get_name(v), "value") != 0)
                continue;
            values++;
            text = xmpp_stanza_get_text(v);
            *out = si_method_named(text, offered);
            xmpp_free(ctx, text);
        }
    }
    return values == 1 && *out != SI_METHOD_NONE;
}

bool si_result_parse(xmpp_stanza_t *iq, unsigned offered, struct si_choice *out,
                     struct si_refusal *why)
{
    xmpp_stanza_t *si = si_child(iq, "si", XMPP_NS_SI);
    xmpp_stanza_t *file = si_child(si, "file", XMPP_NS_SI_FILE_TRANSFER);
    xmpp_stanza_t *range = file ? xmpp_stanza_get_child_by_name(file, "range") : NULL;

    memset(out, 0, sizeof(*out));
    out->length = -1;
    if (!si)
        return si_refuse(why, "modify", "bad-request", "the answer has no <si/>");
    if (!si_chosen_method(si, offered, &out->method))
        return si_refuse(why, "cancel", "bad-request",
                         "the answer chose no stream method that was offered");
    if (range) {
        const char *offset = xmpp_stanza_get_attribute(range, "offset");
        const char *length = xmpp_stanza_get_attribute(range, "length");

        if ((offset && !si_number(offset, &out->offset)) ||
            (length && !si_number(length, &out->length)))
            return si_refuse(why, "modify", "bad-request", "a malformed <range/>");
        out->has_range = offset || length;
    }
    return true;
}

xmpp_stanza_t *bytestreams_offer_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                                        const char *sid, const struct bytestreams_host *hosts,
                                        size_t count)
{
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", id);
    xmpp_stanza_t *query;
    bool ok = iq && count > 0 && xmpp_stanza_set_to(iq, to) == XMPP_EOK &&
              (query = stanza_add_element(iq, "query", XMPP_NS_BYTESTREAMS)) &&
              xmpp_stanza_set_attribute(query, "sid", sid) == XMPP_EOK &&
              xmpp_stanza_set_attribute(query, "mode", "tcp") == XMPP_EOK;

    for (size_t i = 0; ok && i < count; i++) {
        xmpp_stanza_t *host = stanza_add_element(query, "streamhost", NULL);
        char port[8];

        snprintf(port, sizeof(port), "%d", hosts[i].port);
        ok = host && xmpp_stanza_set_attribute(host, "jid", hosts[i].jid) == XMPP_EOK &&
             xmpp_stanza_set_attribute(host, "host", hosts[i].host) == XMPP_EOK &&
             xmpp_stanza_set_attribute(host, "port", port) == XMPP_EOK;
    }
    if (!ok) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

bool bytestreams_used_parse(xmpp_stanza_t *iq, char *jid, size_t len)
{
    xmpp_stanza_t *query = si_child(iq, "query", XMPP_NS_BYTESTREAMS);
    xmpp_stanza_t *used = query ? xmpp_stanza_get_child_by_name(query, "streamhost-used") : NULL;
    const char *value = used ? xmpp_stanza_get_attribute(used, "jid") : NULL;

    jid[0] = '\0';
    if (!value || !value[0] || strlen(value) >= len)
        return false;
    memcpy(jid, value, strlen(value) + 1);
    return true;
}

xmpp_stanza_t *bytestreams_activate_iq_new(xmpp_ctx_t *ctx, const char *proxy, const char *id,
                                           const char *sid, const char *target)
{
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", id);
    xmpp_stanza_t *query;

    if (!iq || xmpp_stanza_set_to(iq, proxy) != XMPP_EOK ||
        !(query = stanza_add_element(iq, "query", XMPP_NS_BYTESTREAMS)) ||
        xmpp_stanza_set_attribute(query, "sid", sid) != XMPP_EOK ||
        !stanza_add_text_element(query, "activate", NULL, target)) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}
