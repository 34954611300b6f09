/*
 * test_publisher_mirrors.c - a revision's verified mirrors as they appear in
 * its XEP-0214 item: type, address, port, ref, description; webdav shown as
 * the http(s) server it is; user and pass only when the admin made them
 * public; and what a subscriber reads back from the notification.
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
#include <unistd.h>

#include "publisher_mirrors.h"
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

static xmpp_stanza_t *nth_mirror(xmpp_stanza_t *entry, int n)
{
    xmpp_stanza_t *mirrors = xmpp_stanza_get_child_by_name(entry, "mirrors");

    for (xmpp_stanza_t *m = mirrors ? xmpp_stanza_get_children(mirrors) : NULL; m;
         m = xmpp_stanza_get_next(m))
        if (xmpp_stanza_is_tag(m) && n-- == 0)
            return m;
    return NULL;
}

static void assert_attr(xmpp_stanza_t *el, const char *name, const char *want)
{
    const char *got = xmpp_stanza_get_attribute(el, name);

    if (!want) {
        if (got)
            fail_msg("attribute %s=\"%s\" should be absent", name, got);
        return;
    }
    if (!got || strcmp(got, want) != 0)
        fail_msg("attribute %s: \"%s\", want \"%s\"", name, got ? got : "(absent)", want);
}

static void test_publisher_mirrors__settings_in_the_item(void **state)
{
    char pw_path[] = "/tmp/filerepo-test-pw-XXXXXX";
    int fd = mkstemp(pw_path);
    char lines[1024];
    struct publisher_mirrors m;
    struct pubsub_revision rev = {
        .name = "a b.tar.xz", .size = 3, .modified = "2026-11-22T03:20:00Z",
        .mime = "application/x-xz", .sha256_hex = "ab",
        .sipub_from = "files.example.org", .sipub_id = "rev-1",
    };
    xmpp_stanza_t *entry, *el;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "guest-pass\n", 11), 11);
    close(fd);
    snprintf(lines, sizeof(lines),
             "http\thttp://m1.example.org/pub/\tBoston\t\t\n"
             "webdav\thttps://dav.example.org:8443/up/\t\t\t\n"
             "ftp\tftp://ftp.example.org/\tFTP\tguest\t%s\n"
             "broken line without tabs",
             pw_path);
    assert_int_equal(publisher_mirrors_parse(&m, lines, "rel/a b.tar.xz"), 0);
    assert_int_equal(m.count, 3);
    rev.mirrors = m.items;
    rev.mirrors_count = m.count;
    entry = pubsub_revision_entry(ctx, &rev);
    publisher_mirrors_clear(&m);
    unlink(pw_path);
    assert_non_null(entry);

    assert_attr(nth_mirror(entry, 0), "type", "sipub");
    el = nth_mirror(entry, 1);
    assert_attr(el, "type", "http");
    assert_attr(el, "address", "m1.example.org");
    assert_attr(el, "port", NULL);
    assert_attr(el, "ref", "pub/rel/a%20b.tar.xz");
    assert_attr(el, "description", "Boston");
    assert_attr(el, "user", NULL);
    assert_attr(el, "pass", NULL);
    el = nth_mirror(entry, 2);
    assert_attr(el, "type", "https");
    assert_attr(el, "address", "dav.example.org");
    assert_attr(el, "port", "8443");
    assert_attr(el, "ref", "up/rel/a%20b.tar.xz");
    assert_attr(el, "description", NULL);
    el = nth_mirror(entry, 3);
    assert_attr(el, "type", "ftp");
    assert_attr(el, "ref", "rel/a%20b.tar.xz");
    assert_attr(el, "user", "guest");
    assert_attr(el, "pass", "guest-pass");
    assert_null(nth_mirror(entry, 4));
    xmpp_stanza_release(entry);
}

static void test_publisher_mirrors__none(void **state)
{
    struct publisher_mirrors m;

    (void)state;
    assert_int_equal(publisher_mirrors_parse(&m, "", "x"), 0);
    assert_int_equal(m.count, 0);
    publisher_mirrors_clear(&m);
}

/* A public user whose password file is gone: the user is shown, no pass. */
static void test_publisher_mirrors__unreadable_password(void **state)
{
    struct publisher_mirrors m;

    (void)state;
    assert_int_equal(publisher_mirrors_parse(&m, "sftp\tsftp://h/\t\tbot\t/nonexistent/pw", "f"),
                     0);
    assert_int_equal(m.count, 1);
    assert_string_equal(m.items[0].user, "bot");
    assert_null(m.items[0].pass);
    assert_string_equal(m.items[0].ref, "f");
    publisher_mirrors_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publisher_mirrors__settings_in_the_item),
        cmocka_unit_test(test_publisher_mirrors__none),
        cmocka_unit_test(test_publisher_mirrors__unreadable_password),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
