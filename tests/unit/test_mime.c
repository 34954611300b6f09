/*
 * test_mime.c - media types by file name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mime.h"

static void test_mime__release_names(void **state)
{
    (void)state;
    struct mime *m = NULL;

    assert_int_equal(mime_new(&m, NULL), 0);
    assert_string_equal(mime_type(m, "proj-1.4.0.tar.xz"), "application/x-xz");
    assert_string_equal(mime_type(m, "proj-1.4.0.tar.gz"), "application/gzip");
    assert_string_equal(mime_type(m, "proj-1.4.0.tar.bz2"), "application/x-bzip2");
    assert_string_equal(mime_type(m, "proj-1.4.0.tar.zst"), "application/zstd");
    assert_string_equal(mime_type(m, "proj-1.4.0.tar.xz.asc"), "application/pgp-signature");
    assert_string_equal(mime_type(m, "proj-1.4.0.tar.xz.sha256"), "text/plain");
    assert_string_equal(mime_type(m, "PROJ.ZIP"), "application/zip");
    assert_string_equal(mime_type(m, "proj_1.4.0_amd64.deb"),
                        "application/vnd.debian.binary-package");
    assert_string_equal(mime_type(m, "README"), "application/octet-stream");
    assert_string_equal(mime_type(m, ".hidden"), "application/octet-stream");
    assert_string_equal(mime_type(m, "trailing."), "application/octet-stream");
    assert_string_equal(mime_type(m, "x.thisextensionislongerthanthirtytwochars"),
                        "application/octet-stream");
    mime_free(m);
}

static void test_mime__own_table_and_builtins_first(void **state)
{
    (void)state;
    char path[] = "/tmp/filerepo-test-mime-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    struct mime *m = NULL;

    fputs("# comment\n\ntext/x-custom  foo bar # trailing\napplication/pgp-keys asc\n", f);
    fclose(f);
    assert_int_equal(mime_new(&m, path), 0);
    assert_string_equal(mime_type(m, "a.foo"), "text/x-custom");
    assert_string_equal(mime_type(m, "a.BAR"), "text/x-custom");
    /* A release's .asc is a signature, whatever the system table says. */
    assert_string_equal(mime_type(m, "a.asc"), "application/pgp-signature");
    assert_string_equal(mime_type(m, "a.pdf"), "application/octet-stream");
    mime_free(m);
    unlink(path);

    /* No table at all: the built-ins still answer. */
    assert_int_equal(mime_new(&m, "/nonexistent/mime.types"), 0);
    assert_string_equal(mime_type(m, "a.xz"), "application/x-xz");
    mime_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mime__release_names),
        cmocka_unit_test(test_mime__own_table_and_builtins_first),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
