/*
 * xmpp/jingle.c - the Jingle file request parser and answer builders.
 */
#include "xmpp/jingle.h"
#include "xmpp/stanza.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool jingle_refuse(struct jingle_refusal *why, const char *type, const char *condition,
                          const char *text)
{
    why->type = type;
    why->condition = condition;
    why->text = text;
    return false;
}

/* Copies attribute `name` of `el` into out; false when absent, empty or too long. */
static bool jingle_attr(xmpp_stanza_t *el, const char *name, char *out, size_t len)
{
    const char *v = xmpp_stanza_get_attribute(el, name);

    if (!v || !*v || strlen(v) >= len)
        return false;
    memcpy(out, v, strlen(v) + 1);
    return true;
}

/* A decimal integer in [0, max]; false otherwise. */
static bool jingle_number(const char *s, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end || v < 0 || v > max)
        return false;
    *out = v;
    return true;
}

static xmpp_stanza_t *jingle_child(xmpp_stanza_t *el, const char *name, const char *ns)
{
    return xmpp_stanza_get_child_by_name_and_ns(el, name, ns);
}

/* Reads <file/>: name, sha-256 hash, range. */
static bool jingle_file_parse(xmpp_stanza_t *file, struct jingle_request *out,
                              struct jingle_refusal *why)
{
    const char *ns = xmpp_stanza_get_ns(file);

    for (xmpp_stanza_t *c = xmpp_stanza_get_children(file); c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c), *cns;

        if (!xmpp_stanza_is_tag(c))
            continue;
        cns = xmpp_stanza_get_ns(c);
        if (strcmp(name, "name") == 0 && cns && strcmp(cns, ns) == 0) {
            char *text = xmpp_stanza_get_text(c);
            bool ok = text && *text && strlen(text) < sizeof(out->name);

            if (ok)
                memcpy(out->name, text, strlen(text) + 1);
            xmpp_free(xmpp_stanza_get_context(c), text);
            if (!ok)
                return jingle_refuse(why, "modify", "bad-request", "a <name/> must be a path "
                                     "of at most 1023 bytes");
        } else if (strcmp(name, "hash") == 0 && cns && strcmp(cns, XMPP_NS_HASHES) == 0) {
            const char *algo = xmpp_stanza_get_attribute(c, "algo");
            xmpp_ctx_t *ctx = xmpp_stanza_get_context(c);
            unsigned char *bin = NULL;
            size_t len = 0;
            char *text;

            if (!algo || strcmp(algo, "sha-256") != 0)
                continue; /* other functions: not how the catalog finds content */
            text = xmpp_stanza_get_text(c);
            if (text && *text)
                xmpp_base64_decode_bin(ctx, text, strlen(text), &bin, &len);
            xmpp_free(ctx, text);
            if (!bin || len != 32) {
                xmpp_free(ctx, bin);
                return jingle_refuse(why, "modify", "bad-request",
                                     "a sha-256 <hash/> must be 32 bytes in base64");
            }
            memcpy(out->sha256, bin, 32);
            xmpp_free(ctx, bin);
            out->has_sha256 = true;
        } else if (strcmp(name, "range") == 0 && cns && strcmp(cns, ns) == 0) {
            const char *offset = xmpp_stanza_get_attribute(c, "offset");
            const char *length = xmpp_stanza_get_attribute(c, "length");

            out->has_range = true;
            if ((offset && !jingle_number(offset, INT64_MAX / 2, &out->offset)) ||
                (length && !jingle_number(length, INT64_MAX / 2, &out->length)))
                return jingle_refuse(why, "modify", "bad-request",
                                     "<range/> offset and length are non-negative integers");
        }
    }
    if (!out->name[0] && !out->has_sha256)
        return jingle_refuse(why, "modify", "bad-request",
                             "the <file/> must have a <name/> or a sha-256 <hash/>");
    return true;
}

bool jingle_request_parse(xmpp_stanza_t *jingle, struct jingle_request *out,
                          struct jingle_refusal *why)
{
    xmpp_stanza_t *content = NULL, *desc, *file, *transport;
    const char *senders, *tns;
    int contents = 0;

    memset(out, 0, sizeof(*out));
    out->length = -1;
    if (!jingle_attr(jingle, "sid", out->sid, sizeof(out->sid)))
        return jingle_refuse(why, "modify", "bad-request", "a session needs a sid");
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(jingle); c; c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "content") == 0) {
            content = c;
            contents++;
        }
    if (contents == 0)
        return jingle_refuse(why, "modify", "bad-request", "a session-initiate needs a content");
    if (contents > 1)
        return jingle_refuse(why, "cancel", "feature-not-implemented",
                             "one file per session is served");
    if (!jingle_attr(content, "name", out->content_name, sizeof(out->content_name)) ||
        !jingle_attr(content, "creator", out->creator, sizeof(out->creator)) ||
        (strcmp(out->creator, "initiator") != 0 && strcmp(out->creator, "responder") != 0))
        return jingle_refuse(why, "modify", "bad-request",
                             "a content needs a name and a creator");
    desc = jingle_child(content, "description", XMPP_NS_JINGLE_FT);
    if (!desc)
        return jingle_refuse(why, "cancel", "feature-not-implemented",
                             "only file-transfer:5 descriptions are served");
    senders = xmpp_stanza_get_attribute(content, "senders");
    if (!senders || strcmp(senders, "responder") != 0)
        return jingle_refuse(why, "cancel", "feature-not-implemented",
                             "files are sent, not received: ask with senders='responder'");
    file = jingle_child(desc, "file", XMPP_NS_JINGLE_FT);
    if (!file)
        return jingle_refuse(why, "modify", "bad-request", "the description needs a <file/>");
    if (!jingle_file_parse(file, out, why))
        return false;
    transport = jingle_transport(jingle, &tns);
    if (!transport || !tns)
        return jingle_refuse(why, "modify", "bad-request", "the content needs a transport");
    if (strcmp(tns, XMPP_NS_JINGLE_IBB) == 0) {
        if (!jingle_ibb_parse(transport, out->ibb_sid, &out->block_size, why))
            return false;
        out->transport_ibb = true;
        return true;
    }
    if (strcmp(tns, XMPP_NS_JINGLE_S5B) == 0) {
        if (!jingle_s5b_parse(transport, &out->s5b, why))
            return false;
        out->transport_s5b = true;
        return true;
    }
    return jingle_refuse(why, "cancel", "feature-not-implemented",
                         "the transports served are " XMPP_NS_JINGLE_S5B " and "
                         XMPP_NS_JINGLE_IBB);
}

xmpp_stanza_t *jingle_transport(xmpp_stanza_t *jingle, const char **ns)
{
    *ns = NULL;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(jingle); c; c = xmpp_stanza_get_next(c)) {
        if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "content") != 0)
            continue;
        for (xmpp_stanza_t *t = xmpp_stanza_get_children(c); t; t = xmpp_stanza_get_next(t))
            if (xmpp_stanza_is_tag(t) && strcmp(xmpp_stanza_get_name(t), "transport") == 0) {
                *ns = xmpp_stanza_get_ns(t);
                return t;
            }
        return NULL;
    }
    return NULL;
}

bool jingle_ibb_parse(xmpp_stanza_t *transport, char sid[JINGLE_TEXT_MAX], unsigned *block_size,
                      struct jingle_refusal *why)
{
    int64_t block;

    if (!jingle_attr(transport, "sid", sid, JINGLE_TEXT_MAX) ||
        !jingle_number(xmpp_stanza_get_attribute(transport, "block-size"), 65535, &block) ||
        block == 0)
        return jingle_refuse(why, "modify", "bad-request",
                             "an IBB transport needs a sid and a block-size of 1-65535");
    *block_size = (unsigned)block;
    return true;
}

/* Reads one <candidate/>; false when it lacks what a candidate needs. */
static bool jingle_candidate_parse(xmpp_stanza_t *el, struct jingle_candidate *out)
{
    const char *type = xmpp_stanza_get_attribute(el, "type");
    int64_t port, priority;

    memset(out, 0, sizeof(*out));
    if (!jingle_attr(el, "cid", out->cid, sizeof(out->cid)) ||
        !jingle_attr(el, "host", out->host, sizeof(out->host)) ||
        !jingle_attr(el, "jid", out->jid, sizeof(out->jid)) ||
        !jingle_number(xmpp_stanza_get_attribute(el, "port"), 65535, &port) || port == 0 ||
        !jingle_number(xmpp_stanza_get_attribute(el, "priority"), UINT32_MAX, &priority))
        return false;
    out->port = (int)port;
    out->priority = (uint32_t)priority;
    out->proxy = type && strcmp(type, "proxy") == 0;
    return true;
}

bool jingle_s5b_parse(xmpp_stanza_t *transport, struct jingle_s5b *out,
                      struct jingle_refusal *why)
{
    const char *mode = xmpp_stanza_get_attribute(transport, "mode");

    memset(out, 0, sizeof(*out));
    if (!jingle_attr(transport, "sid", out->sid, sizeof(out->sid)))
        return jingle_refuse(why, "modify", "bad-request", "a SOCKS5 transport needs a sid");
    if (mode && strcmp(mode, "tcp") != 0)
        return jingle_refuse(why, "cancel", "feature-not-implemented",
                             "SOCKS5 bytestreams are served in mode 'tcp' only");
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(transport); c; c = xmpp_stanza_get_next(c)) {
        struct jingle_candidate cand;
        size_t at;

        if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "candidate") != 0)
            continue;
        if (!jingle_candidate_parse(c, &cand))
            return jingle_refuse(why, "modify", "bad-request",
                                 "a candidate needs cid, host, jid, port and priority");
        /* Kept best first; beyond the table, the lowest priorities are dropped. */
        at = out->count;
        while (at > 0 && out->candidates[at - 1].priority < cand.priority)
            at--;
        if (at >= JINGLE_CANDIDATES_MAX)
            continue;
        if (out->count == JINGLE_CANDIDATES_MAX)
            out->count--;
        memmove(&out->candidates[at + 1], &out->candidates[at],
                (out->count - at) * sizeof(out->candidates[0]));
        out->candidates[at] = cand;
        out->count++;
    }
    return true;
}

enum jingle_s5b_info jingle_s5b_info_parse(xmpp_stanza_t *jingle, const char *sid,
                                           char cid[JINGLE_TEXT_MAX])
{
    const char *ns, *tsid;
    xmpp_stanza_t *transport = jingle_transport(jingle, &ns);

    cid[0] = '\0';
    if (!transport || !ns || strcmp(ns, XMPP_NS_JINGLE_S5B) != 0 ||
        !(tsid = xmpp_stanza_get_attribute(transport, "sid")) || strcmp(tsid, sid) != 0)
        return JINGLE_S5B_UNKNOWN;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(transport); c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_name(c) : "";

        if (strcmp(name, "candidate-used") == 0)
            return jingle_attr(c, "cid", cid, JINGLE_TEXT_MAX) ? JINGLE_S5B_CANDIDATE_USED
                                                               : JINGLE_S5B_UNKNOWN;
        if (strcmp(name, "activated") == 0)
            return jingle_attr(c, "cid", cid, JINGLE_TEXT_MAX) ? JINGLE_S5B_ACTIVATED
                                                               : JINGLE_S5B_UNKNOWN;
        if (strcmp(name, "candidate-error") == 0)
            return JINGLE_S5B_CANDIDATE_ERROR;
        if (strcmp(name, "proxy-error") == 0)
            return JINGLE_S5B_PROXY_ERROR;
    }
    return JINGLE_S5B_UNKNOWN;
}

xmpp_stanza_t *jingle_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                             const char *action, const char *sid, xmpp_stanza_t **jingle)
{
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", id);

    *jingle = NULL;
    if (!iq)
        return NULL;
    if (xmpp_stanza_set_to(iq, to) != XMPP_EOK ||
        !(*jingle = stanza_add_element(iq, "jingle", XMPP_NS_JINGLE)) ||
        xmpp_stanza_set_attribute(*jingle, "action", action) != XMPP_EOK ||
        xmpp_stanza_set_attribute(*jingle, "sid", sid) != XMPP_EOK) {
        xmpp_stanza_release(iq);
        *jingle = NULL;
        return NULL;
    }
    return iq;
}

int jingle_add_reason(xmpp_stanza_t *jingle, const char *reason, const char *extra,
                      const char *extra_ns)
{
    xmpp_stanza_t *r = stanza_add_element(jingle, "reason", NULL);

    if (!r || !stanza_add_element(r, reason, NULL) ||
        (extra && !stanza_add_element(r, extra, extra_ns)))
        return -1;
    return 0;
}
