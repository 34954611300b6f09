/*
 * test_jingle.c - the parser of a requester's Jingle session-initiate
 * (XEP-0166 + XEP-0234 + XEP-0261), without a server: good requests, and
 * malformed or unserved ones refused with the right condition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <strophe.h>

#include "xmpp/jingle.h"

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

/* sha-256 of "" in base64. */
#define EMPTY_SHA256 "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

#define CONTENT(file, transport) \
    "<content creator='initiator' name='c1' senders='responder'>" \
    "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>" file "</file>" \
    "</description>" transport "</content>"
#define IBB "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='i1'/>"

/* Parses <jingle>body</jingle>; returns the parser's verdict. */
static bool parse(const char *body, struct jingle_request *req, struct jingle_refusal *why)
{
    char text[4096];
    xmpp_stanza_t *jingle;
    bool ok;

    snprintf(text, sizeof(text),
             "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s1'>%s</jingle>",
             body);
    jingle = xmpp_stanza_new_from_string(ctx, text);
    assert_non_null(jingle);
    ok = jingle_request_parse(jingle, req, why);
    xmpp_stanza_release(jingle);
    return ok;
}

static void refused(const char *body, const char *condition)
{
    struct jingle_request req;
    struct jingle_refusal why;

    assert_false(parse(body, &req, &why));
    assert_string_equal(why.condition, condition);
    assert_non_null(why.type);
}

static void test_jingle__by_name(void **state)
{
    struct jingle_request req;
    struct jingle_refusal why;

    (void)state;
    assert_true(parse(CONTENT("<name>repo/dir/file.bin</name>", IBB), &req, &why));
    assert_string_equal(req.sid, "s1");
    assert_string_equal(req.content_name, "c1");
    assert_string_equal(req.creator, "initiator");
    assert_string_equal(req.name, "repo/dir/file.bin");
    assert_false(req.has_sha256);
    assert_false(req.has_range);
    assert_int_equal(req.offset, 0);
    assert_int_equal(req.length, -1);
    assert_true(req.transport_ibb);
    assert_string_equal(req.ibb_sid, "i1");
    assert_int_equal(req.block_size, 4096);
}

static void test_jingle__by_hash_with_range(void **state)
{
    static const unsigned char empty[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
        0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55 };
    struct jingle_request req;
    struct jingle_refusal why;

    (void)state;
    assert_true(parse(CONTENT("<hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>"
                              "2jmj7l5rSw0yVb/vlWAYkK/YBwk=</hash>"
                              "<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>" EMPTY_SHA256
                              "</hash><range offset='1024' length='10'/>", IBB),
                      &req, &why));
    assert_true(req.has_sha256);
    assert_memory_equal(req.sha256, empty, 32);
    assert_string_equal(req.name, "");
    assert_true(req.has_range);
    assert_int_equal(req.offset, 1024);
    assert_int_equal(req.length, 10);

    /* <range/> without attributes: the whole file. */
    assert_true(parse(CONTENT("<name>r/f</name><range/>", IBB), &req, &why));
    assert_true(req.has_range);
    assert_int_equal(req.offset, 0);
    assert_int_equal(req.length, -1);
}

static void test_jingle__malformed(void **state)
{
    (void)state;
    refused("", "bad-request");                                           /* no content */
    refused(CONTENT("", IBB), "bad-request");                             /* nothing named */
    refused(CONTENT("<name></name>", IBB), "bad-request");                /* empty name */
    refused(CONTENT("<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>AAAA</hash>", IBB),
            "bad-request");                                               /* short hash */
    refused(CONTENT("<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>!!</hash>", IBB),
            "bad-request");                                               /* not base64 */
    refused(CONTENT("<name>r/f</name><range offset='-1'/>", IBB), "bad-request");
    refused(CONTENT("<name>r/f</name><range offset='1x'/>", IBB), "bad-request");
    refused(CONTENT("<name>r/f</name><range length='99999999999999999999999'/>", IBB),
            "bad-request");
    refused(CONTENT("<name>r/f</name>", ""), "bad-request");              /* no transport */
    refused(CONTENT("<name>r/f</name>",
                    "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' sid='i1'/>"),
            "bad-request");                                               /* no block-size */
    refused(CONTENT("<name>r/f</name>",
                    "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='0' "
                    "sid='i1'/>"), "bad-request");
    refused(CONTENT("<name>r/f</name>",
                    "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='70000' "
                    "sid='i1'/>"), "bad-request");
    refused("<content creator='initiator' senders='responder'>"
            "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>r/f</name>"
            "</file></description>" IBB "</content>", "bad-request");   /* no content name */
    refused("<content creator='initiator' name='c' senders='responder'>"
            "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'/>" IBB "</content>",
            "bad-request");                                               /* no <file/> */
}

static void test_jingle__not_served(void **state)
{
    (void)state;
    /* An offer (the daemon receives no files). */
    refused("<content creator='initiator' name='c' senders='initiator'>"
            "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>r/f</name>"
            "</file></description>" IBB "</content>", "feature-not-implemented");
    /* The 2008 draft's namespace, and RTP. */
    refused("<content creator='initiator' name='c' senders='responder'>"
            "<description xmlns='urn:xmpp:jingle:apps:file-transfer:3'><file><name>r/f</name>"
            "</file></description>" IBB "</content>", "feature-not-implemented");
    refused("<content creator='initiator' name='c' senders='responder'>"
            "<description xmlns='urn:xmpp:jingle:apps:rtp:1'/>" IBB "</content>",
            "feature-not-implemented");
    /* SOCKS5 over UDP, and an unknown transport. */
    refused(CONTENT("<name>r/f</name>", "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' "
                    "sid='x' mode='udp'/>"), "feature-not-implemented");
    refused(CONTENT("<name>r/f</name>", "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'"
                    "/>"), "feature-not-implemented");
    /* Two files at once. */
    refused(CONTENT("<name>r/f</name>", IBB) CONTENT("<name>r/g</name>", IBB),
            "feature-not-implemented");
}

#define CAND(cid, host, port, prio, type) \
    "<candidate cid='" cid "' host='" host "' jid='a@b/c' port='" port "' priority='" prio \
    "' type='" type "'/>"

static void test_jingle__s5b(void **state)
{
    struct jingle_request req;
    struct jingle_refusal why;
    char body[4096];
    size_t n;

    (void)state;
    /* Candidates kept best first, whatever their order in the offer. */
    assert_true(parse(CONTENT("<name>r/f</name>",
                              "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t1' "
                              "mode='tcp' dstaddr='x'>"
                              CAND("p", "10.0.0.9", "7777", "655360", "proxy")
                              CAND("d", "127.0.0.1", "5086", "8257536", "direct")
                              CAND("a", "::1", "5087", "7864320", "assisted") "</transport>"),
                      &req, &why));
    assert_true(req.transport_s5b);
    assert_false(req.transport_ibb);
    assert_string_equal(req.s5b.sid, "t1");
    assert_int_equal(req.s5b.count, 3);
    assert_string_equal(req.s5b.candidates[0].cid, "d");
    assert_string_equal(req.s5b.candidates[0].host, "127.0.0.1");
    assert_int_equal(req.s5b.candidates[0].port, 5086);
    assert_false(req.s5b.candidates[0].proxy);
    assert_string_equal(req.s5b.candidates[1].cid, "a");
    assert_string_equal(req.s5b.candidates[2].cid, "p");
    assert_true(req.s5b.candidates[2].proxy);

    /* No candidate at all is an offer too (the requester reaches ours). */
    assert_true(parse(CONTENT("<name>r/f</name>",
                              "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t2'/>"),
                      &req, &why));
    assert_int_equal(req.s5b.count, 0);

    /* More than the table holds: the lowest priorities are dropped. */
    n = (size_t)snprintf(body, sizeof(body), "%s",
                         "<content creator='initiator' name='c1' senders='responder'>"
                         "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>"
                         "<name>r/f</name></file></description>"
                         "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t3'>");
    for (int i = 0; i < JINGLE_CANDIDATES_MAX + 4; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "<candidate cid='c%d' host='127.0.0.1' jid='a@b/c' port='%d' "
                              "priority='%d' type='direct'/>", i, 1000 + i, 100 + i);
    snprintf(body + n, sizeof(body) - n, "</transport></content>");
    assert_true(parse(body, &req, &why));
    assert_int_equal(req.s5b.count, JINGLE_CANDIDATES_MAX);
    assert_string_equal(req.s5b.candidates[0].cid, "c11");
    assert_int_equal(req.s5b.candidates[JINGLE_CANDIDATES_MAX - 1].priority, 104);

    /* Malformed candidates and transports. */
    refused(CONTENT("<name>r/f</name>", "<transport xmlns='urn:xmpp:jingle:transports:s5b:1'/>"),
            "bad-request");
    refused(CONTENT("<name>r/f</name>", "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' "
                    "sid='t'>" CAND("d", "127.0.0.1", "0", "1", "direct") "</transport>"),
            "bad-request");
    refused(CONTENT("<name>r/f</name>", "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' "
                    "sid='t'>" CAND("d", "127.0.0.1", "70000", "1", "direct") "</transport>"),
            "bad-request");
    refused(CONTENT("<name>r/f</name>", "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' "
                    "sid='t'>" CAND("d", "127.0.0.1", "1", "-5", "direct") "</transport>"),
            "bad-request");
    refused(CONTENT("<name>r/f</name>", "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' "
                    "sid='t'><candidate cid='d' port='1' priority='1'/></transport>"),
            "bad-request");
}

static void test_jingle__s5b_info(void **state)
{
    static const struct {
        const char *payload;
        const char *sid;
        enum jingle_s5b_info info;
        const char *cid;
    } cases[] = {
        { "<candidate-used cid='x1'/>", "t1", JINGLE_S5B_CANDIDATE_USED, "x1" },
        { "<candidate-used/>", "t1", JINGLE_S5B_UNKNOWN, "" },
        { "<candidate-error/>", "t1", JINGLE_S5B_CANDIDATE_ERROR, "" },
        { "<activated cid='p'/>", "t1", JINGLE_S5B_ACTIVATED, "p" },
        { "<proxy-error/>", "t1", JINGLE_S5B_PROXY_ERROR, "" },
        { "<candidate-error/>", "other", JINGLE_S5B_UNKNOWN, "" },
        { "<whatever/>", "t1", JINGLE_S5B_UNKNOWN, "" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char text[1024], cid[JINGLE_TEXT_MAX];
        xmpp_stanza_t *jingle;

        snprintf(text, sizeof(text),
                 "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s1'>"
                 "<content creator='initiator' name='c1'>"
                 "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t1'>%s</transport>"
                 "</content></jingle>", cases[i].payload);
        jingle = xmpp_stanza_new_from_string(ctx, text);
        assert_non_null(jingle);
        assert_int_equal(jingle_s5b_info_parse(jingle, cases[i].sid, cid), cases[i].info);
        if (cases[i].info != JINGLE_S5B_UNKNOWN)
            assert_string_equal(cid, cases[i].cid);
        xmpp_stanza_release(jingle);
    }
}

static void test_jingle__no_sid(void **state)
{
    struct jingle_request req;
    struct jingle_refusal why;
    xmpp_stanza_t *jingle = xmpp_stanza_new_from_string(ctx,
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'>"
        CONTENT("<name>r/f</name>", IBB) "</jingle>");

    (void)state;
    assert_non_null(jingle);
    assert_false(jingle_request_parse(jingle, &req, &why));
    assert_string_equal(why.condition, "bad-request");
    xmpp_stanza_release(jingle);
}

static void test_jingle__builders(void **state)
{
    xmpp_stanza_t *jingle, *iq = jingle_iq_new(ctx, "a@b/c", "id1", "session-terminate", "s1",
                                               &jingle);
    char *buf;
    size_t len;

    (void)state;
    assert_non_null(iq);
    assert_int_equal(jingle_add_reason(jingle, "failed-application", "file-not-available",
                                       XMPP_NS_JINGLE_FT_ERRORS), 0);
    assert_int_equal(xmpp_stanza_to_text(iq, &buf, &len), XMPP_EOK);
    assert_non_null(strstr(buf, "action=\"session-terminate\""));
    assert_non_null(strstr(buf, "<reason><failed-application/><file-not-available "
                                "xmlns=\"urn:xmpp:jingle:apps:file-transfer:errors:0\"/>"));
    xmpp_free(ctx, buf);
    xmpp_stanza_release(iq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jingle__by_name),
        cmocka_unit_test(test_jingle__by_hash_with_range),
        cmocka_unit_test(test_jingle__malformed),
        cmocka_unit_test(test_jingle__not_served),
        cmocka_unit_test(test_jingle__s5b),
        cmocka_unit_test(test_jingle__s5b_info),
        cmocka_unit_test(test_jingle__no_sid),
        cmocka_unit_test(test_jingle__builders),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
