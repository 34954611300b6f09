/*
 * migrate.c - bring the catalog's schema up to the version this binary knows.
 *
 * The migrations record is the table schema_migration (version, name,
 * applied_at).  Everything happens in one transaction holding an advisory
 * lock, so two daemons starting together apply each migration once, and a
 * migration that fails leaves the database as it was.
 */
#include "catalog_internal.h"
#include "migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any constant works; this one spells "frmg". */
#define CATALOG_MIGRATE_LOCK "1718775143"

static const char catalog_bootstrap_sql[] =
    "SET LOCAL client_min_messages = warning;"
    "SELECT pg_advisory_xact_lock(" CATALOG_MIGRATE_LOCK ");"
    "CREATE TABLE IF NOT EXISTS schema_migration ("
    "  version    integer PRIMARY KEY CHECK (version > 0),"
    "  name       text NOT NULL,"
    "  applied_at timestamptz NOT NULL DEFAULT now())";

static const struct catalog_migration *catalog_migration_find(int version)
{
    for (size_t i = 0; i < catalog_migrations_count; i++)
        if (catalog_migrations[i].version == version)
            return &catalog_migrations[i];
    return NULL;
}

/* Checks what the database recorded against what this binary carries and
 * marks in `done` (indexed like catalog_migrations) what is applied. */
static int catalog_migrate_check_recorded(struct catalog *catalog, char *done)
{
    PGresult *res = catalog_exec(catalog, "SELECT version, name FROM schema_migration ORDER BY version",
                                 PGRES_TUPLES_OK);
    int error = 0;

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    for (int row = 0; row < PQntuples(res); row++) {
        int version = atoi(PQgetvalue(res, row, 0));
        const char *name = PQgetvalue(res, row, 1);
        const struct catalog_migration *m = catalog_migration_find(version);

        if (!m) {
            catalog_set_error(catalog,
                              "the catalog has schema version %d (%s), newer than this "
                              "filerepo knows (%d); use a newer filerepo",
                              version, name, catalog_schema_version_known());
            error = FR_ESCHEMA;
            break;
        }
        if (strcmp(m->name, name) != 0) {
            catalog_set_error(catalog,
                              "the catalog's schema version %d is \"%s\" but this filerepo's "
                              "is \"%s\"; they are not the same schema",
                              version, name, m->name);
            error = FR_ESCHEMA;
            break;
        }
        done[m - catalog_migrations] = 1;
    }
    PQclear(res);
    return error;
}

static int catalog_migrate_record(struct catalog *catalog, const struct catalog_migration *m)
{
    char version[16];
    const char *params[] = { version, m->name };
    PGresult *res;

    snprintf(version, sizeof(version), "%d", m->version);
    res = PQexecParams(catalog->conn,
                       "INSERT INTO schema_migration (version, name) VALUES ($1, $2)", 2,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        catalog_set_error(catalog, "recording migration %03d: %s", m->version,
                          PQresultErrorMessage(res));
        PQclear(res);
        return catalog_failure_code(catalog, FR_ERROR);
    }
    PQclear(res);
    return 0;
}

int catalog_migrate(struct catalog *catalog, int *applied, int *version)
{
    char *done = NULL;
    int count = 0;
    int error;

    if (!catalog->conn) {
        catalog_set_error(catalog, "not connected");
        return FR_ECONN;
    }
    done = calloc(catalog_migrations_count + 1, 1);
    if (!done)
        return FR_ENOMEM;

    if ((error = catalog_command(catalog, "BEGIN")) != 0)
        goto done;
    /* The bootstrap is several statements: PQexec reports the last one. */
    {
        PGresult *res = catalog_exec(catalog, catalog_bootstrap_sql, PGRES_COMMAND_OK);

        if (!res) {
            error = catalog_failure_code(catalog, FR_ERROR);
            goto rollback;
        }
        PQclear(res);
    }
    if ((error = catalog_migrate_check_recorded(catalog, done)) != 0)
        goto rollback;

    for (size_t i = 0; i < catalog_migrations_count; i++) {
        const struct catalog_migration *m = &catalog_migrations[i];
        PGresult *res;

        if (done[i])
            continue;
        res = PQexec(catalog->conn, m->sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            catalog_set_error(catalog, "migration %03d_%s failed: %s", m->version, m->name,
                              PQresultErrorMessage(res));
            PQclear(res);
            error = catalog_failure_code(catalog, FR_ERROR);
            goto rollback;
        }
        PQclear(res);
        if ((error = catalog_migrate_record(catalog, m)) != 0)
            goto rollback;
        count++;
    }
    if ((error = catalog_command(catalog, "COMMIT")) != 0)
        goto done;
    if (applied)
        *applied = count;
    if (version)
        *version = catalog_schema_version_known();
    goto done;

rollback:
    catalog_rollback(catalog);
done:
    free(done);
    return error;
}

int catalog_schema_version(struct catalog *catalog, int *version)
{
    PGresult *res = catalog_exec(catalog, "SELECT to_regclass('schema_migration') IS NOT NULL",
                                 PGRES_TUPLES_OK);
    bool recorded;

    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    recorded = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    *version = 0;
    if (!recorded)
        return 0;
    res = catalog_exec(catalog, "SELECT coalesce(max(version), 0) FROM schema_migration",
                       PGRES_TUPLES_OK);
    if (!res)
        return catalog_failure_code(catalog, FR_ERROR);
    *version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}
