/*
 * versioner.h - a repository's release history as a bare git repository.
 *
 * One bare git repository per published repository, under the daemon's state
 * directory.  Each settled batch of changes becomes one commit whose tree
 * mirrors the published tree; each file in it is a git-lfs pointer blob
 *
 *     version https://git-lfs.github.com/spec/v1
 *     oid sha256:<64 lower-case hex>
 *     size <decimal bytes>
 *
 * (each line ending in "\n"), so `git log`, `git show` and `git diff` on the
 * state repository read as the release history and stay small whatever the
 * archives weigh.  Author and committer are "filerepo <filerepo@localhost>".
 *
 * Paths are relative and '/'-separated: "dir/sub/file".  A path is refused
 * (FR_EINVAL) when it is empty or longer than VERSIONER_PATH_MAX bytes, is
 * absolute, has an empty, "." or ".." segment, or has a segment git refuses
 * in a tree: ".git" or its DOS short name "git~1", in any case, followed
 * by nothing but dots and spaces, or by those and then a ':' or '\' and
 * anything (what NTFS would take for ".git").  Every other byte is kept as
 * it is, newlines and tabs included: git stores such names faithfully, and
 * the commit message quotes a name with a control character, '"' or '\'
 * (C-style, in double quotes, as git does with core.quotePath off) so that
 * each file stays one line there.
 *
 * A commit's objects reach the disk before HEAD's branch moves, so a crash
 * never leaves the branch on a missing commit.  Surviving a power loss as
 * well needs fsync, which libgit2 leaves off; the switch is process-wide,
 * so it is the daemon's to turn on:
 * git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1).
 *
 * Not thread-safe: one thread at a time per versioner.  Errors are returned
 * as FR_E* codes; the libgit2 detail of the last failure is kept for the
 * caller to log once (versioner_last_error()).
 */
#ifndef FILEREPO_VERSIONER_H
#define FILEREPO_VERSIONER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fr_error.h"

/** The longest path versioner_commit() accepts, in bytes (without the NUL). */
#define VERSIONER_PATH_MAX 4096

/** How many per-file lines a commit message lists before "... and N more". */
#define VERSIONER_MESSAGE_MAX_FILES 1000

struct versioner;

/** One file of a batch handed to versioner_commit(). */
struct version_change {
    const char *path;           /* "dir/sub/file": relative, '/'-separated, no "." or ".." or empty segments */
    bool deleted;               /* the file is gone from the tree */
    unsigned char sha256[32];   /* added or changed: the content digest */
    uint64_t size;              /* and its size */
};

/**
 * Opens the bare git repository at `git_dir`, or creates it (with any missing
 * parent directories) when `git_dir` does not exist or is an empty
 * directory.  `repo_name` (copied; one line) names the repository in commit
 * messages.  Returns 0 and hands the versioner to *out; FR_EINVAL when
 * either is NULL, `repo_name` is empty or has a line break, or `git_dir` is
 * a repository with a work tree, or something else that is not empty;
 * FR_ENOMEM; FR_ERROR.  Failures are logged here, with the libgit2 detail
 * (there is no versioner to keep it), so the caller need not log them again.
 */
int versioner_open(struct versioner **out, const char *git_dir, const char *repo_name);

/**
 * Removes the lock files ("NAME.lock") git writes next to what it updates
 * (HEAD, packed-refs, config, each ref under refs/ and its log under logs/,
 * a pack's index) from the repository at `git_dir`, each logged.  A process
 * killed while holding one leaves it behind, and every later update of that
 * ref is then refused.  Only for a caller that knows no other process
 * writes to `git_dir`: filerepod holds its state directory's lock.  A
 * missing `git_dir` is fine.  Returns how many were removed, or FR_ERROR
 * (logged) when one could not be.
 */
int versioner_clear_locks(const char *git_dir);

/** Closes the repository and frees the versioner; NULL is fine. */
void versioner_free(struct versioner *versioner);

/**
 * Applies a batch of `count` changes (borrowed, any order) on top of HEAD
 * and commits it with author and committer time `when_unix` (UTC), updating
 * HEAD's branch.  All deletions are applied before all additions, so a path
 * may turn from a file into a directory, or back, within one batch.
 * Deleting a path that is no file at HEAD (absent, or a directory) changes
 * nothing; a directory whose last file goes disappears.  A path may be added
 * at most once per batch, and an added file may not stand where a directory
 * remains (or the other way round).  Adding a file with the digest and size
 * it already has changes nothing.
 *
 * The message reads "<repo_name>: 2 added, 1 changed, 1 removed" (zero counts
 * left out), a blank line, then "added: <path>" lines, "changed: <path>"
 * lines and "removed: <path>" lines, each group in path order, at most
 * VERSIONER_MESSAGE_MAX_FILES lines in all and then "... and N more".
 *
 * Returns 0 with the new commit's id (40 hex and a NUL) in `out`; 1 with
 * HEAD's id in `out` when the batch changes nothing (no empty commit is
 * made: so a restart after a crash between this commit and the catalog's
 * finds the commit already made); FR_ENOTFOUND when the batch changes
 * nothing and there is no commit yet; FR_EINVAL for a bad path, a path added
 * twice, or a file/directory clash (nothing is committed); FR_ENOMEM;
 * FR_ERROR with the libgit2 detail in versioner_last_error().  `out` is ""
 * on failure.
 */
int versioner_commit(struct versioner *versioner, char out[41],
                     const struct version_change *changes, size_t count, int64_t when_unix);

/**
 * Puts HEAD's commit id (40 hex and a NUL) in `out`.  Returns 0;
 * FR_ENOTFOUND when there is no commit yet; FR_ERROR with the detail in
 * versioner_last_error().
 */
int versioner_head(struct versioner *versioner, char out[41]);

/**
 * Calls `fn` for every file in the tree of `commit` (a commit id or any git
 * revision such as "HEAD~1"; NULL: HEAD), in byte-wise path order, with its
 * path, the digest and size its pointer blob records, and `data`.  The
 * arguments are valid during the call only.  `fn` returning non-zero stops
 * the walk, and that value is returned.
 * Returns 0 when every file was visited; FR_ENOTFOUND when `commit` (or
 * HEAD) does not exist; FR_EINVAL when `commit` is no valid revision or
 * names no commit; FR_ERROR (detail in versioner_last_error()) for a blob
 * that is not a valid pointer, an entry that is neither a file nor a
 * directory, or a libgit2 failure; FR_ENOMEM.
 */
int versioner_foreach(struct versioner *versioner, const char *commit,
                      int (*fn)(const char *path, const unsigned char sha256[32],
                                uint64_t size, void *data),
                      void *data);

/**
 * Returns whether a file or directory name (one path segment) may stand in
 * a tree: false for the ".git" look-alikes described above.
 */
bool versioner_name_allowed(const char *name);

/**
 * Compacts the repository when it holds more than max_loose loose objects
 * or more than max_packs packs: everything reachable from HEAD goes into
 * one pack, the rest is removed, and the repository is reopened.  Sets
 * *compacted when it did.  Returns 0, or FR_ERROR (versioner_last_error())
 * with the repository as it was, or unusable if it could not be reopened.
 */
int versioner_compact(struct versioner *versioner, long max_loose, long max_packs,
                      bool *compacted);

/** Returns the text of the last failure (borrowed; "" when none). */
const char *versioner_last_error(const struct versioner *versioner);

#endif
