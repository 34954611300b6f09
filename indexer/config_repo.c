/*
 * config_repo.c - the "repositories" array of the configuration.
 *
 * Each element names one published directory tree.  Problems are reported
 * with the element's index ("repositories[1].path") like every other key.
 * Two repositories may not share a name, nor may one's directory lie inside
 * another's: a file would then belong to both.
 */
#include "config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const config_repo_keys[] = { "name", "path", "title", "description",
                                                "access", "members" };

static bool config_repo_valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* Absolute, no "." or ".." segment, no empty segment; a trailing '/' is
 * dropped in place. */
static bool config_repo_valid_path(char *path)
{
    size_t n = strlen(path);

    if (path[0] != '/' || n > 4000)
        return false;
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    for (const char *seg = path + 1; *seg;) {
        size_t len = strcspn(seg, "/");

        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg += len + (seg[len] == '/');
    }
    return true;
}

/* node@domain/resource, node and resource optional (RFC 7622, loosely). */
static bool config_repo_valid_jid(const char *jid)
{
    char buf[3072];
    const char *at = strchr(jid, '@');
    const char *slash = strchr(jid, '/');
    const char *domain = jid;
    size_t len;

    if (strlen(jid) >= sizeof(buf))
        return false;
    if (at && (!slash || at < slash)) {
        /* A second '@' before the resource fails the domain check below. */
        if (at == jid)
            return false;
        domain = at + 1;
    }
    if (slash && slash[1] == '\0')
        return false;
    len = slash ? (size_t)(slash - domain) : strlen(domain);
    memcpy(buf, domain, len);
    buf[len] = '\0';
    return config_valid_domain(buf);
}

static char *config_repo_string(struct config_errors *errs, const char *key, const cJSON *obj,
                                const char *name, const char *fallback, bool required)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    char full[128];

    snprintf(full, sizeof(full), "%s.%s", key, name);
    if (!item) {
        if (required)
            config_error(errs, full, "required, and missing");
        return fallback ? strdup(fallback) : NULL;
    }
    if (!cJSON_IsString(item)) {
        config_error(errs, full, "expected a string, got %s", config_type_name(item));
        return NULL;
    }
    return strdup(item->valuestring);
}

/* Reads one element; returns 0 when it is usable. */
static int config_repo_read(struct config_repository *repo, struct config_errors *errs,
                            const char *key, const cJSON *obj)
{
    int before = errs->count;
    const cJSON *members;
    char full[128];
    char *access;

    if (!cJSON_IsObject(obj)) {
        config_error(errs, key, "expected an object, got %s", config_type_name(obj));
        return -1;
    }
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool known = false;

        for (size_t i = 0; i < sizeof(config_repo_keys) / sizeof(*config_repo_keys); i++)
            known |= strcmp(config_repo_keys[i], m->string) == 0;
        snprintf(full, sizeof(full), "%s.%s", key, m->string);
        if (!known)
            config_error(errs, full, "unknown key (a repository has name, path, title, "
                                     "description, access, members)");
        for (const cJSON *p = obj->child; p != m; p = p->next)
            if (strcmp(p->string, m->string) == 0)
                config_error(errs, full, "given more than once");
    }

    repo->name = config_repo_string(errs, key, obj, "name", NULL, true);
    if (repo->name && !config_repo_valid_name(repo->name)) {
        snprintf(full, sizeof(full), "%s.name", key);
        config_error(errs, full, "expected 1 to 64 letters, digits, '.', '_' or '-', starting "
                                 "with a letter or digit; got \"%s\"", repo->name);
    }
    repo->path = config_repo_string(errs, key, obj, "path", NULL, true);
    if (repo->path && !config_repo_valid_path(repo->path)) {
        snprintf(full, sizeof(full), "%s.path", key);
        config_error(errs, full, "expected an absolute path without \".\", \"..\" or empty "
                                 "segments; got \"%s\"", repo->path);
    }
    repo->title = config_repo_string(errs, key, obj, "title", repo->name, false);
    repo->description = config_repo_string(errs, key, obj, "description", "", false);

    access = config_repo_string(errs, key, obj, "access", "open", false);
    snprintf(full, sizeof(full), "%s.access", key);
    if (access && strcmp(access, "whitelist") == 0)
        repo->access = CONFIG_ACCESS_WHITELIST;
    else if (access && strcmp(access, "open") != 0)
        config_error(errs, full, "expected \"open\" or \"whitelist\"; got \"%s\"", access);
    free(access);

    members = cJSON_GetObjectItemCaseSensitive(obj, "members");
    snprintf(full, sizeof(full), "%s.members", key);
    if (members && config_strings_read(&repo->members, errs, full, members) == 0) {
        if (repo->access != CONFIG_ACCESS_WHITELIST)
            config_error(errs, full, "members apply only to \"access\": \"whitelist\"");
        for (size_t i = 0; i < repo->members.count; i++)
            if (!config_repo_valid_jid(repo->members.items[i]))
                config_error(errs, full, "\"%s\" is not a JID (user@domain or "
                                         "user@domain/resource)", repo->members.items[i]);
    }
    return errs->count == before && repo->name && repo->path ? 0 : -1;
}

/* Whether directory a is b or lies inside b. */
static bool config_repo_inside(const char *a, const char *b)
{
    size_t n = strlen(b);

    if (strcmp(b, "/") == 0)
        return true;
    return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

void config_repositories_apply(struct config *config, struct config_errors *errs,
                               const char *key, const cJSON *item)
{
    size_t count;
    int index = 0;

    if (!item)
        return;
    if (!cJSON_IsArray(item)) {
        config_error(errs, key, "expected an array of repositories, got %s",
                     config_type_name(item));
        return;
    }
    count = (size_t)cJSON_GetArraySize(item);
    config->repositories = calloc(count ? count : 1, sizeof(*config->repositories));
    if (!config->repositories) {
        config_error(errs, key, "out of memory");
        return;
    }
    for (const cJSON *e = item->child; e; e = e->next, index++) {
        struct config_repository *repo = &config->repositories[config->repositories_count++];
        char elem[64];

        snprintf(elem, sizeof(elem), "%s[%d]", key, index);
        if (config_repo_read(repo, errs, elem, e) != 0)
            continue;
        for (size_t j = 0; j + 1 < config->repositories_count; j++) {
            const struct config_repository *other = &config->repositories[j];

            if (!other->name || !other->path)
                continue;
            if (strcmp(other->name, repo->name) == 0)
                config_error(errs, elem, "name \"%s\" is also the name of %s[%zu]", repo->name,
                             key, j);
            if (config_repo_inside(repo->path, other->path) ||
                config_repo_inside(other->path, repo->path))
                config_error(errs, elem, "path %s overlaps %s[%zu]'s %s: a file would belong "
                                         "to both", repo->path, key, j, other->path);
        }
    }
}

void config_repositories_free(struct config *config)
{
    for (size_t i = 0; i < config->repositories_count; i++) {
        struct config_repository *repo = &config->repositories[i];

        free(repo->name);
        free(repo->path);
        free(repo->title);
        free(repo->description);
        config_strings_clear(&repo->members);
    }
    free(config->repositories);
    config->repositories = NULL;
    config->repositories_count = 0;
}
