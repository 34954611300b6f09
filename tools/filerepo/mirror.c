/*
 * mirror.c - filerepo's mirror verbs (add, list, check, disable, enable,
 * remove) and `metalink`, over the catalog.  What an admin types is checked
 * here (mirrors/url.h) before anything is stored: a bad URL or an unknown
 * type is an error naming the problem, and the catalog is left as it was.
 * Passwords are never taken on the command line: --password-file names a
 * file, which is what the catalog keeps.
 */
#include "commands.h"
#include "metalink.h"
#include "mirror.h"
#include "url.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

static struct {
    const char *type;              /* --type */
    const char *description;       /* --description */
    const char *user;              /* --user */
    const char *password_file;     /* --password-file */
    bool public_credentials;       /* --public-credentials */
    int rev;                       /* --rev, 0: current */
} mirror_opts;

void mirror_set_options(const char *type, const char *description, const char *user,
                        const char *password_file, bool public_credentials, int rev)
{
    mirror_opts.type = type;
    mirror_opts.description = description;
    mirror_opts.user = user;
    mirror_opts.password_file = password_file;
    mirror_opts.public_credentials = public_credentials;
    mirror_opts.rev = rev;
}

static int mirror_fail(struct catalog *catalog, const char *verb, int error, const char *what)
{
    if (error == FR_ENOTFOUND) {
        fprintf(stderr, "filerepo: mirror %s: no such %s\n", verb, what);
        return EX_NOINPUT;
    }
    if (error == FR_EINVAL) {
        fprintf(stderr, "filerepo: mirror %s: %s\n", verb, catalog_last_error(catalog));
        return EX_DATAERR;
    }
    fprintf(stderr, "filerepo: mirror %s: %s\n", verb, catalog_last_error(catalog));
    return EX_UNAVAILABLE;
}

static int mirror_add(struct catalog *catalog, const char *repo, const char *url)
{
    char normal[MIRROR_URL_MAX + 16], err[512], password_path[PATH_MAX];
    struct catalog_mirror_new m = { .repo = repo, .url = normal };
    enum mirror_type type;
    struct stat st;
    int64_t id;
    int error;

    if (mirror_url_check(normal, sizeof(normal), &type, url, mirror_opts.type, err,
                         sizeof(err)) != 0) {
        fprintf(stderr, "filerepo: mirror add: %s\n", err);
        return EX_DATAERR;
    }
    m.type = mirror_type_name(type);
    m.description = mirror_opts.description ? mirror_opts.description : "";
    if (!mirror_description_ok(m.description)) {
        fprintf(stderr, "filerepo: mirror add: --description: at most 1024 bytes, "
                        "no control characters\n");
        return EX_DATAERR;
    }
    if (mirror_opts.user && (!*mirror_opts.user || !mirror_description_ok(mirror_opts.user) ||
                             strlen(mirror_opts.user) > 256)) {
        fprintf(stderr, "filerepo: mirror add: --user: 1 to 256 bytes, no control "
                        "characters\n");
        return EX_DATAERR;
    }
    if (mirror_opts.password_file) {
        if (!mirror_opts.user) {
            fprintf(stderr, "filerepo: mirror add: --password-file goes with --user\n");
            return EX_DATAERR;
        }
        if (!realpath(mirror_opts.password_file, password_path) ||
            stat(password_path, &st) != 0 || !S_ISREG(st.st_mode) ||
            access(password_path, R_OK) != 0) {
            fprintf(stderr, "filerepo: mirror add: --password-file %s: not a readable file\n",
                    mirror_opts.password_file);
            return EX_DATAERR;
        }
        m.password_file = password_path;
    }
    if (mirror_opts.public_credentials && !mirror_opts.user) {
        fprintf(stderr, "filerepo: mirror add: --public-credentials needs --user\n");
        return EX_DATAERR;
    }
    m.username = mirror_opts.user;
    m.credentials_public = mirror_opts.public_credentials;
    error = catalog_mirror_add(catalog, &m, &id);
    if (error != 0)
        return mirror_fail(catalog, "add", error, "repository");
    printf("added mirror %" PRId64 " of %s: %s (%s)\n", id, repo, normal, m.type);
    return 0;
}

struct mirror_print {
    bool json;                     /* --json */
    int count;                     /* printed so far */
};

static int mirror_print_row(const struct catalog_mirror_row *r, void *data)
{
    struct mirror_print *p = data;

    if (p->json) {
        cJSON *o = cJSON_CreateObject();
        char *text;

        cJSON_AddNumberToObject(o, "id", (double)r->id);
        cJSON_AddStringToObject(o, "repository", r->repo);
        cJSON_AddStringToObject(o, "url", r->url);
        cJSON_AddStringToObject(o, "type", r->type);
        cJSON_AddStringToObject(o, "description", r->description);
        cJSON_AddStringToObject(o, "user", r->username);
        cJSON_AddBoolToObject(o, "credentials_public", r->credentials_public);
        cJSON_AddStringToObject(o, "state", r->state);
        cJSON_AddStringToObject(o, "state_reason", r->state_reason);
        cJSON_AddStringToObject(o, "state_changed_at", r->state_changed_at);
        cJSON_AddStringToObject(o, "last_check_at", r->last_check_at);
        cJSON_AddStringToObject(o, "last_error", r->last_error);
        cJSON_AddNumberToObject(o, "consecutive_failures", r->consecutive_failures);
        cJSON_AddNumberToObject(o, "verified", (double)r->verified);
        cJSON_AddNumberToObject(o, "pending", (double)r->pending);
        cJSON_AddNumberToObject(o, "failed", (double)r->failed);
        text = cJSON_PrintUnformatted(o);
        if (text)
            printf("%s%s", p->count ? "," : "", text);
        free(text);
        cJSON_Delete(o);
    } else {
        if (p->count == 0)
            printf("%-4s %-12s %-9s %8s %8s %8s  %s\n", "ID", "REPOSITORY", "STATE", "VERIFIED",
                   "PENDING", "FAILED", "URL");
        printf("%-4" PRId64 " %-12s %-9s %8" PRId64 " %8" PRId64 " %8" PRId64 "  %s (%s)\n",
               r->id, r->repo, r->state, r->verified, r->pending, r->failed, r->url, r->type);
        if (*r->state_reason)
            printf("     state since %s: %s\n", *r->state_changed_at ? r->state_changed_at : "?",
                   r->state_reason);
        printf("     last check: %s", *r->last_check_at ? r->last_check_at : "never");
        if (r->consecutive_failures)
            printf(", %d failure%s in a row", r->consecutive_failures,
                   r->consecutive_failures == 1 ? "" : "s");
        printf("\n");
        if (*r->last_error)
            printf("     last error: %s\n", r->last_error);
    }
    p->count++;
    return 0;
}

int cmd_mirror(struct catalog *catalog, int argc, char **argv, bool json)
{
    static const struct {
        const char *verb;
        enum catalog_mirror_action action;
        const char *done;
    } actions[] = {
        { "disable", CATALOG_MIRROR_DISABLE, "disabled" },
        { "enable", CATALOG_MIRROR_ENABLE, "enabled" },
        { "remove", CATALOG_MIRROR_REMOVE, "removed" },
        { "check", CATALOG_MIRROR_CHECK, "to be checked now" },
    };
    int64_t count = 0;
    int error;

    if (argc < 1)
        return EX_USAGE;
    if (strcmp(argv[0], "add") == 0) {
        if (argc != 3)
            return EX_USAGE;
        return mirror_add(catalog, argv[1], argv[2]);
    }
    if (strcmp(argv[0], "list") == 0) {
        struct mirror_print p = { json, 0 };

        if (argc > 2)
            return EX_USAGE;
        if (json)
            fputs("[", stdout);
        error = catalog_mirror_list(catalog, argc == 2 ? argv[1] : NULL, mirror_print_row, &p);
        if (json)
            puts("]");
        else if (error == 0 && p.count == 0)
            puts("no mirrors");
        return error ? mirror_fail(catalog, "list", error, "repository") : 0;
    }
    for (size_t i = 0; i < sizeof(actions) / sizeof(*actions); i++) {
        if (strcmp(argv[0], actions[i].verb) != 0)
            continue;
        if (argc != 3 && !(argc == 2 && actions[i].action == CATALOG_MIRROR_CHECK))
            return EX_USAGE;
        error = catalog_mirror_apply(catalog, argv[1], argc == 3 ? argv[2] : NULL,
                                     actions[i].action, &count);
        if (error != 0)
            return mirror_fail(catalog, argv[0], error, "repository or mirror");
        if (json)
            printf("{\"changed\":%" PRId64 "}\n", count);
        else if (count == 0)
            printf("nothing to do: %s\n", actions[i].action == CATALOG_MIRROR_CHECK
                                              ? "no enabled mirror"
                                              : "the mirror is so already");
        else
            printf("%" PRId64 " mirror%s %s\n", count, count == 1 ? "" : "s", actions[i].done);
        return 0;
    }
    return EX_USAGE;
}

/* ------------------------------------------------------------ metalink */

struct metalink_urls {
    const char *path;              /* the file's path */
    char **urls;                   /* owned */
    size_t count, cap;             /* how many, room for */
};

static int metalink_add_url(const struct catalog_mirror_copy_row *row, void *data)
{
    struct metalink_urls *u = data;
    size_t len = strlen(row->url) + 3 * strlen(u->path) + 1;
    char *url = malloc(len);

    if (!url)
        return FR_ENOMEM;
    if (u->count == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 8;
        char **grown = realloc(u->urls, cap * sizeof(*grown));

        if (!grown) {
            free(url);
            return FR_ENOMEM;
        }
        u->urls = grown;
        u->cap = cap;
    }
    mirror_url_file(url, len, row->url, u->path);
    u->urls[u->count++] = url;
    return 0;
}

struct metalink_job {
    struct catalog *catalog;       /* borrowed */
    const char *path;              /* the file's path */
    int error;                     /* FR_E* of the copies' query */
};

static int metalink_print(const struct catalog_revision_info *info, void *data)
{
    struct metalink_job *job = data;
    struct metalink_urls urls = { .path = job->path };
    char generator[64];
    int error;

    error = catalog_mirror_copies(job->catalog, info->id, metalink_add_url, &urls);
    if (error == 0) {
        const struct metalink_file file = {
            .name = job->path, .size = info->size, .published = info->modified,
            .description = info->description,
            .sha256_hex = info->sha256_hex, .sha1_hex = info->sha1_hex,
            .md5_hex = info->md5_hex, .sha512_hex = info->sha512_hex,
            .urls = (const char *const *)urls.urls, .urls_count = urls.count,
            .generator = generator,
        };

        snprintf(generator, sizeof(generator), "filerepo/%s", FILEREPO_VERSION);
        error = metalink_write(stdout, &file);
    }
    for (size_t i = 0; i < urls.count; i++)
        free(urls.urls[i]);
    free(urls.urls);
    job->error = error;
    return error;
}

int cmd_metalink(struct catalog *catalog, int argc, char **argv, bool json)
{
    char buf[4096];
    const char *repo, *path;
    struct metalink_job job = { .catalog = catalog };
    char *slash;
    int error;

    (void)json;
    if (argc != 1 || snprintf(buf, sizeof(buf), "%s", argv[0]) >= (int)sizeof(buf) ||
        !(slash = strchr(buf, '/')) || !slash[1])
        return EX_USAGE;
    *slash = '\0';
    repo = buf;
    path = slash + 1;
    job.path = path;
    error = catalog_mirror_revision(catalog, repo, path, mirror_opts.rev, metalink_print, &job);
    if (error == FR_ENOTFOUND) {
        fprintf(stderr, "filerepo: metalink: no such file or revision: %s%s\n", argv[0],
                mirror_opts.rev ? " (at that revision)" : "");
        return EX_NOINPUT;
    }
    if (error != 0) {
        fprintf(stderr, "filerepo: metalink: %s\n",
                error == FR_ENOMEM ? "out of memory" : catalog_last_error(catalog));
        return EX_UNAVAILABLE;
    }
    return 0;
}
