/*
 * catalog.c - the catalog's connection: connect, watch, reconnect, query.
 *
 * The daemon keeps one connection and puts its socket in its poll loop, so a
 * NOTIFY or the loss of the server is noticed at once.  Connecting blocks
 * (bounded by connect_timeout); the caller decides when to try again.
 */
#include "catalog_internal.h"
#include "migrate.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATALOG_DEFAULT_CONNECT_TIMEOUT "5"

void catalog_set_error(struct catalog *catalog, const char *fmt, ...)
{
    va_list ap;
    size_t len;

    va_start(ap, fmt);
    vsnprintf(catalog->error, sizeof(catalog->error), fmt, ap);
    va_end(ap);
    /* libpq messages end in a newline; the log wants one line. */
    len = strlen(catalog->error);
    while (len > 0 && (catalog->error[len - 1] == '\n' || catalog->error[len - 1] == ' '))
        catalog->error[--len] = '\0';
}

int catalog_new(struct catalog **out, const char *conninfo, const char *password)
{
    struct catalog *catalog = calloc(1, sizeof(*catalog));

    *out = NULL;
    if (!catalog)
        return FR_ENOMEM;
    catalog->conninfo = strdup(conninfo);
    catalog->password = password ? strdup(password) : NULL;
    if (!catalog->conninfo || (password && !catalog->password)) {
        catalog_free(catalog);
        return FR_ENOMEM;
    }
    *out = catalog;
    return 0;
}

void catalog_disconnect(struct catalog *catalog)
{
    if (catalog->conn) {
        PQfinish(catalog->conn);
        catalog->conn = NULL;
    }
    catalog->prepared = 0;
}

void catalog_free(struct catalog *catalog)
{
    if (!catalog)
        return;
    catalog_disconnect(catalog);
    free(catalog->conninfo);
    if (catalog->password) {
        explicit_bzero(catalog->password, strlen(catalog->password));
        free(catalog->password);
    }
    free(catalog);
}

/* Notices (a CREATE … IF NOT EXISTS that found the table, say) are not
 * events; libpq's default would print them on stderr. */
static void catalog_ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Keyword lists for PQconnectdbParams / PQconnectStartParams.  Later
 * keywords win over the expanded dbname string, earlier ones lose to it: the
 * timeout and the application name are defaults, the password is ours. */
struct catalog_params {
    const char *keys[5];
    const char *values[5];
};

static void catalog_params_fill(const struct catalog *catalog, struct catalog_params *p)
{
    *p = (struct catalog_params){
        .keys = { "connect_timeout", "application_name", "dbname",
                  catalog->password ? "password" : NULL, NULL },
        .values = { CATALOG_DEFAULT_CONNECT_TIMEOUT, "filerepo", catalog->conninfo,
                    catalog->password, NULL },
    };
}

/* Checks a finished connection attempt; keeps it on success. */
static int catalog_connect_finish(struct catalog *catalog)
{
    if (!catalog->conn) {
        catalog_set_error(catalog, "out of memory");
        return FR_ENOMEM;
    }
    if (PQstatus(catalog->conn) != CONNECTION_OK) {
        catalog_set_error(catalog, "%s", PQerrorMessage(catalog->conn));
        catalog_disconnect(catalog);
        return FR_ECONN;
    }
    PQsetNoticeProcessor(catalog->conn, catalog_ignore_notice, NULL);
    catalog->error[0] = '\0';
    return 0;
}

int catalog_connect(struct catalog *catalog)
{
    struct catalog_params p;

    catalog_disconnect(catalog);
    catalog_params_fill(catalog, &p);
    catalog->conn = PQconnectdbParams(p.keys, p.values, 1);
    return catalog_connect_finish(catalog);
}

int catalog_connect_start(struct catalog *catalog)
{
    struct catalog_params p;

    catalog_disconnect(catalog);
    catalog_params_fill(catalog, &p);
    catalog->conn = PQconnectStartParams(p.keys, p.values, 1);
    if (catalog->conn && PQstatus(catalog->conn) == CONNECTION_BAD)
        return catalog_connect_finish(catalog);
    return catalog->conn ? 0 : catalog_connect_finish(catalog);
}

int catalog_connect_poll(struct catalog *catalog, bool *want_write)
{
    if (!catalog->conn) {
        catalog_set_error(catalog, "not connecting");
        return FR_ECONN;
    }
    switch (PQconnectPoll(catalog->conn)) {
    case PGRES_POLLING_READING:
        *want_write = false;
        return 1;
    case PGRES_POLLING_WRITING:
        *want_write = true;
        return 1;
    case PGRES_POLLING_OK:
        return catalog_connect_finish(catalog);
    case PGRES_POLLING_FAILED:
    default:
        return catalog_connect_finish(catalog);
    }
}

bool catalog_is_connected(const struct catalog *catalog)
{
    return catalog->conn && PQstatus(catalog->conn) == CONNECTION_OK;
}

int catalog_socket(const struct catalog *catalog)
{
    return catalog->conn ? PQsocket(catalog->conn) : -1;
}

int catalog_failure_code(struct catalog *catalog, int other)
{
    if (catalog->conn && PQstatus(catalog->conn) == CONNECTION_BAD) {
        catalog_disconnect(catalog);
        return FR_ECONN;
    }
    return catalog->conn ? other : FR_ECONN;
}

int catalog_consume(struct catalog *catalog)
{
    PGnotify *notify;

    if (!catalog->conn) {
        catalog_set_error(catalog, "not connected");
        return FR_ECONN;
    }
    if (!PQconsumeInput(catalog->conn) || PQstatus(catalog->conn) == CONNECTION_BAD) {
        catalog_set_error(catalog, "%s", PQerrorMessage(catalog->conn));
        catalog_disconnect(catalog);
        return FR_ECONN;
    }
    /* Only the publisher listens (one channel); counting is enough. */
    while ((notify = PQnotifies(catalog->conn)) != NULL) {
        catalog->notified++;
        PQfreemem(notify);
    }
    return 0;
}

bool catalog_take_notified(struct catalog *catalog)
{
    PGnotify *notify;
    bool notified;

    /* Queries read notifications into libpq's queue too. */
    while (catalog->conn && (notify = PQnotifies(catalog->conn)) != NULL) {
        catalog->notified++;
        PQfreemem(notify);
    }
    notified = catalog->notified > 0;

    catalog->notified = 0;
    return notified;
}

/* Keeps res when its status is `expect`; else records why, frees it, and
 * drops the connection if that is what failed. */
static PGresult *catalog_check(struct catalog *catalog, PGresult *res, ExecStatusType expect)
{
    if (res && PQresultStatus(res) == expect)
        return res;
    catalog_set_error(catalog, "%s", res ? PQresultErrorMessage(res)
                                         : PQerrorMessage(catalog->conn));
    PQclear(res);
    if (PQstatus(catalog->conn) == CONNECTION_BAD)
        catalog_disconnect(catalog);
    return NULL;
}

PGresult *catalog_exec(struct catalog *catalog, const char *sql, ExecStatusType expect)
{
    if (!catalog->conn) {
        catalog_set_error(catalog, "not connected");
        return NULL;
    }
    return catalog_check(catalog, PQexec(catalog->conn, sql), expect);
}

int catalog_send(struct catalog *catalog, const char *sql)
{
    if (!catalog->conn) {
        catalog_set_error(catalog, "not connected");
        return FR_ECONN;
    }
    if (!PQsendQuery(catalog->conn, sql)) {
        catalog_set_error(catalog, "%s", PQerrorMessage(catalog->conn));
        if (PQstatus(catalog->conn) == CONNECTION_BAD) {
            catalog_disconnect(catalog);
            return FR_ECONN;
        }
        return FR_ERROR;
    }
    return 0;
}

PGresult *catalog_receive(struct catalog *catalog, ExecStatusType expect)
{
    PGresult *res, *extra;

    if (!catalog->conn) {
        catalog_set_error(catalog, "not connected");
        return NULL;
    }
    res = PQgetResult(catalog->conn);
    while ((extra = PQgetResult(catalog->conn)) != NULL)
        PQclear(extra);
    return catalog_check(catalog, res, expect);
}

PGresult *catalog_query(struct catalog *catalog, const char *sql, int count,
                        const char *const *params, ExecStatusType expect)
{
    if (!catalog->conn) {
        catalog_set_error(catalog, "not connected");
        return NULL;
    }
    return catalog_check(catalog,
                         PQexecParams(catalog->conn, sql, count, NULL, params, NULL, NULL, 0),
                         expect);
}

PGresult *catalog_query_prepared(struct catalog *catalog, enum catalog_statement stmt,
                                 const char *sql, int count, const char *const *params,
                                 ExecStatusType expect)
{
    char name[16];

    if (!catalog->conn) {
        catalog_set_error(catalog, "not connected");
        return NULL;
    }
    snprintf(name, sizeof(name), "fr_stmt_%d", (int)stmt);
    if (!(catalog->prepared & (1u << stmt))) {
        PGresult *res = catalog_check(catalog, PQprepare(catalog->conn, name, sql, count, NULL),
                                      PGRES_COMMAND_OK);

        if (!res)
            return NULL;
        PQclear(res);
        catalog->prepared |= 1u << stmt;
    }
    return catalog_check(catalog,
                         PQexecPrepared(catalog->conn, name, count, params, NULL, NULL, 0),
                         expect);
}

PGresult *catalog_query_found(struct catalog *catalog, const char *sql, int count,
                              const char *const *params, int *error)
{
    PGresult *res = catalog_query(catalog, sql, count, params, PGRES_TUPLES_OK);

    if (!res) {
        *error = catalog_failure_code(catalog, FR_ERROR);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        *error = FR_ENOTFOUND;
        return NULL;
    }
    *error = 0;
    return res;
}

int catalog_command(struct catalog *catalog, const char *sql)
{
    PGresult *res = catalog_exec(catalog, sql, PGRES_COMMAND_OK);

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    PQclear(res);
    return 0;
}

void catalog_rollback(struct catalog *catalog)
{
    char first[sizeof(catalog->error)];

    if (!catalog->conn)
        return;
    memcpy(first, catalog->error, sizeof(first));
    PQclear(PQexec(catalog->conn, "ROLLBACK"));
    memcpy(catalog->error, first, sizeof(first));
}

const char *catalog_last_error(const struct catalog *catalog)
{
    return catalog->error;
}

int catalog_schema_version_known(void)
{
    return catalog_migrations_count
               ? catalog_migrations[catalog_migrations_count - 1].version
               : 0;
}

void catalog_int64_text(char *out, size_t len, int64_t v)
{
    snprintf(out, len, "%" PRId64, v);
}

char *catalog_int64_array_text(const int64_t *ids, size_t count)
{
    char *text = malloc(count * 21 + 3); /* "-9223372036854775808," each */
    size_t len = 0;

    if (!text)
        return NULL;
    text[len++] = '{';
    for (size_t i = 0; i < count; i++)
        len += (size_t)sprintf(text + len, "%s%" PRId64, i ? "," : "", ids[i]);
    text[len++] = '}';
    text[len] = '\0';
    return text;
}

int catalog_sha256_from_hex(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64)
        return FR_ERROR;
    for (int i = 0; i < 32; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return FR_ERROR;
        out[i] = (unsigned char)v;
    }
    return 0;
}
