/*
 * test_service.c - what the component JID answers, stanza by stanza, without
 * a server: disco#info, ping, and the errors for everything else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <strophe.h>

#include "service.h"
#include "xmpp/disco.h"
#include "xmpp/stanza.h"

struct fixture {
    xmpp_ctx_t *ctx;
    struct service *service;
};

static int setup(void **state)
{
    static struct fixture f;

    xmpp_initialize();
    f.ctx = xmpp_ctx_new(NULL, NULL);
    const struct service_settings settings = {
        .name = "Test releases", .pubsub = "pubsub.localhost", .page_max = 100,
        .verbose_max = 20, .rate_per_second = 1000, .rate_burst = 1000,
    };

    assert_int_equal(service_new(&f.service, &settings), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    service_free(f->service);
    xmpp_ctx_free(f->ctx);
    xmpp_shutdown();
    return 0;
}

/* Answers the stanza given as text; returns the reply (or NULL). */
static xmpp_stanza_t *answer(struct fixture *f, const char *text)
{
    xmpp_stanza_t *request = xmpp_stanza_new_from_string(f->ctx, text);
    xmpp_stanza_t *reply;

    assert_non_null(request);
    reply = service_handle_iq(f->service, request);
    xmpp_stanza_release(request);
    return reply;
}

static void assert_error(xmpp_stanza_t *reply, const char *type, const char *condition)
{
    xmpp_stanza_t *error;

    assert_non_null(reply);
    assert_string_equal(xmpp_stanza_get_type(reply), "error");
    error = xmpp_stanza_get_child_by_name(reply, "error");
    assert_non_null(error);
    assert_string_equal(xmpp_stanza_get_type(error), type);
    assert_string_equal(stanza_error_condition(reply), condition);
}

static void test_service__disco_info(void **state)
{
    struct fixture *f = *state;
    xmpp_stanza_t *reply = answer(f,
        "<iq type='get' id='d1' from='alice@localhost/x' to='files.localhost'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    xmpp_stanza_t *query, *identity;
    const char *features[17];
    size_t n = 0;

    assert_non_null(reply);
    assert_string_equal(xmpp_stanza_get_type(reply), "result");
    assert_string_equal(xmpp_stanza_get_id(reply), "d1");
    assert_string_equal(xmpp_stanza_get_to(reply), "alice@localhost/x");
    assert_string_equal(xmpp_stanza_get_from(reply), "files.localhost");
    query = xmpp_stanza_get_child_by_ns(reply, XMPP_NS_DISCO_INFO);
    assert_non_null(query);
    assert_null(xmpp_stanza_get_attribute(query, "node"));

    identity = xmpp_stanza_get_child_by_name(query, "identity");
    assert_non_null(identity);
    assert_string_equal(xmpp_stanza_get_attribute(identity, "category"), "component");
    assert_string_equal(xmpp_stanza_get_attribute(identity, "type"), "generic");
    assert_string_equal(xmpp_stanza_get_attribute(identity, "name"), "Test releases");

    for (xmpp_stanza_t *c = xmpp_stanza_get_children(query); c; c = xmpp_stanza_get_next(c))
        if (strcmp(xmpp_stanza_get_name(c), "feature") == 0 && n < 17)
            features[n++] = xmpp_stanza_get_attribute(c, "var");
    /* Exactly what is served. */
    assert_int_equal(n, 17);
    assert_string_equal(features[0], "http://jabber.org/protocol/disco#info");
    assert_string_equal(features[1], "http://jabber.org/protocol/disco#items");
    assert_string_equal(features[2], "urn:xmpp:ping");
    assert_string_equal(features[3], "urn:xmpp:fis:0");
    assert_string_equal(features[4], "http://jabber.org/protocol/rsm");
    assert_string_equal(features[5], "http://jabber.org/protocol/si/profile/fileshare");
    assert_string_equal(features[6], "urn:xmpp:jingle:1");
    assert_string_equal(features[7], "urn:xmpp:jingle:apps:file-transfer:5");
    assert_string_equal(features[8], "urn:xmpp:jingle:transports:ibb:1");
    assert_string_equal(features[9], "urn:xmpp:jingle:transports:s5b:1");
    assert_string_equal(features[10], "urn:xmpp:hashes:2");
    assert_string_equal(features[11], "urn:xmpp:hash-function-text-names:sha-256");
    assert_string_equal(features[12], "http://jabber.org/protocol/ibb");
    assert_string_equal(features[13], "http://jabber.org/protocol/sipub");
    assert_string_equal(features[14], "http://jabber.org/protocol/si");
    assert_string_equal(features[15], "http://jabber.org/protocol/si/profile/file-transfer");
    assert_string_equal(features[16], "http://jabber.org/protocol/bytestreams");
    xmpp_stanza_release(reply);
}

static void test_service__features_match_routes(void **state)
{
    (void)state;
    const char *const *features;
    size_t n = service_features(&features);

    assert_int_equal(n, 17);
    assert_string_equal(features[0], XMPP_NS_DISCO_INFO);
    assert_string_equal(features[2], "urn:xmpp:ping");
    assert_string_equal(features[6], "urn:xmpp:jingle:1");
    assert_string_equal(features[12], "http://jabber.org/protocol/ibb");
    assert_string_equal(features[13], "http://jabber.org/protocol/sipub");
}

static void test_service__disco_info_node_needs_catalog(void **state)
{
    struct fixture *f = *state;
    xmpp_stanza_t *reply = answer(f,
        "<iq type='get' id='d2' from='a@localhost/x' to='files.localhost'>"
        "<query xmlns='http://jabber.org/protocol/disco#info' node='releases/x'/></iq>");

    /* Nodes are paths in the catalog: without one, come back later. */
    assert_error(reply, "wait", "internal-server-error");
    xmpp_stanza_release(reply);

    /* A path that can name nothing is refused before any lookup. */
    reply = answer(f, "<iq type='get' id='d3' from='a@localhost/x' to='files.localhost'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info' node='r/../x'/></iq>");
    assert_error(reply, "modify", "bad-request");
    xmpp_stanza_release(reply);
}

/* Requests the service reads before it asks the catalog. */
static void test_service__fis_bad_requests(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {
        "<query xmlns='urn:xmpp:fis:0' node='releases/../etc'/>",
        "<query xmlns='urn:xmpp:fis:0' node='releases//x'/>",
        "<query xmlns='urn:xmpp:fis:0' node='/releases'/>",
        "<query xmlns='urn:xmpp:fis:0' node='releases/'/>",
        "<query xmlns='urn:xmpp:fis:0' node=''/>",
        "<query xmlns='urn:xmpp:fis:0' node='releases/.'/>",
        "<query xmlns='urn:xmpp:fis:0' node='releases/a&#x7f;b'/>",
        "<query xmlns='urn:xmpp:fis:0'><set xmlns='http://jabber.org/protocol/rsm'>"
        "<index>-1</index></set></query>",
        "<query xmlns='urn:xmpp:fis:0'><set xmlns='http://jabber.org/protocol/rsm'>"
        "<max>101</max></set></query>",
        "<query xmlns='urn:xmpp:fis:0'><set xmlns='http://jabber.org/protocol/rsm'>"
        "<max>ten</max></set></query>",
        "<query xmlns='urn:xmpp:fis:0'><set xmlns='http://jabber.org/protocol/rsm'>"
        "<after>x</after><index>3</index></set></query>",
        "<query xmlns='urn:xmpp:fis:0'><set xmlns='http://jabber.org/protocol/rsm'>"
        "<after/></set></query>",
        "<other xmlns='urn:xmpp:fis:0'/>",
        "<fileshare xmlns='http://jabber.org/protocol/si/profile/fileshare'/>",
    };
    char text[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        xmpp_stanza_t *reply;

        snprintf(text, sizeof(text), "<iq type='get' id='b%zu' from='a@localhost/x' "
                 "to='files.localhost'>%s</iq>", i, bad[i]);
        reply = answer(f, text);
        assert_error(reply, "modify", "bad-request");
        assert_non_null(xmpp_stanza_get_child_by_name(
            xmpp_stanza_get_child_by_name(reply, "error"), "text"));
        xmpp_stanza_release(reply);
    }
}

static void test_service__listing_without_catalog(void **state)
{
    struct fixture *f = *state;
    xmpp_stanza_t *reply = answer(f,
        "<iq type='get' id='w1' from='a@localhost/x' to='files.localhost'>"
        "<query xmlns='urn:xmpp:fis:0' node='releases'/></iq>");

    assert_error(reply, "wait", "internal-server-error");
    xmpp_stanza_release(reply);
}

static void test_service__rate_limit(void **state)
{
    (void)state;
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    const struct service_settings settings = {
        .name = "limited", .pubsub = "pubsub.localhost", .page_max = 10, .verbose_max = 5,
        .rate_per_second = 1, .rate_burst = 3,
    };
    struct service *service;
    int refused = 0, answered = 0;

    assert_int_equal(service_new(&service, &settings), 0);
    for (int i = 0; i < 6; i++) {
        /* Several resources of one account share its allowance. */
        char text[256];
        xmpp_stanza_t *request, *reply;

        snprintf(text, sizeof(text), "<iq type='get' id='r%d' from='busy@localhost/r%d' "
                 "to='files.localhost'><ping xmlns='urn:xmpp:ping'/></iq>", i, i);
        request = xmpp_stanza_new_from_string(ctx, text);
        reply = service_handle_iq(service, request);
        if (strcmp(xmpp_stanza_get_type(reply), "result") == 0) {
            answered++;
        } else {
            assert_error(reply, "wait", "resource-constraint");
            refused++;
        }
        xmpp_stanza_release(reply);
        xmpp_stanza_release(request);
    }
    /* The burst, and at most one refilled token if a second passed. */
    assert_in_range(answered, 3, 4);
    assert_int_equal(refused, 6 - answered);
    service_free(service);
    xmpp_ctx_free(ctx);
}

static void test_service__ping(void **state)
{
    struct fixture *f = *state;
    xmpp_stanza_t *reply = answer(f,
        "<iq type='get' id='p1' from='a@localhost/x' to='files.localhost'>"
        "<ping xmlns='urn:xmpp:ping'/></iq>");

    assert_non_null(reply);
    assert_string_equal(xmpp_stanza_get_type(reply), "result");
    assert_string_equal(xmpp_stanza_get_id(reply), "p1");
    assert_null(stanza_first_element(reply));
    xmpp_stanza_release(reply);
}

static void test_service__unknown_namespace(void **state)
{
    struct fixture *f = *state;
    xmpp_stanza_t *reply = answer(f,
        "<iq type='get' id='u1' from='a@localhost/x' to='files.localhost'>"
        "<query xmlns='urn:xmpp:nothing-here:0'/></iq>");

    assert_error(reply, "cancel", "service-unavailable");
    assert_string_equal(xmpp_stanza_get_id(reply), "u1");
    xmpp_stanza_release(reply);

    /* A type nobody serves is refused the same way. */
    reply = answer(f, "<iq type='set' id='u2' from='a@localhost/x' to='files.localhost'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert_error(reply, "cancel", "service-unavailable");
    xmpp_stanza_release(reply);
}

static void test_service__malformed_requests(void **state)
{
    struct fixture *f = *state;
    xmpp_stanza_t *reply = answer(f, "<iq type='get' id='m1' from='a@localhost/x'/>");

    assert_error(reply, "modify", "bad-request");
    xmpp_stanza_release(reply);

    reply = answer(f, "<iq type='get' id='m2' from='a@localhost/x'>just text</iq>");
    assert_error(reply, "modify", "bad-request");
    xmpp_stanza_release(reply);
}

static void test_service__no_answer_to_answers(void **state)
{
    struct fixture *f = *state;

    assert_null(answer(f, "<iq type='result' id='r1' from='pubsub.localhost'/>"));
    assert_null(answer(f, "<iq type='error' id='r2' from='pubsub.localhost'>"
                          "<error type='cancel'><item-not-found "
                          "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    assert_null(answer(f, "<iq id='r3' from='a@localhost/x'><ping xmlns='urn:xmpp:ping'/></iq>"));
    assert_null(answer(f, "<message from='a@localhost/x'><body>hi</body></message>"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service__disco_info),
        cmocka_unit_test(test_service__features_match_routes),
        cmocka_unit_test(test_service__disco_info_node_needs_catalog),
        cmocka_unit_test(test_service__fis_bad_requests),
        cmocka_unit_test(test_service__listing_without_catalog),
        cmocka_unit_test(test_service__rate_limit),
        cmocka_unit_test(test_service__ping),
        cmocka_unit_test(test_service__unknown_namespace),
        cmocka_unit_test(test_service__malformed_requests),
        cmocka_unit_test(test_service__no_answer_to_answers),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
