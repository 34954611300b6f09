/*
 * test_ratelimit.c - token buckets per requester (indexer/ratelimit.c),
 * with time given by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "ratelimit.h"

static void test_ratelimit__burst_then_rate(void **state)
{
    (void)state;
    struct ratelimit *rl;

    assert_int_equal(ratelimit_new(&rl, 2, 3), 0);
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(rl, "alice@localhost", 1000));
    assert_false(ratelimit_take(rl, "alice@localhost", 1000));
    /* Another requester has its own bucket. */
    assert_true(ratelimit_take(rl, "bob@localhost", 1000));
    /* Half a second at 2/s: one more. */
    assert_true(ratelimit_take(rl, "alice@localhost", 1500));
    assert_false(ratelimit_take(rl, "alice@localhost", 1500));
    /* A long pause refills to the burst, not beyond. */
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(rl, "alice@localhost", 100000));
    assert_false(ratelimit_take(rl, "alice@localhost", 100000));
    ratelimit_free(rl);
}

static void test_ratelimit__many_requesters_bounded(void **state)
{
    (void)state;
    struct ratelimit *rl;
    char jid[64];
    int refused = 0;

    assert_int_equal(ratelimit_new(&rl, 1, 1), 0);
    /* Far more requesters than slots, all at once: memory stays the same
     * and nobody gets more than a burst; some share and are refused. */
    for (int i = 0; i < 20000; i++) {
        snprintf(jid, sizeof(jid), "user%d@localhost", i);
        if (!ratelimit_take(rl, jid, 5000))
            refused++;
    }
    assert_true(refused > 0);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelimit__burst_then_rate),
        cmocka_unit_test(test_ratelimit__many_requesters_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
