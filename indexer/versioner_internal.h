/*
 * versioner_internal.h - what the files of the versioner share, and nobody
 * else: versioner.c (the repository, commits, reading) and
 * versioner_batch.c (a batch turned into a tree and a message).
 */
#ifndef FILEREPO_VERSIONER_INTERNAL_H
#define FILEREPO_VERSIONER_INTERNAL_H

#include <git2.h>

#include "versioner.h"

struct versioner {
    git_repository *repo;       /* the bare state repository; its writes go to memory */
    git_odb *odb;               /* repo's object database: memory, then disk */
    git_odb_backend *memory;    /* mempack in odb (owned by it): the batch being built */
    git_odb *disk;              /* the objects directory alone: where a batch is saved */
    char *repo_name;            /* names the repository in commit messages */
    char *git_dir;              /* where the repository is */
    long loose, packs;          /* objects/ holds so many; -1: not counted yet */
    char error[1024];           /* text of the last failure, "" when none */
};

enum versioner_outcome {
    VERSIONER_OUTCOME_NONE,     /* the tree is as it was */
    VERSIONER_OUTCOME_ADDED,    /* a file where there was none */
    VERSIONER_OUTCOME_CHANGED,  /* a file with new content */
    VERSIONER_OUTCOME_REMOVED,  /* a file gone */
    VERSIONER_OUTCOMES,         /* how many there are */
};

struct versioner_slot {
    const struct version_change *change;    /* borrowed from the caller */
    enum versioner_outcome outcome;         /* what it did, once built */
};

struct versioner_batch {
    struct versioner *versioner;    /* whose repository is written */
    struct versioner_slot *slots;   /* by path, deletions first; no repeats */
    size_t count;                   /* how many slots */
    size_t outcomes[VERSIONER_OUTCOMES];    /* how many slots had each, once built */
    git_oid *written;               /* every object written while building */
    size_t written_count;           /* how many */
    size_t written_capacity;        /* room in written */
};

/** Records the text of a failure (printf-style) as the last error. */
void versioner_set_error(struct versioner *versioner, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Records libgit2's detail of the failure of `what`; returns FR_ERROR. */
int versioner_git_error(struct versioner *versioner, const char *what);

/** Whether HEAD's branch has no commit yet. */
bool versioner_head_missing(struct versioner *versioner);

/** Closes and opens the repository again (after its files changed). Returns 0 or FR_E*. */
int versioner_reopen(struct versioner *versioner);

/**
 * Checks every path of `changes` and sorts them into `batch` (whose
 * versioner is set, the rest zero).  Returns 0, FR_EINVAL (said why) or
 * FR_ENOMEM.
 */
int versioner_batch_prepare(struct versioner_batch *batch,
                            const struct version_change *changes, size_t count);

/**
 * Writes the pointers and trees of the prepared batch on top of
 * `head_tree` (NULL: none) and puts the new root tree's id in *out; counts
 * the outcomes.  Returns 0, FR_EINVAL for a file/directory clash (said
 * why), FR_ENOMEM or FR_ERROR.
 */
int versioner_batch_build(struct versioner_batch *batch, const git_tree *head_tree,
                          git_oid *out);

/** Records that the object `id` was written for the batch.  Returns 0 or FR_ENOMEM. */
int versioner_batch_written(struct versioner_batch *batch, const git_oid *id);

/**
 * Writes the commit message of the built batch to *out (the caller frees
 * it).  Returns 0 or FR_ENOMEM.
 */
int versioner_batch_message(char **out, const struct versioner_batch *batch);

/**
 * Writes the objects `written` (from the repository's odb; repeats allowed)
 * as one pack with its index in objects/pack.  Returns 0, FR_ENOMEM or
 * FR_ERROR (said why).
 */
int versioner_pack_objects(struct versioner *versioner, const git_oid *written, size_t count);

/** Frees what the batch holds (not the batch). */
void versioner_batch_clear(struct versioner_batch *batch);

#endif
