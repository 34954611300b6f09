/*
 * filerepo - the command-line tool of filerepo.
 *
 * Administration verbs work on the catalog named by the daemon's
 * configuration file (-c FILE, or $FILEREPO_CONFIG, or
 * /etc/filerepo/filerepod.json).  So far:
 *
 *   filerepo [-c FILE] migrate [--json]   apply pending schema migrations
 *   filerepo [-c FILE] schema [--json]    show the catalog's schema version
 */
#include "catalog.h"
#include "config.h"
#include "log.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#define FILEREPO_DEFAULT_CONFIG "/etc/filerepo/filerepod.json"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: filerepo [-c FILE] COMMAND [--json]\n"
            "\n"
            "commands:\n"
            "  migrate   apply the catalog schema migrations this filerepo carries\n"
            "  schema    show the catalog's schema version and this filerepo's\n"
            "\n"
            "  -c, --config FILE  filerepod's configuration (default $FILEREPO_CONFIG,\n"
            "                     then %s)\n",
            FILEREPO_DEFAULT_CONFIG);
}

static int open_catalog(struct catalog **out, const char *config_path)
{
    struct config *config = NULL;
    char *errors = NULL;
    int status = EX_CONFIG;

    *out = NULL;
    if (config_load(&config, &errors, config_path, CONFIG_FOR_CLI) != 0) {
        fputs(errors, stderr);
        free(errors);
        return EX_CONFIG;
    }
    if (catalog_new(out, config->db_conninfo, config->db_password) != 0) {
        fprintf(stderr, "filerepo: out of memory\n");
        status = EX_OSERR;
        goto done;
    }
    if (catalog_connect(*out) != 0) {
        fprintf(stderr, "filerepo: cannot reach the catalog: %s\n", catalog_last_error(*out));
        catalog_free(*out);
        *out = NULL;
        status = EX_UNAVAILABLE;
        goto done;
    }
    status = 0;
done:
    config_free(config);
    return status;
}

static int cmd_migrate(struct catalog *catalog, bool json)
{
    int applied = 0, version = 0;
    int error = catalog_migrate(catalog, &applied, &version);

    if (error != 0) {
        fprintf(stderr, "filerepo: migrate: %s\n", catalog_last_error(catalog));
        return EX_DATAERR;
    }
    if (json)
        printf("{\"applied\":%d,\"version\":%d}\n", applied, version);
    else if (applied == 0)
        printf("catalog schema is up to date (version %d)\n", version);
    else
        printf("applied %d migration%s; catalog schema version %d\n", applied,
               applied == 1 ? "" : "s", version);
    return 0;
}

static int cmd_schema(struct catalog *catalog, bool json)
{
    int version = 0;
    int known = catalog_schema_version_known();

    if (catalog_schema_version(catalog, &version) != 0) {
        fprintf(stderr, "filerepo: schema: %s\n", catalog_last_error(catalog));
        return EX_UNAVAILABLE;
    }
    if (json)
        printf("{\"catalog\":%d,\"known\":%d}\n", version, known);
    else
        printf("catalog schema version %d; this filerepo knows up to %d%s\n", version, known,
               version < known   ? " (run: filerepo migrate)"
               : version > known ? " (the catalog is newer: upgrade filerepo)"
                                 : "");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = getenv("FILEREPO_CONFIG");
    struct catalog *catalog = NULL;
    const char *command;
    bool json = false;
    int opt, status;

    log_set_program("filerepo");
    if (!config_path || !*config_path)
        config_path = FILEREPO_DEFAULT_CONFIG;
    while ((opt = getopt_long(argc, argv, "+c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'V':
            printf("filerepo %s\n", FILEREPO_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    command = argv[optind++];
    /* Options may follow the command too (filerepo migrate --json). */
    while ((opt = getopt_long(argc, argv, "+c:h", options, NULL)) != -1) {
        if (opt == 'j')
            json = true;
        else if (opt == 'c')
            config_path = optarg;
        else {
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc || (strcmp(command, "migrate") != 0 && strcmp(command, "schema") != 0)) {
        usage(stderr);
        return EX_USAGE;
    }

    status = open_catalog(&catalog, config_path);
    if (status != 0)
        return status;
    if (strcmp(command, "migrate") == 0)
        status = cmd_migrate(catalog, json);
    else
        status = cmd_schema(catalog, json);
    catalog_free(catalog);
    return status;
}
