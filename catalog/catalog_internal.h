/*
 * catalog_internal.h - what the files of libcatalog share, and nobody else.
 */
#ifndef FILEREPO_CATALOG_INTERNAL_H
#define FILEREPO_CATALOG_INTERNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

/* Statements run often enough to be prepared once per connection. */
enum catalog_statement {
    CATALOG_STMT_DIR_CHILDREN,   /* catalog_dir_children */
    CATALOG_STMT_FIS_REPOS,      /* catalog_fis_repos */
    CATALOG_STMT_FIS_RESOLVE,    /* catalog_fis_resolve */
    CATALOG_STMT_FIS_FILE,       /* catalog_fis_file */
    CATALOG_STMT_FIS_START,      /* catalog_fis_children: first page */
    CATALOG_STMT_FIS_AFTER,      /* catalog_fis_children: after a key */
    CATALOG_STMT_FIS_BEFORE,     /* catalog_fis_children: before a key */
    CATALOG_STMT_FIS_END,        /* catalog_fis_children: last page */
    CATALOG_STMT_FIS_INDEX,      /* catalog_fis_children: from a position */
    CATALOG_STMT_FIS_STATS,      /* catalog_fis_dir_stats */
    CATALOG_STMT_COUNT,
};

/*
 * SQL: may the requester (bare and full: SQL expressions, parameters say)
 * read repository r?  An open repository, or one whose acl holds the bare
 * JID (any role; it matches every resource) or the full JID (only that
 * resource).  The bare part compares without regard to case (servers
 * deliver it normalized, people write it as they like); the resource
 * exactly.  Listings and transfers use the same rule.
 */
#define CATALOG_SQL_READABLE(bare, full) \
    "(r.access = 'open' OR EXISTS (SELECT 1 FROM acl a WHERE a.repository_id = r.id AND" \
    " (lower(a.jid) = lower(" bare ") OR (strpos(a.jid, '/') > 0" \
    "  AND lower(split_part(a.jid, '/', 1)) = lower(" bare ")" \
    "  AND substr(a.jid, strpos(a.jid, '/') + 1) = substr(" full ", strpos(" full ", '/') + 1)))))"

struct catalog {
    char *conninfo;   /* as configured; holds no password */
    char *password;   /* secret, or NULL */
    PGconn *conn;     /* NULL while not connected */
    unsigned prepared; /* bit per enum catalog_statement prepared on conn */
    char error[512];  /* last failure, for the caller to log */
    unsigned notified; /* notifications received since catalog_take_notified() */
};

/** Writes v as decimal text into out (len bytes), for a query parameter. */
void catalog_int64_text(char *out, size_t len, int64_t v);

/**
 * The `count` ids as one bigint[] parameter, "{1,2,3}" (the caller's to
 * free); NULL when out of memory.
 */
char *catalog_int64_array_text(const int64_t *ids, size_t count);

/* SQL text of timestamp column `col` as XEP-0082 in UTC (2026-01-31T12:00:00Z). */
#define CATALOG_SQL_XEP0082(col) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Reads 64 hex digits (encode(sha256, 'hex')) into out; 0 or FR_ERROR. */
int catalog_sha256_from_hex(const char *hex, unsigned char out[32]);

/** Records the text of a failure (printf-style) as the last error. */
void catalog_set_error(struct catalog *catalog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Runs `sql` (no parameters) and checks its status against `expect`.
 * Returns the result (the caller PQclear()s it) or NULL on failure, with the
 * last error set; the connection is closed when it turned out to be lost.
 */
PGresult *catalog_exec(struct catalog *catalog, const char *sql, ExecStatusType expect);

/**
 * Runs `sql` with text parameters (NULL entries are SQL NULL) and checks
 * its status against `expect`; as catalog_exec otherwise.
 */
PGresult *catalog_query(struct catalog *catalog, const char *sql, int count,
                        const char *const *params, ExecStatusType expect);

/**
 * Sends `sql` (no parameters) without waiting for its result, so the server
 * works on it while the caller does something else; catalog_receive() takes
 * the result.  Nothing else may run on the connection in between.
 * Returns 0, FR_ECONN or FR_ERROR.
 */
int catalog_send(struct catalog *catalog, const char *sql);

/** Waits for the result of catalog_send(); as catalog_exec otherwise. */
PGresult *catalog_receive(struct catalog *catalog, ExecStatusType expect);

/**
 * As catalog_query, for statement `stmt` with text `sql`: prepared on the
 * connection the first time, executed by name afterwards (no planning per
 * call: the scanner runs these once per directory).
 */
PGresult *catalog_query_prepared(struct catalog *catalog, enum catalog_statement stmt,
                                 const char *sql, int count, const char *const *params,
                                 ExecStatusType expect);

/**
 * As catalog_query for a query that finds one row or none: returns the
 * result when it has rows; otherwise NULL with *error set to FR_ENOTFOUND
 * (no row) or the failure's code.
 */
PGresult *catalog_query_found(struct catalog *catalog, const char *sql, int count,
                              const char *const *params, int *error);

/** As catalog_exec for commands whose result is not needed. Returns 0 or FR_E*. */
int catalog_command(struct catalog *catalog, const char *sql);

/**
 * Rolls back the open transaction, if the connection is still there,
 * keeping the text of the failure that made it necessary.
 */
void catalog_rollback(struct catalog *catalog);

/** Returns FR_ECONN when the connection is gone, else `other`. */
int catalog_failure_code(struct catalog *catalog, int other);

#endif
