/*
 * versioner_batch.c - a batch of changes turned into a tree and a message.
 *
 * The batch is checked and sorted by path (byte-wise, deletions before
 * additions of the same path).  In that order all paths under one directory
 * stand together, so the tree is rebuilt level by level from HEAD's trees:
 * one git_treebuilder per directory the batch touches, seeded from that
 * directory's tree at HEAD; directories it does not touch are neither read
 * nor written.  Within a directory the deletions go first, then the
 * subdirectories, then the additions, which is what lets a path turn from a
 * file into a directory (or back) in one batch.  Each change is classified
 * on the way against HEAD's entry (added, changed, removed, or nothing), and
 * the message is written from that.
 *
 * Recursion goes one level per path segment, so at most
 * VERSIONER_PATH_MAX / 2 deep.
 */
#include "versioner_internal.h"
#include "lfs_pointer.h"

#include <git2/sys/odb_backend.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Whether a path segment is one git refuses in a tree because NTFS would
 * take it for ".git": ".git" or "git~1" in any case, then only dots and
 * spaces up to the end, a ':' (a stream name) or a '\' (a separator there).
 * This is git's own rule (is_ntfs_dotgit), a little wider than libgit2
 * 1.5's, so that `git fsck` has nothing to say either.
 */
static bool versioner_segment_is_dotgit(const char *segment, size_t len)
{
    static const char *const reserved[] = { ".git", "git~1" };

    for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++) {
        size_t reserved_len = strlen(reserved[r]);
        size_t i = reserved_len;

        if (len < reserved_len || strncasecmp(segment, reserved[r], reserved_len) != 0)
            continue;
        while (i < len && (segment[i] == ' ' || segment[i] == '.'))
            i++;
        if (i == len || segment[i] == ':' || segment[i] == '\\')
            return true;
    }
    return false;
}

bool versioner_name_allowed(const char *name)
{
    return !versioner_segment_is_dotgit(name, strlen(name));
}

/* Returns 0 when `path` is one the tree can hold, else FR_EINVAL (said why). */
static int versioner_check_path(struct versioner *versioner, const char *path)
{
    size_t len, start = 0;

    if (!path) {
        versioner_set_error(versioner, "a change has no path");
        return FR_EINVAL;
    }
    len = strnlen(path, VERSIONER_PATH_MAX + 1);
    if (len == 0 || len > VERSIONER_PATH_MAX) {
        versioner_set_error(versioner, "a path must have 1 to %d bytes", VERSIONER_PATH_MAX);
        return FR_EINVAL;
    }
    while (start <= len) {
        const char *slash = memchr(path + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - path) : len;
        const char *segment = path + start;
        size_t segment_len = end - start;

        if (segment_len == 0 || (segment_len == 1 && segment[0] == '.') ||
            (segment_len == 2 && segment[0] == '.' && segment[1] == '.')) {
            versioner_set_error(versioner, "path \"%s\": empty, \".\" or \"..\" segment, "
                                "or absolute", path);
            return FR_EINVAL;
        }
        if (versioner_segment_is_dotgit(segment, segment_len)) {
            versioner_set_error(versioner, "path \"%s\": git cannot hold a \"%.*s\"",
                                path, (int)segment_len, segment);
            return FR_EINVAL;
        }
        start = end + 1;
    }
    return 0;
}

static int versioner_slot_compare(const void *a, const void *b)
{
    const struct version_change *x = ((const struct versioner_slot *)a)->change;
    const struct version_change *y = ((const struct versioner_slot *)b)->change;
    int order = strcmp(x->path, y->path);

    if (order != 0)
        return order;
    return (int)y->deleted - (int)x->deleted;
}

int versioner_batch_prepare(struct versioner_batch *batch,
                            const struct version_change *changes, size_t count)
{
    size_t kept = 0;
    int error;

    for (size_t i = 0; i < count; i++) {
        error = versioner_check_path(batch->versioner, changes[i].path);
        if (error < 0)
            return error;
    }
    if (count == 0)
        return 0;
    batch->slots = calloc(count, sizeof(*batch->slots));
    if (!batch->slots)
        return FR_ENOMEM;
    for (size_t i = 0; i < count; i++)
        batch->slots[i].change = &changes[i];
    qsort(batch->slots, count, sizeof(*batch->slots), versioner_slot_compare);
    /* A deletion said twice is one; an addition said twice is a mistake. */
    for (size_t i = 0; i < count; i++) {
        const struct version_change *change = batch->slots[i].change;
        const struct version_change *previous = kept ? batch->slots[kept - 1].change : NULL;

        if (previous && strcmp(previous->path, change->path) == 0) {
            if (change->deleted)
                continue;
            if (!previous->deleted) {
                versioner_set_error(batch->versioner, "path \"%s\" is added twice in one batch",
                                    change->path);
                return FR_EINVAL;
            }
        }
        batch->slots[kept++] = batch->slots[i];
    }
    batch->count = kept;
    return 0;
}

int versioner_batch_written(struct versioner_batch *batch, const git_oid *id)
{
    if (batch->written_count == batch->written_capacity) {
        size_t capacity = batch->written_capacity ? 2 * batch->written_capacity : 64;
        git_oid *written = realloc(batch->written, capacity * sizeof(*written));

        if (!written)
            return FR_ENOMEM;
        batch->written = written;
        batch->written_capacity = capacity;
    }
    git_oid_cpy(&batch->written[batch->written_count++], id);
    return 0;
}

static int versioner_build_tree(struct versioner_batch *batch, size_t lo, size_t hi,
                                size_t prefix_len, const git_tree *base, git_oid *out,
                                size_t *out_entries);

/*
 * Rebuilds the subdirectory `name` of the directory being built in `builder`
 * from slots [lo, hi), whose paths all have "name/" end at prefix_len.  An
 * emptied directory leaves the tree.
 */
static int versioner_update_subtree(struct versioner_batch *batch, size_t lo, size_t hi,
                                    size_t prefix_len, const git_tree *base,
                                    git_treebuilder *builder, const char *name)
{
    struct versioner *versioner = batch->versioner;
    const git_tree_entry *entry = base ? git_tree_entry_byname(base, name) : NULL;
    const git_tree_entry *current;
    git_tree *subtree = NULL;
    git_oid subtree_id;
    size_t entries = 0;
    int error;

    if (entry && git_tree_entry_type(entry) == GIT_OBJECT_TREE &&
        git_tree_lookup(&subtree, versioner->repo, git_tree_entry_id(entry)) < 0) {
        error = versioner_git_error(versioner, "reading a tree");
        goto done;
    }
    error = versioner_build_tree(batch, lo, hi, prefix_len, subtree, &subtree_id, &entries);
    if (error < 0)
        goto done;
    current = git_treebuilder_get(builder, name);
    if (entries == 0) {
        if (current && git_tree_entry_type(current) == GIT_OBJECT_TREE &&
            git_treebuilder_remove(builder, name) < 0)
            error = versioner_git_error(versioner, "removing a directory");
        goto done;
    }
    if (current && git_tree_entry_type(current) == GIT_OBJECT_BLOB) {
        versioner_set_error(versioner, "path \"%.*s\": a file stands where the batch puts a "
                            "directory", (int)(prefix_len - 1),
                            batch->slots[lo].change->path);
        error = FR_EINVAL;
        goto done;
    }
    if (git_treebuilder_insert(NULL, builder, name, &subtree_id, GIT_FILEMODE_TREE) < 0)
        error = versioner_git_error(versioner, "inserting a directory");
done:
    git_tree_free(subtree);
    return error;
}

/* Writes, inserts and classifies the addition in slot `at`, a file of this level. */
static int versioner_add_file(struct versioner_batch *batch, size_t lo, size_t at,
                              const git_tree *base, git_treebuilder *builder,
                              const char *name)
{
    struct versioner *versioner = batch->versioner;
    struct versioner_slot *slot = &batch->slots[at];
    const git_tree_entry *before = base ? git_tree_entry_byname(base, name) : NULL;
    const git_tree_entry *current = git_treebuilder_get(builder, name);
    char pointer[LFS_POINTER_MAX];
    size_t pointer_len;
    git_oid blob_id;
    int error;

    if (current && git_tree_entry_type(current) == GIT_OBJECT_TREE) {
        versioner_set_error(versioner, "path \"%s\": a directory stands where the batch puts "
                            "a file", slot->change->path);
        return FR_EINVAL;
    }
    pointer_len = lfs_pointer_format(pointer, slot->change->sha256, slot->change->size);
    /* Straight into the batch's memory: git_odb_write would first look for
     * the blob everywhere and, not finding it, reread the pack directory,
     * once per file of the batch.  A pointer already on disk is written
     * again in the batch's pack, which is harmless. */
    if (git_odb_hash(&blob_id, pointer, pointer_len, GIT_OBJECT_BLOB) < 0 ||
        versioner->memory->write(versioner->memory, &blob_id, pointer, pointer_len,
                                 GIT_OBJECT_BLOB) < 0)
        return versioner_git_error(versioner, "writing a pointer");
    error = versioner_batch_written(batch, &blob_id);
    if (error < 0)
        return error;
    if (git_treebuilder_insert(NULL, builder, name, &blob_id, GIT_FILEMODE_BLOB) < 0)
        return versioner_git_error(versioner, "inserting a file");
    /* A deletion of this same path just before is folded into this. */
    if (at > lo && batch->slots[at - 1].change->deleted &&
        strcmp(batch->slots[at - 1].change->path, slot->change->path) == 0)
        batch->slots[at - 1].outcome = VERSIONER_OUTCOME_NONE;
    if (!before || git_tree_entry_type(before) != GIT_OBJECT_BLOB)
        slot->outcome = VERSIONER_OUTCOME_ADDED;
    else if (git_tree_entry_filemode(before) != GIT_FILEMODE_BLOB ||
             !git_oid_equal(git_tree_entry_id(before), &blob_id))
        slot->outcome = VERSIONER_OUTCOME_CHANGED;
    return 0;
}

/*
 * Builds the directory whose changes are slots [lo, hi) (their paths share
 * the first prefix_len bytes, which end in '/' unless 0) on top of `base`
 * (its tree at HEAD; NULL: none), writes it to *out and says in
 * *out_entries how many entries it has.
 */
static int versioner_build_tree(struct versioner_batch *batch, size_t lo, size_t hi,
                                size_t prefix_len, const git_tree *base, git_oid *out,
                                size_t *out_entries)
{
    struct versioner *versioner = batch->versioner;
    git_treebuilder *builder = NULL;
    char *name = NULL;
    size_t end;
    int error = 0;

    if (git_treebuilder_new(&builder, versioner->repo, base) < 0) {
        error = versioner_git_error(versioner, "starting a tree");
        goto done;
    }
    for (size_t i = lo; i < hi; i++) {
        struct versioner_slot *slot = &batch->slots[i];
        const char *rest = slot->change->path + prefix_len;
        const git_tree_entry *entry;

        if (!slot->change->deleted || strchr(rest, '/'))
            continue;
        entry = git_treebuilder_get(builder, rest);
        if (!entry || git_tree_entry_type(entry) != GIT_OBJECT_BLOB)
            continue;
        if (git_treebuilder_remove(builder, rest) < 0) {
            error = versioner_git_error(versioner, "removing a file");
            goto done;
        }
        slot->outcome = VERSIONER_OUTCOME_REMOVED;
    }
    for (size_t i = lo; i < hi; i = end) {
        const char *rest = batch->slots[i].change->path + prefix_len;
        const char *slash = strchr(rest, '/');
        size_t name_len;

        end = i + 1;
        if (!slash)
            continue;
        name_len = (size_t)(slash - rest);
        /* In byte-wise order all paths under "name/" stand together. */
        while (end < hi && strncmp(batch->slots[end].change->path + prefix_len, rest,
                                   name_len + 1) == 0)
            end++;
        name = strndup(rest, name_len);
        if (!name) {
            error = FR_ENOMEM;
            goto done;
        }
        error = versioner_update_subtree(batch, i, end, prefix_len + name_len + 1, base,
                                         builder, name);
        free(name);
        name = NULL;
        if (error < 0)
            goto done;
    }
    for (size_t i = lo; i < hi; i++) {
        const char *rest = batch->slots[i].change->path + prefix_len;

        if (batch->slots[i].change->deleted || strchr(rest, '/'))
            continue;
        error = versioner_add_file(batch, lo, i, base, builder, rest);
        if (error < 0)
            goto done;
    }
    *out_entries = git_treebuilder_entrycount(builder);
    if (git_treebuilder_write(out, builder) < 0)
        error = versioner_git_error(versioner, "writing a tree");
    else
        error = versioner_batch_written(batch, out);
done:
    free(name);
    git_treebuilder_free(builder);
    return error;
}

int versioner_batch_build(struct versioner_batch *batch, const git_tree *head_tree,
                          git_oid *out)
{
    size_t entries;
    int error;

    memset(batch->outcomes, 0, sizeof(batch->outcomes));
    error = versioner_build_tree(batch, 0, batch->count, 0, head_tree, out, &entries);
    if (error < 0)
        return error;
    for (size_t i = 0; i < batch->count; i++)
        batch->outcomes[batch->slots[i].outcome]++;
    return 0;
}

/* Writes `path` to `f` as one line can hold it: C-quoted when it must be. */
static void versioner_message_path(FILE *f, const char *path)
{
    static const char escapes[] = "\a\b\t\n\v\f\r";
    static const char letters[] = "abtnvfr";
    const unsigned char *p;
    bool quote = false;

    for (p = (const unsigned char *)path; *p && !quote; p++)
        quote = *p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\';
    if (!quote) {
        fputs(path, f);
        return;
    }
    fputc('"', f);
    for (p = (const unsigned char *)path; *p; p++) {
        const char *escape = strchr(escapes, *p);

        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (escape)
            fprintf(f, "\\%c", letters[escape - escapes]);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\%03o", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int versioner_batch_message(char **out, const struct versioner_batch *batch)
{
    static const char *const words[] = {
        [VERSIONER_OUTCOME_ADDED] = "added",
        [VERSIONER_OUTCOME_CHANGED] = "changed",
        [VERSIONER_OUTCOME_REMOVED] = "removed",
    };
    static const enum versioner_outcome order[] = {
        VERSIONER_OUTCOME_ADDED, VERSIONER_OUTCOME_CHANGED, VERSIONER_OUTCOME_REMOVED,
    };
    size_t listed = 0, total = 0, size = 0;
    const char *separator = ": ";
    char *text = NULL;
    int failed;
    FILE *f;

    *out = NULL;
    f = open_memstream(&text, &size);
    if (!f)
        return FR_ENOMEM;
    fputs(batch->versioner->repo_name, f);
    for (size_t k = 0; k < 3; k++) {
        if (batch->outcomes[order[k]] == 0)
            continue;
        fprintf(f, "%s%zu %s", separator, batch->outcomes[order[k]], words[order[k]]);
        separator = ", ";
        total += batch->outcomes[order[k]];
    }
    fputs("\n\n", f);
    for (size_t k = 0; k < 3; k++) {
        for (size_t i = 0; i < batch->count && listed < VERSIONER_MESSAGE_MAX_FILES; i++) {
            if (batch->slots[i].outcome != order[k])
                continue;
            fprintf(f, "%s: ", words[order[k]]);
            versioner_message_path(f, batch->slots[i].change->path);
            fputc('\n', f);
            listed++;
        }
    }
    if (listed < total)
        fprintf(f, "... and %zu more\n", total - listed);
    failed = ferror(f);
    if (fclose(f) != 0 || failed) {
        free(text);
        return FR_ENOMEM;
    }
    *out = text;
    return 0;
}

void versioner_batch_clear(struct versioner_batch *batch)
{
    free(batch->slots);
    free(batch->written);
    batch->slots = NULL;
    batch->written = NULL;
    batch->count = batch->written_count = batch->written_capacity = 0;
}
