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

/** A list of strings from the configuration (each owned by the list). */
struct config_strings {
    char **items;                   /* count strings */
    size_t count;                   /* how many */
};

/** Who may see a repository. */
enum config_access {
    CONFIG_ACCESS_OPEN,             /* everyone */
    CONFIG_ACCESS_WHITELIST,        /* the JIDs in members only */
};

/** One published directory tree (an element of "repositories"). */
struct config_repository {
    char *name;                     /* catalog name and root node: [A-Za-z0-9][A-Za-z0-9._-]* */
    char *path;                     /* the published directory, absolute, no trailing '/' */
    char *title;                    /* pubsub#title; defaults to the name */
    char *description;              /* pubsub#description; may be empty */
    enum config_access access;      /* open or whitelist */
    struct config_strings members;  /* whitelist: bare or full JIDs */
};

/** Content store modes, in the order of the "indexer.content_store" choices. */
enum config_store_mode {
    CONFIG_STORE_REFLINK,           /* clone where the file system can, else copy */
    CONFIG_STORE_COPY,              /* always copy */
    CONFIG_STORE_HARDLINK,          /* hard link (the published file must not be rewritten in place) */
    CONFIG_STORE_NONE,              /* keep nothing: only current revisions are servable */
};

/** Digest bits of "indexer.digests", in XEP-0214 / XEP-0300 names. */
enum config_digest {
    CONFIG_DIGEST_SHA256 = 1u << 0, /* "sha-256" (always computed) */
    CONFIG_DIGEST_SHA1 = 1u << 1,   /* "sha-1" */
    CONFIG_DIGEST_MD5 = 1u << 2,    /* "md5" */
    CONFIG_DIGEST_SHA512 = 1u << 3, /* "sha-512" */
    CONFIG_DIGEST_CRC32 = 1u << 4,  /* "crc32" */
};

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
    char *xmpp_pubsub;              /* the pubsub service published to */
    int xmpp_change_feed;           /* publish a change feed per repository (1) or not (0) */
    int xmpp_change_feed_max_items; /* items the change-feed node keeps */
    int xmpp_reconnect_max_seconds; /* cap of the reconnect back-off */
    int transfer_idle_timeout_seconds; /* a transfer silent this long ends (timeout) */
    int transfer_ibb_block_size;    /* largest IBB block-size granted */
    int transfer_ibb_window;        /* IBB blocks sent before their acknowledgement */
    int transfer_max_sessions;      /* transfers under way at once */
    int transfer_per_requester_max; /* of them for one bare JID */
    int transfer_bandwidth_kib;     /* KiB/s for all transfers together; 0: no cap */
    int transfer_socks5;            /* SOCKS5 bytestreams offered (1) or not (0) */
    char *transfer_socks5_bind;     /* the SOCKS5 listener's address */
    int transfer_socks5_port;       /* its port; 0: any */
    char *transfer_socks5_host;     /* the direct candidate's address; NULL: bind */
    char *transfer_socks5_proxy;    /* "auto", "off" or a proxy JID */

    char *state_dir;                /* git repositories and content store */
    enum log_level log_level;       /* lowest level logged */

    struct config_repository *repositories; /* the published trees */
    size_t repositories_count;      /* how many */

    int settle_ms;                  /* quiet time before a written file is indexed */
    struct config_strings ignore;   /* fnmatch patterns of temporary names */
    int rescan_seconds;             /* period of the safety-net full rescan */
    unsigned digests;               /* enum config_digest bits; sha-256 always set */
    int store_mode;                 /* enum config_store_mode */

    int query_page_max;             /* cap of a listing reply */
    int query_verbose_max;          /* pages up to this size are verbose */
    int query_rate_per_second;      /* requests a second per requester */
    int query_rate_burst;           /* and at once */
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
