/*
 * test_rsm.c - XEP-0059 <set/> reading and writing, and XEP-0329 request
 * paths and <file/> elements (xmpp/rsm.c, xmpp/fis.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <strophe.h>

#include "fr_error.h"
#include "xmpp/fis.h"
#include "xmpp/rsm.h"
#include "xmpp/stanza.h"

static xmpp_ctx_t *ctx;

static int setup(void **state)
{
    (void)state;
    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}

/* Parses the <set/> inside `set_xml` (wrapped in a query). */
static int parse(struct rsm_request *out, const char **why, const char *set_xml)
{
    char text[2048];
    xmpp_stanza_t *query;
    int rc;

    snprintf(text, sizeof(text), "<query xmlns='urn:xmpp:fis:0'>%s</query>", set_xml);
    query = xmpp_stanza_new_from_string(ctx, text);
    assert_non_null(query);
    rc = rsm_request_parse(out, why, query);
    xmpp_stanza_release(query);
    return rc;
}

#define SET(x) "<set xmlns='http://jabber.org/protocol/rsm'>" x "</set>"

static void test_rsm__requests(void **state)
{
    (void)state;
    struct rsm_request r;
    const char *why;

    assert_int_equal(parse(&r, &why, ""), 0);
    assert_false(r.present);
    assert_int_equal(r.max, -1);
    assert_int_equal(r.from, RSM_FROM_START);

    assert_int_equal(parse(&r, &why, SET("<max>10</max>")), 0);
    assert_true(r.present);
    assert_int_equal(r.max, 10);
    assert_int_equal(r.from, RSM_FROM_START);

    assert_int_equal(parse(&r, &why, SET("<max>0</max>")), 0);
    assert_int_equal(r.max, 0);

    assert_int_equal(parse(&r, &why, SET("<max>5</max><after>f61</after>")), 0);
    assert_int_equal(r.from, RSM_FROM_AFTER);
    assert_string_equal(r.uid, "f61");

    assert_int_equal(parse(&r, &why, SET("<before>d62</before><max>5</max>")), 0);
    assert_int_equal(r.from, RSM_FROM_BEFORE);
    assert_string_equal(r.uid, "d62");

    assert_int_equal(parse(&r, &why, SET("<max>5</max><before/>")), 0);
    assert_int_equal(r.from, RSM_FROM_END);

    assert_int_equal(parse(&r, &why, SET("<max>5</max><index>371</index>")), 0);
    assert_int_equal(r.from, RSM_FROM_INDEX);
    assert_int_equal(r.index, 371);
}

static void test_rsm__bad_requests(void **state)
{
    (void)state;
    static const char *const bad[] = {
        SET("<max>-1</max>"), SET("<max>1.5</max>"), SET("<max> 3</max>"), SET("<max/>"),
        SET("<max>1</max><max>2</max>"), SET("<index>-4</index>"), SET("<index>x</index>"),
        SET("<index>1234567890123456789</index>"), SET("<after/>"),
        SET("<after>a</after><before>b</before>"), SET("<before/><index>2</index>"),
        "<list xmlns='http://jabber.org/protocol/rsm'/>",
    };
    struct rsm_request r;
    const char *why;

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        why = NULL;
        assert_int_equal(parse(&r, &why, bad[i]), FR_EINVAL);
        assert_non_null(why);
    }
}

static void test_rsm__reply_round_trip(void **state)
{
    (void)state;
    xmpp_stanza_t *query = xmpp_stanza_new(ctx);
    struct rsm_reply in = { .first = "f61", .first_index = 20, .last = "f7a", .count = 800 };
    struct rsm_reply out;
    char *text;
    size_t len;

    xmpp_stanza_set_name(query, "query");
    xmpp_stanza_set_ns(query, XMPP_NS_FIS);
    assert_int_equal(rsm_reply_add(query, &in), 0);
    assert_int_equal(xmpp_stanza_to_text(query, &text, &len), XMPP_EOK);
    assert_string_equal(text, "<query xmlns=\"urn:xmpp:fis:0\"><set xmlns=\""
                              "http://jabber.org/protocol/rsm\"><first index=\"20\">f61</first>"
                              "<last>f7a</last><count>800</count></set></query>");
    xmpp_free(ctx, text);
    assert_int_equal(rsm_reply_parse(&out, query), 0);
    assert_string_equal(out.first, "f61");
    assert_int_equal(out.first_index, 20);
    assert_string_equal(out.last, "f7a");
    assert_int_equal(out.count, 800);
    xmpp_stanza_release(query);

    /* An empty page: only the count. */
    query = xmpp_stanza_new(ctx);
    xmpp_stanza_set_name(query, "query");
    assert_int_equal(rsm_reply_add(query, &(struct rsm_reply){ .first_index = 0, .count = 0 }),
                     0);
    assert_int_equal(rsm_reply_parse(&out, query), 0);
    assert_null(out.first);
    assert_null(out.last);
    assert_int_equal(out.count, 0);
    xmpp_stanza_release(query);
}

static void test_rsm__request_add(void **state)
{
    (void)state;
    xmpp_stanza_t *query = xmpp_stanza_new(ctx);
    struct rsm_request r;
    const char *why;

    xmpp_stanza_set_name(query, "query");
    assert_int_equal(rsm_request_add(query, 100, RSM_FROM_END, NULL, -1), 0);
    assert_int_equal(rsm_request_parse(&r, &why, query), 0);
    assert_int_equal(r.max, 100);
    assert_int_equal(r.from, RSM_FROM_END);
    xmpp_stanza_release(query);
}

static void test_fis__node_split(void **state)
{
    (void)state;
    char repo[FIS_PATH_MAX + 1], path[FIS_PATH_MAX + 1], long_name[FIS_NAME_MAX + 40];
    const char *why;
    static const char *const bad[] = {
        "", "/", "releases/", "/releases", "releases//x", "releases/./x", "releases/..",
        "..", ".", "releases/a\x01z", "releases/a\x7fz",
    };

    assert_int_equal(fis_node_split("releases", repo, path, &why), 0);
    assert_string_equal(repo, "releases");
    assert_string_equal(path, "");
    assert_int_equal(fis_node_split("releases/proj/1.0/a..b.tar.xz", repo, path, &why), 0);
    assert_string_equal(repo, "releases");
    assert_string_equal(path, "proj/1.0/a..b.tar.xz");
    assert_int_equal(fis_node_split("r/.hidden", repo, path, &why), 0);

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        why = NULL;
        assert_int_equal(fis_node_split(bad[i], repo, path, &why), FR_EINVAL);
        assert_non_null(why);
    }
    memcpy(long_name, "r/", 2);
    memset(long_name + 2, 'x', FIS_NAME_MAX + 1);
    long_name[FIS_NAME_MAX + 3] = '\0';
    assert_int_equal(fis_node_split(long_name, repo, path, &why), FR_EINVAL);
    long_name[FIS_NAME_MAX + 2] = '\0';
    assert_int_equal(fis_node_split(long_name, repo, path, &why), 0);
}

static void test_fis__file_round_trip(void **state)
{
    (void)state;
    xmpp_stanza_t *query = xmpp_stanza_new(ctx), *el;
    struct fis_file in = { .name = "proj-1.0.tar.xz", .size = 1022,
                           .date = "2026-11-22T03:00:00Z", .media_type = "application/x-xz",
                           .desc = "first <release>", .hashes_count = 1 };
    struct fis_file out;

    in.hashes[0].algo = "sha-256";
    in.hashes[0].value = "2XarmwTlNxDAMkvymloX3S5+VbylNrJt/l5QyPa+YoU=";
    xmpp_stanza_set_name(query, "query");
    el = fis_file_add(query, &in);
    assert_non_null(el);
    assert_string_equal(xmpp_stanza_get_ns(el), "urn:xmpp:jingle:apps:file-transfer:5");
    assert_string_equal(xmpp_stanza_get_ns(xmpp_stanza_get_child_by_name(el, "hash")),
                        "urn:xmpp:hashes:2");
    assert_int_equal(fis_file_parse(&out, el), 0);
    assert_string_equal(out.name, in.name);
    assert_int_equal(out.size, 1022);
    assert_string_equal(out.date, in.date);
    assert_string_equal(out.media_type, in.media_type);
    assert_string_equal(out.desc, in.desc);
    assert_int_equal(out.hashes_count, 1);
    assert_string_equal(out.hashes[0].algo, "sha-256");
    assert_string_equal(out.hashes[0].value, in.hashes[0].value);
    xmpp_stanza_release(query);
}

static void test_fis__text_validity(void **state)
{
    (void)state;
    assert_true(stanza_text_is_valid("plain.tar.xz"));
    assert_true(stanza_text_is_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa6"));
    assert_false(stanza_text_is_valid("a\x01" "b"));
    assert_false(stanza_text_is_valid("\xc3"));
    assert_false(stanza_text_is_valid("\xc0\xaf"));
    assert_false(stanza_text_is_valid("\xed\xa0\x80"));
    assert_false(stanza_text_is_valid("\xef\xbf\xbf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsm__requests),
        cmocka_unit_test(test_rsm__bad_requests),
        cmocka_unit_test(test_rsm__reply_round_trip),
        cmocka_unit_test(test_rsm__request_add),
        cmocka_unit_test(test_fis__node_split),
        cmocka_unit_test(test_fis__file_round_trip),
        cmocka_unit_test(test_fis__text_validity),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
