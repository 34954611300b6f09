/*
 * indexer_internal.h - what indexer.c (the loop thread) and indexer_jobs.c
 * (the workers) share.
 *
 * Ownership: a batch belongs to its repository; while a job of the batch
 * is with the pool only that job's worker touches the fields it fills, and
 * the loop thread reads them after workpool_take_done() returns the job.
 */
#ifndef FILEREPO_INDEXER_INTERNAL_H
#define FILEREPO_INDEXER_INTERNAL_H

#include <sys/stat.h>

#include "hash.h"
#include "indexer.h"
#include "index.h"
#include "mime.h"
#include "pathset.h"
#include "query.h"
#include "scan.h"
#include "store.h"
#include "versioner.h"
#include "watch.h"
#include "workpool.h"

/* The state repository is compacted into one pack beyond this many loose
 * objects (a small batch leaves three or four) or packs. */
#define IX_COMPACT_LOOSE 4096
#define IX_COMPACT_PACKS 32

enum ix_job_kind {
    IX_JOB_SCAN,     /* reconcile the batch's paths with the catalog */
    IX_JOB_HASH,     /* hash one file into the content store */
    IX_JOB_COMMIT,   /* git commit + catalog transaction */
};

/* Every job starts with this, so a finished job can be told apart. */
struct ix_job {
    enum ix_job_kind kind;       /* what it is */
    struct ix_batch *batch;      /* the batch it serves */
};

struct ix_part;

/* One file of a batch, on its way through the hasher. */
struct ix_file {
    struct ix_job job;           /* IX_JOB_HASH, for this file and the run-1 after it */
    unsigned run;                /* files hashed by the job (set on the run's first) */
    struct ix_part *part;        /* the part it belongs to */
    const struct scan_item *item; /* what the scan saw (borrowed from batch->scan) */
    struct hash_result hash;     /* digests */
    struct stat st;              /* stat of what was hashed */
    const char *mime;            /* media type (borrowed from the mime table) */
    int error;                   /* 0; -errno: unreadable; FR_EINVAL: changed while hashed */
};

/*
 * A batch is committed in parts of at most IX_PART_FILES files (a first
 * index of a million files must not hold a million files' digests in
 * memory, and its first files become visible long before its last are
 * hashed): the scan's items are taken in order, so a part's directories
 * come before their files, and each part is one git commit and one catalog
 * transaction.  While one part is committed the next is hashed: the
 * commit waits on git, the disk and the catalog, the hashing on reading the
 * files, and a part's commit starts only once the one before it is done.
 */
#define IX_PART_FILES 8192

/* A part of a batch: a run of its scan's items and the files among them. */
struct ix_part {
    size_t start, end;           /* scan.items[start, end) */
    struct ix_file *files;       /* one per SCAN_FILE item (room for IX_PART_FILES) */
    size_t files_count;          /* how many */
    size_t files_submitted;      /* handed to the pool so far */
    size_t files_back;           /* come back */
    uint64_t started_ms;         /* when its hashing began */
    uint64_t hashed_ms;          /* when its last file came back */
};

/* Up to this many new loose objects a part syncs them one by one, not the
 * whole file system (packed ones cost an fsync of their pack). */
#define IX_SYNC_EACH_MAX 64

/* Hash jobs handed to the pool at once, per worker: for small files handing
 * them out one by one (the loop thread taking each back before giving the
 * next) left the workers idle most of the time. */
#define IX_IN_FLIGHT_PER_WORKER 256u

/* A hash job is a run of a part's consecutive files, up to this many and
 * this many bytes (a big file is a job of its own, so big files still
 * spread over the workers): per small file, a hand-over to a worker and
 * back cost as much as hashing it. */
#define IX_RUN_FILES 32u
#define IX_RUN_BYTES (1024u * 1024u)

struct ix_batch {
    struct ix_job scan_job;      /* IX_JOB_SCAN */
    struct ix_job commit_job;    /* IX_JOB_COMMIT */
    struct ix_repo *repo;        /* owner */
    char **paths;                /* what to reconcile; "" alone = everything */
    size_t paths_count;          /* how many */
    struct scan scan;            /* what the scan found */
    struct ix_part parts[2];     /* one hashed while the other is committed */
    struct ix_part *hashing;     /* the part with the hasher, or NULL */
    struct ix_part *ready;       /* hashed, waiting for the commit job, or NULL */
    struct ix_part *committing;  /* the part the commit job has, or NULL */
    size_t next_item;            /* where the next part begins in scan.items */
    bool ending;                 /* a commit failed: end once the hasher is done */
    size_t parts_done;           /* parts committed */
    size_t files_total;          /* SCAN_FILE items of the whole batch */
    size_t files_committed;      /* files of the parts committed */
    uint64_t bytes_total;        /* their sizes as scanned */
    size_t files_done;           /* come back, all parts */
    uint64_t bytes_done;         /* sizes of the files come back, all parts */
    uint64_t started_ms;         /* when the batch began */
    uint64_t progress_ms;        /* when progress was last logged */
    uint64_t commit_ms[4];       /* commit job: began, git done, store synced, catalog done */
    uint64_t phase_ms[4];        /* all parts: hashing, git, store sync, catalog */
    int error;                   /* scan or commit: 0 or FR_E* */
    char error_text[512];        /* its detail */
    char commit[41];             /* the git commit recorded last */
    struct catalog_batch_result result; /* what the catalog recorded for the part */
    struct catalog_batch_result total;  /* ... for all parts */
    size_t unreadable;           /* files that could not be hashed (retried) */
    bool progress_shown;         /* a progress row is in the catalog */
};

enum ix_stage {
    IX_IDLE,                     /* nothing in flight */
    IX_SCANNING,                 /* the scan job is out */
    IX_HASHING,                  /* hash jobs are out */
    IX_COMMITTING,               /* the commit job is out */
};

struct ix_repo {
    struct indexer *indexer;     /* owner */
    int index;                   /* position in config->repositories */
    const struct config_repository *conf; /* borrowed */
    int64_t id;                  /* catalog id; 0 before indexer_start */
    int root_fd;                 /* O_PATH of the root; -1 while unavailable */
    bool root_stale;             /* the root vanished: reopen once idle */
    bool watched;                /* its tree is under inotify */
    struct versioner *versioner; /* its git history */
    struct catalog *jobs_catalog; /* the scan and commit jobs' connection, kept
                                   * between batches (one job at a time uses it) */
    struct pathset *pending;     /* paths waiting to settle */
    bool full_due;               /* a full rescan is wanted at full_due_ms */
    uint64_t full_due_ms;        /* when */
    unsigned lost_streak;        /* consecutive losses: back-off of rescans */
    uint64_t next_periodic_ms;   /* the safety-net rescan */
    enum ix_stage stage;         /* what is in flight */
    struct ix_batch *batch;      /* the batch in flight, or NULL */
    struct pathset *retry;       /* unreadable paths: due = next attempt */
    struct pathset *failures;    /* unreadable paths: "due" = failures so far */
};

struct indexer {
    const struct config *config; /* borrowed */
    struct workpool *pool;       /* workers */
    struct watch *watch;         /* inotify */
    struct store *store;         /* content store */
    struct mime *mime;           /* media types */
    struct ix_repo *repos;       /* one per configured repository */
    size_t repos_count;          /* how many */
    struct catalog *catalog;     /* the daemon's connection (borrowed), for progress */
    bool started;                /* indexer_start has run once */
    bool fsync_set;              /* holds a git_libgit2_init() reference */
    size_t in_flight;            /* jobs with the pool */
    size_t max_in_flight;        /* hash jobs allowed out at once */
};

#define IX_RETRY_MIN_MS 2000u         /* first retry of an unreadable file */
#define IX_RETRY_MAX_MS 600000u       /* and the longest wait between retries */
#define IX_BATCH_RETRY_MS 2000u       /* a failed batch waits this long */
#define IX_PROGRESS_MS 5000u          /* progress lines of long batches */

/* The loop thread's helpers (indexer.c). */
void ix_batch_free(struct ix_batch *batch);
int ix_submit(struct indexer *ix, struct ix_job *job);
void ix_want_full(struct ix_repo *repo, uint64_t due_ms);
void ix_root_close(struct ix_repo *repo);

/* A batch's way once scanned (indexer_batch.c). */
void ix_batch_retry(struct ix_repo *repo, struct ix_batch *batch, uint64_t now);
void ix_batch_end(struct ix_repo *repo);
void ix_job_done(struct indexer *ix, struct ix_job *job, uint64_t now);

/* The workers' side (indexer_jobs.c). */
void ix_job_run(void *job);

#endif
