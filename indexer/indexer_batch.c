/*
 * indexer_batch.c - a batch's way on the loop thread, once its scan is
 * back: the files hashed part by part (at most max_in_flight jobs out),
 * each part committed, progress logged, unreadable files put aside for a
 * retry, and the batch ended or retried.
 */
#include "indexer_internal.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ix_batch_retry(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    for (size_t i = 0; i < batch->paths_count; i++) {
        if (batch->paths[i][0] == '\0')
            ix_want_full(repo, now + IX_BATCH_RETRY_MS);
        else if (pathset_put(repo->pending, batch->paths[i], now + IX_BATCH_RETRY_MS) != 0)
            ix_want_full(repo, now + IX_BATCH_RETRY_MS);
    }
}

void ix_batch_end(struct ix_repo *repo)
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

static void ix_hash_more(struct indexer *ix, struct ix_part *part)
{
    while (part->files_submitted < part->files_count && ix->in_flight < ix->max_in_flight) {
        struct ix_file *file = &part->files[part->files_submitted];
        uint64_t bytes = (uint64_t)file->item->size;
        unsigned run = 1;

        while (run < IX_RUN_FILES && part->files_submitted + run < part->files_count &&
               bytes + (uint64_t)file[run].item->size <= IX_RUN_BYTES)
            bytes += (uint64_t)file[run++].item->size;
        file->run = run;
        if (ix_submit(ix, &file->job) != 0)
            break;
        part->files_submitted += run;
    }
}

/* A commit that could not be made: the batch goes again later, whole, once
 * no file of it is with the hasher any more. */
static void ix_batch_fail(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    struct ix_part *part = batch->hashing;

    batch->ending = true;
    batch->ready = NULL;
    if (part) {
        part->files_count = part->files_submitted; /* nothing more goes out */
        if (part->files_back < part->files_count)
            return; /* ix_file_done() ends it */
    }
    ix_batch_retry(repo, batch, now);
    ix_batch_end(repo);
}

static void ix_part_start(struct ix_repo *repo, struct ix_batch *batch, uint64_t now);

/* Hands the hashed part to the commit job, and starts hashing the next. */
static void ix_part_commit(struct ix_repo *repo, struct ix_batch *batch, struct ix_part *part,
                           uint64_t now)
{
    batch->committing = part;
    repo->stage = IX_COMMITTING;
    if (ix_submit(repo->indexer, &batch->commit_job) != 0) {
        batch->committing = NULL;
        ix_batch_fail(repo, batch, now);
        return;
    }
    if (!batch->hashing && batch->next_item < batch->scan.count)
        ix_part_start(repo, batch, now);
}

/* A part whose files have all come back: committed now, or after the one
 * being committed. */
static void ix_part_hashed(struct ix_repo *repo, struct ix_batch *batch, struct ix_part *part,
                           uint64_t now)
{
    part->hashed_ms = now;
    if (batch->hashing == part)
        batch->hashing = NULL;
    if (batch->committing)
        batch->ready = part;
    else
        ix_part_commit(repo, batch, part, now);
}

/* Takes the next part of the batch's items into the free slot and starts
 * hashing its files. */
static void ix_part_start(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    struct indexer *ix = repo->indexer;
    struct ix_part *part = batch->committing == &batch->parts[0] ? &batch->parts[1]
                                                                  : &batch->parts[0];

    part->start = part->end = batch->next_item;
    part->files_count = part->files_submitted = part->files_back = 0;
    part->started_ms = now;
    while (part->end < batch->scan.count) {
        struct scan_item *item = &batch->scan.items[part->end];

        if (item->kind == SCAN_FILE) {
            if (part->files_count == IX_PART_FILES)
                break;
            part->files[part->files_count++] = (struct ix_file){
                .job = { IX_JOB_HASH, batch },
                .part = part,
                .item = item,
            };
        }
        part->end++;
    }
    batch->next_item = part->end;
    if (part->files_count == 0) {
        ix_part_hashed(repo, batch, part, now);
        return;
    }
    batch->hashing = part;
    if (!batch->committing)
        repo->stage = IX_HASHING;
    ix_hash_more(ix, part);
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
    for (int i = 0; i < 2; i++)
        batch->parts[i].files = calloc((files < IX_PART_FILES ? files : IX_PART_FILES) + 1,
                                       sizeof(*batch->parts[i].files));
    if (!batch->parts[0].files || !batch->parts[1].files) {
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

/* One hashed file's outcome: counted, and a failure put up for a retry. */
static void ix_file_done(struct ix_repo *repo, struct ix_batch *batch, struct ix_file *file,
                         uint64_t now)
{
    struct indexer *ix = repo->indexer;

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
}

/* A hash job's run of files is back. */
static void ix_run_done(struct ix_repo *repo, struct ix_file *first, uint64_t now)
{
    struct ix_batch *batch = first->job.batch;
    struct ix_part *part = first->part;

    for (unsigned i = 0; i < first->run; i++)
        ix_file_done(repo, batch, &first[i], now);
    part->files_back += first->run;
    if (batch->ending) {
        if (part->files_back == part->files_count) {
            ix_batch_retry(repo, batch, now);
            ix_batch_end(repo);
        }
        return;
    }
    ix_progress(repo, batch, now);
    if (part->files_back < part->files_count) {
        ix_hash_more(repo->indexer, part);
        return;
    }
    ix_part_hashed(repo, batch, part, now);
}

static void ix_commit_done(struct ix_repo *repo, struct ix_batch *batch, uint64_t now)
{
    const struct catalog_batch_result *r = &batch->total;
    char parts[24] = "";

    const struct ix_part *part = batch->committing;

    batch->committing = NULL;
    if (batch->error) {
        /* Parts already committed stay: the rescan finds them unchanged. */
        log_warn("index", "repo=%s: %s; trying again in %u ms", repo->conf->name,
                 batch->error_text, IX_BATCH_RETRY_MS);
        ix_batch_fail(repo, batch, now);
        return;
    }
    repo->lost_streak = 0;
    batch->parts_done++;
    batch->files_committed += part->files_count;
    batch->total.revisions += batch->result.revisions;
    batch->total.entries += batch->result.entries;
    batch->total.deleted += batch->result.deleted;
    batch->phase_ms[0] += part->hashed_ms - part->started_ms;
    for (int i = 1; i < 4; i++)
        batch->phase_ms[i] += batch->commit_ms[i] - batch->commit_ms[i - 1];
    if (part->end < batch->scan.count) {
        log_info("index", "repo=%s: part %zu committed (commit=%.12s): %d new revisions, "
                 "%zu of %zu files (hash %" PRIu64 ", git %" PRIu64 ", store sync %" PRIu64
                 ", catalog %" PRIu64 " ms)", repo->conf->name, batch->parts_done, batch->commit,
                 batch->result.revisions, batch->files_committed, batch->files_total,
                 part->hashed_ms - part->started_ms,
                 batch->commit_ms[1] - batch->commit_ms[0],
                 batch->commit_ms[2] - batch->commit_ms[1],
                 batch->commit_ms[3] - batch->commit_ms[2]);
        if (batch->ready) {
            struct ix_part *next = batch->ready;

            batch->ready = NULL;
            ix_part_commit(repo, batch, next, now);
        } else if (!batch->hashing) {
            ix_part_start(repo, batch, now);
        } else {
            repo->stage = IX_HASHING;
        }
        return;
    }
    if (batch->parts_done > 1)
        snprintf(parts, sizeof(parts), "%zu", batch->parts_done);
    if (r->revisions || r->entries || r->deleted)
        log_info("index", "repo=%s commit=%.12s: %d new revision%s, %d new entr%s, "
                 "%d deleted, %.1f MB hashed in %" PRIu64 " ms (%s%sscan and hash %" PRIu64
                 ", git %" PRIu64 ", store sync %" PRIu64 ", catalog %" PRIu64 ")",
                 repo->conf->name, batch->commit, r->revisions, r->revisions == 1 ? "" : "s",
                 r->entries, r->entries == 1 ? "y" : "ies", r->deleted,
                 (double)batch->bytes_done / 1e6, now - batch->started_ms,
                 parts, batch->parts_done > 1 ? " parts; " : "",
                 batch->phase_ms[0], batch->phase_ms[1], batch->phase_ms[2], batch->phase_ms[3]);
    ix_batch_end(repo);
}

void ix_job_done(struct indexer *ix, struct ix_job *job, uint64_t now)
{
    struct ix_repo *repo = job->batch->repo;

    ix->in_flight--;
    switch (job->kind) {
    case IX_JOB_SCAN:
        ix_scan_done(repo, job->batch, now);
        break;
    case IX_JOB_HASH:
        ix_run_done(repo, (struct ix_file *)job, now);
        break;
    case IX_JOB_COMMIT:
        ix_commit_done(repo, job->batch, now);
        break;
    }
}
