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
 * the next scan finds again.  A batch's way once scanned (parts, hashing,
 * commits, retries) is in indexer_batch.c.
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

#define IX_ROOT_RETRY_MS 10000u       /* a missing root is looked for again */
#define IX_LOST_MAX_MS 60000u         /* longest back-off of rescans after losses */
#define IX_COALESCE 32u               /* changed names that make a directory scanned whole */

void ix_batch_free(struct ix_batch *batch)
{
    if (!batch)
        return;
    for (size_t i = 0; i < batch->paths_count; i++)
        free(batch->paths[i]);
    free(batch->paths);
    scan_clear(&batch->scan);
    free(batch->parts[0].files);
    free(batch->parts[1].files);
    free(batch);
}

int ix_submit(struct indexer *ix, struct ix_job *job)
{
    int error = workpool_submit(ix->pool, ix_job_run, job);

    if (error == 0)
        ix->in_flight++;
    return error;
}

void ix_want_full(struct ix_repo *repo, uint64_t due_ms)
{
    if (!repo->full_due || due_ms < repo->full_due_ms)
        repo->full_due_ms = due_ms;
    repo->full_due = true;
}

void ix_root_close(struct ix_repo *repo)
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
    /* Enough queued that the workers never wait for the loop thread, which
     * may be busy publishing or answering while a first index runs. */
    ix->max_in_flight = IX_IN_FLIGHT_PER_WORKER * workpool_threads(ix->pool);
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
        /* The daemon holds the state directory's lock, so a git lock file
         * found now is a killed daemon's, and would refuse every commit. */
        if ((error = versioner_clear_locks(path)) < 0 ||
            (error = versioner_open(&repo->versioner, path, repo->conf->name)) != 0 ||
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
