/*
 * versioner.c - batches of file changes as commits of git-lfs pointer files.
 *
 * A commit goes in four steps.  The batch is checked and sorted by path
 * (byte-wise, deletions before additions of the same path); in that order
 * every directory's changes stand together, so the tree is rebuilt level by
 * level from HEAD's trees: one git_treebuilder per directory that the batch
 * touches, seeded from that directory's tree at HEAD, and nothing read or
 * written for the directories it does not touch.  Within a directory the
 * deletions go first, then the subdirectories, then the additions, which is
 * what lets a path turn from a file into a directory (or back) in one batch.
 * Each change is classified on the way against HEAD's entry (added, changed,
 * removed, or nothing), the message is written from that, and the commit is
 * made only when something changed.
 *
 * A batch refused half-way (a file/directory clash found while building)
 * leaves only unreferenced blobs and trees behind, which `git gc` prunes;
 * HEAD moves only with the final git_commit_create().  Recursion goes one
 * level per path segment, so at most VERSIONER_PATH_MAX / 2 deep.
 */
#include "versioner.h"
#include "log.h"

#include <git2.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <dirent.h>

#define VERSIONER_SIGNATURE_NAME "filerepo"
#define VERSIONER_SIGNATURE_EMAIL "filerepo@localhost"
#define VERSIONER_POINTER_VERSION "version https://git-lfs.github.com/spec/v1\n"
#define VERSIONER_POINTER_OID "oid sha256:"
#define VERSIONER_POINTER_SIZE "size "
/* The longest pointer: the three lines with a 20-digit size. */
#define VERSIONER_POINTER_MAX 160

struct versioner {
    git_repository *repo;   /* the bare state repository */
    char *repo_name;        /* names the repository in commit messages */
    char error[1024];       /* text of the last failure, "" when none */
};

enum versioner_outcome {
    VERSIONER_OUTCOME_NONE,     /* the tree is as it was */
    VERSIONER_OUTCOME_ADDED,    /* a file where there was none */
    VERSIONER_OUTCOME_CHANGED,  /* a file with new content */
    VERSIONER_OUTCOME_REMOVED,  /* a file gone */
};

struct versioner_slot {
    const struct version_change *change;    /* borrowed from the caller */
    enum versioner_outcome outcome;         /* what it did, once built */
};

struct versioner_batch {
    struct versioner *versioner;    /* whose repository is written */
    struct versioner_slot *slots;   /* by path, deletions first; no repeats */
    size_t count;                   /* how many slots */
};

static void versioner_set_error(struct versioner *versioner, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void versioner_set_error(struct versioner *versioner, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(versioner->error, sizeof(versioner->error), fmt, ap);
    va_end(ap);
}

/* Keeps libgit2's detail of the failure of `what`; returns FR_ERROR. */
static int versioner_git_error(struct versioner *versioner, const char *what)
{
    const git_error *last = git_error_last();

    versioner_set_error(versioner, "%s: %s", what,
                        last && last->message ? last->message : "unknown libgit2 error");
    return FR_ERROR;
}

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
        versioner_set_error(versioner, "%s path", len ? "a longer than "
                            "VERSIONER_PATH_MAX bytes" : "an empty");
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

/*
 * Checks every path and sorts the batch; drops a deletion repeated for the
 * same path, refuses an addition repeated.  Returns 0, FR_EINVAL or
 * FR_ENOMEM.
 */
static int versioner_batch_prepare(struct versioner_batch *batch,
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

/* Writes the pointer blob of `change`; returns 0 or FR_ERROR. */
static int versioner_write_pointer(struct versioner *versioner, git_oid *out,
                                   const struct version_change *change)
{
    static const char hex[] = "0123456789abcdef";
    char text[VERSIONER_POINTER_MAX];
    char digest[65];
    int len;

    for (size_t i = 0; i < 32; i++) {
        digest[2 * i] = hex[change->sha256[i] >> 4];
        digest[2 * i + 1] = hex[change->sha256[i] & 0xf];
    }
    digest[64] = '\0';
    len = snprintf(text, sizeof(text), "%s%s%s\n%s%" PRIu64 "\n", VERSIONER_POINTER_VERSION,
                   VERSIONER_POINTER_OID, digest, VERSIONER_POINTER_SIZE, change->size);
    if (len < 0 || (size_t)len >= sizeof(text)) {
        versioner_set_error(versioner, "pointer of \"%s\" does not fit", change->path);
        return FR_ERROR;
    }
    if (git_blob_create_from_buffer(out, versioner->repo, text, (size_t)len) < 0)
        return versioner_git_error(versioner, "writing a pointer blob");
    return 0;
}

/*
 * Reads a pointer blob's text into *sha256 and *size.  Only the exact form
 * versioner_write_pointer() writes is a pointer.  Returns 0 or -1.
 */
static int versioner_parse_pointer(const char *text, size_t len, unsigned char sha256[32],
                                   uint64_t *size)
{
    static const char prefix[] = VERSIONER_POINTER_VERSION VERSIONER_POINTER_OID;
    static const char size_prefix[] = "\n" VERSIONER_POINTER_SIZE;
    const size_t prefix_len = sizeof(prefix) - 1, size_prefix_len = sizeof(size_prefix) - 1;
    size_t at = prefix_len + 64 + size_prefix_len, digits = 0;
    uint64_t value = 0;

    if (len < at + 2 || memcmp(text, prefix, prefix_len) != 0 ||
        memcmp(text + prefix_len + 64, size_prefix, size_prefix_len) != 0)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        char c = text[prefix_len + i];
        int nibble = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

        if (nibble < 0)
            return -1;
        if (i % 2 == 0)
            sha256[i / 2] = (unsigned char)(nibble << 4);
        else
            sha256[i / 2] |= (unsigned char)nibble;
    }
    for (; at < len && text[at] >= '0' && text[at] <= '9'; at++, digits++) {
        unsigned d = (unsigned)(text[at] - '0');

        if (value > (UINT64_MAX - d) / 10)
            return -1;
        value = value * 10 + d;
    }
    if (digits == 0 || (digits > 1 && text[at - digits] == '0') || at + 1 != len ||
        text[at] != '\n')
        return -1;
    *size = value;
    return 0;
}

static int versioner_build_tree(struct versioner_batch *batch, size_t lo, size_t hi,
                                size_t prefix_len, const git_tree *base, git_oid *out,
                                size_t *out_entries);

/*
 * Rebuilds the subdirectory `name` of the directory being built in `builder`
 * from slots [lo, hi), whose paths all continue with "name/" at
 * prefix_len - strlen(name) - 1.  An emptied directory leaves the tree.
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

/* Classifies and inserts the addition in slot `at`, a file of this level. */
static int versioner_add_file(struct versioner_batch *batch, size_t lo, size_t at,
                              const git_tree *base, git_treebuilder *builder,
                              const char *name)
{
    struct versioner *versioner = batch->versioner;
    struct versioner_slot *slot = &batch->slots[at];
    const git_tree_entry *before = base ? git_tree_entry_byname(base, name) : NULL;
    const git_tree_entry *current = git_treebuilder_get(builder, name);
    git_oid blob_id;
    int error;

    if (current && git_tree_entry_type(current) == GIT_OBJECT_TREE) {
        versioner_set_error(versioner, "path \"%s\": a directory stands where the batch puts "
                            "a file", slot->change->path);
        return FR_EINVAL;
    }
    error = versioner_write_pointer(versioner, &blob_id, slot->change);
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
done:
    free(name);
    git_treebuilder_free(builder);
    return error;
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

/*
 * Writes the commit message for the built batch to *out (the caller frees
 * it).  Returns 0 or FR_ENOMEM.
 */
static int versioner_message(char **out, const struct versioner_batch *batch,
                             const size_t counts[4])
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
    FILE *f;

    *out = NULL;
    f = open_memstream(&text, &size);
    if (!f)
        return FR_ENOMEM;
    fputs(batch->versioner->repo_name, f);
    for (size_t k = 0; k < 3; k++) {
        if (counts[order[k]] == 0)
            continue;
        fprintf(f, "%s%zu %s", separator, counts[order[k]], words[order[k]]);
        separator = ", ";
        total += counts[order[k]];
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
    if (ferror(f)) {
        fclose(f);
        free(text);
        return FR_ENOMEM;
    }
    if (fclose(f) != 0) {
        free(text);
        return FR_ENOMEM;
    }
    *out = text;
    return 0;
}

/* Looks up HEAD's commit into *out (NULL when none yet). */
static int versioner_head_commit(struct versioner *versioner, git_commit **out)
{
    git_oid id;
    int error;

    *out = NULL;
    error = git_reference_name_to_id(&id, versioner->repo, "HEAD");
    if (error == GIT_ENOTFOUND || error == GIT_EUNBORNBRANCH)
        return 0;
    if (error < 0)
        return versioner_git_error(versioner, "resolving HEAD");
    if (git_commit_lookup(out, versioner->repo, &id) < 0)
        return versioner_git_error(versioner, "reading HEAD's commit");
    return 0;
}

int versioner_commit(struct versioner *versioner, char out[41],
                     const struct version_change *changes, size_t count, int64_t when_unix)
{
    struct versioner_batch batch = { .versioner = versioner };
    size_t counts[4] = { 0 }, entries = 0;
    git_commit *parent = NULL;
    git_tree *head_tree = NULL, *tree = NULL;
    git_signature *signature = NULL;
    char *message = NULL;
    git_oid tree_id, commit_id;
    int error;

    out[0] = '\0';
    versioner->error[0] = '\0';
    if (count > 0 && !changes) {
        versioner_set_error(versioner, "a batch of %zu changes without changes", count);
        return FR_EINVAL;
    }
    error = versioner_batch_prepare(&batch, changes, count);
    if (error < 0)
        goto done;
    error = versioner_head_commit(versioner, &parent);
    if (error < 0)
        goto done;
    if (parent && git_commit_tree(&head_tree, parent) < 0) {
        error = versioner_git_error(versioner, "reading HEAD's tree");
        goto done;
    }
    if (batch.count > 0) {
        error = versioner_build_tree(&batch, 0, batch.count, 0, head_tree, &tree_id, &entries);
        if (error < 0)
            goto done;
    }
    for (size_t i = 0; i < batch.count; i++)
        counts[batch.slots[i].outcome]++;
    /* Every entry was compared by id and mode, so no outcome means the same tree. */
    if (counts[VERSIONER_OUTCOME_ADDED] + counts[VERSIONER_OUTCOME_CHANGED] +
            counts[VERSIONER_OUTCOME_REMOVED] == 0) {
        if (!parent) {
            versioner_set_error(versioner, "nothing to commit and no commit yet");
            error = FR_ENOTFOUND;
            goto done;
        }
        git_oid_tostr(out, 41, git_commit_id(parent));
        error = 1;
        goto done;
    }
    error = versioner_message(&message, &batch, counts);
    if (error < 0)
        goto done;
    error = FR_ERROR;
    if (git_tree_lookup(&tree, versioner->repo, &tree_id) < 0) {
        versioner_git_error(versioner, "reading the new tree");
        goto done;
    }
    if (git_signature_new(&signature, VERSIONER_SIGNATURE_NAME, VERSIONER_SIGNATURE_EMAIL,
                          (git_time_t)when_unix, 0) < 0) {
        versioner_git_error(versioner, "making the signature");
        goto done;
    }
    /* With "HEAD" and parent, libgit2 refuses if HEAD moved meanwhile. */
    if (git_commit_create(&commit_id, versioner->repo, "HEAD", signature, signature, NULL,
                          message, tree, parent ? 1 : 0,
                          (const git_commit *[]){ parent }) < 0) {
        versioner_git_error(versioner, "committing");
        goto done;
    }
    git_oid_tostr(out, 41, &commit_id);
    error = 0;
done:
    if (error < 0)
        out[0] = '\0';
    free(message);
    git_signature_free(signature);
    git_tree_free(tree);
    git_tree_free(head_tree);
    git_commit_free(parent);
    free(batch.slots);
    return error;
}

int versioner_head(struct versioner *versioner, char out[41])
{
    git_oid id;
    int error;

    out[0] = '\0';
    versioner->error[0] = '\0';
    error = git_reference_name_to_id(&id, versioner->repo, "HEAD");
    if (error == GIT_ENOTFOUND || error == GIT_EUNBORNBRANCH) {
        versioner_set_error(versioner, "no commit yet");
        return FR_ENOTFOUND;
    }
    if (error < 0)
        return versioner_git_error(versioner, "resolving HEAD");
    git_oid_tostr(out, 41, &id);
    return 0;
}

struct versioner_walk {
    struct versioner *versioner;    /* whose repository is read */
    int (*fn)(const char *path, const unsigned char sha256[32], uint64_t size,
              void *data);          /* the caller's callback */
    void *data;                     /* and its argument */
    char *path;                     /* the path being visited, NUL-terminated */
    size_t capacity;                /* bytes allocated for path */
};

/* Visits `tree`, whose path is the first `len` bytes of walk->path. */
static int versioner_walk_tree(struct versioner_walk *walk, const git_tree *tree, size_t len)
{
    struct versioner *versioner = walk->versioner;
    size_t count = git_tree_entrycount(tree);
    int error = 0;

    for (size_t i = 0; i < count && error == 0; i++) {
        const git_tree_entry *entry = git_tree_entry_byindex(tree, i);
        const char *name = git_tree_entry_name(entry);
        size_t name_len = strlen(name);
        git_filemode_t mode = git_tree_entry_filemode(entry);
        git_object *object = NULL;
        unsigned char sha256[32];
        uint64_t size;

        if (len + name_len + 2 > walk->capacity) {
            size_t capacity = 2 * (len + name_len + 2);
            char *path = realloc(walk->path, capacity);

            if (!path)
                return FR_ENOMEM;
            walk->path = path;
            walk->capacity = capacity;
        }
        memcpy(walk->path + len, name, name_len + 1);
        if (mode != GIT_FILEMODE_TREE && mode != GIT_FILEMODE_BLOB &&
            mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
            versioner_set_error(versioner, "\"%s\": mode %o is neither a file nor a directory",
                                walk->path, (unsigned)mode);
            return FR_ERROR;
        }
        if (git_tree_entry_to_object(&object, versioner->repo, entry) < 0)
            return versioner_git_error(versioner, "reading a tree entry");
        if (mode == GIT_FILEMODE_TREE) {
            walk->path[len + name_len] = '/';
            walk->path[len + name_len + 1] = '\0';
            error = versioner_walk_tree(walk, (const git_tree *)object, len + name_len + 1);
        } else if (versioner_parse_pointer(git_blob_rawcontent((const git_blob *)object),
                                           (size_t)git_blob_rawsize((const git_blob *)object),
                                           sha256, &size) < 0) {
            versioner_set_error(versioner, "\"%s\": not a git-lfs pointer", walk->path);
            error = FR_ERROR;
        } else {
            error = walk->fn(walk->path, sha256, size, walk->data);
        }
        git_object_free(object);
    }
    return error;
}

int versioner_foreach(struct versioner *versioner, const char *commit,
                      int (*fn)(const char *path, const unsigned char sha256[32],
                                uint64_t size, void *data),
                      void *data)
{
    struct versioner_walk walk = { .versioner = versioner, .fn = fn, .data = data };
    const char *spec = commit ? commit : "HEAD";
    git_object *object = NULL, *peeled = NULL;
    git_tree *tree = NULL;
    int error;

    versioner->error[0] = '\0';
    error = git_revparse_single(&object, versioner->repo, spec);
    if (error == GIT_ENOTFOUND || error == GIT_EUNBORNBRANCH) {
        versioner_set_error(versioner, "no commit \"%s\"", spec);
        error = FR_ENOTFOUND;
        goto done;
    }
    if (error < 0) {
        versioner_git_error(versioner, "reading a revision");
        error = FR_EINVAL;
        goto done;
    }
    if (git_object_peel(&peeled, object, GIT_OBJECT_COMMIT) < 0) {
        versioner_git_error(versioner, "peeling a revision to a commit");
        error = FR_EINVAL;
        goto done;
    }
    if (git_commit_tree(&tree, (const git_commit *)peeled) < 0) {
        error = versioner_git_error(versioner, "reading a commit's tree");
        goto done;
    }
    walk.capacity = 256;
    walk.path = malloc(walk.capacity);
    if (!walk.path) {
        error = FR_ENOMEM;
        goto done;
    }
    walk.path[0] = '\0';
    error = versioner_walk_tree(&walk, tree, 0);
done:
    free(walk.path);
    git_tree_free(tree);
    git_object_free(peeled);
    git_object_free(object);
    return error;
}

/* Whether `path` is a directory with nothing in it. */
static bool versioner_dir_is_empty(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *dirent;
    bool empty = true;

    if (!dir)
        return false;
    while (empty && (dirent = readdir(dir)))
        empty = strcmp(dirent->d_name, ".") == 0 || strcmp(dirent->d_name, "..") == 0;
    closedir(dir);
    return empty;
}

int versioner_open(struct versioner **out, const char *git_dir, const char *repo_name)
{
    struct versioner *versioner = NULL;
    struct stat st;
    int error = FR_ERROR, opened;

    *out = NULL;
    if (!repo_name || !repo_name[0] || strpbrk(repo_name, "\r\n")) {
        log_error("versioner", "repository name must be one non-empty line: git_dir=%s",
                  git_dir);
        return FR_EINVAL;
    }
    if (git_libgit2_init() < 0) {
        log_error("versioner", "libgit2 does not start: %s",
                  git_error_last() ? git_error_last()->message : "?");
        return FR_ERROR;
    }
    versioner = calloc(1, sizeof(*versioner));
    if (!versioner) {
        git_libgit2_shutdown();
        return FR_ENOMEM;
    }
    /* From here versioner_free() balances git_libgit2_init(). */
    versioner->repo_name = strdup(repo_name);
    if (!versioner->repo_name) {
        error = FR_ENOMEM;
        goto done;
    }
    opened = git_repository_open_ext(&versioner->repo, git_dir, GIT_REPOSITORY_OPEN_NO_SEARCH,
                                     NULL);
    if (opened == GIT_ENOTFOUND) {
        if (stat(git_dir, &st) == 0 && !(S_ISDIR(st.st_mode) && versioner_dir_is_empty(git_dir))) {
            log_error("versioner", "%s exists and is not a git repository", git_dir);
            error = FR_EINVAL;
            goto done;
        }
        opened = git_repository_init(&versioner->repo, git_dir, 1);
    }
    if (opened < 0) {
        versioner_git_error(versioner, "opening the repository");
        log_error("versioner", "%s: %s", git_dir, versioner->error);
        goto done;
    }
    if (!git_repository_is_bare(versioner->repo)) {
        log_error("versioner", "%s is a git repository with a work tree, not a bare one",
                  git_dir);
        error = FR_EINVAL;
        goto done;
    }
    *out = versioner;
    versioner = NULL;
    error = 0;
done:
    versioner_free(versioner);
    return error;
}

void versioner_free(struct versioner *versioner)
{
    if (!versioner)
        return;
    git_repository_free(versioner->repo);
    free(versioner->repo_name);
    free(versioner);
    git_libgit2_shutdown();
}

const char *versioner_last_error(const struct versioner *versioner)
{
    return versioner->error;
}
