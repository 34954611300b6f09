/*
 * test_backoff.c - the waits between reconnection attempts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static void test_backoff__doubles_up_to_the_cap(void **state)
{
    (void)state;
    struct backoff b;
    const unsigned expect[] = { 250, 500, 1000, 2000, 4000, 8000, 10000, 10000 };

    backoff_init(&b, 10);
    for (size_t i = 0; i < sizeof(expect) / sizeof(*expect); i++)
        assert_int_equal(backoff_next(&b), expect[i]);
}

static void test_backoff__reset_starts_over(void **state)
{
    (void)state;
    struct backoff b;

    backoff_init(&b, 1);
    assert_int_equal(backoff_next(&b), 250);
    assert_int_equal(backoff_next(&b), 500);
    assert_int_equal(backoff_next(&b), 1000);
    assert_int_equal(backoff_next(&b), 1000);
    backoff_reset(&b);
    assert_int_equal(backoff_next(&b), 250);
}

static void test_backoff__large_cap_does_not_overflow(void **state)
{
    (void)state;
    struct backoff b;
    unsigned last = 0;

    backoff_init(&b, 3600);
    for (int i = 0; i < 64; i++)
        last = backoff_next(&b);
    assert_int_equal(last, 3600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff__doubles_up_to_the_cap),
        cmocka_unit_test(test_backoff__reset_starts_over),
        cmocka_unit_test(test_backoff__large_cap_does_not_overflow),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
