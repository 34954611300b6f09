/*
 * xmpp/disco.c - XEP-0030 disco#info answers.
 */
#include "xmpp/disco.h"
#include "xmpp/stanza.h"

xmpp_stanza_t *disco_info_build(xmpp_ctx_t *ctx, const char *node,
                                const struct disco_identity *identities, size_t identities_count,
                                const char *const *features, size_t features_count)
{
    xmpp_stanza_t *query = xmpp_stanza_new(ctx);

    if (!query)
        return NULL;
    if (xmpp_stanza_set_name(query, "query") != XMPP_EOK ||
        xmpp_stanza_set_ns(query, XMPP_NS_DISCO_INFO) != XMPP_EOK ||
        (node && xmpp_stanza_set_attribute(query, "node", node) != XMPP_EOK))
        goto fail;

    for (size_t i = 0; i < identities_count; i++) {
        xmpp_stanza_t *id = stanza_add_element(query, "identity", NULL);

        if (!id ||
            xmpp_stanza_set_attribute(id, "category", identities[i].category) != XMPP_EOK ||
            xmpp_stanza_set_attribute(id, "type", identities[i].type) != XMPP_EOK ||
            (identities[i].name &&
             xmpp_stanza_set_attribute(id, "name", identities[i].name) != XMPP_EOK))
            goto fail;
    }
    for (size_t i = 0; i < features_count; i++) {
        xmpp_stanza_t *f = stanza_add_element(query, "feature", NULL);

        if (!f || xmpp_stanza_set_attribute(f, "var", features[i]) != XMPP_EOK)
            goto fail;
    }
    return query;
fail:
    xmpp_stanza_release(query);
    return NULL;
}
