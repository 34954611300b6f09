/*
 * catalog.h - libcatalog: the only code that speaks SQL.
 *
 * A catalog is one libpq connection to the PostgreSQL database that is
 * filerepo's source of truth.  It is created unconnected, connected (and
 * reconnected after a loss) with catalog_connect(), and watched for
 * notifications and loss through its socket in the owner's poll loop.  Every
 * function returns 0 or a negative FR_E* code; the text of the last failure
 * is kept for the caller to log once (catalog_last_error()).  Passwords never
 * reach that text.
 */
#ifndef FILEREPO_CATALOG_H
#define FILEREPO_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "fr_error.h"

struct catalog;

/**
 * Creates an unconnected catalog for `conninfo` (a libpq connection string)
 * and an optional `password` (NULL when none); both are copied.
 * Returns 0 and hands the catalog to *out, or FR_ENOMEM.
 */
int catalog_new(struct catalog **out, const char *conninfo, const char *password);

/** Closes the connection (if any) and frees the catalog; NULL is fine. */
void catalog_free(struct catalog *catalog);

/**
 * Connects, dropping any earlier connection first.  Blocks for at most the
 * conninfo's connect_timeout (5 s when it gives none).
 * Returns 0, or FR_ECONN with the reason in catalog_last_error().
 */
int catalog_connect(struct catalog *catalog);

/**
 * Starts connecting without blocking (for an event loop), dropping any
 * earlier connection first.  Drive it with catalog_connect_poll().
 * Returns 0 when under way, or FR_ECONN with the reason in
 * catalog_last_error().
 */
int catalog_connect_start(struct catalog *catalog);

/**
 * Advances a connection started with catalog_connect_start(): call it when
 * catalog_socket() is ready for what *want_write asked last (writing when
 * true, reading when false; first call: writing).
 * Returns 1 while still connecting (sets *want_write), 0 once connected, or
 * FR_ECONN (the reason in catalog_last_error(); the attempt is dropped).
 * The caller enforces its own deadline and calls catalog_disconnect() when
 * it passes.
 */
int catalog_connect_poll(struct catalog *catalog, bool *want_write);

/** Drops the connection, if any. */
void catalog_disconnect(struct catalog *catalog);

/** Returns whether the connection is up (as far as libpq knows). */
bool catalog_is_connected(const struct catalog *catalog);

/** Returns the connection's socket for poll(), or -1 when not connected. */
int catalog_socket(const struct catalog *catalog);

/**
 * Reads what the server sent (call when the socket is readable): queued
 * notifications and, above all, the news that the connection is gone.
 * Returns 0, or FR_ECONN when the connection was lost (it is then closed).
 */
int catalog_consume(struct catalog *catalog);

/**
 * Applies every migration this binary carries that the database has not
 * recorded yet, all in one transaction, serialized against other processes
 * doing the same.  *applied gets how many were applied (0 when up to date)
 * and *version the schema version afterwards (either may be NULL).
 * Returns 0; FR_ESCHEMA when the database records a version this binary does
 * not know (it is newer) or a migration under another name; FR_ECONN or
 * FR_ERROR when the server refuses.  Nothing is changed on failure.
 */
int catalog_migrate(struct catalog *catalog, int *applied, int *version);

/**
 * Reads the schema version recorded in the database into *version
 * (0 for a database filerepo never touched).
 * Returns 0, or FR_ECONN / FR_ERROR.
 */
int catalog_schema_version(struct catalog *catalog, int *version);

/** Returns the highest schema version this binary carries. */
int catalog_schema_version_known(void);

/**
 * Returns whether notifications arrived (through catalog_consume()) since
 * the last call, and forgets them.
 */
bool catalog_take_notified(struct catalog *catalog);

/** Returns the text of the last failure (never NULL; "" when none). */
const char *catalog_last_error(const struct catalog *catalog);

#endif
