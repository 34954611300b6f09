/*
 * test_pubsub.c - the pubsub stanzas of a file repository, without a
 * server: node ids and their escaping, the node_config form, the XEP-0214
 * revision entry, and reading notifications (hostile ones included).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "xmpp/pubsub.h"

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

/* The stanza as text (freed with free()). */
static char *text_of(xmpp_stanza_t *stanza)
{
    char *buf = NULL, *copy;
    size_t len = 0;

    assert_int_equal(xmpp_stanza_to_text(stanza, &buf, &len), XMPP_EOK);
    copy = strndup(buf, len);
    xmpp_free(ctx, buf);
    return copy;
}

static void test_pubsub__node_ids(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(pubsub_node_id(out, sizeof(out), "releases", "", NULL), 8);
    assert_string_equal(out, "releases");
    pubsub_node_id(out, sizeof(out), "releases", "proj/proj-1.0.tar.xz", NULL);
    assert_string_equal(out, "releases/proj/proj-1.0.tar.xz");
    /* '%' and control characters are escaped, so no two names collide and
     * every node id is valid XML. */
    pubsub_node_id(out, sizeof(out), "r", "100%\x01\ttab\x7f", NULL);
    assert_string_equal(out, "r/100%25%01%09tab%7F");
    pubsub_node_id(out, sizeof(out), "r", "100%25", NULL);
    assert_string_equal(out, "r/100%2525");
    pubsub_node_id(out, sizeof(out), "r", "", PUBSUB_FEED_SUFFIX);
    assert_string_equal(out, "r#changes");
    /* Too long: refused, never cut. */
    assert_int_equal(pubsub_node_id(out, 8, "releases", "", NULL), -1);
    assert_int_equal(pubsub_node_id(out, 12, "r", "%%%%", NULL), -1);

    assert_int_equal(pubsub_parent_node_id(out, sizeof(out), "r", "a/b/c"), 5);
    assert_string_equal(out, "r/a/b");
    pubsub_parent_node_id(out, sizeof(out), "r", "top");
    assert_string_equal(out, "r");
    assert_int_equal(pubsub_parent_node_id(out, sizeof(out), "r", ""), -1);
}

static void test_pubsub__create_uses_node_config(void **state)
{
    const struct pubsub_node_config c = {
        .collection = false, .parent = "r/dir", .title = "a <b> & c", .description = "",
        .whitelist = true,
    };
    xmpp_stanza_t *iq = pubsub_create_iq(ctx, "pubsub.example.org", "id1", "r/dir/a", &c);
    char *text;

    (void)state;
    assert_non_null(iq);
    text = text_of(iq);
    assert_non_null(strstr(text, "<create node=\"r/dir/a\"/>"));
    assert_non_null(strstr(text, "<value>http://jabber.org/protocol/pubsub#node_config</value>"));
    assert_null(strstr(text, "pubsub#meta-data"));
    assert_non_null(strstr(text, "<field var=\"pubsub#node_type\"><value>leaf</value>"));
    assert_non_null(strstr(text, "<field var=\"pubsub#collection\"><value>r/dir</value>"));
    assert_non_null(strstr(text, "<value>a &lt;b&gt; &amp; c</value>"));
    assert_non_null(strstr(text, "<field var=\"pubsub#access_model\"><value>whitelist</value>"));
    assert_non_null(strstr(text, "<field var=\"pubsub#max_items\"><value>max</value>"));
    free(text);
    xmpp_stanza_release(iq);

    /* Reconfiguring never names the node type (servers refuse changing it). */
    iq = pubsub_configure_iq(ctx, "pubsub.example.org", "id2", "r/dir/a", &c);
    text = text_of(iq);
    assert_non_null(strstr(text, "xmlns=\"http://jabber.org/protocol/pubsub#owner\""));
    assert_null(strstr(text, "pubsub#node_type"));
    free(text);
    xmpp_stanza_release(iq);
}

static void test_pubsub__revision_entry(void **state)
{
    const struct pubsub_revision rev = {
        .name = "proj-1.0.tar.xz", .size = 5623, .modified = "2026-11-22T03:20:00Z",
        .mime = "application/x-xz", .description = "",
        .sha256_hex = "ab", .sha1_hex = "cd", .md5_hex = NULL, .sha512_hex = NULL,
        .crc32_hex = "0000abcd", .sha256_b64 = "qw==", .sha1_b64 = "zQ==",
        .sipub_from = "files.example.org", .sipub_id = "rev-7",
    };
    xmpp_stanza_t *entry = pubsub_revision_entry(ctx, &rev);
    xmpp_stanza_t *iq;
    char *text;

    (void)state;
    assert_non_null(entry);
    iq = pubsub_publish_iq(ctx, "pubsub.example.org", "p1", "r/proj-1.0.tar.xz", "1", entry);
    text = text_of(iq);
    assert_non_null(strstr(text, "<publish node=\"r/proj-1.0.tar.xz\"><item id=\"1\">"
                                 "<entry xmlns=\"" XMPP_NS_FILESHARE_ITEM "\">"
                                 "<size>5623</size><modified>2026-11-22T03:20:00Z</modified>"
                                 "<checksum type=\"sha256\">ab</checksum>"
                                 "<checksum type=\"sha1\">cd</checksum>"
                                 "<checksum type=\"crc32\">0000abcd</checksum>"
                                 "<mime>application/x-xz</mime><mirrors><mirror "));
    assert_non_null(strstr(text, " type=\"sipub\""));
    assert_null(strstr(text, "md5"));
    assert_null(strstr(text, "<description>"));
    /* Attributes come out in no fixed order. */
    assert_non_null(strstr(text, "<sipub "));
    assert_non_null(strstr(text, " xmlns=\"http://jabber.org/protocol/sipub\""));
    assert_non_null(strstr(text, " from=\"files.example.org\""));
    assert_non_null(strstr(text, " id=\"rev-7\""));
    assert_non_null(strstr(text, " mime-type=\"application/x-xz\""));
    assert_non_null(strstr(text, " profile=\"" XMPP_NS_SI_FILE_TRANSFER "\""));
    assert_non_null(strstr(text, "<file "));
    assert_non_null(strstr(text, " xmlns=\"" XMPP_NS_SI_FILE_TRANSFER "\""));
    assert_non_null(strstr(text, " name=\"proj-1.0.tar.xz\""));
    assert_non_null(strstr(text, " size=\"5623\""));
    assert_true(strstr(text, "<hash xmlns=\"urn:xmpp:hashes:2\" algo=\"sha-256\">qw==</hash>") ||
                strstr(text, "<hash algo=\"sha-256\" xmlns=\"urn:xmpp:hashes:2\">qw==</hash>"));
    free(text);
    xmpp_stanza_release(iq);
    xmpp_stanza_release(entry);
}

struct seen {
    int count;
    char line[8][512];
};

static void remember(const struct pubsub_notice *n, void *data)
{
    struct seen *s = data;

    if (s->count < 8) {
        int len = snprintf(s->line[s->count], sizeof(s->line[0]), "%s %s %lld %s", n->node,
                           n->item, (long long)n->size, n->sha256_hex ? n->sha256_hex : "-");

        for (size_t i = 0; i < n->mirrors_count && len > 0 && (size_t)len < sizeof(s->line[0]);
             i++)
            len += snprintf(s->line[s->count] + len, sizeof(s->line[0]) - (size_t)len, " %s",
                            n->mirrors[i]);
    }
    s->count++;
}

static int notices(const char *xml, struct seen *s)
{
    xmpp_stanza_t *msg = xmpp_stanza_new_from_string(ctx, xml);
    int n;

    memset(s, 0, sizeof(*s));
    if (!msg)
        return -1;
    n = pubsub_event_items(msg, remember, s);
    xmpp_stanza_release(msg);
    return n;
}

static void test_pubsub__reads_notifications(void **state)
{
    struct seen s;

    (void)state;
    assert_int_equal(notices(
        "<message from='pubsub.example.org'><event xmlns='" XMPP_NS_PUBSUB_EVENT "'>"
        "<items node='r/a'><item id='2'><entry xmlns='" XMPP_NS_FILESHARE_ITEM "'>"
        "<size>42</size><checksum type='sha1'>x</checksum><checksum type='sha256'>beef</checksum>"
        "<mirrors><mirror type='sipub'><sipub xmlns='" XMPP_NS_SIPUB "' from='files.example.org'/>"
        "</mirror><mirror type='https' address='m.example.net' ref='pub/a'/></mirrors>"
        "</entry></item></items></event></message>", &s), 1);
    assert_string_equal(s.line[0],
                        "r/a 2 42 beef xmpp:files.example.org https://m.example.net/pub/a");

    /* A change-feed item names the file's node and revision. */
    assert_int_equal(notices(
        "<message><event xmlns='" XMPP_NS_PUBSUB_EVENT "'><items node='r#changes'>"
        "<item id='77'><change xmlns='" XMPP_NS_FILEREPO_CHANGE "' path='a' node='r/a' "
        "revision='3'><entry xmlns='" XMPP_NS_FILESHARE_ITEM "'><size>1</size></entry>"
        "</change></item></items></event></message>", &s), 1);
    assert_string_equal(s.line[0], "r/a 3 1 -");

    /* Hostile or odd input: no crash, nothing invented. */
    assert_int_equal(notices("<message/>", &s), 0);
    assert_int_equal(notices("<message><event xmlns='" XMPP_NS_PUBSUB_EVENT "'><items/>"
                             "<items node='n'><item/><item id='1'><entry xmlns='"
                             XMPP_NS_FILESHARE_ITEM "'><size>-5</size><size>9</size>"
                             "<mirrors><mirror/><mirror type='ftp'/></mirrors></entry></item>"
                             "</items></event></message>", &s), 2);
    assert_string_equal(s.line[0], "n  -1 -");
    assert_string_equal(s.line[1], "n 1 -1 - ftp:///");

    /* The result of an items request reads the same (filerepo get --rev). */
    assert_int_equal(notices(
        "<iq type='result' from='pubsub.example.org'><pubsub xmlns='" XMPP_NS_PUBSUB "'>"
        "<items node='r/a'><item id='1'><entry xmlns='" XMPP_NS_FILESHARE_ITEM "'>"
        "<size>7</size><checksum type='sha256'>cafe</checksum></entry></item></items>"
        "</pubsub></iq>", &s), 1);
    assert_string_equal(s.line[0], "r/a 1 7 cafe");
}

static void test_pubsub__affiliations(void **state)
{
    const struct pubsub_affiliation a[] = { { "bob@example.org", "owner" },
                                            { "eve@example.org", "none" } };
    xmpp_stanza_t *iq = pubsub_affiliations_set_iq(ctx, "ps", "a1", "r", a, 2);
    char *text = text_of(iq);

    (void)state;
    assert_non_null(strstr(text, "<affiliations node=\"r\"><affiliation "));
    assert_true(strstr(text, "jid=\"bob@example.org\" affiliation=\"owner\"") ||
                strstr(text, "affiliation=\"owner\" jid=\"bob@example.org\""));
    assert_true(strstr(text, "jid=\"eve@example.org\" affiliation=\"none\"") ||
                strstr(text, "affiliation=\"none\" jid=\"eve@example.org\""));
    free(text);
    xmpp_stanza_release(iq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pubsub__node_ids),
        cmocka_unit_test(test_pubsub__create_uses_node_config),
        cmocka_unit_test(test_pubsub__revision_entry),
        cmocka_unit_test(test_pubsub__reads_notifications),
        cmocka_unit_test(test_pubsub__affiliations),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
