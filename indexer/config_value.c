/*
 * config_value.c - checking and storing one configuration value, by type:
 * strings, hosts, domains, paths, conninfo, integers, choices, lists, and
 * secrets read from their files (or the environment).
 */
#include "config_internal.h"

#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX_SECRET_SIZE 4096

bool config_valid_host(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 253)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == ':'))
            return false;
    return true;
}

bool config_valid_domain(const char *s)
{
    size_t label = 0;

    if (*s == '\0' || strlen(s) > 253 || *s == '.')
        return false;
    for (const char *c = s; *c; c++) {
        if (*c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                   (*c >= '0' && *c <= '9') || *c == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* Reads a secret file into a new string, without its trailing newline. */
static char *config_read_secret(struct config_errors *errs, const char *key, const char *path)
{
    char *secret = NULL;
    struct stat st;
    FILE *f;
    size_t n;

    if (path[0] != '/') {
        config_error(errs, key, "expected an absolute path, got \"%s\"", path);
        return NULL;
    }
    f = fopen(path, "r");
    if (!f) {
        config_error(errs, key, "cannot read secret file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        config_error(errs, key, "secret file %s is not a regular file", path);
        goto done;
    }
    if (st.st_size > CONFIG_MAX_SECRET_SIZE) {
        config_error(errs, key, "secret file %s is larger than %d bytes", path,
                     CONFIG_MAX_SECRET_SIZE);
        goto done;
    }
    secret = calloc(1, (size_t)st.st_size + 1);
    if (!secret)
        goto done;
    n = fread(secret, 1, (size_t)st.st_size, f);
    secret[n] = '\0';
    while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
        secret[--n] = '\0';
    if (n == 0 || strlen(secret) != n) {
        config_error(errs, key, "secret file %s is empty or holds a NUL byte", path);
        free(secret);
        secret = NULL;
    }
done:
    fclose(f);
    return secret;
}

static void config_set_string(struct config *config, const struct config_key *key, const char *value)
{
    char **slot = (char **)((char *)config + key->offset);

    free(*slot);
    *slot = strdup(value);
}

/* "a, b or c" for error messages (static buffer: one message at a time). */
static const char *config_choices_text(const char *const *choices)
{
    static char text[256];
    size_t len = 0;

    text[0] = '\0';
    for (int i = 0; choices[i] && len < sizeof(text); i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s",
                                i == 0 ? "" : choices[i + 1] ? ", " : " or ", choices[i]);
    return text;
}

int config_strings_add(struct config_strings *list, const char *text)
{
    char **grown = realloc(list->items, (list->count + 1) * sizeof(*list->items));

    if (!grown)
        return -1;
    list->items = grown;
    if (!(list->items[list->count] = strdup(text)))
        return -1;
    list->count++;
    return 0;
}

void config_strings_clear(struct config_strings *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

int config_strings_read(struct config_strings *out, struct config_errors *errs, const char *key,
                        const cJSON *item)
{
    int index = 0;

    if (!cJSON_IsArray(item)) {
        config_error(errs, key, "expected an array of strings, got %s", config_type_name(item));
        return -1;
    }
    for (const cJSON *e = item->child; e; e = e->next, index++) {
        if (!cJSON_IsString(e) || !*e->valuestring) {
            config_error(errs, key, "item %d: expected a non-empty string, got %s", index,
                         cJSON_IsString(e) ? "an empty string" : config_type_name(e));
            return -1;
        }
        if (config_strings_add(out, e->valuestring) != 0)
            return -1;
    }
    return 0;
}

/* CONFIG_STRING_LIST and CONFIG_FLAGS: from the document or the default. */
static void config_apply_list(struct config *config, struct config_errors *errs,
                              const struct config_key *key, const cJSON *item)
{
    struct config_strings list = { 0 };

    if (item) {
        if (config_strings_read(&list, errs, key->name, item) != 0)
            goto done;
    } else {
        char buf[256];
        char *save = NULL;

        snprintf(buf, sizeof(buf), "%s", key->default_value);
        for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
            config_strings_add(&list, w);
    }
    if (key->type == CONFIG_STRING_LIST) {
        *(struct config_strings *)((char *)config + key->offset) = list;
        return;
    }

    /* CONFIG_FLAGS.  The first choice (sha-256, the content store's key)
     * is always on. */
    unsigned bits = 1u;
    for (size_t i = 0; i < list.count; i++) {
        int found = -1;

        for (int c = 0; key->choices[c]; c++)
            if (strcmp(key->choices[c], list.items[i]) == 0)
                found = c;
        if (found < 0) {
            config_error(errs, key->name, "\"%s\" is not one of %s", list.items[i],
                         config_choices_text(key->choices));
            goto done;
        }
        bits |= 1u << found;
    }
    *(unsigned *)((char *)config + key->offset) = bits;
done:
    config_strings_clear(&list);
}

/* Checks one value (from the document, or the default) and stores it. */
void config_apply(struct config *config, struct config_errors *errs,
                         const struct config_key *key, const cJSON *item)
{
    const char *text = NULL;

    if (key->type == CONFIG_INT) {
        double v;

        if (item && !cJSON_IsNumber(item)) {
            config_error(errs, key->name, "expected an integer from %d to %d, got %s",
                         key->min, key->max, config_type_name(item));
            return;
        }
        v = item ? item->valuedouble : strtod(key->default_value, NULL);
        /* Range first: converting a huge or non-finite double is undefined. */
        if (!isfinite(v) || v < key->min || v > key->max || v != (double)(int)v) {
            config_error(errs, key->name, "expected an integer from %d to %d, got %g",
                         key->min, key->max, v);
            return;
        }
        *(int *)((char *)config + key->offset) = (int)v;
        return;
    }

    if (key->type == CONFIG_STRING_LIST || key->type == CONFIG_FLAGS) {
        config_apply_list(config, errs, key, item);
        return;
    }
    if (key->type == CONFIG_REPOSITORIES) {
        config_repositories_apply(config, errs, key->name, item);
        return;
    }

    if (item) {
        if (!cJSON_IsString(item)) {
            config_error(errs, key->name, "expected a string, got %s", config_type_name(item));
            return;
        }
        text = item->valuestring;
    } else {
        text = key->default_value;
    }

    switch (key->type) {
    case CONFIG_STRING:
        if (*text == '\0') {
            config_error(errs, key->name, "expected a non-empty string");
            return;
        }
        break;
    case CONFIG_HOST:
        if (!config_valid_host(text)) {
            config_error(errs, key->name, "expected a host name or IP address, got \"%s\"", text);
            return;
        }
        break;
    case CONFIG_DOMAIN:
        if (!config_valid_domain(text)) {
            config_error(errs, key->name,
                         "expected a domain JID such as files.example.org, got \"%s\"", text);
            return;
        }
        break;
    case CONFIG_ABS_PATH:
        if (text[0] != '/') {
            config_error(errs, key->name, "expected an absolute path, got \"%s\"", text);
            return;
        }
        break;
    case CONFIG_CONNINFO: {
        char *perr = NULL;
        PQconninfoOption *opts = PQconninfoParse(text, &perr);

        if (!opts) {
            /* libpq's message would quote the string; it may hold a
             * password-like value, so give only the verdict. */
            config_error(errs, key->name, "expected a libpq connection string: %s",
                         perr ? perr : "out of memory");
            PQfreemem(perr);
            return;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (strcmp(o->keyword, "password") == 0 && o->val) {
                config_error(errs, key->name,
                             "must not carry a password; use \"database.password_file\" "
                             "or the environment variable %s", CONFIG_ENV_DB_PASSWORD);
                PQconninfoFree(opts);
                return;
            }
        }
        PQconninfoFree(opts);
        break;
    }
    case CONFIG_LOG_LEVEL: {
        enum log_level level;

        if (log_level_parse(&level, text) != 0) {
            config_error(errs, key->name,
                         "expected one of debug, info, warn, error; got \"%s\"", text);
            return;
        }
        *(enum log_level *)((char *)config + key->offset) = level;
        return;
    }
    case CONFIG_CHOICE:
        for (int i = 0; key->choices[i]; i++) {
            if (strcmp(key->choices[i], text) == 0) {
                *(int *)((char *)config + key->offset) = i;
                return;
            }
        }
        config_error(errs, key->name, "expected one of %s; got \"%s\"",
                     config_choices_text(key->choices), text);
        return;
    case CONFIG_SECRET_FILE:  /* handled by config_apply_secret */
    case CONFIG_INT:          /* handled above */
    case CONFIG_STRING_LIST:
    case CONFIG_FLAGS:
    case CONFIG_REPOSITORIES:
        assert(0);
        return;
    }
    config_set_string(config, key, text);
}

void config_apply_secret(struct config *config, struct config_errors *errs,
                                const struct config_key *key, const cJSON *item)
{
    char **slot = (char **)((char *)config + key->offset);
    const char *env;

    if (item) {
        if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
            config_error(errs, key->name, "expected the path of a file holding the secret, got %s",
                         config_type_name(item));
            return;
        }
        *slot = config_read_secret(errs, key->name, item->valuestring);
        return;
    }
    env = getenv(key->env);
    if (env && *env) {
        *slot = strdup(env);
        return;
    }
    if (key->required)
        config_error(errs, key->name,
                     "required: the path of a file holding the secret "
                     "(or set the environment variable %s)", key->env);
}
