/*
 * config_internal.h - what config.c and config_repo.c share, nobody else.
 */
#ifndef FILEREPO_CONFIG_INTERNAL_H
#define FILEREPO_CONFIG_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "config.h"

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
