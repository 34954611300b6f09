/*
 * test_versioner_pack.c - how the state repository keeps its objects: a big
 * batch's pack holds only that batch's objects, and compaction folds loose
 * objects and packs into one pack without losing history.
 */
#include "versioner_fixture.h"

/* Many small batches leave loose objects and a big one a pack; compacting
 * leaves one pack with the whole history, and batches go on after it. */
static void test_versioner__compact(void **state)
{
    struct fixture *f = *state;
    struct version_change many[150];
    char names[150][16], id[41], first[41], head[41], *text;
    bool compacted = true;
    long commits;

    commit_ok(f, first, (struct version_change[]){ add("one", 1, 1) }, 1);
    for (int i = 0; i < 150; i++) {
        snprintf(names[i], sizeof(names[i]), "d/f%03d", i);
        many[i] = add(names[i], (unsigned char)(i + 2), (uint64_t)i);
    }
    commit_ok(f, id, many, 150); /* a pack */
    commit_ok(f, id, (struct version_change[]){ add("two", 2, 2) }, 1);
    commit_ok(f, id, (struct version_change[]){ del("one") }, 1);
    commits = commit_count(f);

    /* Under the limits: nothing happens. */
    assert_int_equal(versioner_compact(f->versioner, 1000, 10, &compacted), 0);
    assert_false(compacted);
    text = object_store(f);
    assert_non_null(strstr(text, "packs: 1"));
    assert_null(strstr(text, "count: 0\n"));
    free(text);

    assert_int_equal(versioner_compact(f->versioner, 0, 0, &compacted), 0);
    assert_true(compacted);
    text = object_store(f);
    assert_non_null(strstr(text, "count: 0\n"));
    assert_non_null(strstr(text, "packs: 1"));
    free(text);
    assert_fsck_clean(f);
    assert_int_equal(commit_count(f), commits);
    assert_pointer(f, "HEAD~3:one", 1, 1);   /* the oldest file, long deleted */
    assert_pointer(f, "HEAD:d/f149", 151, 149);

    /* The reopened repository reads and writes as before. */
    assert_int_equal(versioner_head(f->versioner, head), 0);
    assert_string_equal(head, id);
    commit_ok(f, id, (struct version_change[]){ add("three", 3, 3) }, 1);
    assert_git(f, "rev-parse HEAD^", head);
    assert_int_equal(commit_count(f), commits + 1);
    assert_fsck_clean(f);
}

/* A big batch's pack holds that batch's objects, not everything its
 * commit reaches: packs do not grow with the repository. */
static void test_versioner__pack_holds_only_the_batch(void **state)
{
    struct fixture *f = *state;
    struct version_change changes[120];
    char names[2][120][16], id[41], *text, *objects;

    for (int batch = 0; batch < 2; batch++) {
        for (int i = 0; i < 120; i++) {
            snprintf(names[batch][i], sizeof(names[batch][i]), "b%d/f%03d", batch, i);
            changes[i] = add(names[batch][i], (unsigned char)(batch * 120 + i + 1), 1);
        }
        commit_ok(f, id, changes, 120);
    }
    /* Every object once: the packs together hold exactly what is reachable. */
    objects = git_ok(f, "rev-list --objects --all | wc -l");
    text = object_store(f);
    {
        char want[64];

        snprintf(want, sizeof(want), "in-pack: %ld", strtol(objects, NULL, 10));
        if (!strstr(text, want))
            fail_msg("count-objects:\n%s\nreachable objects: %s", text, objects);
    }
    assert_non_null(strstr(text, "packs: 2"));
    free(text);
    free(objects);
    assert_fsck_clean(f);
}

/* Files with the same content share one pointer blob: the batch's pack
 * holds it once, and git reads the pack and its index as its own. */
static void test_versioner__pack_of_repeated_content(void **state)
{
    struct fixture *f = *state;
    struct version_change changes[130];
    char names[130][16], id[41], *text, *out;

    for (int i = 0; i < 130; i++) {
        snprintf(names[i], sizeof(names[i]), "same/f%03d", i);
        changes[i] = add(names[i], 7, 7);
    }
    commit_ok(f, id, changes, 130);
    text = object_store(f);
    /* one blob, the tree of same/, the root tree, the commit */
    assert_non_null(strstr(text, "in-pack: 4\n"));
    assert_non_null(strstr(text, "packs: 1"));
    free(text);
    out = git_ok(f, "cat-file --batch-all-objects --batch-check | grep -c ' blob '");
    assert_string_equal(out, "1");
    free(out);
    assert_pointer(f, "HEAD:same/f129", 7, 7);
    assert_fsck_clean(f);
}

/* An empty repository has nothing to compact. */
static void test_versioner__compact_empty(void **state)
{
    struct fixture *f = *state;
    bool compacted = true;

    assert_int_equal(versioner_compact(f->versioner, 0, 0, &compacted), 0);
    assert_false(compacted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        VERSIONER_TEST(compact),
        VERSIONER_TEST(pack_holds_only_the_batch),
        VERSIONER_TEST(pack_of_repeated_content),
        VERSIONER_TEST(compact_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
