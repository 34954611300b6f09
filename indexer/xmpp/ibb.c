/*
 * xmpp/ibb.c - the IQs of an in-band bytestream (XEP-0047) sent by its
 * initiator: <open/>, <data/> and <close/>.
 */
#include "xmpp/ibb.h"
#include "xmpp/stanza.h"

#include <stdbool.h>
#include <stdio.h>

/* <iq type='set' to id><`name` xmlns=ibb sid/></iq>, *el its child. */
static xmpp_stanza_t *ibb_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                                 const char *name, const char *sid, xmpp_stanza_t **el)
{
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", id);

    if (!iq || xmpp_stanza_set_to(iq, to) != XMPP_EOK ||
        !(*el = stanza_add_element(iq, name, XMPP_NS_IBB)) ||
        xmpp_stanza_set_attribute(*el, "sid", sid) != XMPP_EOK) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *ibb_open_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                               const char *sid, unsigned block_size)
{
    xmpp_stanza_t *open_el, *iq = ibb_iq_new(ctx, to, id, "open", sid, &open_el);
    char size[16];

    snprintf(size, sizeof(size), "%u", block_size);
    if (iq && (xmpp_stanza_set_attribute(open_el, "block-size", size) != XMPP_EOK ||
               xmpp_stanza_set_attribute(open_el, "stanza", "iq") != XMPP_EOK)) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *ibb_data_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                               const char *sid, uint16_t seq, const unsigned char *bytes,
                               size_t len)
{
    xmpp_stanza_t *data, *iq = ibb_iq_new(ctx, to, id, "data", sid, &data);
    xmpp_stanza_t *text = iq ? xmpp_stanza_new(ctx) : NULL;
    char *b64 = text ? xmpp_base64_encode(ctx, bytes, len) : NULL;
    char number[8];
    bool ok;

    snprintf(number, sizeof(number), "%u", (unsigned)seq);
    ok = b64 && xmpp_stanza_set_attribute(data, "seq", number) == XMPP_EOK &&
         xmpp_stanza_set_text(text, b64) == XMPP_EOK &&
         xmpp_stanza_add_child(data, text) == XMPP_EOK;
    if (b64)
        xmpp_free(ctx, b64);
    xmpp_stanza_release(text);
    if (!ok) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *ibb_close_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                                const char *sid)
{
    xmpp_stanza_t *close_el;

    return ibb_iq_new(ctx, to, id, "close", sid, &close_el);
}
