/*
 * test_jsonc.c - comment blanking keeps strings, newlines and positions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "jsonc.h"

static void blank(char *text, int expect)
{
    size_t bad = 0;

    assert_int_equal(jsonc_blank_comments(text, strlen(text), &bad), expect);
}

static void test_jsonc__line_and_block_comments(void **state)
{
    (void)state;
    char text[] = "{ // one\n \"a\": /* two */ 1 }";

    blank(text, 0);
    assert_string_equal(text, "{       \n \"a\":           1 }");
}

static void test_jsonc__strings_untouched(void **state)
{
    (void)state;
    char text[] = "{\"u\": \"http://x/*y*/\", \"q\": \"a\\\"//b\"}";
    char copy[sizeof(text)];

    memcpy(copy, text, sizeof(text));
    blank(text, 0);
    assert_string_equal(text, copy);
}

static void test_jsonc__block_keeps_newlines(void **state)
{
    (void)state;
    char text[] = "/* a\nb\nc */x";

    blank(text, 0);
    assert_string_equal(text, "    \n \n    x");
}

static void test_jsonc__unclosed_block(void **state)
{
    (void)state;
    char text[] = "{}\n  /* open";
    size_t bad = 0;
    unsigned line, col;

    assert_int_equal(jsonc_blank_comments(text, strlen(text), &bad), -1);
    jsonc_position(text, bad, &line, &col);
    assert_int_equal(line, 2);
    assert_int_equal(col, 3);
}

static void test_jsonc__position(void **state)
{
    (void)state;
    unsigned line, col;

    jsonc_position("ab\ncd\ne", 4, &line, &col);
    assert_int_equal(line, 2);
    assert_int_equal(col, 2);
    jsonc_position("ab", 0, &line, &col);
    assert_int_equal(line, 1);
    assert_int_equal(col, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonc__line_and_block_comments),
        cmocka_unit_test(test_jsonc__strings_untouched),
        cmocka_unit_test(test_jsonc__block_keeps_newlines),
        cmocka_unit_test(test_jsonc__unclosed_block),
        cmocka_unit_test(test_jsonc__position),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
