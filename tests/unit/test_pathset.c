/*
 * test_pathset.c - paths with due times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathset.h"

struct taken {
    char names[8192];
    size_t count;
};

static void take(char *path, void *data)
{
    struct taken *t = data;
    size_t len = strlen(t->names);

    snprintf(t->names + len, sizeof(t->names) - len, "%s%s", len ? "," : "", path);
    t->count++;
    free(path);
}

static void test_pathset__due_and_moved(void **state)
{
    (void)state;
    struct pathset *s;
    struct taken t = { "", 0 };

    assert_int_equal(pathset_new(&s), 0);
    assert_int_equal(pathset_next_due(s), UINT64_MAX);
    assert_int_equal(pathset_put(s, "a", 100), 0);
    assert_int_equal(pathset_put(s, "b", 200), 0);
    assert_int_equal(pathset_put(s, "a", 300), 0); /* written again: settles again */
    assert_int_equal(pathset_count(s), 2);
    assert_int_equal(pathset_next_due(s), 200);
    assert_int_equal(pathset_take_due(s, 250, take, &t), 1);
    assert_string_equal(t.names, "b");
    assert_int_equal(pathset_count(s), 1);
    assert_int_equal(pathset_take_due(s, 299, take, &t), 0);
    assert_int_equal(pathset_take_due(s, 300, take, &t), 1);
    assert_string_equal(t.names, "b,a");
    assert_int_equal(pathset_count(s), 0);

    uint64_t due = 0;
    assert_int_equal(pathset_put(s, "c", 7), 0);
    assert_int_equal(pathset_get(s, "c", &due), 1);
    assert_int_equal(due, 7);
    assert_int_equal(pathset_get(s, "d", &due), 0);
    assert_int_equal(pathset_remove(s, "d"), 0);
    assert_int_equal(pathset_remove(s, "c"), 1);
    assert_int_equal(pathset_get(s, "c", NULL), 0);
    assert_int_equal(pathset_count(s), 0);
    assert_int_equal(pathset_put(s, "c", 8), 0); /* a tombstone is reused */
    assert_int_equal(pathset_count(s), 1);
    pathset_free(s);
}

static void test_pathset__many(void **state)
{
    (void)state;
    struct pathset *s;
    char path[32];

    assert_int_equal(pathset_new(&s), 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100000; i++) {
            snprintf(path, sizeof(path), "dir%d/file%d", i % 100, i);
            assert_int_equal(pathset_put(s, path, (uint64_t)i), 0);
        }
        assert_int_equal(pathset_count(s), 100000);
        /* Half now, half later: tombstones are reused and rehashed away. */
        struct taken half = { "", 0 };
        assert_int_equal(pathset_take_due(s, 49999, take, &half), 50000);
        assert_int_equal(pathset_count(s), 50000);
        assert_int_equal(pathset_next_due(s), 50000);
        assert_int_equal(pathset_take_due(s, UINT64_MAX - 1, take, &half), 50000);
        assert_int_equal(pathset_count(s), 0);
    }
    assert_int_equal(pathset_put(s, "x", 1), 0);
    pathset_clear(s);
    assert_int_equal(pathset_count(s), 0);
    pathset_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pathset__due_and_moved),
        cmocka_unit_test(test_pathset__many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
