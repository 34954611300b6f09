/*
 * xmpp/ibb.h - the stanzas of an in-band bytestream (XEP-0047) the daemon
 * opens and sends itself: <open/>, <data/> blocks, <close/>, all in IQs.
 */
#ifndef FILEREPO_XMPP_IBB_H
#define FILEREPO_XMPP_IBB_H

#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

#ifndef XMPP_NS_IBB
#define XMPP_NS_IBB "http://jabber.org/protocol/ibb"
#endif

/**
 * Creates <iq type='set' to id><open xmlns=ibb sid block-size stanza='iq'/>
 * </iq>.  Returns the new IQ or NULL.
 */
xmpp_stanza_t *ibb_open_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                               const char *sid, unsigned block_size);

/**
 * Creates <iq type='set' to id><data xmlns=ibb sid seq>base64</data></iq>
 * carrying `len` bytes of `bytes` (len may be 0).  Returns the IQ or NULL.
 */
xmpp_stanza_t *ibb_data_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                               const char *sid, uint16_t seq, const unsigned char *bytes,
                               size_t len);

/** Creates <iq type='set' to id><close xmlns=ibb sid/></iq>, or NULL. */
xmpp_stanza_t *ibb_close_iq_new(xmpp_ctx_t *ctx, const char *to, const char *id,
                                const char *sid);

#endif
