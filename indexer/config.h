/*
 * config.h - filerepod's configuration: one JSON file (comments allowed),
 * described by one declarative table of keys, validated whole at start-up.
 *
 * Every problem is reported as "FILE: key "a.b": expected …", all of them at
 * once.  Secrets (the database password, the component secret) are never
 * accepted inline: they come from a `*_file` key or an environment variable,
 * and are never printed.
 */
#ifndef FILEREPO_CONFIG_H
#define FILEREPO_CONFIG_H

#include <stddef.h>

#include "log.h"

/** Environment variable that may carry the database password. */
#define CONFIG_ENV_DB_PASSWORD "FILEREPO_DB_PASSWORD"
/** Environment variable that may carry the XEP-0114 component secret. */
#define CONFIG_ENV_COMPONENT_SECRET "FILEREPO_COMPONENT_SECRET"

struct config {
    char *path;                     /* the file this was read from */

    char *db_conninfo;              /* libpq conninfo, never with a password */
    char *db_password;              /* secret; NULL when the server needs none */
    int db_reconnect_max_seconds;   /* cap of the reconnect back-off */

    char *xmpp_host;                /* server address for the component stream */
    int xmpp_port;                  /* its XEP-0114 port */
    char *xmpp_component;           /* the daemon's JID, a domain */
    char *xmpp_secret;              /* secret: the component handshake password */
    char *xmpp_name;                /* disco identity name */
    int xmpp_reconnect_max_seconds; /* cap of the reconnect back-off */

    char *state_dir;                /* git repositories and content store */
    enum log_level log_level;       /* lowest level logged */
};

/** Who reads the configuration decides which secrets must be at hand. */
enum config_purpose {
    CONFIG_FOR_DAEMON, /* everything, the component secret included */
    CONFIG_FOR_CLI,    /* the catalog's part: the component secret is not read */
};

/**
 * Reads and validates the configuration file at `path` for `purpose`.
 *
 * On success returns 0 and hands a new config to *out (free with
 * config_free).  On failure returns -1, sets *out to NULL, and hands to
 * *errors a malloc'd text of one line per problem, each naming the file and
 * the key (the caller frees it).  Secrets are read from their files or the
 * environment here; they never appear in *errors.
 */
int config_load(struct config **out, char **errors, const char *path,
                enum config_purpose purpose);

/**
 * As config_load, for a configuration already in memory: `data` (len bytes,
 * not necessarily NUL-terminated) is named `name` in the errors.  Secret
 * files it names are read as config_load would.
 */
int config_parse(struct config **out, char **errors, const char *name, const char *data,
                 size_t len, enum config_purpose purpose);

/** Frees a config (NULL is fine); secrets are wiped first. */
void config_free(struct config *config);

/**
 * Writes a description of every key (name, type, default, meaning) to
 * standard output, for `filerepod --help-config`.
 */
void config_print_reference(void);

#endif
