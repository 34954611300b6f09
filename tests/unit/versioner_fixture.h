/*
 * versioner_fixture.h - what the versioner's tests share: a fresh bare state
 * repository per test under a temporary directory, the real git command line
 * to read it back, and changes made from a seed.
 */
#ifndef FILEREPO_TEST_VERSIONER_FIXTURE_H
#define FILEREPO_TEST_VERSIONER_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "versioner.h"

#define WHEN 1700000000

struct fixture {
    char dir[64];               /* the temporary directory of this test */
    char git_dir[128];          /* the state repository inside it */
    struct versioner *versioner;    /* open on git_dir */
};

static inline int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    /* git must not read the configuration of whoever runs the tests. */
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    setenv("GIT_AUTHOR_NAME", "test", 1);
    setenv("GIT_AUTHOR_EMAIL", "test@localhost", 1);
    setenv("GIT_COMMITTER_NAME", "test", 1);
    setenv("GIT_COMMITTER_EMAIL", "test@localhost", 1);
    strcpy(f->dir, "/tmp/test_versioner.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->git_dir, sizeof(f->git_dir), "%s/state/releases.git", f->dir);
    assert_int_equal(versioner_open(&f->versioner, f->git_dir, "releases"), 0);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;

    versioner_free(f->versioner);
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/*
 * Runs `git --git-dir=<the fixture's> <args>` (args: printf format, shell
 * words), stdout and stderr together; returns what it printed (caller frees)
 * and its exit status in *status.
 */
static inline char *git_run(struct fixture *f, int *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline char *git_run(struct fixture *f, int *status, const char *fmt, ...)
{
    char args[8192], command[8400];
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    va_list ap;
    FILE *p;
    int rc;

    assert_non_null(text);
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(command, sizeof(command), "git --git-dir='%s' %s 2>&1", f->git_dir, args);
    p = popen(command, "r");
    assert_non_null(p);
    for (;;) {
        size_t n;

        if (len + 1 == cap) {
            cap *= 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        n = fread(text + len, 1, cap - len - 1, p);
        if (n == 0)
            break;
        len += n;
    }
    text[len] = '\0';
    rc = pclose(p);
    *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return text;
}

/* As git_run, for a command that must succeed; drops one final newline. */
static inline char *git_ok(struct fixture *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline char *git_ok(struct fixture *f, const char *fmt, ...)
{
    char args[8192];
    va_list ap;
    char *text;
    size_t len;
    int status;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    text = git_run(f, &status, "%s", args);
    if (status != 0)
        fail_msg("git %s: exit %d: %s", args, status, text);
    len = strlen(text);
    if (len > 0 && text[len - 1] == '\n')
        text[len - 1] = '\0';
    return text;
}

static inline void assert_git(struct fixture *f, const char *args, const char *expect)
{
    char *text = git_ok(f, "%s", args);

    if (strcmp(text, expect) != 0)
        fail_msg("git %s:\n--- got\n%s\n--- expected\n%s", args, text, expect);
    free(text);
}

static inline long commit_count(struct fixture *f)
{
    char *text = git_ok(f, "rev-list --count HEAD");
    long count = strtol(text, NULL, 10);

    free(text);
    return count;
}

#define OBJECT_STORE "count-objects -v | grep -E '^(count|in-pack|packs):'"

/* Loose objects, packed objects and packs, as `git count-objects` says (caller frees). */
static inline char *object_store(struct fixture *f)
{
    return git_ok(f, OBJECT_STORE);
}

static inline void assert_fsck_clean(struct fixture *f)
{
    assert_git(f, "fsck --strict --no-dangling --no-progress", "");
}

/* A change whose digest is `seed` repeated and whose size is `size`. */
static inline struct version_change add(const char *path, unsigned char seed, uint64_t size)
{
    struct version_change change = { .path = path, .size = size };

    memset(change.sha256, seed, sizeof(change.sha256));
    return change;
}

static inline struct version_change del(const char *path)
{
    struct version_change change = { .path = path, .deleted = true };

    return change;
}

/* `git show <object>` prints exactly the pointer of add(path, seed, size). */
static inline void assert_pointer(struct fixture *f, const char *object, unsigned char seed,
                           uint64_t size)
{
    char hex[65], expect[256], *text;
    int status;

    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", seed);
    snprintf(expect, sizeof(expect),
             "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %llu\n", hex,
             (unsigned long long)size);
    text = git_run(f, &status, "show %s", object);
    assert_int_equal(status, 0);
    assert_string_equal(text, expect);
    free(text);
}

static inline void commit_ok(struct fixture *f, char id[41], const struct version_change *changes,
                      size_t count)
{
    int rc = versioner_commit(f->versioner, id, changes, count, WHEN);

    if (rc != 0)
        fail_msg("versioner_commit: %d: %s", rc, versioner_last_error(f->versioner));
    assert_int_equal(strlen(id), 40);
}

/* Each test gets a fresh state repository. */
#define VERSIONER_TEST(name) \
    cmocka_unit_test_setup_teardown(test_versioner__##name, setup, teardown)

#endif
