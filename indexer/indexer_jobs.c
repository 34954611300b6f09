/*
 * indexer_jobs.c - what the workers do for a batch: scan, hash, commit.
 *
 * Each job fills only its own fields of the batch (see indexer_internal.h)
 * and touches nothing of the loop thread's.  Scan and commit jobs use their
 * repository's own catalog connection (never the loop thread's).
 */
#include "indexer_internal.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The repository's connection for its jobs: connected on first use and
 * kept, so a batch (a single upload, a periodic rescan) does not pay for a
 * new server process.  Only one job of a repository runs at a time.
 */
static struct catalog *ix_catalog_open(struct ix_batch *batch)
{
    struct ix_repo *repo = batch->repo;
    const struct config *config = repo->indexer->config;

    if (!repo->jobs_catalog &&
        catalog_new(&repo->jobs_catalog, config->db_conninfo, config->db_password) != 0) {
        batch->error = FR_ENOMEM;
        snprintf(batch->error_text, sizeof(batch->error_text), "out of memory");
        return NULL;
    }
    if (!catalog_is_connected(repo->jobs_catalog) &&
        (batch->error = catalog_connect(repo->jobs_catalog)) != 0) {
        snprintf(batch->error_text, sizeof(batch->error_text), "catalog: %s",
                 catalog_last_error(repo->jobs_catalog));
        return NULL;
    }
    return repo->jobs_catalog;
}

static void ix_scan(struct ix_batch *batch)
{
    struct ix_repo *repo = batch->repo;
    struct catalog *catalog = ix_catalog_open(batch);

    if (!catalog)
        return;
    for (size_t i = 0; i < batch->paths_count && !batch->error; i++) {
        batch->error = scan_reconcile(&batch->scan, catalog, repo->id, repo->conf->name,
                                      repo->root_fd, batch->paths[i],
                                      &repo->indexer->config->ignore);
        if (batch->error)
            snprintf(batch->error_text, sizeof(batch->error_text), "scan: %s",
                     batch->error == FR_ENOMEM ? "out of memory" : catalog_last_error(catalog));
    }
}

static bool ix_same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && a->st_ino == b->st_ino &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * A small file the store packs (or does not keep): read whole with one
 * read, hashed from memory, and packed from the same bytes.  Returns 0,
 * FR_EINVAL when the file changed meanwhile, or an error for ix_file.
 */
static int ix_hash_small(struct ix_file *file, int fd, struct indexer *ix)
{
    size_t want = (size_t)file->st.st_size;
    unsigned char *buf = malloc(want + 1);
    struct stat after;
    ssize_t got;
    int error;

    if (!buf)
        return FR_ENOMEM;
    /* One byte more than the size: a regular file's read comes short only
     * at its end (the workers take no signals), so a file that grew is
     * caught, and one that shrank reads short. */
    do
        got = read(fd, buf, want + 1);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        error = errno ? -errno : FR_ERROR;
        goto done;
    }
    if ((size_t)got != want) {
        error = FR_EINVAL;
        goto done;
    }
    if ((error = hash_buffer(&file->hash, buf, want, ix->config->digests)) != 0) {
        error = error == FR_ENOMEM ? FR_ENOMEM : errno ? -errno : FR_ERROR;
        goto done;
    }
    /* A file written to while it was read is not recorded half-way. */
    if (fstat(fd, &after) != 0 || !ix_same_stat(&file->st, &after)) {
        error = FR_EINVAL;
        goto done;
    }
    if (store_takes_small(ix->store, want) &&
        store_put_small(ix->store, file->hash.sha256, buf, want, NULL) != 0)
        error = errno ? -errno : FR_ERROR;
done:
    free(buf);
    return error;
}

/* Hashes one file into the store; on any doubt the file is retried later. */
static void ix_hash(struct ix_file *file)
{
    struct ix_repo *repo = file->job.batch->repo;
    struct indexer *ix = repo->indexer;
    struct store_ingest *ingest = NULL;
    struct stat after;
    int fd, read_fd, copy_fd, parent_fd = -1;
    char *dir_copy = NULL, *base_copy = NULL;

    fd = scan_open_file(repo->root_fd, file->item->path, &file->st);
    if (fd < 0) {
        file->error = fd;
        return;
    }
    if (store_takes_small(ix->store, (uint64_t)file->st.st_size) ||
        (store_get_mode(ix->store) == STORE_NONE &&
         file->st.st_size <= (off_t)STORE_PACK_OBJECT_MAX)) {
        file->error = ix_hash_small(file, fd, ix);
        if (!file->error)
            file->mime = mime_type(ix->mime, file->item->path);
        close(fd);
        return;
    }
    if (store_ingest_begin(&ingest, ix->store, fd, &read_fd, &copy_fd) != 0) {
        file->error = -errno;
        goto done;
    }
    if (hash_fd(&file->hash, read_fd, ix->config->digests, copy_fd) != 0) {
        file->error = errno ? -errno : FR_ERROR;
        goto done;
    }
    /* A file written to while it was read is not recorded half-way. */
    if (fstat(fd, &after) != 0 || !ix_same_stat(&file->st, &after) ||
        file->hash.size != (uint64_t)after.st_size) {
        file->error = FR_EINVAL;
        goto done;
    }
    /* The hardlink store links the published name: it needs the directory
     * the file is in and its name there. */
    dir_copy = strdup(file->item->path);
    base_copy = strdup(file->item->path);
    if (!dir_copy || !base_copy) {
        file->error = FR_ENOMEM;
        goto done;
    }
    if (store_get_mode(ix->store) == STORE_HARDLINK) {
        const char *dir = dirname(dir_copy);

        parent_fd = scan_open_dir(repo->root_fd, strcmp(dir, ".") == 0 ? "" : dir);
    }
    if (store_ingest_commit(ingest, file->hash.sha256, parent_fd, basename(base_copy)) != 0) {
        ingest = NULL;
        file->error = errno ? -errno : FR_ERROR;
        goto done;
    }
    ingest = NULL;
    /* Linking changes the inode's ctime: record the stat as it is now, or
     * the next scan would take the file for changed. */
    if (store_get_mode(ix->store) == STORE_HARDLINK && fstat(fd, &after) == 0 &&
        after.st_size == file->st.st_size)
        file->st = after;
    file->mime = mime_type(ix->mime, file->item->path);
done:
    store_ingest_abort(ingest);
    if (parent_fd >= 0)
        close(parent_fd);
    free(dir_copy);
    free(base_copy);
    close(fd);
}

struct ix_prefix {
    const char *dir;         /* a removed directory */
    size_t len;              /* its length */
    struct version_change *changes; /* where deletions go */
    size_t count, cap;       /* used, allocated */
};

static int ix_add_change(struct ix_prefix *p, const char *path)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct version_change *grown = realloc(p->changes, cap * sizeof(*grown));

        if (!grown)
            return FR_ENOMEM;
        p->changes = grown;
        p->cap = cap;
    }
    p->changes[p->count++] = (struct version_change){ .path = path };
    return 0;
}

/* versioner_foreach: the files below a removed directory become deletions
 * (their path strings are copied: foreach lends them for the call only). */
static int ix_collect_below(const char *path, const unsigned char sha256[32], uint64_t size,
                            void *data)
{
    struct ix_prefix *p = data;
    char *copy;

    (void)sha256;
    (void)size;
    if (strncmp(path, p->dir, p->len) != 0 || path[p->len] != '/')
        return 0;
    if (!(copy = strdup(path)) || ix_add_change(p, copy) != 0) {
        free(copy);
        return FR_ENOMEM;
    }
    p->changes[p->count - 1].deleted = true;
    return 0;
}

/*
 * Makes the part's new objects durable: the packs holding the small ones,
 * and the loose ones one by one when they are few (a syncfs would also
 * wait for everything else being written to the file system, a big upload
 * in progress say), else the whole file system at once.
 */
static int ix_store_sync(struct ix_batch *batch)
{
    struct store *store = batch->repo->indexer->store;
    const struct ix_part *part = batch->committing;
    unsigned char (*objects)[32];
    size_t count = 0;
    int error;

    if (store_get_mode(store) == STORE_NONE)
        return 0;
    objects = calloc(part->files_count + 1, sizeof(*objects));
    if (!objects)
        return FR_ENOMEM;
    for (size_t i = 0; i < part->files_count; i++)
        if (!part->files[i].error)
            memcpy(objects[count++], part->files[i].hash.sha256, 32);
    error = store_sync_objects(store, (const unsigned char (*)[32])objects, count,
                               IX_SYNC_EACH_MAX);
    free(objects);
    return error;
}

/* The git half of a commit job, run beside the catalog half. */
struct ix_git_work {
    struct ix_batch *batch;
    const struct version_change *changes; /* the part's changes for git */
    size_t count;
    int error;                            /* 0 or FR_E* */
    char text[sizeof(((struct ix_batch *)0)->error_text)]; /* its detail */
};

static void *ix_git_thread(void *arg)
{
    struct ix_git_work *work = arg;
    struct ix_batch *batch = work->batch;
    struct ix_repo *repo = batch->repo;
    int rc;

    rc = versioner_commit(repo->versioner, batch->commit, work->changes, work->count, time(NULL));
    if (rc == FR_ENOTFOUND) {
        /* Nothing for git (only empty directories) and no history yet. */
        memset(batch->commit, '0', 40);
        batch->commit[40] = '\0';
    } else if (rc < 0) {
        work->error = rc;
        snprintf(work->text, sizeof(work->text), "git: %s",
                 versioner_last_error(repo->versioner));
        return NULL;
    }
    batch->commit_ms[1] = clock_now_ms();
    /* The catalog will name these objects: their names must last. */
    if ((rc = ix_store_sync(batch)) != 0) {
        work->error = rc;
        snprintf(work->text, sizeof(work->text), "store: sync: %s",
                 rc == FR_ENOTFOUND ? "an object just stored is missing" : strerror(errno));
        return NULL;
    }
    batch->commit_ms[2] = clock_now_ms();
    return NULL;
}

static void ix_commit(struct ix_batch *batch)
{
    struct ix_repo *repo = batch->repo;
    const struct ix_part *part = batch->committing;
    struct ix_prefix git = { 0 };
    struct catalog_change *cat = calloc(part->end - part->start + 1, sizeof(*cat));
    size_t owned_from = SIZE_MAX, ncat = 0, f = 0;
    struct catalog *catalog = NULL;
    int rc;

    batch->commit_ms[0] = clock_now_ms();
    if (!cat) {
        batch->error = FR_ENOMEM;
        return;
    }
    for (size_t i = part->start; i < part->end; i++) {
        const struct scan_item *it = &batch->scan.items[i];

        if (it->kind == SCAN_FILE) {
            struct ix_file *file = &part->files[f++];

            if (file->error)
                continue; /* retried by the loop thread */
            if (ix_add_change(&git, it->path) != 0)
                goto oom;
            memcpy(git.changes[git.count - 1].sha256, file->hash.sha256, 32);
            git.changes[git.count - 1].size = file->hash.size;
            cat[ncat] = (struct catalog_change){
                .path = it->path, .size = file->st.st_size,
                .mtime_ns = (int64_t)file->st.st_mtim.tv_sec * 1000000000 + file->st.st_mtim.tv_nsec,
                .ctime_ns = (int64_t)file->st.st_ctim.tv_sec * 1000000000 + file->st.st_ctim.tv_nsec,
                .inode = (int64_t)file->st.st_ino, .mime = file->mime,
                .digests = file->hash.algos & ~(unsigned)HASH_SHA256, .crc32 = file->hash.crc32,
            };
            memcpy(cat[ncat].sha256, file->hash.sha256, 32);
            memcpy(cat[ncat].sha1, file->hash.sha1, 20);
            memcpy(cat[ncat].md5, file->hash.md5, 16);
            memcpy(cat[ncat].sha512, file->hash.sha512, 64);
            ncat++;
        } else {
            bool removed = it->kind == SCAN_FILE_REMOVED || it->kind == SCAN_DIR_REMOVED;

            cat[ncat++] = (struct catalog_change){
                .path = it->path, .deleted = removed,
                .is_dir = it->kind == SCAN_DIR_ADDED || it->kind == SCAN_DIR_REMOVED,
            };
            if (it->kind == SCAN_FILE_REMOVED) {
                if (ix_add_change(&git, it->path) != 0)
                    goto oom;
                git.changes[git.count - 1].deleted = true;
            }
        }
    }
    /* Directories removed: every file below them leaves the git tree. */
    owned_from = git.count;
    for (size_t i = part->start; i < part->end; i++) {
        const struct scan_item *it = &batch->scan.items[i];

        if (it->kind != SCAN_DIR_REMOVED)
            continue;
        git.dir = it->path;
        git.len = strlen(it->path);
        rc = versioner_foreach(repo->versioner, NULL, ix_collect_below, &git);
        if (rc == FR_ENOMEM)
            goto oom;
        if (rc != 0 && rc != FR_ENOTFOUND) {
            batch->error = rc;
            snprintf(batch->error_text, sizeof(batch->error_text), "git: %s",
                     versioner_last_error(repo->versioner));
            goto done;
        }
    }

    /* git (and the store's sync) in a thread of its own while this one
     * writes the catalog's side: the two wait on different things.  Only
     * the revisions need the commit id; they go in last. */
    {
        struct ix_git_work work = { .batch = batch, .changes = git.changes, .count = git.count };
        struct catalog_batch_result begun;
        pthread_t thread;
        bool threaded = pthread_create(&thread, NULL, ix_git_thread, &work) == 0;
        int cat_error = FR_ERROR;

        if (!threaded)
            ix_git_thread(&work);
        if ((catalog = ix_catalog_open(batch)) != NULL)
            cat_error = catalog_batch_begin(catalog, repo->id, repo->conf->name, cat, ncat,
                                            &begun);
        if (threaded)
            pthread_join(thread, NULL);
        if (work.error) {
            if (catalog && !cat_error)
                catalog_batch_abort(catalog);
            batch->error = work.error;
            snprintf(batch->error_text, sizeof(batch->error_text), "%s", work.text);
            goto done;
        }
        if (!catalog)
            goto done; /* ix_catalog_open() said why */
        if (!cat_error)
            cat_error = catalog_batch_finish(catalog, repo->conf->name, batch->commit, &begun);
        batch->error = cat_error;
        if (!cat_error)
            batch->result = begun;
    }
    batch->commit_ms[3] = clock_now_ms();
    if (!batch->error) {
        bool compacted;

        /* Many small batches make many loose objects: now and then they
         * become one pack.  The batch is recorded either way. */
        if (versioner_compact(repo->versioner, IX_COMPACT_LOOSE, IX_COMPACT_PACKS,
                              &compacted) != 0)
            log_error("index", "repo=%s: git: %s", repo->conf->name,
                      versioner_last_error(repo->versioner));
    }
    if (batch->error)
        snprintf(batch->error_text, sizeof(batch->error_text), "catalog: %s",
                 catalog_last_error(catalog));
    goto done;
oom:
    batch->error = FR_ENOMEM;
    snprintf(batch->error_text, sizeof(batch->error_text), "out of memory");
done:
    for (size_t i = owned_from; i < git.count; i++)
        free((char *)git.changes[i].path);
    free(git.changes);
    free(cat);
}

void ix_job_run(void *job)
{
    struct ix_job *j = job;

    switch (j->kind) {
    case IX_JOB_SCAN:
        ix_scan(j->batch);
        break;
    case IX_JOB_HASH:
        for (unsigned i = 0; i < ((struct ix_file *)j)->run; i++)
            ix_hash((struct ix_file *)j + i);
        break;
    case IX_JOB_COMMIT:
        ix_commit(j->batch);
        break;
    }
}
