/*
 * test_si.c - the stanza code of sipub (XEP-0137) and SI file transfer
 * (XEP-0095, XEP-0096) and of the daemon's IBB (XEP-0047) stanzas, without
 * a server: <start/> parsed or refused, "rev-N" ids read, <starting/>, the
 * SI offer built, the requester's answer parsed (method, range) or refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <strophe.h>

#include "xmpp/ibb.h"
#include "xmpp/si.h"

static xmpp_ctx_t *ctx;

static int setup(void **state)
{
    (void)state;
    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, NULL);
    return ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}

static xmpp_stanza_t *parse(const char *text)
{
    xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(ctx, text);

    assert_non_null(stanza);
    return stanza;
}

/* The stanza as text, for substring checks (the caller frees it). */
static char *text_of(xmpp_stanza_t *stanza)
{
    char *buf;
    size_t len;

    assert_int_equal(xmpp_stanza_to_text(stanza, &buf, &len), XMPP_EOK);
    return buf;
}

static void start_refused(const char *text, const char *condition)
{
    xmpp_stanza_t *start = parse(text);
    struct si_refusal why;
    char id[SI_TEXT_MAX];

    assert_false(sipub_start_parse(start, id, sizeof(id), &why));
    assert_string_equal(why.condition, condition);
    assert_non_null(why.type);
    assert_non_null(why.text);
    assert_string_equal(id, "");
    xmpp_stanza_release(start);
}

static void test_si__start(void **state)
{
    xmpp_stanza_t *start = parse("<start xmlns='http://jabber.org/protocol/sipub' id='rev-42'/>");
    struct si_refusal why;
    char id[SI_TEXT_MAX], longer[400];

    (void)state;
    assert_true(sipub_start_parse(start, id, sizeof(id), &why));
    assert_string_equal(id, "rev-42");
    xmpp_stanza_release(start);

    start_refused("<start xmlns='http://jabber.org/protocol/sipub'/>", "bad-request");
    start_refused("<start xmlns='http://jabber.org/protocol/sipub' id=''/>", "bad-request");
    start_refused("<start xmlns='urn:other' id='rev-1'/>", "bad-request");
    start_refused("<begin xmlns='http://jabber.org/protocol/sipub' id='rev-1'/>", "bad-request");
    memset(longer, 'a', sizeof(longer));
    memcpy(longer, "<start xmlns='http://jabber.org/protocol/sipub' id='", 52);
    memcpy(longer + sizeof(longer) - 4, "'/>", 4);
    start_refused(longer, "bad-request");
}

static void test_si__id_revision(void **state)
{
    (void)state;
    assert_int_equal(sipub_id_revision("rev-1"), 1);
    assert_int_equal(sipub_id_revision("rev-9223372036854775807"), INT64_MAX);
    assert_int_equal(sipub_id_revision("rev-9223372036854775808"), 0);
    assert_int_equal(sipub_id_revision("rev-0"), 0);
    assert_int_equal(sipub_id_revision("rev-01"), 0);
    assert_int_equal(sipub_id_revision("rev--1"), 0);
    assert_int_equal(sipub_id_revision("rev-+1"), 0);
    assert_int_equal(sipub_id_revision("rev-12x"), 0);
    assert_int_equal(sipub_id_revision("rev-"), 0);
    assert_int_equal(sipub_id_revision("REV-1"), 0);
    assert_int_equal(sipub_id_revision("publish-0123"), 0);
    assert_int_equal(sipub_id_revision(NULL), 0);
}

static void test_si__starting(void **state)
{
    xmpp_stanza_t *starting = sipub_starting_new(ctx, "sipub-1-ab");

    (void)state;
    assert_non_null(starting);
    assert_string_equal(xmpp_stanza_get_name(starting), "starting");
    assert_string_equal(xmpp_stanza_get_ns(starting), XMPP_NS_SIPUB);
    assert_string_equal(xmpp_stanza_get_attribute(starting, "sid"), "sipub-1-ab");
    assert_null(xmpp_stanza_get_children(starting));
    xmpp_stanza_release(starting);
}

static void test_si__offer(void **state)
{
    const struct si_offer offer = {
        .sid = "s1", .mime_type = "application/x-xz", .name = "proj-1.0.tar.xz",
        .size = 1022, .md5_hex = "552da749930852c69ae5d2141d3766b1",
        .date = "1969-07-21T02:56:15Z", .desc = "The release", .ranged = true,
        .methods = SI_METHOD_IBB | SI_METHOD_S5B,
    };
    xmpp_stanza_t *iq = si_offer_iq_new(ctx, "a@b/c", "sp1-o", &offer);
    xmpp_stanza_t *si, *file, *x, *field, *option;
    char *buf;

    (void)state;
    assert_non_null(iq);
    assert_string_equal(xmpp_stanza_get_type(iq), "set");
    assert_string_equal(xmpp_stanza_get_to(iq), "a@b/c");
    assert_string_equal(xmpp_stanza_get_id(iq), "sp1-o");
    si = xmpp_stanza_get_child_by_ns(iq, XMPP_NS_SI);
    assert_non_null(si);
    assert_string_equal(xmpp_stanza_get_attribute(si, "id"), "s1");
    assert_string_equal(xmpp_stanza_get_attribute(si, "mime-type"), "application/x-xz");
    assert_string_equal(xmpp_stanza_get_attribute(si, "profile"), XMPP_NS_SI_FILE_TRANSFER);
    file = xmpp_stanza_get_child_by_ns(si, XMPP_NS_SI_FILE_TRANSFER);
    assert_non_null(file);
    assert_string_equal(xmpp_stanza_get_name(file), "file");
    assert_string_equal(xmpp_stanza_get_attribute(file, "name"), "proj-1.0.tar.xz");
    assert_string_equal(xmpp_stanza_get_attribute(file, "size"), "1022");
    assert_string_equal(xmpp_stanza_get_attribute(file, "hash"),
                        "552da749930852c69ae5d2141d3766b1");
    assert_string_equal(xmpp_stanza_get_attribute(file, "date"), "1969-07-21T02:56:15Z");
    assert_non_null(xmpp_stanza_get_child_by_name(file, "range"));
    /* In the offer, <range/> has no attributes: the sender can do ranges. */
    assert_int_equal(xmpp_stanza_get_attribute_count(xmpp_stanza_get_child_by_name(file, "range")),
                     0);
    buf = text_of(file);
    assert_non_null(strstr(buf, "<desc>The release</desc>"));
    xmpp_free(ctx, buf);
    x = xmpp_stanza_get_child_by_ns(xmpp_stanza_get_child_by_ns(si, XMPP_NS_FEATURE_NEG),
                                    XMPP_NS_DATA);
    assert_non_null(x);
    assert_string_equal(xmpp_stanza_get_attribute(x, "type"), "form");
    field = xmpp_stanza_get_child_by_name(x, "field");
    assert_non_null(field);
    assert_string_equal(xmpp_stanza_get_attribute(field, "var"), "stream-method");
    assert_string_equal(xmpp_stanza_get_attribute(field, "type"), "list-single");
    /* SOCKS5 first, IBB second: XEP-0096's order of preference. */
    option = xmpp_stanza_get_children(field);
    buf = text_of(option);
    assert_string_equal(buf, "<option><value>http://jabber.org/protocol/bytestreams</value>"
                             "</option>");
    xmpp_free(ctx, buf);
    buf = text_of(xmpp_stanza_get_next(option));
    assert_string_equal(buf, "<option><value>http://jabber.org/protocol/ibb</value></option>");
    xmpp_free(ctx, buf);
    assert_null(xmpp_stanza_get_next(xmpp_stanza_get_next(option)));
    xmpp_stanza_release(iq);
}

static void test_si__offer_minimal(void **state)
{
    const struct si_offer offer = { .sid = "s2", .name = "f", .size = 0,
                                    .methods = SI_METHOD_IBB };
    const struct si_offer none = { .sid = "s3", .name = "f", .size = 0 };
    xmpp_stanza_t *iq = si_offer_iq_new(ctx, "a@b/c", "sp2-o", &offer);
    xmpp_stanza_t *file;
    char *buf;

    (void)state;
    assert_non_null(iq);
    file = xmpp_stanza_get_child_by_ns(xmpp_stanza_get_child_by_ns(iq, XMPP_NS_SI),
                                       XMPP_NS_SI_FILE_TRANSFER);
    assert_string_equal(xmpp_stanza_get_attribute(file, "size"), "0");
    assert_null(xmpp_stanza_get_attribute(file, "hash"));
    assert_null(xmpp_stanza_get_attribute(file, "date"));
    assert_null(xmpp_stanza_get_children(file));
    buf = text_of(iq);
    assert_null(strstr(buf, "bytestreams"));
    assert_non_null(strstr(buf, "<value>http://jabber.org/protocol/ibb</value>"));
    xmpp_free(ctx, buf);
    xmpp_stanza_release(iq);
    /* An offer of no method at all is not built. */
    assert_null(si_offer_iq_new(ctx, "a@b/c", "sp3-o", &none));
}

#define RESULT(file, method) \
    "<iq type='result' id='sp1-o' from='a@b/c'><si xmlns='http://jabber.org/protocol/si'>" \
    file "<feature xmlns='http://jabber.org/protocol/feature-neg'>" \
    "<x xmlns='jabber:x:data' type='submit'><field var='stream-method'>" method \
    "</field></x></feature></si></iq>"
#define IBB_VALUE "<value>http://jabber.org/protocol/ibb</value>"
#define S5B_VALUE "<value>http://jabber.org/protocol/bytestreams</value>"

static bool result(const char *text, unsigned offered, struct si_choice *choice,
                   struct si_refusal *why)
{
    xmpp_stanza_t *iq = parse(text);
    bool ok = si_result_parse(iq, offered, choice, why);

    xmpp_stanza_release(iq);
    return ok;
}

static void test_si__result(void **state)
{
    struct si_choice choice;
    struct si_refusal why;

    (void)state;
    assert_true(result(RESULT("", IBB_VALUE), SI_METHOD_IBB, &choice, &why));
    assert_int_equal(choice.method, SI_METHOD_IBB);
    assert_false(choice.has_range);
    assert_int_equal(choice.offset, 0);
    assert_int_equal(choice.length, -1);

    assert_true(result(RESULT("", S5B_VALUE), SI_METHOD_IBB | SI_METHOD_S5B, &choice, &why));
    assert_int_equal(choice.method, SI_METHOD_S5B);

    /* slixmpp's form carries type='list-single' on the field: fine. */
    assert_true(result("<iq type='result'><si xmlns='http://jabber.org/protocol/si'>"
                       "<feature xmlns='http://jabber.org/protocol/feature-neg'>"
                       "<x xmlns='jabber:x:data' type='submit'>"
                       "<field var='stream-method' type='list-single'>" IBB_VALUE
                       "</field></x></feature></si></iq>",
                       SI_METHOD_IBB, &choice, &why));

    /* A range (XEP-0096 §3): offset and length, either alone, or none. */
    assert_true(result(RESULT("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'>"
                              "<range offset='128' length='256'/></file>", IBB_VALUE),
                       SI_METHOD_IBB, &choice, &why));
    assert_true(choice.has_range);
    assert_int_equal(choice.offset, 128);
    assert_int_equal(choice.length, 256);
    assert_true(result(RESULT("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'>"
                              "<range offset='128'/></file>", IBB_VALUE),
                       SI_METHOD_IBB, &choice, &why));
    assert_int_equal(choice.offset, 128);
    assert_int_equal(choice.length, -1);
    assert_true(result(RESULT("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'>"
                              "<range/></file>", IBB_VALUE),
                       SI_METHOD_IBB, &choice, &why));
    assert_false(choice.has_range);
    assert_int_equal(choice.offset, 0);
    assert_int_equal(choice.length, -1);
}

static void result_refused(const char *text, unsigned offered, const char *condition)
{
    struct si_choice choice;
    struct si_refusal why;

    assert_false(result(text, offered, &choice, &why));
    assert_string_equal(why.condition, condition);
    assert_non_null(why.type);
    assert_non_null(why.text);
}

static void test_si__result_refused(void **state)
{
    (void)state;
    /* A method that was not offered. */
    result_refused(RESULT("", S5B_VALUE), SI_METHOD_IBB, "bad-request");
    result_refused(RESULT("", "<value>urn:other</value>"), SI_METHOD_IBB, "bad-request");
    /* No value, two values, an empty one. */
    result_refused(RESULT("", ""), SI_METHOD_IBB, "bad-request");
    result_refused(RESULT("", IBB_VALUE S5B_VALUE), SI_METHOD_IBB | SI_METHOD_S5B,
                   "bad-request");
    result_refused(RESULT("", "<value/>"), SI_METHOD_IBB, "bad-request");
    /* No <si/>, no form, a form that is not submitted. */
    result_refused("<iq type='result' id='x'/>", SI_METHOD_IBB, "bad-request");
    result_refused("<iq type='result'><si xmlns='http://jabber.org/protocol/si'/></iq>",
                   SI_METHOD_IBB, "bad-request");
    result_refused("<iq type='result'><si xmlns='http://jabber.org/protocol/si'>"
                   "<feature xmlns='http://jabber.org/protocol/feature-neg'>"
                   "<x xmlns='jabber:x:data' type='form'><field var='stream-method'>"
                   IBB_VALUE "</field></x></feature></si></iq>", SI_METHOD_IBB, "bad-request");
    /* A malformed range. */
    result_refused(RESULT("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'>"
                          "<range offset='-1'/></file>", IBB_VALUE), SI_METHOD_IBB,
                   "bad-request");
    result_refused(RESULT("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'>"
                          "<range length='12ab'/></file>", IBB_VALUE), SI_METHOD_IBB,
                   "bad-request");
    result_refused(RESULT("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'>"
                          "<range offset='99999999999999999999'/></file>", IBB_VALUE),
                   SI_METHOD_IBB, "bad-request");
}

/* The IBB child of a built IQ, checked for its envelope. */
static xmpp_stanza_t *ibb_child(xmpp_stanza_t *iq, const char *name, const char *id)
{
    xmpp_stanza_t *child;

    assert_non_null(iq);
    assert_string_equal(xmpp_stanza_get_type(iq), "set");
    assert_string_equal(xmpp_stanza_get_to(iq), "a@b/c");
    assert_string_equal(xmpp_stanza_get_id(iq), id);
    child = xmpp_stanza_get_child_by_ns(iq, XMPP_NS_IBB);
    assert_non_null(child);
    assert_string_equal(xmpp_stanza_get_name(child), name);
    assert_string_equal(xmpp_stanza_get_attribute(child, "sid"), "s1");
    return child;
}

static void test_si__ibb(void **state)
{
    static const unsigned char bytes[] = "hello";
    xmpp_stanza_t *iq = ibb_open_iq_new(ctx, "a@b/c", "sp1-p", "s1", 4096);
    xmpp_stanza_t *child = ibb_child(iq, "open", "sp1-p");
    char *text;

    (void)state;
    assert_string_equal(xmpp_stanza_get_attribute(child, "block-size"), "4096");
    assert_string_equal(xmpp_stanza_get_attribute(child, "stanza"), "iq");
    xmpp_stanza_release(iq);

    iq = ibb_data_iq_new(ctx, "a@b/c", "sp1-d65535", "s1", 65535, bytes, 5);
    child = ibb_child(iq, "data", "sp1-d65535");
    assert_string_equal(xmpp_stanza_get_attribute(child, "seq"), "65535");
    text = xmpp_stanza_get_text(child);
    assert_string_equal(text, "aGVsbG8=");
    xmpp_free(ctx, text);
    xmpp_stanza_release(iq);

    iq = ibb_close_iq_new(ctx, "a@b/c", "sp1-c", "s1");
    child = ibb_child(iq, "close", "sp1-c");
    assert_int_equal(xmpp_stanza_get_attribute_count(child), 2); /* xmlns and sid */
    xmpp_stanza_release(iq);
}

static void test_si__bytestreams(void **state)
{
    const struct bytestreams_host hosts[] = {
        { .jid = "files.localhost", .host = "127.0.0.1", .port = 45313 },
        { .jid = "proxy.localhost", .host = "::1", .port = 7777 },
    };
    xmpp_stanza_t *iq = bytestreams_offer_iq_new(ctx, "a@b/c", "sp1-h", "s1", hosts, 2);
    xmpp_stanza_t *query, *host, *reply;
    char jid[64];

    (void)state;
    assert_non_null(iq);
    assert_string_equal(xmpp_stanza_get_type(iq), "set");
    assert_string_equal(xmpp_stanza_get_to(iq), "a@b/c");
    query = xmpp_stanza_get_child_by_ns(iq, XMPP_NS_BYTESTREAMS);
    assert_non_null(query);
    assert_string_equal(xmpp_stanza_get_attribute(query, "sid"), "s1");
    assert_string_equal(xmpp_stanza_get_attribute(query, "mode"), "tcp");
    host = xmpp_stanza_get_children(query);
    assert_string_equal(xmpp_stanza_get_name(host), "streamhost");
    assert_string_equal(xmpp_stanza_get_attribute(host, "jid"), "files.localhost");
    assert_string_equal(xmpp_stanza_get_attribute(host, "host"), "127.0.0.1");
    assert_string_equal(xmpp_stanza_get_attribute(host, "port"), "45313");
    host = xmpp_stanza_get_next(host);
    assert_string_equal(xmpp_stanza_get_attribute(host, "jid"), "proxy.localhost");
    assert_string_equal(xmpp_stanza_get_attribute(host, "port"), "7777");
    assert_null(xmpp_stanza_get_next(host));
    xmpp_stanza_release(iq);
    /* No streamhost at all: nothing to offer. */
    assert_null(bytestreams_offer_iq_new(ctx, "a@b/c", "sp1-h", "s1", hosts, 0));

    reply = parse("<iq type='result' id='sp1-h'><query xmlns='http://jabber.org/protocol/"
                  "bytestreams' sid='s1'><streamhost-used jid='proxy.localhost/r'/></query></iq>");
    assert_true(bytestreams_used_parse(reply, jid, sizeof(jid)));
    assert_string_equal(jid, "proxy.localhost/r");
    assert_false(bytestreams_used_parse(reply, jid, 8)); /* too long for the buffer */
    assert_string_equal(jid, "");
    xmpp_stanza_release(reply);
    reply = parse("<iq type='result' id='sp1-h'><query xmlns='http://jabber.org/protocol/"
                  "bytestreams' sid='s1'><streamhost-used/></query></iq>");
    assert_false(bytestreams_used_parse(reply, jid, sizeof(jid)));
    xmpp_stanza_release(reply);
    reply = parse("<iq type='result' id='sp1-h'/>");
    assert_false(bytestreams_used_parse(reply, jid, sizeof(jid)));
    xmpp_stanza_release(reply);

    iq = bytestreams_activate_iq_new(ctx, "proxy.localhost", "sp1-v", "s1", "a@b/c");
    assert_non_null(iq);
    assert_string_equal(xmpp_stanza_get_to(iq), "proxy.localhost");
    query = xmpp_stanza_get_child_by_ns(iq, XMPP_NS_BYTESTREAMS);
    assert_string_equal(xmpp_stanza_get_attribute(query, "sid"), "s1");
    {
        char *text = xmpp_stanza_get_text(xmpp_stanza_get_child_by_name(query, "activate"));

        assert_string_equal(text, "a@b/c");
        xmpp_free(ctx, text);
    }
    xmpp_stanza_release(iq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_si__start),
        cmocka_unit_test(test_si__id_revision),
        cmocka_unit_test(test_si__starting),
        cmocka_unit_test(test_si__offer),
        cmocka_unit_test(test_si__offer_minimal),
        cmocka_unit_test(test_si__result),
        cmocka_unit_test(test_si__result_refused),
        cmocka_unit_test(test_si__ibb),
        cmocka_unit_test(test_si__bytestreams),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
