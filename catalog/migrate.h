/*
 * migrate.h - the schema migrations compiled into libcatalog.
 *
 * The build turns every schema/NNN_name.sql into one entry of
 * catalog_migrations[], in ascending version order (see
 * cmake/embed_migrations.cmake).  Only catalog/ includes this.
 */
#ifndef FILEREPO_MIGRATE_H
#define FILEREPO_MIGRATE_H

#include <stddef.h>

struct catalog_migration {
    int version;     /* NNN of the file name */
    const char *name; /* the rest of the file name, without .sql */
    const char *sql;  /* the file's text, run as one multi-statement query */
};

extern const struct catalog_migration catalog_migrations[];
extern const size_t catalog_migrations_count;

#endif
