/*
 * test_versioner.c - the state repository as git itself shows it: each test
 * commits batches into a fresh bare repository under a temporary directory
 * and reads the result back with the real git command line (ls-tree, show,
 * log, rev-list, fsck).  Packs and compaction: test_versioner_pack.c.
 */
#include "versioner_fixture.h"

static void test_versioner__first_commit(void **state)
{
    struct fixture *f = *state;
    struct version_change changes[] = {
        add("proj/proj-1.4.0.tar.xz", 0xab, 123456789012ull),
        add("README.txt", 0x01, 42),
        add("proj/sub/notes.txt", 0x00, 0),
    };
    char id[41], head[41];

    commit_ok(f, id, changes, 3);
    assert_int_equal(versioner_head(f->versioner, head), 0);
    assert_string_equal(head, id);
    assert_git(f, "rev-parse HEAD", id);
    assert_int_equal(commit_count(f), 1);

    assert_git(f, "ls-tree -r --format='%(objectmode) %(objecttype) %(path)' HEAD",
               "100644 blob README.txt\n"
               "100644 blob proj/proj-1.4.0.tar.xz\n"
               "100644 blob proj/sub/notes.txt");
    assert_pointer(f, "HEAD:proj/proj-1.4.0.tar.xz", 0xab, 123456789012ull);
    assert_pointer(f, "HEAD:proj/sub/notes.txt", 0x00, 0);

    assert_git(f, "log -1 --format='%an <%ae> %at %ad%n%cn <%ce> %ct %cd%n%P' --date=iso-strict",
               "filerepo <filerepo@localhost> 1700000000 2023-11-14T22:13:20+00:00\n"
               "filerepo <filerepo@localhost> 1700000000 2023-11-14T22:13:20+00:00\n");
    assert_git(f, "log -1 --format=%B",
               "releases: 3 added\n"
               "\n"
               "added: README.txt\n"
               "added: proj/proj-1.4.0.tar.xz\n"
               "added: proj/sub/notes.txt\n");
    /* 3 pointers, 3 trees, 1 commit: few enough to stay loose. */
    assert_git(f, OBJECT_STORE, "count: 7\nin-pack: 0\npacks: 0");
    assert_fsck_clean(f);
}

static void test_versioner__second_batch(void **state)
{
    struct fixture *f = *state;
    struct version_change first[] = {
        add("latest.txt", 0x10, 10),
        add("old/proj-1.3.tar.xz", 0x13, 1300),
        add("same.txt", 0x20, 20),
        add("proj-1.3.tar.xz", 0x13, 1300),
    };
    struct version_change second[] = {
        del("old/proj-1.3.tar.xz"),
        add("latest.txt", 0x11, 11),
        add("proj-1.4.0.tar.xz", 0x14, 1400),
        add("same.txt", 0x20, 20),      /* identical content: no change */
        del("never-there.txt"),         /* not a file at HEAD: no change */
        add("proj-1.3.tar.xz", 0x13, 1301), /* same digest, new size: a change */
    };
    char id1[41], id2[41];

    commit_ok(f, id1, first, 4);
    commit_ok(f, id2, second, 6);
    assert_string_not_equal(id1, id2);
    assert_int_equal(commit_count(f), 2);
    assert_git(f, "rev-parse HEAD^", id1);
    assert_git(f, "log -1 --format=%B",
               "releases: 1 added, 2 changed, 1 removed\n"
               "\n"
               "added: proj-1.4.0.tar.xz\n"
               "changed: latest.txt\n"
               "changed: proj-1.3.tar.xz\n"
               "removed: old/proj-1.3.tar.xz\n");
    assert_git(f, "diff --name-status HEAD^ HEAD",
               "M\tlatest.txt\n"
               "D\told/proj-1.3.tar.xz\n"
               "M\tproj-1.3.tar.xz\n"
               "A\tproj-1.4.0.tar.xz");
    assert_pointer(f, "HEAD:latest.txt", 0x11, 11);
    assert_pointer(f, "HEAD^:latest.txt", 0x10, 10);
    assert_fsck_clean(f);
}

static void test_versioner__unchanged_batch_makes_no_commit(void **state)
{
    struct fixture *f = *state;
    struct version_change batch[] = {
        del("b.txt"),
        add("a.txt", 0x0a, 1),
        add("dir/c.txt", 0x0c, 3),
    };
    struct version_change again[] = {
        add("a.txt", 0x0a, 1),
        del("nothing/here"),
    };
    char id[41], out[41], head[41], *store;

    /* Nothing to commit and nothing committed yet: no HEAD to name. */
    assert_int_equal(versioner_commit(f->versioner, out, NULL, 0, WHEN), FR_ENOTFOUND);
    assert_string_equal(out, "");
    assert_int_equal(versioner_commit(f->versioner, out, batch, 1, WHEN), FR_ENOTFOUND);
    assert_int_equal(versioner_head(f->versioner, head), FR_ENOTFOUND);

    commit_ok(f, id, batch, 3);
    store = object_store(f);
    /* The same batch again, as after a crash before the catalog's commit. */
    assert_int_equal(versioner_commit(f->versioner, out, batch, 3, WHEN + 60), 1);
    assert_string_equal(out, id);
    assert_int_equal(versioner_commit(f->versioner, out, again, 2, WHEN + 60), 1);
    assert_string_equal(out, id);
    assert_int_equal(versioner_commit(f->versioner, out, NULL, 0, WHEN + 60), 1);
    assert_string_equal(out, id);
    assert_int_equal(commit_count(f), 1);
    assert_int_equal(versioner_head(f->versioner, head), 0);
    assert_string_equal(head, id);
    /* Nothing written either. */
    assert_git(f, OBJECT_STORE, store);
    free(store);
}

static void test_versioner__nested_directory_removal(void **state)
{
    struct fixture *f = *state;
    struct version_change first[] = {
        add("a/b/c/d.txt", 1, 1),
        add("a/x.txt", 2, 2),
        add("top.txt", 3, 3),
    };
    struct version_change deep[] = { del("a/b/c/d.txt") };
    struct version_change last[] = { del("a/x.txt"), del("a/b") };
    char id[41];

    commit_ok(f, id, first, 3);
    commit_ok(f, id, deep, 1);
    assert_git(f, "ls-tree -r -t --name-only HEAD", "a\na/x.txt\ntop.txt");
    assert_git(f, "log -1 --format=%B", "releases: 1 removed\n\nremoved: a/b/c/d.txt\n");
    commit_ok(f, id, last, 2);
    assert_git(f, "ls-tree -r -t --name-only HEAD", "top.txt");
    assert_git(f, "log -1 --format=%B", "releases: 1 removed\n\nremoved: a/x.txt\n");
    assert_fsck_clean(f);
}

static void test_versioner__file_directory_swap(void **state)
{
    struct fixture *f = *state;
    struct version_change first[] = { add("x", 1, 1), add("x.txt", 2, 2), add("y/z", 3, 3) };
    /* Listed before the deletions they depend on: order in a batch is free. */
    struct version_change to_directory[] = { add("x/inner", 4, 4), add("y", 5, 5),
                                             del("x"), del("y/z") };
    struct version_change to_file[] = { add("x", 6, 6), del("x/inner") };
    char id[41];

    commit_ok(f, id, first, 3);
    commit_ok(f, id, to_directory, 4);
    assert_git(f, "ls-tree -r -t --format='%(objecttype) %(path)' HEAD",
               "blob x.txt\ntree x\nblob x/inner\nblob y");
    assert_git(f, "log -1 --format=%B",
               "releases: 2 added, 2 removed\n\n"
               "added: x/inner\nadded: y\nremoved: x\nremoved: y/z\n");
    commit_ok(f, id, to_file, 2);
    assert_git(f, "ls-tree -r -t --format='%(objecttype) %(path)' HEAD",
               "blob x\nblob x.txt\nblob y");
    assert_git(f, "log -1 --format=%B",
               "releases: 1 added, 1 removed\n\nadded: x\nremoved: x/inner\n");
    assert_int_equal(commit_count(f), 3);
    assert_fsck_clean(f);
}

static void test_versioner__file_directory_clash_refused(void **state)
{
    struct fixture *f = *state;
    struct version_change first[] = { add("file", 1, 1), add("dir/a", 2, 2), add("dir/b", 3, 3) };
    struct version_change under_file[] = { add("new", 9, 9), add("file/inner", 4, 4) };
    struct version_change over_dir[] = { del("dir/a"), add("dir", 5, 5) };
    struct version_change both[] = { add("p", 6, 6), add("p/q", 7, 7) };
    struct version_change twice[] = { add("t", 6, 6), add("t", 7, 7) };
    char id[41], out[41], *store;

    commit_ok(f, id, first, 3);
    store = object_store(f);
    assert_int_equal(versioner_commit(f->versioner, out, under_file, 2, WHEN), FR_EINVAL);
    assert_non_null(strstr(versioner_last_error(f->versioner), "\"file\""));
    assert_string_equal(out, "");
    assert_int_equal(versioner_commit(f->versioner, out, over_dir, 2, WHEN), FR_EINVAL);
    assert_non_null(strstr(versioner_last_error(f->versioner), "\"dir\""));
    assert_int_equal(versioner_commit(f->versioner, out, both, 2, WHEN), FR_EINVAL);
    assert_int_equal(versioner_commit(f->versioner, out, twice, 2, WHEN), FR_EINVAL);
    assert_int_equal(commit_count(f), 1);
    assert_git(f, "ls-tree -r --name-only HEAD", "dir/a\ndir/b\nfile");
    /* What was written for the refused batches never reached the disk. */
    assert_git(f, OBJECT_STORE, store);
    free(store);
    assert_fsck_clean(f);
}

struct seen {
    char paths[8][64];          /* what the callback was given, in order */
    unsigned char seeds[8];     /* first byte of each digest */
    uint64_t sizes[8];          /* and each size */
    int count;                  /* how many calls */
    int stop_after;             /* return 7 from this call on (0: never) */
};

static int remember(const char *path, const unsigned char sha256[32], uint64_t size, void *data)
{
    struct seen *seen = data;

    assert_true(seen->count < 8);
    snprintf(seen->paths[seen->count], sizeof(seen->paths[0]), "%s", path);
    for (int i = 1; i < 32; i++)
        assert_int_equal(sha256[i], sha256[0]);
    seen->seeds[seen->count] = sha256[0];
    seen->sizes[seen->count] = size;
    seen->count++;
    return seen->stop_after && seen->count >= seen->stop_after ? 7 : 0;
}

static void test_versioner__foreach(void **state)
{
    struct fixture *f = *state;
    /* "a.b" < "a/c" < "a0" byte-wise, though git sorts "a" as "a/". */
    struct version_change first[] = { add("a0", 3, 30), add("a/c", 2, 20), add("a.b", 1, 10),
                                      add("z/y/x", 4, UINT64_MAX) };
    struct version_change second[] = { del("a/c"), add("a0", 5, 50) };
    struct seen seen = { 0 };
    char id1[41], id2[41];

    assert_int_equal(versioner_foreach(f->versioner, NULL, remember, &seen), FR_ENOTFOUND);
    commit_ok(f, id1, first, 4);
    commit_ok(f, id2, second, 2);

    assert_int_equal(versioner_foreach(f->versioner, id1, remember, &seen), 0);
    assert_int_equal(seen.count, 4);
    assert_string_equal(seen.paths[0], "a.b");
    assert_string_equal(seen.paths[1], "a/c");
    assert_string_equal(seen.paths[2], "a0");
    assert_string_equal(seen.paths[3], "z/y/x");
    assert_int_equal(seen.seeds[0], 1);
    assert_int_equal(seen.sizes[0], 10);
    assert_int_equal(seen.seeds[3], 4);
    assert_true(seen.sizes[3] == UINT64_MAX);

    memset(&seen, 0, sizeof(seen));
    assert_int_equal(versioner_foreach(f->versioner, NULL, remember, &seen), 0);
    assert_int_equal(seen.count, 3);
    assert_string_equal(seen.paths[1], "a0");
    assert_int_equal(seen.seeds[1], 5);
    assert_int_equal(seen.sizes[1], 50);

    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 2;
    assert_int_equal(versioner_foreach(f->versioner, "HEAD~1", remember, &seen), 7);
    assert_int_equal(seen.count, 2);

    assert_int_equal(versioner_foreach(f->versioner, "0123456789012345678901234567890123456789",
                                       remember, &seen), FR_ENOTFOUND);
    assert_int_equal(versioner_foreach(f->versioner, "HEAD:a0", remember, &seen), FR_EINVAL);
    assert_int_equal(versioner_foreach(f->versioner, "@{", remember, &seen), FR_EINVAL);
}

static void test_versioner__foreach_refuses_a_non_pointer(void **state)
{
    struct fixture *f = *state;
    struct version_change first[] = { add("good", 1, 1) };
    struct seen seen = { 0 };
    char id[41], *text;

    commit_ok(f, id, first, 1);
    /* A commit made by hand whose file holds something else. */
    text = git_ok(f, "commit-tree -p HEAD -m bad $(printf 'not a pointer\\n' | "
                     "git --git-dir='%s' hash-object -w --stdin | "
                     "sed 's/^/100644 blob /; s/$/\\tbad/' | git --git-dir='%s' mktree)",
                  f->git_dir, f->git_dir);
    assert_int_equal(versioner_foreach(f->versioner, text, remember, &seen), FR_ERROR);
    assert_non_null(strstr(versioner_last_error(f->versioner), "\"bad\""));
    free(text);
}

static void test_versioner__bad_paths_refused(void **state)
{
    struct fixture *f = *state;
    static char long_path[VERSIONER_PATH_MAX + 2];
    const char *bad[] = {
        "", "/abs", "a//b", "a/", "./a", "a/./b", "..", "../x", "a/..", ".git", ".git/config",
        "x/.GIT", "GIT~1", ".git. ", ".git::$INDEX_ALLOCATION", "d/.git\\x", long_path, NULL,
    };
    struct version_change first[] = { add("keep", 1, 1) };
    char id[41], out[41];

    memset(long_path, 'a', VERSIONER_PATH_MAX + 1);
    for (size_t i = 64; i < VERSIONER_PATH_MAX; i += 64)
        long_path[i] = '/';
    commit_ok(f, id, first, 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* A good change along with the bad one: neither is committed. */
        struct version_change batch[] = { add("good", 2, 2), add(bad[i], 3, 3) };

        assert_int_equal(versioner_commit(f->versioner, out, batch, 2, WHEN), FR_EINVAL);
        assert_string_equal(out, "");
        batch[1].deleted = true;
        assert_int_equal(versioner_commit(f->versioner, out, batch, 2, WHEN), FR_EINVAL);
    }
    assert_int_equal(versioner_commit(f->versioner, out, NULL, 1, WHEN), FR_EINVAL);
    assert_int_equal(commit_count(f), 1);
    assert_git(f, "ls-tree -r --name-only HEAD", "keep");

    /* Exactly VERSIONER_PATH_MAX bytes is fine. */
    long_path[VERSIONER_PATH_MAX] = '\0';
    commit_ok(f, id, (struct version_change[]){ add(long_path, 4, 4) }, 1);
    assert_int_equal(commit_count(f), 2);
    assert_fsck_clean(f);
}

static void test_versioner__odd_names_kept_and_quoted(void **state)
{
    struct fixture *f = *state;
    struct version_change batch[] = {
        add("two\nlines", 1, 1),
        add("tab\there", 2, 2),
        add("say \"hi\"", 3, 3),
        add("back\\slash", 4, 4),
        add("na\xc3\xafve.txt", 5, 5),
        add("c:d", 6, 6),
        add(".gitx", 7, 7),
        add("git~2", 8, 8),
        add("\x01", 9, 9),
    };
    char id[41];

    commit_ok(f, id, batch, sizeof(batch) / sizeof(batch[0]));
    assert_git(f, "-c core.quotePath=false ls-tree -r --name-only HEAD",
               "\"\\001\"\n.gitx\n\"back\\\\slash\"\nc:d\ngit~2\nna\xc3\xafve.txt\n"
               "\"say \\\"hi\\\"\"\n\"tab\\there\"\n\"two\\nlines\"");
    assert_git(f, "log -1 --format=%B",
               "releases: 9 added\n\n"
               "added: \"\\001\"\nadded: .gitx\nadded: \"back\\\\slash\"\nadded: c:d\n"
               "added: git~2\nadded: na\xc3\xafve.txt\nadded: \"say \\\"hi\\\"\"\n"
               "added: \"tab\\there\"\nadded: \"two\\nlines\"\n");
    assert_fsck_clean(f);
}

static void test_versioner__long_message_capped(void **state)
{
    struct fixture *f = *state;
    size_t count = VERSIONER_MESSAGE_MAX_FILES + 5;
    struct version_change *batch = calloc(count, sizeof(*batch));
    char (*paths)[32] = calloc(count, sizeof(*paths));
    const char *first_lines = "releases: 1005 added\n\nadded: d00/f0000\nadded: d00/f0037\n";
    char id[41], *text, *line;
    size_t lines = 0;

    assert_non_null(batch);
    assert_non_null(paths);
    for (size_t i = 0; i < count; i++) {
        snprintf(paths[i], sizeof(paths[i]), "d%02zu/f%04zu", i % 37, i);
        batch[i] = add(paths[i], (unsigned char)i, i);
    }
    commit_ok(f, id, batch, count);
    text = git_ok(f, "log -1 --format=%%B");
    assert_true(strncmp(text, first_lines, strlen(first_lines)) == 0);
    for (line = text; (line = strchr(line, '\n')); line++)
        lines++;
    /* Summary, blank, 1000 files, the tail. */
    assert_int_equal(lines, 3 + VERSIONER_MESSAGE_MAX_FILES);
    assert_non_null(strstr(text, "\n... and 5 more"));
    free(text);
    assert_git(f, "ls-tree -r --name-only HEAD | wc -l", "1005");
    /* 1005 pointers, 38 trees and the commit: one pack, nothing loose. */
    assert_git(f, OBJECT_STORE, "count: 0\nin-pack: 1044\npacks: 1");
    /* A small batch on top stays loose, and reads the packed trees. */
    commit_ok(f, id, (struct version_change[]){ del("d05/f0005") }, 1);
    assert_git(f, OBJECT_STORE, "count: 3\nin-pack: 1044\npacks: 1");
    assert_git(f, "ls-tree -r --name-only HEAD | wc -l", "1004");
    assert_fsck_clean(f);
    free(paths);
    free(batch);
}

static void test_versioner__reopen_continues_history(void **state)
{
    struct fixture *f = *state;
    char id1[41], id2[41], head[41];

    commit_ok(f, id1, (struct version_change[]){ add("one", 1, 1) }, 1);
    versioner_free(f->versioner);
    f->versioner = NULL;
    assert_int_equal(versioner_open(&f->versioner, f->git_dir, "releases"), 0);
    assert_int_equal(versioner_head(f->versioner, head), 0);
    assert_string_equal(head, id1);
    commit_ok(f, id2, (struct version_change[]){ add("two", 2, 2) }, 1);
    assert_git(f, "rev-parse HEAD^", id1);
    assert_int_equal(commit_count(f), 2);
    assert_git(f, "ls-tree -r --name-only HEAD", "one\ntwo");
    assert_git(f, "rev-parse --is-bare-repository", "true");
    assert_fsck_clean(f);
}

/* The path of `name` inside the fixture's repository, in `buf`. */
static const char *in_repo(struct fixture *f, const char *name, char buf[256])
{
    snprintf(buf, 256, "%s/%s", f->git_dir, name);
    return buf;
}

/* Writes `text` to the file `name` under the fixture's repository. */
static void put_file(struct fixture *f, const char *name, const char *text)
{
    char path[256];
    FILE *file = fopen(in_repo(f, name, path), "w");

    assert_non_null(file);
    fputs(text, file);
    assert_int_equal(fclose(file), 0);
}

static bool exists_in_repo(struct fixture *f, const char *name)
{
    char path[256];
    struct stat st;

    return lstat(in_repo(f, name, path), &st) == 0;
}

/* A daemon killed while git held the branch's lock: no commit can be made
 * until the lock is cleared; clearing takes every lock file and nothing else. */
static void test_versioner__stale_locks_cleared(void **state)
{
    struct fixture *f = *state;
    char id1[41], id2[41], head[41], out[41], path[256];

    commit_ok(f, id1, (struct version_change[]){ add("one", 1, 1) }, 1);
    put_file(f, "refs/heads/master.lock", id1);
    put_file(f, "HEAD.lock", "ref: refs/heads/master\n");
    put_file(f, "packed-refs.lock", "");
    mkdir(in_repo(f, "logs", path), 0700);
    mkdir(in_repo(f, "logs/refs", path), 0700);
    mkdir(in_repo(f, "logs/refs/heads", path), 0700);
    put_file(f, "logs/refs/heads/master.lock", "");
    put_file(f, "refs/heads/keep", id1);          /* a ref, not a lock */
    assert_int_equal(mkdir(in_repo(f, "refs/tags/v1.lock", path), 0700), 0);   /* a directory */

    assert_true(versioner_commit(f->versioner, out,
                                 (struct version_change[]){ add("two", 2, 2) }, 1, WHEN) < 0);
    assert_non_null(strstr(versioner_last_error(f->versioner), "lock"));

    assert_int_equal(versioner_clear_locks(f->git_dir), 4);
    assert_false(exists_in_repo(f, "refs/heads/master.lock"));
    assert_false(exists_in_repo(f, "HEAD.lock"));
    assert_false(exists_in_repo(f, "packed-refs.lock"));
    assert_false(exists_in_repo(f, "logs/refs/heads/master.lock"));
    assert_true(exists_in_repo(f, "refs/heads/keep"));
    assert_true(exists_in_repo(f, "refs/tags/v1.lock"));
    assert_true(exists_in_repo(f, "HEAD"));
    assert_true(exists_in_repo(f, "config"));

    commit_ok(f, id2, (struct version_change[]){ add("two", 2, 2) }, 1);
    assert_int_equal(versioner_head(f->versioner, head), 0);
    assert_string_equal(head, id2);
    assert_git(f, "rev-parse HEAD^", id1);
    assert_int_equal(versioner_clear_locks(f->git_dir), 0);
    assert_fsck_clean(f);

    /* A repository not made yet has nothing to clear. */
    assert_int_equal(versioner_clear_locks("/nonexistent/filerepo/state.git"), 0);
}

static void test_versioner__open_refuses_what_is_not_a_state_repository(void **state)
{
    struct fixture *f = *state;
    struct versioner *other = (struct versioner *)f;   /* not NULL: see it cleared */
    char path[192], command[256];
    FILE *file;

    snprintf(path, sizeof(path), "%s/cluttered", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/cluttered/file", f->dir);
    file = fopen(path, "w");
    assert_non_null(file);
    fclose(file);
    snprintf(path, sizeof(path), "%s/cluttered", f->dir);
    assert_int_equal(versioner_open(&other, path, "releases"), FR_EINVAL);
    assert_null(other);

    snprintf(path, sizeof(path), "%s/worktree", f->dir);
    snprintf(command, sizeof(command), "git init -q '%s' 2>/dev/null", path);
    assert_int_equal(system(command), 0);
    assert_int_equal(versioner_open(&other, path, "releases"), FR_EINVAL);

    snprintf(path, sizeof(path), "%s/empty", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(versioner_open(&other, path, "two\nlines"), FR_EINVAL);
    assert_int_equal(versioner_open(&other, path, ""), FR_EINVAL);
    assert_int_equal(versioner_open(&other, path, "mirror"), 0);
    versioner_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        VERSIONER_TEST(first_commit),
        VERSIONER_TEST(second_batch),
        VERSIONER_TEST(unchanged_batch_makes_no_commit),
        VERSIONER_TEST(nested_directory_removal),
        VERSIONER_TEST(file_directory_swap),
        VERSIONER_TEST(file_directory_clash_refused),
        VERSIONER_TEST(foreach),
        VERSIONER_TEST(foreach_refuses_a_non_pointer),
        VERSIONER_TEST(bad_paths_refused),
        VERSIONER_TEST(odd_names_kept_and_quoted),
        VERSIONER_TEST(long_message_capped),
        VERSIONER_TEST(reopen_continues_history),
        VERSIONER_TEST(open_refuses_what_is_not_a_state_repository),
        VERSIONER_TEST(stale_locks_cleared),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
