/*
 * test_metalink.c - a revision as a Metalink 4 document (RFC 5854): the
 * elements a download manager reads, text escaped, URLs in priority order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metalink.h"

static char *render(const struct metalink_file *file)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(out);
    assert_int_equal(metalink_write(out, file), 0);
    fclose(out);
    return text;
}

static void test_metalink__file_with_mirrors(void **state)
{
    const char *urls[] = { "https://m1.example.org/pub/proj/a%20b.tar.xz",
                           "ftp://m2.example.org/proj/a%20b.tar.xz?x=1&y=2" };
    const struct metalink_file file = {
        .name = "proj/a b.tar.xz", .size = 1234567,
        .published = "2026-11-22T06:00:00Z", .description = "release <1.0> & more",
        .sha256_hex = "aa", .sha1_hex = "bb", .md5_hex = NULL, .sha512_hex = NULL,
        .urls = urls, .urls_count = 2, .generator = "filerepo/0.1.0",
    };
    char *text = render(&file);

    (void)state;
    assert_string_equal(text,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<metalink xmlns=\"urn:ietf:params:xml:ns:metalink\">\n"
        "  <generator>filerepo/0.1.0</generator>\n"
        "  <published>2026-11-22T06:00:00Z</published>\n"
        "  <file name=\"proj/a b.tar.xz\">\n"
        "    <description>release &lt;1.0&gt; &amp; more</description>\n"
        "    <size>1234567</size>\n"
        "    <hash type=\"sha-256\">aa</hash>\n"
        "    <hash type=\"sha-1\">bb</hash>\n"
        "    <url priority=\"1\">https://m1.example.org/pub/proj/a%20b.tar.xz</url>\n"
        "    <url priority=\"2\">ftp://m2.example.org/proj/a%20b.tar.xz?x=1&amp;y=2</url>\n"
        "  </file>\n"
        "</metalink>\n");
    free(text);
}

static void test_metalink__no_mirrors_still_a_document(void **state)
{
    const struct metalink_file file = {
        .name = "x\"y", .size = 0, .sha256_hex = "00", .sha512_hex = "ff",
    };
    char *text = render(&file);

    (void)state;
    assert_non_null(strstr(text, "<file name=\"x&quot;y\">"));
    assert_non_null(strstr(text, "<size>0</size>"));
    assert_non_null(strstr(text, "<hash type=\"sha-512\">ff</hash>"));
    assert_null(strstr(text, "<url"));
    assert_null(strstr(text, "<published>"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metalink__file_with_mirrors),
        cmocka_unit_test(test_metalink__no_mirrors_still_a_document),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
