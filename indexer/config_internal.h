/*
 * config_internal.h - what config.c and config_repo.c share, nobody else.
 */
#ifndef FILEREPO_CONFIG_INTERNAL_H
#define FILEREPO_CONFIG_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "config.h"

enum config_type {
    CONFIG_STRING,      /* any non-empty string */
    CONFIG_INT,         /* integer in [min, max] */
    CONFIG_HOST,        /* host name or IP address */
    CONFIG_DOMAIN,      /* a domain JID such as files.example.org */
    CONFIG_ABS_PATH,    /* an absolute file system path */
    CONFIG_CONNINFO,    /* a libpq conninfo string without a password */
    CONFIG_LOG_LEVEL,   /* debug, info, warn or error */
    CONFIG_SECRET_FILE, /* path of a file holding a secret; env alternative */
    CONFIG_STRING_LIST, /* array of non-empty strings (struct config_strings) */
    CONFIG_CHOICE,      /* one of .choices, stored as its index (int) */
    CONFIG_FLAGS,       /* array of .choices, stored as bits 1 << index (unsigned) */
    CONFIG_REPOSITORIES, /* the repositories array (config_repo.c) */
};

struct config_key {
    const char *name;          /* dotted path in the document */
    enum config_type type;     /* how the value is checked and stored */
    const char *default_value; /* text form of the default; NULL if none */
    bool required;             /* no default: the key (or its env) must be set */
    int min, max;              /* CONFIG_INT bounds */
    size_t offset;             /* where the value goes in struct config */
    const char *env;           /* CONFIG_SECRET_FILE: environment alternative */
    const char *const *choices; /* CONFIG_CHOICE, CONFIG_FLAGS: the accepted words */
    const char *help;          /* one line for the reference */
};

struct config_errors {
    char *text;        /* accumulated lines */
    size_t len;        /* bytes used in text */
    const char *path;  /* file named at the start of each line */
    int count;         /* problems seen */
};

/** Records one problem: "FILE: key "KEY": message" (KEY may be NULL). */
void config_error(struct config_errors *errs, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** "a string", "an array", … for messages. */
const char *config_type_name(const cJSON *item);

/** Whether s is a domain name such as files.example.org. */
bool config_valid_domain(const char *s);

/** Whether s is a host name or an IP address. */
bool config_valid_host(const char *s);

/** Checks one value of `key` (from the document, or the default: item NULL) and stores it. */
void config_apply(struct config *config, struct config_errors *errs,
                  const struct config_key *key, const cJSON *item);

/** Reads a CONFIG_SECRET_FILE key: the file it names, else its environment variable. */
void config_apply_secret(struct config *config, struct config_errors *errs,
                         const struct config_key *key, const cJSON *item);

/** Appends a copy of text; returns 0 or -1 (out of memory). */
int config_strings_add(struct config_strings *list, const char *text);

/** Frees the strings and empties the list. */
void config_strings_clear(struct config_strings *list);

/**
 * Reads a JSON array of non-empty strings into out (appending).
 * Returns 0, or -1 after recording the problem under `key`.
 */
int config_strings_read(struct config_strings *out, struct config_errors *errs, const char *key,
                        const cJSON *item);

/** Reads and checks the "repositories" array (NULL: none) into config. */
void config_repositories_apply(struct config *config, struct config_errors *errs,
                               const char *key, const cJSON *item);

/** Frees config->repositories. */
void config_repositories_free(struct config *config);

#endif
