/*
 * indexer.h - published directories to recorded revisions.
 *
 * The indexer ties the parts together for every configured repository:
 * the watcher's events wait in a set until they have been quiet for
 * indexer.settle_ms; then one batch runs: a scan of those paths against the
 * catalog (a worker), the hashing of every new or changed file into the
 * content store (workers, in parallel), and one git commit plus one catalog
 * transaction (a worker).  A repository has at most one batch in flight;
 * events arriving meanwhile wait for the next.  A full rescan runs at start,
 * after lost events (with back-off) and every indexer.rescan_interval_seconds.
 * Workers use catalog connections of their own.
 */
#ifndef FILEREPO_INDEXER_H
#define FILEREPO_INDEXER_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"

struct indexer;
struct store;

/**
 * Creates the indexer for `config` (borrowed: must outlive it): the worker
 * pool, the watcher, the content store and one git repository per
 * repository under state_dir.  The caller must hold state_dir's lock (the
 * daemon does): git lock files found in the state repositories are taken
 * for a killed daemon's and removed.  Nothing is scanned before
 * indexer_start().  Returns 0 and hands it to *out, or an FR_E* code (logged).
 */
int indexer_new(struct indexer **out, const struct config *config);

/** Stops the workers (waiting for running jobs) and frees everything; NULL is fine. */
void indexer_free(struct indexer *indexer);

/**
 * Records the configured repositories in the catalog (through `catalog`,
 * the daemon's connection) and, the first time, starts watching and the
 * start-up reconcile.  Call whenever the catalog connection comes up.
 * Returns 0, or the catalog's FR_E* code (logged).
 */
int indexer_start(struct indexer *indexer, struct catalog *catalog);

/** Fills up to `max` pollfds (at most 2) and returns how many. */
size_t indexer_pollfds(struct indexer *indexer, struct pollfd *fds, size_t max);

/** Returns how many ms may pass before indexer_run() must be called (-1: none). */
int indexer_timeout_ms(const struct indexer *indexer, uint64_t now_ms);

/** Handles events, finished jobs and due work; `fds` as filled, with revents. */
void indexer_run(struct indexer *indexer, const struct pollfd *fds, size_t count,
                 uint64_t now_ms);

/**
 * Asks for a full rescan of every repository as soon as each is idle (an
 * admin's SIGUSR1: after restoring files behind the watcher's back, say).
 */
void indexer_rescan_all(struct indexer *indexer, uint64_t now_ms);

/**
 * The content store (borrowed, read-only to the caller: store_object_open()
 * only), owned by the indexer and valid until indexer_free().
 */
struct store *indexer_store(struct indexer *indexer);

/** Returns whether any repository has a batch in flight or paths waiting. */
bool indexer_busy(const struct indexer *indexer);

#endif
