/*
 * keeper.h - keeps filerepod's catalog connection up.
 *
 * Connects without blocking the daemon's loop, applies pending migrations
 * once connected, notices a lost connection through the socket at once, and
 * tries again with exponential back-off (250 ms doubling up to
 * database.reconnect_max_seconds).  Driven like the XMPP component:
 * keeper_fd() says what to poll, keeper_timeout_ms() how soon it needs a
 * turn, keeper_run() is its turn.
 */
#ifndef FILEREPO_KEEPER_H
#define FILEREPO_KEEPER_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"

struct keeper;

/**
 * Creates a keeper for `catalog` (borrowed, unconnected).  The first attempt
 * is made on the first keeper_run().  Returns 0 and hands it to *out, or
 * FR_ENOMEM.
 */
int keeper_new(struct keeper **out, struct catalog *catalog, int reconnect_max_seconds);

/** Frees the keeper (not the catalog); NULL is fine. */
void keeper_free(struct keeper *keeper);

/** Returns the socket to poll and sets *events (POLLIN/POLLOUT), or -1. */
int keeper_fd(const struct keeper *keeper, short *events);

/** Returns how many ms may pass before keeper_run() must be called (-1: none). */
int keeper_timeout_ms(const struct keeper *keeper, uint64_t now_ms);

/** Does what is due; `revents` are the poll results for keeper_fd() (0: none). */
void keeper_run(struct keeper *keeper, short revents, uint64_t now_ms);

/** Returns whether the catalog is connected and migrated. */
bool keeper_is_connected(const struct keeper *keeper);

/**
 * Returns true once after each time the catalog became connected (and
 * migrated): the moment to (re)register what depends on the connection.
 */
bool keeper_take_connected(struct keeper *keeper);

/**
 * Returns whether the keeper gave up for good: the catalog's schema is one
 * this binary cannot use (logged).
 */
bool keeper_is_fatal(const struct keeper *keeper);

#endif
