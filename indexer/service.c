/*
 * service.c - the IQ router of filerepod's component JID.
 *
 * service_routes[] is the whole contract: (namespace, IQ type, feature,
 * handler).  Handlers build their reply and return it; the stanza handler
 * registered on the connection sends it.  Handlers never block: anything slow
 * belongs to a worker that answers later.
 */
#include "service.h"
#include "fr_error.h"
#include "log.h"
#include "transfers.h"
#include "xmpp/jingle.h"
#include "xmpp/disco.h"
#include "xmpp/stanza.h"

#include <stdlib.h>
#include <string.h>

#define XMPP_NS_PING "urn:xmpp:ping"

struct service {
    char *name;                   /* disco identity name */
    struct transfers *transfers;  /* borrowed; NULL: no file is served */
};

typedef xmpp_stanza_t *(*service_iq_fn)(struct service *service, xmpp_stanza_t *iq,
                                        xmpp_stanza_t *payload);

struct service_route {
    const char *ns;      /* namespace of the IQ's payload */
    const char *type;    /* "get" or "set" */
    service_iq_fn fn;    /* builds the reply */
    const char *const *also; /* features served with it, NULL-terminated, or NULL */
};

static xmpp_stanza_t *service_disco_info(struct service *service, xmpp_stanza_t *iq,
                                         xmpp_stanza_t *payload);
static xmpp_stanza_t *service_ping(struct service *service, xmpp_stanza_t *iq,
                                   xmpp_stanza_t *payload);

static xmpp_stanza_t *service_jingle(struct service *service, xmpp_stanza_t *iq,
                                     xmpp_stanza_t *payload);
static xmpp_stanza_t *service_ibb(struct service *service, xmpp_stanza_t *iq,
                                  xmpp_stanza_t *payload);

/* What a Jingle file request may use: XEP-0234 over XEP-0261, hashes. */
static const char *const service_jingle_features[] = {
    XMPP_NS_JINGLE_FT, XMPP_NS_JINGLE_IBB, XMPP_NS_HASHES, XMPP_NS_HASH_SHA256, NULL
};

static const struct service_route service_routes[] = {
    { XMPP_NS_DISCO_INFO, "get", service_disco_info, NULL },
    { XMPP_NS_PING, "get", service_ping, NULL },
    { XMPP_NS_JINGLE, "set", service_jingle, service_jingle_features },
    { XMPP_NS_IBB, "set", service_ibb, NULL },
};

#define SERVICE_ROUTES_COUNT (sizeof(service_routes) / sizeof(*service_routes))

/* Derived from service_routes: one feature per routed namespace and those
 * served with it. */
static const char *service_feature_list[SERVICE_ROUTES_COUNT * 8];

static size_t service_feature_add(size_t n, const char *feature)
{
    for (size_t j = 0; j < n; j++)
        if (strcmp(service_feature_list[j], feature) == 0)
            return n;
    if (n < sizeof(service_feature_list) / sizeof(*service_feature_list))
        service_feature_list[n++] = feature;
    return n;
}

size_t service_features(const char *const **out)
{
    size_t n = 0;

    for (size_t i = 0; i < SERVICE_ROUTES_COUNT; i++) {
        n = service_feature_add(n, service_routes[i].ns);
        for (size_t k = 0; service_routes[i].also && service_routes[i].also[k]; k++)
            n = service_feature_add(n, service_routes[i].also[k]);
    }
    *out = service_feature_list;
    return n;
}

int service_new(struct service **out, const char *name)
{
    struct service *service = calloc(1, sizeof(*service));

    *out = NULL;
    if (!service || !(service->name = strdup(name))) {
        free(service);
        return FR_ENOMEM;
    }
    *out = service;
    return 0;
}

void service_free(struct service *service)
{
    if (!service)
        return;
    free(service->name);
    free(service);
}

static xmpp_stanza_t *service_disco_info(struct service *service, xmpp_stanza_t *iq,
                                         xmpp_stanza_t *payload)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    const struct disco_identity identity = { "component", "generic", service->name };
    const char *node = xmpp_stanza_get_attribute(payload, "node");
    const char *const *features;
    size_t count = service_features(&features);
    xmpp_stanza_t *reply, *query;

    /* No node is served yet: repositories and directories come with the
     * listings. */
    if (node)
        return stanza_iq_error(ctx, iq, "cancel", "item-not-found", "no such node");
    reply = stanza_iq_result(ctx, iq);
    query = disco_info_build(ctx, NULL, &identity, 1, features, count);
    if (!reply || !query || xmpp_stanza_add_child(reply, query) != XMPP_EOK) {
        xmpp_stanza_release(reply);
        xmpp_stanza_release(query);
        return NULL;
    }
    xmpp_stanza_release(query);
    return reply;
}

static xmpp_stanza_t *service_ping(struct service *service, xmpp_stanza_t *iq,
                                   xmpp_stanza_t *payload)
{
    (void)service;
    (void)payload;
    return stanza_iq_result(xmpp_stanza_get_context(iq), iq);
}

static xmpp_stanza_t *service_jingle(struct service *service, xmpp_stanza_t *iq,
                                     xmpp_stanza_t *payload)
{
    if (!service->transfers)
        return stanza_iq_error(xmpp_stanza_get_context(iq), iq, "cancel",
                               "service-unavailable", NULL);
    return transfers_on_jingle(service->transfers, iq, payload);
}

static xmpp_stanza_t *service_ibb(struct service *service, xmpp_stanza_t *iq,
                                  xmpp_stanza_t *payload)
{
    if (!service->transfers)
        return stanza_iq_error(xmpp_stanza_get_context(iq), iq, "cancel",
                               "service-unavailable", NULL);
    return transfers_on_ibb(service->transfers, iq, payload);
}

void service_set_transfers(struct service *service, struct transfers *transfers)
{
    service->transfers = transfers;
}

xmpp_stanza_t *service_handle_iq(struct service *service, xmpp_stanza_t *iq)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    const char *type = xmpp_stanza_get_type(iq);
    xmpp_stanza_t *payload;
    const char *ns;

    if (strcmp(xmpp_stanza_get_name(iq), "iq") != 0 || !type)
        return NULL;
    if (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)
        return NULL; /* results and errors belong to whoever asked */

    payload = stanza_first_element(iq);
    if (!payload || !xmpp_stanza_get_id(iq))
        return stanza_iq_error(ctx, iq, "modify", "bad-request",
                               "an IQ request needs an id and one payload element");
    ns = xmpp_stanza_get_ns(payload);
    for (size_t i = 0; ns && i < SERVICE_ROUTES_COUNT; i++) {
        const struct service_route *route = &service_routes[i];

        if (strcmp(route->ns, ns) == 0 && strcmp(route->type, type) == 0)
            return route->fn(service, iq, payload);
    }
    return stanza_iq_error(ctx, iq, "cancel", "service-unavailable", NULL);
}

static int service_on_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct service *service = userdata;
    xmpp_stanza_t *reply = service_handle_iq(service, stanza);

    if (reply) {
        xmpp_stanza_t *payload = stanza_first_element(stanza);
        const char *condition = stanza_error_condition(reply);

        log_debug("query", "iq from=%s ns=%s type=%s -> %s",
                  xmpp_stanza_get_from(stanza) ? xmpp_stanza_get_from(stanza) : "?",
                  payload && xmpp_stanza_get_ns(payload) ? xmpp_stanza_get_ns(payload) : "-",
                  xmpp_stanza_get_type(stanza), condition ? condition : "result");
        xmpp_send(conn, reply);
        xmpp_stanza_release(reply);
    }
    return 1;
}

void service_attach(struct service *service, xmpp_conn_t *conn)
{
    /* A reused connection object keeps its user handlers: never twice. */
    xmpp_handler_delete(conn, service_on_iq);
    xmpp_handler_add(conn, service_on_iq, NULL, "iq", NULL, service);
}
