/*
 * service.c - the IQ router of filerepod's component JID.
 *
 * service_routes[] is the whole contract: (namespace, IQ type, handler, the
 * feature it serves besides its namespace).  Handlers build their reply and
 * return it; the stanza handler registered on the connection sends it.
 * Handlers never block for long: the listings are single prepared catalog
 * queries on the loop's connection; anything slow belongs to a worker that
 * answers later.  Every request first takes a token from its requester's
 * bucket (per bare JID); an empty bucket gets resource-constraint.
 */
#include "service.h"
#include "clock.h"
#include "fr_error.h"
#include "log.h"
#include "listing.h"
#include "ratelimit.h"
#include "sipub.h"
#include "transfers.h"
#include "xmpp/jingle.h"
#include "xmpp/disco.h"
#include "xmpp/fis.h"
#include "xmpp/rsm.h"
#include "xmpp/si.h"
#include "xmpp/stanza.h"

#include <stdlib.h>
#include <string.h>

#define XMPP_NS_PING "urn:xmpp:ping"

struct service {
    char *name;                  /* disco identity name */
    struct listing *listing;     /* listings, owned */
    struct ratelimit *limiter;   /* requests per requester, owned */
    struct transfers *transfers; /* borrowed; NULL: no file is served */
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
static xmpp_stanza_t *service_disco_items(struct service *service, xmpp_stanza_t *iq,
                                          xmpp_stanza_t *payload);
static xmpp_stanza_t *service_fis(struct service *service, xmpp_stanza_t *iq,
                                  xmpp_stanza_t *payload);
static xmpp_stanza_t *service_fileshare(struct service *service, xmpp_stanza_t *iq,
                                        xmpp_stanza_t *payload);

static xmpp_stanza_t *service_jingle(struct service *service, xmpp_stanza_t *iq,
                                     xmpp_stanza_t *payload);
static xmpp_stanza_t *service_ibb(struct service *service, xmpp_stanza_t *iq,
                                  xmpp_stanza_t *payload);
static xmpp_stanza_t *service_sipub(struct service *service, xmpp_stanza_t *iq,
                                    xmpp_stanza_t *payload);

/* What a Jingle file request may use: XEP-0234 over XEP-0261, hashes. */
static const char *const service_jingle_features[] = {
    XMPP_NS_JINGLE_FT, XMPP_NS_JINGLE_IBB, XMPP_NS_JINGLE_S5B, XMPP_NS_HASHES, XMPP_NS_HASH_SHA256, NULL
};

/* What a sipub <start/> leads to: an SI (XEP-0095) file-transfer (XEP-0096) offer. */
static const char *const service_sipub_features[] = { XMPP_NS_SI, XMPP_NS_SI_FILE_TRANSFER,
                                                      XMPP_NS_BYTESTREAMS, NULL };

/* What a listing serves with it: XEP-0059 paging. */
static const char *const service_fis_features[] = { XMPP_NS_RSM, NULL };

static const struct service_route service_routes[] = {
    { XMPP_NS_DISCO_INFO, "get", service_disco_info, NULL },
    { XMPP_NS_DISCO_ITEMS, "get", service_disco_items, NULL },
    { XMPP_NS_PING, "get", service_ping, NULL },
    { XMPP_NS_FIS, "get", service_fis, service_fis_features },
    { XMPP_NS_FILESHARE, "get", service_fileshare, NULL },
    { XMPP_NS_JINGLE, "set", service_jingle, service_jingle_features },
    { XMPP_NS_IBB, "set", service_ibb, NULL },
    /* XEP-0137 asks with a get; a set is taken the same way. */
    { XMPP_NS_SIPUB, "get", service_sipub, service_sipub_features },
    { XMPP_NS_SIPUB, "set", service_sipub, NULL },
};

#define SERVICE_ROUTES_COUNT (sizeof(service_routes) / sizeof(*service_routes))

/* Features a node (a repository, directory or file) answers for. */
static const char *const service_node_features[] = { XMPP_NS_DISCO_INFO, XMPP_NS_FIS,
                                                     XMPP_NS_RSM };

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

int service_new(struct service **out, const struct service_settings *settings)
{
    struct service *service = calloc(1, sizeof(*service));
    const struct listing_settings listing = {
        .pubsub = settings->pubsub, .page_max = settings->page_max,
        .verbose_max = settings->verbose_max,
    };

    *out = NULL;
    if (!service || !(service->name = strdup(settings->name)) ||
        listing_new(&service->listing, &listing) != 0 ||
        ratelimit_new(&service->limiter, settings->rate_per_second, settings->rate_burst) != 0) {
        service_free(service);
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
    listing_free(service->listing);
    ratelimit_free(service->limiter);
    free(service);
}

void service_set_catalog(struct service *service, struct catalog *catalog)
{
    listing_set_catalog(service->listing, catalog);
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

    /* A node is a path in the published tree: it answers for listings. */
    if (node) {
        if ((reply = listing_node_check(service->listing, iq, node)))
            return reply;
        features = service_node_features;
        count = sizeof(service_node_features) / sizeof(*service_node_features);
    }
    reply = stanza_iq_result(ctx, iq);
    query = disco_info_build(ctx, node, &identity, 1, features, count);
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

static xmpp_stanza_t *service_disco_items(struct service *service, xmpp_stanza_t *iq,
                                          xmpp_stanza_t *payload)
{
    return listing_disco_items(service->listing, iq, payload);
}

static xmpp_stanza_t *service_fis(struct service *service, xmpp_stanza_t *iq,
                                  xmpp_stanza_t *payload)
{
    return listing_fis(service->listing, iq, payload);
}

static xmpp_stanza_t *service_fileshare(struct service *service, xmpp_stanza_t *iq,
                                        xmpp_stanza_t *payload)
{
    return listing_fileshare(service->listing, iq, payload);
}

/* The requester's bare JID, the key of its rate (at most len - 1 bytes). */
static void service_requester(xmpp_stanza_t *iq, char *out, size_t len)
{
    const char *from = xmpp_stanza_get_from(iq);
    size_t n = from ? strcspn(from, "/") : 0;

    if (n >= len)
        n = len - 1;
    memcpy(out, from ? from : "", n);
    out[n] = '\0';
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

static xmpp_stanza_t *service_sipub(struct service *service, xmpp_stanza_t *iq,
                                    xmpp_stanza_t *payload)
{
    if (!service->transfers)
        return stanza_iq_error(xmpp_stanza_get_context(iq), iq, "cancel",
                               "service-unavailable", NULL);
    return transfers_on_sipub(service->transfers, iq, payload);
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
    if (ns) {
        char who[1024];

        service_requester(iq, who, sizeof(who));
        if (!ratelimit_take(service->limiter, who, clock_now_ms())) {
            log_debug("query", "rate limit: requester=%s", who);
            return stanza_iq_error(ctx, iq, "wait", "resource-constraint",
                                   "too many requests; slow down");
        }
    }
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
