/*
 * indexer.c - the loop thread's side of indexing: events in, batches out.
 *
 * Per repository: watcher events put paths in `pending` with a due time of
 * now + settle; a full rescan is a flag with its own due time.  When the
 * repository is idle and something is due, a batch starts: scan job ->
 * (hash jobs, at most max_in_flight out at once) -> commit job.  Files that
 * could not be read go to `retry` with a growing delay and are logged; a
 * batch whose scan or commit failed (catalog or git trouble) is retried
 * whole after a pause.  Nothing is lost: what the catalog has not recorded
 * the next scan finds again.
 */
#include "indexer_internal.h"
#include "backoff.h"
#include "log.h"

#include <errno.h>
#include <git2.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IX_RETRY_MIN_MS 2000u         /* first retry of an unreadable file */
#define IX_RETRY_MAX_MS 600000u       /* and the longest wait between retries */
#define IX_BATCH_RETRY_MS 2000u       /* a failed batch waits this long */
#define IX_ROOT_RETRY_MS 10000u       /* a missing root is looked for again */
#define IX_PROGRESS_MS 5000u          /* progress lines of long batches */
#define IX_LOST_MAX_MS 60000u         /* longest back-off of rescans after losses */
#define IX_COALESCE 32u               /* changed names that make a directory scanned whole */

static void ix_batch_free(struct ix_batch *batch)
{
    if (!batch)
        return;
    for (size_t i = 0; i < batch->paths_count; i++)
        free(batch->paths[i]);
    free(batch->paths);
    scan_clear(&batch->scan);
    free(batch->files);
    free(batch);
}

static int ix_submit(struct indexer *ix, struct ix_job *job)
{
    int error = workpool_submit(ix->pool, ix_job_run, job);

    if (error == 0)
        ix->in_flight++;
    return error;
}

static void ix_want_full(struct ix_repo *repo, uint64_t due_ms)
{
    if (!repo->full_due || due_ms < repo->full_due_ms)
        repo->full_due_ms = due_ms;
    repo->full_due = true;
}

static void ix_root_close(struct ix_repo *repo)
{
    if (repo->root_fd >= 0)
        close(repo->root_fd);
    repo->root_fd = -1;
    repo->root_stale = false;
}

/* ------------------------------------------------------------ watcher */

struct ix_event_ctx {
    struct indexer *ix;  /* the indexer */
    uint64_t now;        /* when the events were read */
};

static void ix_on_event(const struct watch_event *ev, void *data)
{
    struct ix_event_ctx *ctx = data;
    struct indexer *ix = ctx->ix;

    if (ev->kind == WATCH_LOST) {
        for (size_t i = 0; i < ix->repos_count; i++) {
            struct ix_repo *repo = &ix->repos[i];
            unsigned wait;

            if (ev->repo >= 0 && (int)i != ev->repo)
                continue;
            /* Losses in a row mean a storm: rescans back off. */
            wait = repo->lost_streak >= 8 ? IX_LOST_MAX_MS
                                          : ix->config->settle_ms + (250u << repo->lost_streak);
            wait = wait > IX_LOST_MAX_MS ? IX_LOST_MAX_MS : wait;
            repo->lost_streak++;
            log_warn("watch", "repo=%s: %s; full rescan in %u ms", repo->conf->name, ev->reason,
                     wait);
            if (ev->repo >= 0 && *ev->path == '\0') {
                /* The root itself is gone: open and watch it again when it
                 * is back.  A batch in flight still uses the descriptor
                 * (closing it could let the number name another
                 * directory), so it is closed when the batch ends. */
                repo->watched = false;
                repo->root_stale = true;
                if (repo->stage == IX_IDLE)
                    ix_root_close(repo);
            }
            ix_want_full(repo, ctx->now + wait);
        }
        return;
    }
    if (ev->repo < 0 || (size_t)ev->repo >= ix->repos_count)
        return;
    if (*ev->path && scan_ignored(&ix->config->ignore, ev->path))
        return;
    if (pathset_put(ix->repos[ev->repo].pending, ev->path, ctx->now + ix->config->settle_ms) != 0)
        ix_want_full(&ix->repos[ev->repo], ctx->now);
}

/* ------------------------------------------------------------ batches */

static void ix_take_path(char *path, void *data)
{
    struct ix_batch *batch = data;

    batch->paths[batch->paths_count++] = path;
}

static int ix_path_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Drops paths that lie below another path of the batch: reconciling a
 * directory covers what is in it.  A directory with many changed names is
 * reconciled whole (one listing instead of a lookup per name). */
static void ix_prune_paths(struct ix_batch *batch)
{
    size_t kept = 0, count = batch->paths_count;
    struct pathset *parents = NULL;
    char **grown;

    if (count > IX_COALESCE && pathset_new(&parents) == 0 &&
        (grown = realloc(batch->paths, 2 * count * sizeof(*grown))) != NULL) {
        batch->paths = grown;
        for (size_t i = 0; i < count; i++) {
            char *slash = strrchr(batch->paths[i], '/');
            uint64_t n = 0;

            if (!slash)
                continue;
            *slash = '\0';
            pathset_get(parents, batch->paths[i], &n);
            if (n == IX_COALESCE)
                batch->paths[batch->paths_count++] = strdup(batch->paths[i]);
            pathset_put(parents, batch->paths[i], n + 1);
            *slash = '/';
        }
        /* strdup failures left NULLs: drop them. */
        for (size_t i = count; i < batch->paths_count; i++)
            if (!batch->paths[i])
                batch->paths[i--] = batch->paths[--batch->paths_count];
    }
    pathset_free(parents);

    qsort(batch->paths, batch->paths_count, sizeof(*batch->paths), ix_path_cmp);
    for (size_t i = 0; i < batch->paths_count; i++) {
        char *p = batch->paths[i];
        bool covered = false;

        for (size_t k = 0; k < kept && !covered; k++) {
            size_t n = strlen(batch->paths[k]);

            covered = n == 0 || (strncmp(p, batch->paths[k], n) == 0 && p[n] == '/');
        }
        if (covered || (kept > 0 && strcmp(batch->paths[kept - 1], p) == 0))
            free(p);
        else
            batch->paths[kept++] = p;
    }
    batch->paths_count = kept;
}

static bool ix_open_root(struct ix_repo *repo, uint64_t now)
{
    struct indexer *ix = repo->indexer;

    if (repo->root_fd < 0) {
        repo->root_fd = scan_open_root(repo->conf->path);
        if (repo->root_fd < 0) {
            log_error("index", "repo=%s path=%s: cannot open: %s; trying again in %u s",
                      repo->conf->name, repo->conf->path, strerror(-repo->root_fd),
                      IX_ROOT_RETRY_MS / 1000);
            repo->root_fd = -1;
            ix_want_full(repo, now + IX_ROOT_RETRY_MS);
            return false;
        }
    }
    if (!repo->watched) {
        struct ix_event_ctx ctx = { ix, now };

        if (watch_add_tree(ix->watch, repo->index, repo->conf->path, "", ix_on_event, &ctx) == 0)
            repo->watched = true;
    }
    return true;
}

/* Starts a batch if the repository is idle and something is due. */
static void ix_maybe_start(struct ix_repo *repo, uint64_t now)
{
    struct indexer *ix = repo->indexer;
    struct ix_batch *batch;
    bool full = repo->full_due && repo->full_due_ms <= now;
    size_t due = 0;

    if (repo->stage != IX_IDLE || repo->id == 0)
        return;
    if (!full && pathset_next_due(repo->pending) > now && pathset_next_due(repo->retry) > now)
        return;
    if (!ix_open_root(repo, now))
        return;

    batch = calloc(1, sizeof(*batch));
    if (!batch)
        return;
    batch->repo = repo;
    batch->scan_job = (struct ix_job){ IX_JOB_SCAN, batch };
    batch->commit_job = (struct ix_job){ IX_JOB_COMMIT, batch };
    batch->started_ms = batch->progress_ms = now;
    due = full ? 1 : pathset_count(repo->pending) + pathset_count(repo->retry);
    batch->paths = calloc(due + 1, sizeof(*batch->paths));
    if (!batch->paths) {
        ix_batch_free(batch);
        return;
    }
    if (full) {
        /* Everything: the paths waiting are covered by it. */
        batch->paths[batch->paths_count++] = strdup("");
        pathset_clear(repo->pending);
        pathset_clear(repo->retry);
        repo->full_due = false;
        repo->next_periodic_ms = now + (uint64_t)ix->config->rescan_seconds * 1000u;
    } else {
        pathset_take_due(repo->pending, now, ix_take_path, batch);
        pathset_take_due(repo->retry, now, ix_take_path, batch);
        ix_prune_paths(batch);
    }
    if (batch->paths_count == 0 || !batch->paths[0]) {
        ix_batch_free(batch);
        return;
    }
    if (ix_submit(ix, &batch->scan_job) != 0) {
        ix_batch_free(batch);
        ix_want_full(repo, now + IX_BATCH_RETRY_MS);
        return;
    }
    repo->batch = batch;
    repo->stage = IX_SCANNING;
}

/* Gives the batch's paths back for a later try. */
static void ix_batch_retry(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    for (size_t i = 0; i < batch->paths_count; i++) {
        if (batch->paths[i][0] == '\0')
            ix_want_full(repo, now + IX_BATCH_RETRY_MS);
        else if (pathset_put(repo->pending, batch->paths[i], now + IX_BATCH_RETRY_MS) != 0)
            ix_want_full(repo, now + IX_BATCH_RETRY_MS);
    }
}

static void ix_batch_end(struct ix_repo *repo)
{
    struct catalog *catalog = repo->indexer->catalog;

    if (repo->batch->progress_shown && catalog && catalog_is_connected(catalog))
        catalog_progress_set(catalog, repo->id, true, 0, 0, 0, 0);
    ix_batch_free(repo->batch);
    repo->batch = NULL;
    repo->stage = IX_IDLE;
    if (repo->root_stale)
        ix_root_close(repo);
}

static void ix_hash_more(struct indexer *ix, struct ix_batch *batch)
{
    while (batch->files_submitted < batch->files_count && ix->in_flight < ix->max_in_flight) {
        struct ix_file *file = &batch->files[batch->files_submitted];

        if (ix_submit(ix, &file->job) != 0)
            break;
        batch->files_submitted++;
    }
}

/* Takes the next part of the batch's items and starts hashing its files. */
static void ix_part_start(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    struct indexer *ix = repo->indexer;

    batch->part_start = batch->part_end;
    batch->files_count = batch->files_submitted = batch->files_back = 0;
    batch->part_started_ms = now;
    while (batch->part_end < batch->scan.count) {
        struct scan_item *item = &batch->scan.items[batch->part_end];

        if (item->kind == SCAN_FILE) {
            if (batch->files_count == IX_PART_FILES)
                break;
            batch->files[batch->files_count++] = (struct ix_file){
                .job = { IX_JOB_HASH, batch },
                .item = item,
            };
        }
        batch->part_end++;
    }
    repo->stage = IX_HASHING;
    ix_hash_more(ix, batch);
    if (batch->files_count == 0) {
        repo->stage = IX_COMMITTING;
        if (ix_submit(ix, &batch->commit_job) != 0) {
            ix_batch_retry(repo, batch, now);
            ix_batch_end(repo);
        }
    }
}

static void ix_scan_done(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    size_t files = 0;

    if (batch->error) {
        log_warn("index", "repo=%s: %s; trying again in %u ms", repo->conf->name,
                 batch->error_text, IX_BATCH_RETRY_MS);
        ix_batch_retry(repo, batch, now);
        ix_batch_end(repo);
        return;
    }
    for (size_t i = 0; i < batch->scan.count; i++) {
        if (batch->scan.items[i].kind == SCAN_FILE) {
            files++;
            batch->bytes_total += (uint64_t)batch->scan.items[i].size;
        }
    }
    batch->files_total = files;
    if (files > 100 || batch->paths[0][0] == '\0')
        log_info("index", "repo=%s: %zu file%s to hash of %" PRIu64 " seen, %zu other change%s "
                 "(scan took %" PRIu64 " ms)", repo->conf->name, files, files == 1 ? "" : "s",
                 batch->scan.files, batch->scan.count - files,
                 batch->scan.count - files == 1 ? "" : "s", now - batch->started_ms);
    if (batch->scan.count == 0) {
        ix_batch_end(repo);
        return;
    }
    batch->phase_ms[0] = now - batch->started_ms; /* the scan, then each part's hashing */
    batch->files = calloc((files < IX_PART_FILES ? files : IX_PART_FILES) + 1,
                          sizeof(*batch->files));
    if (!batch->files) {
        ix_batch_retry(repo, batch, now);
        ix_batch_end(repo);
        return;
    }
    ix_part_start(repo, batch, now);
}

static void ix_progress(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    uint64_t total = batch->bytes_total;
    double secs;

    if (now - batch->progress_ms < IX_PROGRESS_MS)
        return;
    batch->progress_ms = now;
    secs = (double)(now - batch->started_ms) / 1000.0;
    log_info("index", "repo=%s: %.0f%% (%zu of %zu files, %.1f of %.1f MB) at %.1f MB/s",
             repo->conf->name, total ? 100.0 * (double)batch->bytes_done / (double)total : 0.0,
             batch->files_done, batch->files_total, (double)batch->bytes_done / 1e6,
             (double)total / 1e6, secs > 0 ? (double)batch->bytes_done / 1e6 / secs : 0.0);
    /* For `filerepo status`; a catalog that is away just misses a line. */
    if (repo->indexer->catalog && catalog_is_connected(repo->indexer->catalog) &&
        catalog_progress_set(repo->indexer->catalog, repo->id, false, (int64_t)batch->files_total,
                             (int64_t)batch->files_done, (int64_t)total,
                             (int64_t)batch->bytes_done) == 0)
        batch->progress_shown = true;
}

static void ix_file_done(struct ix_repo *repo, struct ix_file *file, uint64_t now)
{
    struct indexer *ix = repo->indexer;
    struct ix_batch *batch = file->job.batch;

    batch->files_done++;
    batch->bytes_done += (uint64_t)file->item->size;
    if (file->error) {
        const char *path = file->item->path;

        batch->unreadable++;
        if (file->error == FR_EINVAL) {
            log_info("index", "repo=%s path=%s: changed while being hashed; will look again",
                     repo->conf->name, path);
            pathset_put(repo->pending, path, now + ix->config->settle_ms);
        } else if (file->error == -ENOENT) {
            /* Gone since the scan: the next look records the removal. */
            pathset_put(repo->pending, path, now + ix->config->settle_ms);
        } else {
            /* Retried with a growing delay; said at warn the first time and
             * whenever the delay doubles past a minute, else at debug. */
            uint64_t failures = 0;
            unsigned delay;

            pathset_get(repo->failures, path, &failures);
            delay = failures >= 9 ? IX_RETRY_MAX_MS : IX_RETRY_MIN_MS << failures;
            delay = delay > IX_RETRY_MAX_MS ? IX_RETRY_MAX_MS : delay;
            log_line(failures == 0 || delay >= 60000u ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "index",
                     "repo=%s path=%s: cannot read: %s; will retry in %u s", repo->conf->name,
                     path,
                     file->error == -EXDEV ? "symbolic link leads outside the repository"
                     : file->error < 0     ? strerror(-file->error)
                                           : "failed",
                     delay / 1000);
            pathset_put(repo->failures, path, failures + 1);
            pathset_put(repo->retry, path, now + delay);
        }
    } else if (pathset_count(repo->failures)) {
        pathset_remove(repo->failures, file->item->path);
    }
    batch->files_back++;
    ix_progress(repo, batch, now);
    if (batch->files_back < batch->files_count) {
        ix_hash_more(ix, batch);
        return;
    }
    repo->stage = IX_COMMITTING;
    if (ix_submit(ix, &batch->commit_job) != 0) {
        ix_batch_retry(repo, batch, now);
        ix_batch_end(repo);
    }
}

static void ix_commit_done(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    const struct catalog_batch_result *r = &batch->total;

    if (batch->error) {
        /* Parts already committed stay: the rescan finds them unchanged. */
        log_warn("index", "repo=%s: %s; trying again in %u ms", repo->conf->name,
                 batch->error_text, IX_BATCH_RETRY_MS);
        ix_batch_retry(repo, batch, now);
        ix_batch_end(repo);
        return;
    }
    repo->lost_streak = 0;
    batch->parts_done++;
    batch->total.revisions += batch->result.revisions;
    batch->total.entries += batch->result.entries;
    batch->total.deleted += batch->result.deleted;
    batch->phase_ms[0] += batch->commit_ms[0] - batch->part_started_ms;
    for (int i = 1; i < 4; i++)
        batch->phase_ms[i] += batch->commit_ms[i] - batch->commit_ms[i - 1];
    if (batch->part_end < batch->scan.count) {
        log_info("index", "repo=%s: part %zu committed (commit=%.12s): %d new revisions, "
                 "%zu of %zu files (hash %" PRIu64 ", git %" PRIu64 ", store sync %" PRIu64
                 ", catalog %" PRIu64 " ms)", repo->conf->name, batch->parts_done, batch->commit,
                 batch->result.revisions, batch->files_done, batch->files_total,
                 batch->commit_ms[0] - batch->part_started_ms,
                 batch->commit_ms[1] - batch->commit_ms[0],
                 batch->commit_ms[2] - batch->commit_ms[1],
                 batch->commit_ms[3] - batch->commit_ms[2]);
        ix_part_start(repo, batch, now);
        return;
    }
    if (r->revisions || r->entries || r->deleted)
        log_info("index", "repo=%s commit=%.12s: %d new revision%s, %d new entr%s, "
                 "%d deleted, %.1f MB hashed in %" PRIu64 " ms (%zu part%s; scan and hash %" PRIu64
                 ", git %" PRIu64 ", store sync %" PRIu64 ", catalog %" PRIu64 ")",
                 repo->conf->name, batch->commit, r->revisions, r->revisions == 1 ? "" : "s",
                 r->entries, r->entries == 1 ? "y" : "ies", r->deleted,
                 (double)batch->bytes_done / 1e6, now - batch->started_ms, batch->parts_done,
                 batch->parts_done == 1 ? "" : "s",
                 batch->phase_ms[0], batch->phase_ms[1], batch->phase_ms[2], batch->phase_ms[3]);
    ix_batch_end(repo);
}

static void ix_job_done(struct indexer *ix, struct ix_job *job, uint64_t now)
{
    struct ix_repo *repo = job->batch->repo;

    ix->in_flight--;
    switch (job->kind) {
    case IX_JOB_SCAN:
        ix_scan_done(repo, job->batch, now);
        break;
    case IX_JOB_HASH:
        ix_file_done(repo, (struct ix_file *)job, now);
        break;
    case IX_JOB_COMMIT:
        ix_commit_done(repo, job->batch, now);
        break;
    }
}

/* ------------------------------------------------------------ public */

int indexer_new(struct indexer **out, const struct config *config)
{
    struct indexer *ix = calloc(1, sizeof(*ix));
    char path[4096];
    int error = FR_ENOMEM;

    *out = NULL;
    if (!ix)
        return FR_ENOMEM;
    ix->config = config;
    ix->repos_count = config->repositories_count;
    ix->repos = calloc(ix->repos_count + 1, sizeof(*ix->repos));
    if (!ix->repos)
        goto fail;
    if ((error = workpool_new(&ix->pool, 0)) != 0) {
        log_error("index", "cannot start worker threads: %s", strerror(errno));
        goto fail;
    }
    ix->max_in_flight = 2u * workpool_threads(ix->pool);
    if ((error = watch_new(&ix->watch)) != 0) {
        log_error("index", "cannot start inotify: %s", strerror(errno));
        goto fail;
    }
    if ((error = mime_new(&ix->mime, NULL)) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/store", config->state_dir);
    if ((error = store_open(&ix->store, path, (enum store_mode)config->store_mode)) != 0) {
        log_error("index", "content store %s: %s", path, strerror(errno));
        goto fail;
    }
    /* The catalog names git commits: they must survive a power loss as
     * well as a crash.  The switch is process-wide, hence here. */
    git_libgit2_init();
    ix->fsync_set = true;
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
    for (size_t i = 0; i < ix->repos_count; i++) {
        struct ix_repo *repo = &ix->repos[i];

        repo->indexer = ix;
        repo->index = (int)i;
        repo->conf = &config->repositories[i];
        repo->root_fd = -1;
        snprintf(path, sizeof(path), "%s/git/%s.git", config->state_dir, repo->conf->name);
        if ((error = versioner_open(&repo->versioner, path, repo->conf->name)) != 0 ||
            (error = pathset_new(&repo->pending)) != 0 || (error = pathset_new(&repo->retry)) != 0 ||
            (error = pathset_new(&repo->failures)) != 0)
            goto fail;
    }
    *out = ix;
    return 0;
fail:
    indexer_free(ix);
    return error;
}

void indexer_free(struct indexer *ix)
{
    if (!ix)
        return;
    /* Running jobs finish first; then no worker touches a batch again. */
    workpool_free(ix->pool);
    for (size_t i = 0; i < ix->repos_count; i++) {
        struct ix_repo *repo = &ix->repos[i];

        ix_batch_free(repo->batch);
        versioner_free(repo->versioner);
        catalog_free(repo->jobs_catalog);
        pathset_free(repo->pending);
        pathset_free(repo->retry);
        pathset_free(repo->failures);
        if (repo->root_fd >= 0)
            close(repo->root_fd);
    }
    free(ix->repos);
    watch_free(ix->watch);
    store_free(ix->store);
    mime_free(ix->mime);
    if (ix->fsync_set)
        git_libgit2_shutdown();
    free(ix);
}

int indexer_start(struct indexer *ix, struct catalog *catalog)
{
    uint64_t now = 0;

    ix->catalog = catalog;
    for (size_t i = 0; i < ix->repos_count; i++) {
        struct ix_repo *repo = &ix->repos[i];
        const struct config_repository *c = repo->conf;
        const struct catalog_repository_spec spec = {
            .name = c->name, .path = c->path, .title = c->title, .description = c->description,
            .whitelist = c->access == CONFIG_ACCESS_WHITELIST,
            .members = (const char *const *)c->members.items, .members_count = c->members.count,
        };
        int error = catalog_repository_upsert(catalog, &repo->id, &spec);

        if (error) {
            log_error("index", "repo=%s: cannot record it in the catalog: %s", c->name,
                      catalog_last_error(catalog));
            return error;
        }
    }
    if (!ix->started) {
        ix->started = true;
        for (size_t i = 0; i < ix->repos_count; i++) {
            log_info("index", "repo=%s path=%s: watching; start-up rescan", ix->repos[i].conf->name,
                     ix->repos[i].conf->path);
            ix_want_full(&ix->repos[i], now);
        }
    }
    return 0;
}

size_t indexer_pollfds(struct indexer *ix, struct pollfd *fds, size_t max)
{
    size_t n = 0;

    if (n < max)
        fds[n++] = (struct pollfd){ .fd = watch_fd(ix->watch), .events = POLLIN };
    if (n < max)
        fds[n++] = (struct pollfd){ .fd = workpool_fd(ix->pool), .events = POLLIN };
    return n;
}

struct store *indexer_store(struct indexer *ix)
{
    return ix->store;
}

void indexer_rescan_all(struct indexer *ix, uint64_t now_ms)
{
    for (size_t i = 0; i < ix->repos_count; i++)
        ix_want_full(&ix->repos[i], now_ms);
}

int indexer_timeout_ms(const struct indexer *ix, uint64_t now_ms)
{
    uint64_t next = UINT64_MAX;

    for (size_t i = 0; i < ix->repos_count; i++) {
        const struct ix_repo *repo = &ix->repos[i];
        uint64_t t;

        if (repo->stage != IX_IDLE || repo->id == 0)
            continue;
        t = pathset_next_due(repo->pending);
        next = t < next ? t : next;
        t = pathset_next_due(repo->retry);
        next = t < next ? t : next;
        if (repo->full_due && repo->full_due_ms < next)
            next = repo->full_due_ms;
        if (ix->started && repo->next_periodic_ms && repo->next_periodic_ms < next)
            next = repo->next_periodic_ms;
    }
    if (next == UINT64_MAX)
        return -1;
    return next > now_ms ? (int)(next - now_ms > 60000 ? 60000 : next - now_ms) : 0;
}

void indexer_run(struct indexer *ix, const struct pollfd *fds, size_t count, uint64_t now_ms)
{
    struct ix_event_ctx ctx = { ix, now_ms };
    struct ix_job *job;

    for (size_t i = 0; i < count; i++) {
        if (!fds[i].revents)
            continue;
        if (fds[i].fd == watch_fd(ix->watch) && watch_read(ix->watch, ix_on_event, &ctx) != 0)
            log_error("watch", "reading inotify events: %s", strerror(errno));
    }
    while ((job = workpool_take_done(ix->pool)) != NULL)
        ix_job_done(ix, job, now_ms);
    if (!ix->started)
        return;
    for (size_t i = 0; i < ix->repos_count; i++) {
        struct ix_repo *repo = &ix->repos[i];

        if (repo->next_periodic_ms && now_ms >= repo->next_periodic_ms && !repo->full_due)
            ix_want_full(repo, now_ms);
        ix_maybe_start(repo, now_ms);
    }
}

bool indexer_busy(const struct indexer *ix)
{
    for (size_t i = 0; i < ix->repos_count; i++) {
        const struct ix_repo *repo = &ix->repos[i];

        if (repo->stage != IX_IDLE || pathset_count(repo->pending) || repo->full_due)
            return true;
    }
    return false;
}
