/*
 * workpool.h - worker threads for blocking work, answered through an eventfd.
 *
 * The daemon has one event-loop thread; whatever blocks (hashing a file,
 * copying it into the content store, a git commit) is submitted here as a
 * job, runs on one of the pool's threads, and comes back to the loop thread
 * finished: workpool_fd() becomes readable, and workpool_take_done() hands
 * the jobs back one by one in the order they finished.
 *
 * A job is the caller's pointer; the pool never looks inside it, never frees
 * it, and touches it only to pass it to run() and back.  The usual shape is
 * a struct holding the input and, once run() has filled it, the result, which
 * the loop thread reads after taking the job back.  Everything run() writes
 * is visible to the thread that takes the job back (the pool's mutex orders
 * them).  Jobs start in the order they were submitted; with more than one
 * thread they may finish in any order.
 *
 * Worker threads block every signal, so signals reach the loop thread (the
 * daemon's signalfd).
 */
#ifndef FILEREPO_WORKPOOL_H
#define FILEREPO_WORKPOOL_H

/** The most threads a pool will start. */
#define WORKPOOL_MAX_THREADS 256u

struct workpool;

/** Does one job on a worker thread; it must not call workpool_free(). */
typedef void (*workpool_fn)(void *job);

/**
 * Starts a pool of `threads` workers; 0 means one per online processor
 * (sysconf(_SC_NPROCESSORS_ONLN)); a number above WORKPOOL_MAX_THREADS is
 * cut to it.  Returns 0 and hands the pool to *out, FR_ENOMEM, or FR_ERROR
 * with errno kept when the eventfd or a thread cannot be created.
 */
int workpool_new(struct workpool **out, unsigned threads);

/**
 * Stops the pool: waits for the jobs that are running to return from run(),
 * does not run the jobs still queued, joins the threads and closes the
 * eventfd.  NULL is fine; errno is kept.  Call it from the loop thread, never
 * from run().
 *
 * The caller keeps ownership of every job it submitted: those still queued
 * (never run) and those finished but not taken back are simply forgotten by
 * the pool, not freed.  When workpool_free() returns no pool thread touches
 * any job again, so the caller frees them from its own list of outstanding
 * jobs (any job submitted and not yet returned by workpool_take_done()).
 */
void workpool_free(struct workpool *pool);

/**
 * Queues `job` to be passed to run() on a worker thread.  Safe from any
 * thread, run() included.  Returns 0, or FR_ENOMEM (the job is then not
 * queued and still the caller's to dispose of).
 */
int workpool_submit(struct workpool *pool, workpool_fn run, void *job);

/**
 * Returns the pool's eventfd (borrowed; do not read or close it): readable
 * (POLLIN) exactly while finished jobs wait to be taken back.  Level
 * triggered: taking only some of them leaves it readable.
 */
int workpool_fd(const struct workpool *pool);

/**
 * Takes back the finished job that finished first, or returns NULL when none
 * waits.  Called from the loop thread when workpool_fd() is readable, usually
 * until it returns NULL; it resets the eventfd itself when it hands out the
 * last waiting job.  The job is the caller's again.
 */
void *workpool_take_done(struct workpool *pool);

/** Returns how many worker threads the pool runs. */
unsigned workpool_threads(const struct workpool *pool);

#endif
