/*
 * test_mirrors_url.c - mirror types and base URLs as admins type them:
 * what is accepted (and how it is written down), what is refused and why,
 * and the URL of a file below a mirror.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fr_error.h"
#include "url.h"

static void expect_ok(const char *url, const char *type, const char *normal,
                      enum mirror_type want)
{
    char out[MIRROR_URL_MAX + 16], err[512] = "";
    enum mirror_type t = MIRROR_SMB;

    assert_int_equal(mirror_url_check(out, sizeof(out), &t, url, type, err, sizeof(err)), 0);
    assert_string_equal(out, normal);
    assert_int_equal(t, want);
}

/* Refused, with a message holding `says`; out left empty. */
static void expect_refused(const char *url, const char *type, const char *says)
{
    char out[MIRROR_URL_MAX + 16] = "x", err[512] = "";
    enum mirror_type t;

    assert_int_equal(mirror_url_check(out, sizeof(out), &t, url, type, err, sizeof(err)),
                     FR_EINVAL);
    assert_string_equal(out, "");
    if (!strstr(err, says))
        fail_msg("\"%s\" (type %s): message \"%s\" lacks \"%s\"", url, type ? type : "-", err,
                 says);
}

static void test_mirrors_url__accepted_and_normalized(void **state)
{
    (void)state;
    expect_ok("https://Mirror.Example.NET/pub/releases", NULL,
              "https://mirror.example.net/pub/releases/", MIRROR_HTTPS);
    expect_ok("http://127.0.0.1:8080/", NULL, "http://127.0.0.1:8080/", MIRROR_HTTP);
    expect_ok("HTTP://m.example.org", NULL, "http://m.example.org/", MIRROR_HTTP);
    expect_ok("ftp://ftp.example.org/pub/", "ftp", "ftp://ftp.example.org/pub/", MIRROR_FTP);
    expect_ok("sftp://ssh.example.org:2222/srv/", NULL, "sftp://ssh.example.org:2222/srv/",
              MIRROR_SFTP);
    expect_ok("smb://files.example.org/share/", NULL, "smb://files.example.org/share/",
              MIRROR_SMB);
    expect_ok("https://dav.example.org/up/", "webdav", "https://dav.example.org/up/",
              MIRROR_WEBDAV);
    expect_ok("http://[::1]:81/x/", NULL, "http://[::1]:81/x/", MIRROR_HTTP);
}

static void test_mirrors_url__refused_with_a_reason(void **state)
{
    (void)state;
    expect_refused("https://m.example.org/", "gopher", "unknown mirror type \"gopher\"");
    expect_refused("https://m.example.org/", "HTTP", "unknown mirror type");
    expect_refused("m.example.org/pub/", NULL, "is not a URL");
    expect_refused("", NULL, "1 to");
    expect_refused("gopher://m.example.org/", NULL, "scheme \"gopher\"");
    expect_refused("file:///srv/pub/", NULL, "scheme \"file\"");
    expect_refused("https://m.example.org/", "ftp", "a ftp mirror needs");
    expect_refused("ftp://m.example.org/", "webdav", "http:// or https://");
    expect_refused("https://user:secret@m.example.org/", NULL, "no credentials in the URL");
    expect_refused("https://m.example.org/pub/?x=1", NULL, "no query or fragment");
    expect_refused("https://m.example.org/pub/#top", NULL, "no query or fragment");
    expect_refused("https://m.example.org:0/", NULL, "port");
    expect_refused("https://m.example.org:70000/", NULL, "port");
    expect_refused("https://m.example.org:/", NULL, "port");
    expect_refused("https:///pub/", NULL, "not a host");
    expect_refused("https://bad_host!/", NULL, "not a host");
    expect_refused("https://m.example.org/a/../b/", NULL, "\"..\"");
    expect_refused("https://m.example.org/a b/", NULL, "blanks");
    expect_refused("https://m.example.org/\x01/", NULL, "control");
}

static void test_mirrors_url__type_names(void **state)
{
    enum mirror_type t;

    (void)state;
    for (int i = MIRROR_HTTP; i <= MIRROR_WEBDAV; i++) {
        assert_int_equal(mirror_type_parse(&t, mirror_type_name((enum mirror_type)i)), 0);
        assert_int_equal(t, i);
    }
    assert_int_equal(mirror_type_parse(&t, "sipub"), FR_EINVAL);
}

static void test_mirrors_url__file_urls_are_encoded(void **state)
{
    char out[256];

    (void)state;
    assert_int_equal(mirror_url_file(out, sizeof(out), "https://m.example.org/pub/",
                                     "proj/proj-1.4.0.tar.xz"),
                     (int)strlen("https://m.example.org/pub/proj/proj-1.4.0.tar.xz"));
    assert_string_equal(out, "https://m.example.org/pub/proj/proj-1.4.0.tar.xz");
    mirror_url_file(out, sizeof(out), "http://h/", "a dir/b#1?.txt");
    assert_string_equal(out, "http://h/a%20dir/b%231%3F.txt");
    mirror_url_file(out, sizeof(out), "http://h/", "caf\xc3\xa9%");
    assert_string_equal(out, "http://h/caf%C3%A9%25");
    assert_int_equal(mirror_url_file(out, 12, "http://h/", "long-name"), -1);
}

static void test_mirrors_url__split(void **state)
{
    struct mirror_url_parts p;

    (void)state;
    assert_int_equal(mirror_url_split(&p, "https://m.example.org:8443/pub/x/"), 0);
    assert_string_equal(p.scheme, "https");
    assert_string_equal(p.host, "m.example.org");
    assert_string_equal(p.port, "8443");
    assert_string_equal(p.path, "/pub/x/");
    assert_int_equal(mirror_url_split(&p, "ftp://[::1]/"), 0);
    assert_string_equal(p.host, "[::1]");
    assert_string_equal(p.port, "");
    assert_int_equal(mirror_url_split(&p, "nonsense"), FR_EINVAL);
}

static void test_mirrors_url__descriptions(void **state)
{
    char long_text[1100];

    (void)state;
    assert_true(mirror_description_ok(""));
    assert_true(mirror_description_ok("Boston, 10 Gbit/s"));
    assert_false(mirror_description_ok("two\nlines"));
    assert_false(mirror_description_ok("tab\there"));
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    assert_false(mirror_description_ok(long_text));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mirrors_url__accepted_and_normalized),
        cmocka_unit_test(test_mirrors_url__refused_with_a_reason),
        cmocka_unit_test(test_mirrors_url__type_names),
        cmocka_unit_test(test_mirrors_url__file_urls_are_encoded),
        cmocka_unit_test(test_mirrors_url__split),
        cmocka_unit_test(test_mirrors_url__descriptions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
