/*
 * testenv.h - for C integration tests: the private services of this run.
 *
 * testenv_load() reads $FILEREPO_SERVICES_DIR/services.env (written by
 * tools/services.sh start) into the environment, so libpq finds the private
 * cluster through PGHOST/PGUSER, and testenv_database_new() gives each test a
 * fresh, empty database of its own.
 */
#ifndef FILEREPO_TESTENV_H
#define FILEREPO_TESTENV_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"

/* Returns 0, or -1 (with a message on stderr) when no services run. */
static inline int testenv_load(void)
{
    const char *dir = getenv("FILEREPO_SERVICES_DIR");
    char path[1024], line[2048];
    FILE *f;

    if (!dir) {
        fprintf(stderr, "testenv: FILEREPO_SERVICES_DIR is not set\n");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/services.env", dir);
    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "testenv: cannot read %s (are the services started?)\n", path);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *eq = strchr(line, '=');

        if (line[0] == '#' || !eq)
            continue;
        *eq = '\0';
        line[strcspn(line, "\n")] = '\0';
        eq[1 + strcspn(eq + 1, "\n")] = '\0';
        setenv(line, eq + 1, 1);
    }
    fclose(f);
    return 0;
}

/* Runs one statement on the maintenance database; returns 0 or -1. */
static inline int testenv_admin(const char *sql)
{
    PGconn *conn = PQconnectdb("dbname=postgres");
    PGresult *res;
    int ok;

    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "testenv: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    res = PQexec(conn, sql);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "testenv: %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(conn);
    return ok ? 0 : -1;
}

/*
 * Creates an empty database with a unique name; writes its conninfo
 * ("dbname=NAME") into out.  Returns 0 or -1.
 */
static inline int testenv_database_new(char *out, size_t len, char *name, size_t name_len)
{
    static unsigned counter;
    char sql[256];

    snprintf(name, name_len, "t_%ld_%u", (long)getpid(), counter++);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", name);
    if (testenv_admin(sql) != 0)
        return -1;
    snprintf(out, len, "dbname=%s", name);
    return 0;
}

static inline void testenv_database_drop(const char *name)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    testenv_admin(sql);
}

/* A test's own database: libcatalog's connection and a side connection
 * (plain libpq) to look at it and meddle with it. */
struct testenv_db {
    char name[64];            /* the database */
    char conninfo[128];       /* "dbname=…" */
    struct catalog *catalog;  /* libcatalog's connection */
    PGconn *sql;              /* the side connection */
};

/*
 * Creates a fresh database and connects to it both ways; migrates it when
 * `migrate`.  Returns 0, or -1 with the reason on stderr.
 */
static inline int testenv_db_open(struct testenv_db *db, bool migrate)
{
    memset(db, 0, sizeof(*db));
    if (testenv_database_new(db->conninfo, sizeof(db->conninfo), db->name,
                             sizeof(db->name)) != 0 ||
        catalog_new(&db->catalog, db->conninfo, NULL) != 0)
        return -1;
    if (catalog_connect(db->catalog) != 0 ||
        (migrate && catalog_migrate(db->catalog, NULL, NULL) != 0)) {
        fprintf(stderr, "testenv: %s\n", catalog_last_error(db->catalog));
        return -1;
    }
    db->sql = PQconnectdb(db->conninfo);
    if (PQstatus(db->sql) != CONNECTION_OK) {
        fprintf(stderr, "testenv: %s", PQerrorMessage(db->sql));
        return -1;
    }
    return 0;
}

/* Disconnects and drops the database. */
static inline void testenv_db_close(struct testenv_db *db)
{
    PQfinish(db->sql);
    catalog_free(db->catalog);
    testenv_database_drop(db->name);
}

#endif
