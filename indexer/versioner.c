/*
 * versioner.c - the state repository: opening it, committing a batch,
 * reading a commit's files back.
 *
 * Every object a batch writes (pointer blobs, trees, the commit) goes first
 * to an in-memory object store (libgit2's mempack, put in front of the
 * repository's own), and reaches the disk only once the whole commit is
 * made.  Then it is saved the way git itself keeps what it receives: fewer
 * than VERSIONER_PACK_MIN_OBJECTS as loose objects, more as one pack
 * (versioner_pack.c; a first index of 100k files is then a few packs of a
 * few MB, not 100k files of a 4 KB block each).  Only then does HEAD's branch move, checked against
 * the parent it was built on.  So a batch that is refused, changes nothing
 * or fails half-way leaves nothing behind, and a crash leaves at worst
 * objects that nothing refers to, never a branch pointing at a missing one.
 */
#include "versioner_internal.h"
#include "lfs_pointer.h"
#include "log.h"

#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERSIONER_SIGNATURE_NAME "filerepo"
#define VERSIONER_SIGNATURE_EMAIL "filerepo@localhost"
/* From this many objects a batch is saved as a pack (git's transfer.unpackLimit). */
#define VERSIONER_PACK_MIN_OBJECTS 100

void versioner_set_error(struct versioner *versioner, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(versioner->error, sizeof(versioner->error), fmt, ap);
    va_end(ap);
}

int versioner_git_error(struct versioner *versioner, const char *what)
{
    const git_error *last = git_error_last();

    versioner_set_error(versioner, "%s: %s", what,
                        last && last->message ? last->message : "unknown libgit2 error");
    return FR_ERROR;
}

/* Looks up HEAD's commit into *out (NULL when there is none yet). */
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

/* Moves the objects of the built batch from memory to disk. */
static int versioner_save(struct versioner *versioner, const struct versioner_batch *batch)
{
    int error = FR_ERROR;

    if (batch->written_count < VERSIONER_PACK_MIN_OBJECTS) {
        for (size_t i = 0; i < batch->written_count; i++) {
            git_odb_object *object;
            git_oid id;
            int rc;

            if (git_odb_read(&object, versioner->odb, &batch->written[i]) < 0) {
                versioner_git_error(versioner, "reading a new object");
                goto done;
            }
            rc = git_odb_write(&id, versioner->disk, git_odb_object_data(object),
                               git_odb_object_size(object), git_odb_object_type(object));
            git_odb_object_free(object);
            if (rc < 0) {
                versioner_git_error(versioner, "saving an object");
                goto done;
            }
        }
    } else if (versioner_pack_objects(versioner, batch->written, batch->written_count) < 0) {
        /* Exactly the batch's objects: packing its commit would take in
         * the whole tree it points to, every file of the repository. */
        goto done;
    }
    if (versioner->loose >= 0 && batch->written_count < VERSIONER_PACK_MIN_OBJECTS)
        versioner->loose += (long)batch->written_count;
    else if (versioner->packs >= 0 && batch->written_count >= VERSIONER_PACK_MIN_OBJECTS)
        versioner->packs++;
    git_mempack_reset(versioner->memory);
    /* The repository's own pack list learns of the new pack. */
    if (git_odb_refresh(versioner->odb) < 0) {
        versioner_git_error(versioner, "rereading the packs");
        goto done;
    }
    error = 0;
done:
    return error;
}

/*
 * Points HEAD's branch at `id`, provided it still points at `parent` (NULL:
 * provided it does not exist yet).
 */
static int versioner_move_head(struct versioner *versioner, const git_oid *id,
                               const git_oid *parent)
{
    git_reference *head = NULL, *moved = NULL;
    const char *name = "HEAD";
    int rc;

    if (git_reference_lookup(&head, versioner->repo, "HEAD") < 0)
        return versioner_git_error(versioner, "reading HEAD");
    if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
        name = git_reference_symbolic_target(head);
    if (parent)
        rc = git_reference_create_matching(&moved, versioner->repo, name, id, 1, parent,
                                           "filerepo: commit");
    else
        rc = git_reference_create(&moved, versioner->repo, name, id, 0,
                                  "filerepo: commit (initial)");
    if (rc < 0)
        versioner_git_error(versioner, "moving HEAD (did another process commit?)");
    git_reference_free(moved);
    git_reference_free(head);
    return rc < 0 ? FR_ERROR : 0;
}

/* Makes the commit of the built batch (in memory) and puts its id in *out. */
static int versioner_create_commit(struct versioner *versioner, git_oid *out,
                                   const struct versioner_batch *batch,
                                   const git_oid *tree_id, const git_commit *parent,
                                   int64_t when_unix)
{
    git_signature *signature = NULL;
    git_tree *tree = NULL;
    char *message = NULL;
    int error;

    error = versioner_batch_message(&message, batch);
    if (error < 0)
        goto done;
    error = FR_ERROR;
    if (git_tree_lookup(&tree, versioner->repo, tree_id) < 0) {
        versioner_git_error(versioner, "reading the new tree");
        goto done;
    }
    if (git_signature_new(&signature, VERSIONER_SIGNATURE_NAME, VERSIONER_SIGNATURE_EMAIL,
                          (git_time_t)when_unix, 0) < 0) {
        versioner_git_error(versioner, "making the signature");
        goto done;
    }
    if (git_commit_create(out, versioner->repo, NULL, signature, signature, NULL, message,
                          tree, parent ? 1 : 0, (const git_commit *[]){ parent }) < 0) {
        versioner_git_error(versioner, "committing");
        goto done;
    }
    error = 0;
done:
    git_signature_free(signature);
    git_tree_free(tree);
    free(message);
    return error;
}

int versioner_commit(struct versioner *versioner, char out[41],
                     const struct version_change *changes, size_t count, int64_t when_unix)
{
    struct versioner_batch batch = { .versioner = versioner };
    git_commit *parent = NULL;
    git_tree *head_tree = NULL;
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
        error = versioner_batch_build(&batch, head_tree, &tree_id);
        if (error < 0)
            goto done;
    }
    /* Every entry was compared by id and mode: no outcome means the same tree. */
    if (batch.outcomes[VERSIONER_OUTCOME_ADDED] + batch.outcomes[VERSIONER_OUTCOME_CHANGED] +
            batch.outcomes[VERSIONER_OUTCOME_REMOVED] == 0) {
        if (!parent) {
            versioner_set_error(versioner, "nothing to commit and no commit yet");
            error = FR_ENOTFOUND;
            goto done;
        }
        git_oid_tostr(out, 41, git_commit_id(parent));
        error = 1;
        goto done;
    }
    error = versioner_create_commit(versioner, &commit_id, &batch, &tree_id, parent,
                                    when_unix);
    if (error < 0)
        goto done;
    error = versioner_batch_written(&batch, &commit_id);
    if (error < 0)
        goto done;
    error = versioner_save(versioner, &batch);
    if (error < 0)
        goto done;
    error = versioner_move_head(versioner, &commit_id, parent ? git_commit_id(parent) : NULL);
    if (error < 0)
        goto done;
    git_oid_tostr(out, 41, &commit_id);
done:
    /* Whatever was not saved is dropped: a refused batch leaves nothing. */
    git_mempack_reset(versioner->memory);
    git_tree_free(head_tree);
    git_commit_free(parent);
    versioner_batch_clear(&batch);
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

/*
 * Visits `tree`, whose path is the first `len` bytes of walk->path.  Git
 * orders a tree's entries as if a directory's name ended in '/', so this
 * pre-order walk gives the full paths in byte-wise order.
 */
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
        } else if (lfs_pointer_parse(sha256, &size, git_blob_rawcontent((const git_blob *)object),
                                     (size_t)git_blob_rawsize((const git_blob *)object)) < 0) {
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

/* Removes the "*.lock" files under the directory `fd` (closed here), down
 * `depth` more levels; `shown` names it for the log.  Returns the count or
 * FR_ERROR. */
static int versioner_clear_locks_in(int fd, const char *shown, int depth)
{
    DIR *dir = fdopendir(fd);
    struct dirent *dirent;
    int removed = 0;

    if (!dir) {
        log_error("versioner", "%s: cannot look for stale locks: %s", shown, strerror(errno));
        close(fd);
        return FR_ERROR;
    }
    while (removed >= 0 && (dirent = readdir(dir))) {
        const char *name = dirent->d_name;
        size_t len = strlen(name);
        struct stat st;

        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
            fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0) {
            char sub[PATH_MAX];
            int sub_fd = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int n = FR_ERROR;

            snprintf(sub, sizeof(sub), "%s/%s", shown, name);
            if (sub_fd >= 0)
                n = versioner_clear_locks_in(sub_fd, sub, depth - 1);
            else
                log_error("versioner", "%s: cannot look for stale locks: %s", sub,
                          strerror(errno));
            removed = n < 0 ? n : removed + n;
        } else if (S_ISREG(st.st_mode) && len > 5 && strcmp(name + len - 5, ".lock") == 0) {
            if (unlinkat(dirfd(dir), name, 0) != 0) {
                log_error("versioner", "%s/%s: cannot remove a stale lock: %s", shown, name,
                          strerror(errno));
                removed = FR_ERROR;
            } else {
                log_warn("versioner", "%s/%s: removed a lock left by a filerepod that did "
                         "not stop cleanly", shown, name);
                removed++;
            }
        }
    }
    closedir(dir);
    return removed;
}

int versioner_clear_locks(const char *git_dir)
{
    /* Where git puts its locks; refs and their logs nest (refs/heads/a/b). */
    static const struct { const char *dir; int depth; } places[] = {
        { ".", 0 }, { "refs", 32 }, { "logs", 32 }, { "objects/pack", 0 },
    };
    int removed = 0;

    for (size_t i = 0; i < sizeof(places) / sizeof(*places); i++) {
        char path[PATH_MAX];
        int fd, n;

        snprintf(path, sizeof(path), "%s/%s", git_dir, places[i].dir);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            log_error("versioner", "%s: cannot look for stale locks: %s", path,
                      strerror(errno));
            return FR_ERROR;
        }
        n = versioner_clear_locks_in(fd, i == 0 ? git_dir : path, places[i].depth);
        if (n < 0)
            return n;
        removed += n;
    }
    return removed;
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

/* Opens or creates the bare repository at git_dir into versioner->repo. */
static int versioner_open_repository(struct versioner *versioner, const char *git_dir)
{
    struct stat st;
    int rc;

    rc = git_repository_open_ext(&versioner->repo, git_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (rc == GIT_ENOTFOUND) {
        if (stat(git_dir, &st) == 0 && !(S_ISDIR(st.st_mode) && versioner_dir_is_empty(git_dir))) {
            log_error("versioner", "%s exists and is not a git repository", git_dir);
            return FR_EINVAL;
        }
        rc = git_repository_init(&versioner->repo, git_dir, 1);
    }
    if (rc < 0) {
        versioner_git_error(versioner, "opening the repository");
        log_error("versioner", "%s: %s", git_dir, versioner->error);
        return FR_ERROR;
    }
    if (!git_repository_is_bare(versioner->repo)) {
        log_error("versioner", "%s is a git repository with a work tree, not a bare one",
                  git_dir);
        return FR_EINVAL;
    }
    return 0;
}

/* Puts the in-memory store in front of the repository's objects; opens the disk's. */
static int versioner_open_stores(struct versioner *versioner, const char *git_dir)
{
    git_buf objects = { 0 };
    int error = FR_ERROR;

    if (git_repository_odb(&versioner->odb, versioner->repo) < 0 ||
        git_mempack_new(&versioner->memory) < 0) {
        versioner_git_error(versioner, "starting the object stores");
        goto done;
    }
    if (git_odb_add_backend(versioner->odb, versioner->memory, 999) < 0) {
        versioner->memory->free(versioner->memory);
        versioner->memory = NULL;
        versioner_git_error(versioner, "adding the memory store");
        goto done;
    }
    if (git_repository_item_path(&objects, versioner->repo, GIT_REPOSITORY_ITEM_OBJECTS) < 0 ||
        git_odb_open(&versioner->disk, objects.ptr) < 0) {
        versioner_git_error(versioner, "opening the objects directory");
        goto done;
    }
    error = 0;
done:
    if (error < 0)
        log_error("versioner", "%s: %s", git_dir, versioner->error);
    git_buf_dispose(&objects);
    return error;
}

int versioner_reopen(struct versioner *versioner)
{
    git_odb_free(versioner->disk);
    git_odb_free(versioner->odb);
    git_repository_free(versioner->repo);
    versioner->disk = versioner->odb = NULL;
    versioner->memory = NULL;
    versioner->repo = NULL;
    if (versioner_open_repository(versioner, versioner->git_dir) != 0 ||
        versioner_open_stores(versioner, versioner->git_dir) != 0)
        return FR_ERROR;
    return 0;
}

bool versioner_head_missing(struct versioner *versioner)
{
    git_commit *head = NULL;
    bool missing;

    if (versioner_head_commit(versioner, &head) != 0)
        return false;
    missing = head == NULL;
    git_commit_free(head);
    return missing;
}

int versioner_open(struct versioner **out, const char *git_dir, const char *repo_name)
{
    struct versioner *versioner;
    int error;

    *out = NULL;
    if (!git_dir || !repo_name || !repo_name[0] || strpbrk(repo_name, "\r\n")) {
        log_error("versioner", "a state repository needs a directory and a name of one "
                  "non-empty line: git_dir=%s", git_dir ? git_dir : "(none)");
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
    versioner->git_dir = strdup(git_dir);
    versioner->loose = versioner->packs = -1;
    error = versioner->repo_name && versioner->git_dir ? 0 : FR_ENOMEM;
    if (error == 0)
        error = versioner_open_repository(versioner, git_dir);
    if (error == 0)
        error = versioner_open_stores(versioner, git_dir);
    if (error < 0) {
        versioner_free(versioner);
        return error;
    }
    *out = versioner;
    return 0;
}

void versioner_free(struct versioner *versioner)
{
    if (!versioner)
        return;
    git_odb_free(versioner->disk);
    git_odb_free(versioner->odb);
    git_repository_free(versioner->repo);
    free(versioner->repo_name);
    free(versioner->git_dir);
    free(versioner);
    git_libgit2_shutdown();
}

const char *versioner_last_error(const struct versioner *versioner)
{
    return versioner->error;
}
