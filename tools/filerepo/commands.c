/*
 * commands.c - filerepo's catalog verbs: migrate, schema, repo list, ls,
 * log, status.  Human output is aligned text; --json prints one JSON
 * document (listings stream their array element by element, so a huge
 * directory never sits in memory whole).
 */
#include "commands.h"
#include "outbox.h"
#include "query.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

/* Prints a cJSON value on one line and frees it. */
static void json_print(cJSON *value)
{
    char *text = cJSON_PrintUnformatted(value);

    if (text)
        fputs(text, stdout);
    free(text);
    cJSON_Delete(value);
}

static void human_size(char *out, size_t len, int64_t bytes)
{
    const char *units[] = { "B", "kB", "MB", "GB", "TB" };
    double v = (double)bytes;
    int u = 0;

    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(out, len, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

/* "repo/dir/file" -> repo and path ("" for the root); out-params borrow
 * from buf. */
static int split_target(const char *target, char *buf, size_t len, const char **repo,
                        const char **path)
{
    char *slash;

    if ((size_t)snprintf(buf, len, "%s", target) >= len || !*buf)
        return -1;
    while (strlen(buf) > 1 && buf[strlen(buf) - 1] == '/')
        buf[strlen(buf) - 1] = '\0';
    slash = strchr(buf, '/');
    *repo = buf;
    *path = "";
    if (slash) {
        *slash = '\0';
        *path = slash + 1;
    }
    return 0;
}

static int fail(struct catalog *catalog, const char *verb, int error, const char *target)
{
    if (error == FR_ENOTFOUND) {
        fprintf(stderr, "filerepo: %s: no such repository or path: %s\n", verb, target);
        return EX_NOINPUT;
    }
    fprintf(stderr, "filerepo: %s: %s\n", verb, catalog_last_error(catalog));
    return EX_UNAVAILABLE;
}

int cmd_migrate(struct catalog *catalog, int argc, char **argv, bool json)
{
    int applied = 0, version = 0;

    (void)argv;
    if (argc != 0)
        return EX_USAGE;
    if (catalog_migrate(catalog, &applied, &version) != 0) {
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

int cmd_schema(struct catalog *catalog, int argc, char **argv, bool json)
{
    int version = 0, known = catalog_schema_version_known();

    (void)argv;
    if (argc != 0)
        return EX_USAGE;
    if (catalog_schema_version(catalog, &version) != 0)
        return fail(catalog, "schema", FR_ERROR, "");
    if (json)
        printf("{\"catalog\":%d,\"known\":%d}\n", version, known);
    else
        printf("catalog schema version %d; this filerepo knows up to %d%s\n", version, known,
               version < known   ? " (run: filerepo migrate)"
               : version > known ? " (the catalog is newer: upgrade filerepo)"
                                 : "");
    return 0;
}

/* ------------------------------------------------------------ repo list, status */

struct repo_print {
    bool json;      /* --json */
    bool status;    /* the status columns */
    int count;      /* printed so far */
};

static int repo_print_row(const struct catalog_repo_row *r, void *data)
{
    struct repo_print *p = data;
    char size[32];

    if (p->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "path", r->path);
        cJSON_AddStringToObject(o, "title", r->title);
        cJSON_AddStringToObject(o, "access", r->access);
        cJSON_AddNumberToObject(o, "files", (double)r->files);
        cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
        if (p->status) {
            cJSON_AddNumberToObject(o, "revisions", (double)r->revisions);
            cJSON_AddStringToObject(o, "last_commit", r->last_commit);
            cJSON_AddStringToObject(o, "last_change", r->last_change);
            cJSON_AddNumberToObject(o, "outbox_pending", (double)r->outbox_pending);
            cJSON_AddNumberToObject(o, "outbox_parked", (double)r->outbox_parked);
            if (r->indexing) {
                cJSON *ix = cJSON_AddObjectToObject(o, "indexing");

                cJSON_AddNumberToObject(ix, "files_total", (double)r->files_total);
                cJSON_AddNumberToObject(ix, "files_done", (double)r->files_done);
                cJSON_AddNumberToObject(ix, "bytes_total", (double)r->bytes_total);
                cJSON_AddNumberToObject(ix, "bytes_done", (double)r->bytes_done);
            } else {
                cJSON_AddNullToObject(o, "indexing");
            }
        }
        fputs(p->count ? "," : "", stdout);
        json_print(o);
    } else if (!p->status) {
        human_size(size, sizeof(size), r->bytes);
        if (p->count == 0)
            printf("%-20s %-9s %8s %10s  %s\n", "NAME", "ACCESS", "FILES", "SIZE", "PATH");
        printf("%-20s %-9s %8" PRId64 " %10s  %s\n", r->name, r->access, r->files, size, r->path);
    } else {
        human_size(size, sizeof(size), r->bytes);
        printf("%s%s (%s, %s)\n", p->count ? "\n" : "", r->name, r->path, r->access);
        printf("  files:      %" PRId64 " (%s), %" PRId64 " revisions\n", r->files, size,
               r->revisions);
        printf("  last:       %s%s%.12s\n", *r->last_change ? r->last_change : "nothing yet",
               *r->last_commit ? ", commit " : "", r->last_commit);
        printf("  publishing: %" PRId64 " waiting, %" PRId64 " parked\n", r->outbox_pending,
               r->outbox_parked);
        if (r->indexing) {
            char done[32], total[32];

            human_size(done, sizeof(done), r->bytes_done);
            human_size(total, sizeof(total), r->bytes_total);
            printf("  indexing:   %.0f%% (%" PRId64 " of %" PRId64 " files, %s of %s)\n",
                   r->bytes_total ? 100.0 * (double)r->bytes_done / (double)r->bytes_total : 0.0,
                   r->files_done, r->files_total, done, total);
        } else {
            printf("  indexing:   idle\n");
        }
    }
    p->count++;
    return 0;
}

/* Rows the publisher gave up on (or is trying again): what, where, and
 * the service's words. */
static int parked_print_row(const struct catalog_parked_row *r, void *data)
{
    struct repo_print *p = data;
    bool parked = p->status; /* status doubles as "these are parked" here */

    if (p->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddNumberToObject(o, "id", (double)r->id);
        cJSON_AddStringToObject(o, "repository", r->repo);
        cJSON_AddStringToObject(o, "action", r->action);
        cJSON_AddStringToObject(o, "node", r->node);
        cJSON_AddNumberToObject(o, "attempts", r->attempts);
        cJSON_AddStringToObject(o, "error", r->error);
        cJSON_AddStringToObject(o, parked ? "parked_at" : "next_attempt_at", r->when);
        fputs(p->count ? "," : "", stdout);
        json_print(o);
    } else {
        if (p->count == 0 && parked)
            printf("\nparked (filerepo republish REPO queues a repository again):\n");
        else if (p->count == 0)
            printf("\nretrying:\n");
        printf("  #%" PRId64 " %s %s %s, %s %s, after %d attempt%s:\n    %s\n", r->id, r->repo,
               r->action, r->node, parked ? "parked" : "next attempt", r->when, r->attempts,
               r->attempts == 1 ? "" : "s", r->error);
    }
    p->count++;
    return 0;
}

static int repo_list(struct catalog *catalog, bool json, bool status, const char *verb)
{
    struct repo_print p = { json, status, 0 };
    struct repo_print parked = { json, true, 0 }, retrying = { json, false, 0 };
    int error;

    if (json)
        fputs(status ? "{\"repositories\":[" : "[", stdout);
    error = catalog_repo_list(catalog, repo_print_row, &p);
    if (json && status)
        fputs("],\"parked\":[", stdout);
    if (status && error == 0)
        error = catalog_outbox_parked(catalog, true, 50, parked_print_row, &parked);
    if (json && status)
        fputs("],\"retrying\":[", stdout);
    if (status && error == 0)
        error = catalog_outbox_parked(catalog, false, 20, parked_print_row, &retrying);
    if (json)
        puts(status ? "]}" : "]");
    else if (p.count == 0)
        puts("no repositories (configure them in filerepod's configuration)");
    return error ? fail(catalog, verb, error, "") : 0;
}

int cmd_repo(struct catalog *catalog, int argc, char **argv, bool json)
{
    if (argc != 1 || strcmp(argv[0], "list") != 0)
        return EX_USAGE;
    return repo_list(catalog, json, false, "repo list");
}

int cmd_status(struct catalog *catalog, int argc, char **argv, bool json)
{
    (void)argv;
    if (argc != 0)
        return EX_USAGE;
    return repo_list(catalog, json, true, "status");
}

/* ------------------------------------------------------------ ls, log */

struct list_print {
    bool json;   /* --json */
    int count;   /* printed so far */
};

static int ls_print_row(const struct catalog_ls_row *r, void *data)
{
    struct list_print *p = data;

    if (p->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "path", r->path);
        cJSON_AddStringToObject(o, "kind", r->is_dir ? "directory" : "file");
        if (!r->is_dir && r->revision) {
            cJSON_AddNumberToObject(o, "size", (double)r->size);
            cJSON_AddNumberToObject(o, "revision", r->revision);
            cJSON_AddStringToObject(o, "modified", r->modified);
            cJSON_AddStringToObject(o, "sha256", r->sha256);
            cJSON_AddStringToObject(o, "mime", r->mime);
        }
        fputs(p->count ? "," : "", stdout);
        json_print(o);
    } else if (r->is_dir) {
        printf("%-12s %4s  %-20s  %s/\n", "-", "", "", r->name);
    } else {
        printf("%12" PRId64 " r%-3d  %-20s  %s\n", r->size, r->revision, r->modified,
               *r->name ? r->name : r->path);
    }
    p->count++;
    return 0;
}

int cmd_ls(struct catalog *catalog, int argc, char **argv, bool json)
{
    struct list_print p = { json, 0 };
    const char *repo, *path;
    char buf[4096];
    int error;

    if (argc != 1 || split_target(argv[0], buf, sizeof(buf), &repo, &path) != 0)
        return EX_USAGE;
    if (json)
        fputs("[", stdout);
    error = catalog_ls(catalog, repo, path, ls_print_row, &p);
    if (json)
        puts("]");
    return error ? fail(catalog, "ls", error, argv[0]) : 0;
}

static int log_print_row(const struct catalog_log_row *r, void *data)
{
    struct list_print *p = data;

    if (p->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddNumberToObject(o, "revision", r->number);
        cJSON_AddStringToObject(o, "commit", r->commit);
        cJSON_AddNumberToObject(o, "size", (double)r->size);
        cJSON_AddStringToObject(o, "modified", r->modified);
        cJSON_AddStringToObject(o, "recorded", r->recorded);
        cJSON_AddStringToObject(o, "sha256", r->sha256);
        cJSON_AddStringToObject(o, "mime", r->mime);
        cJSON_AddBoolToObject(o, "current", r->current);
        cJSON_AddBoolToObject(o, "withdrawn", r->withdrawn);
        fputs(p->count ? "," : "", stdout);
        json_print(o);
    } else {
        printf("revision %d%s%s\n  recorded %s, commit %.12s\n  %" PRId64 " bytes, modified %s, "
               "%s\n  sha-256 %s\n",
               r->number, r->current ? " (current)" : "", r->withdrawn ? " (withdrawn)" : "",
               r->recorded, r->commit, r->size, r->modified, r->mime, r->sha256);
    }
    p->count++;
    return 0;
}

int cmd_log(struct catalog *catalog, int argc, char **argv, bool json)
{
    struct list_print p = { json, 0 };
    const char *repo, *path;
    char buf[4096];
    int error;

    if (argc != 1 || split_target(argv[0], buf, sizeof(buf), &repo, &path) != 0 || !*path)
        return EX_USAGE;
    if (json)
        fputs("[", stdout);
    error = catalog_log(catalog, repo, path, log_print_row, &p);
    if (json)
        puts("]");
    return error ? fail(catalog, "log", error, argv[0]) : 0;
}

/* ------------------------------------------------------------ acl, revision, republish */

static int acl_print_row(const struct catalog_acl_row *r, void *data)
{
    struct list_print *p = data;

    if (p->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "jid", r->jid);
        cJSON_AddStringToObject(o, "role", r->role);
        fputs(p->count ? "," : "", stdout);
        json_print(o);
    } else {
        printf("%-10s %s\n", r->role, r->jid);
    }
    p->count++;
    return 0;
}

int cmd_acl(struct catalog *catalog, int argc, char **argv, bool json)
{
    bool grant, changed = false;
    int error;

    if (argc == 2 && strcmp(argv[0], "list") == 0) {
        struct list_print p = { json, 0 };

        if (json)
            fputs("[", stdout);
        error = catalog_acl_list(catalog, argv[1], acl_print_row, &p);
        if (json)
            puts("]");
        else if (error == 0 && p.count == 0)
            puts("no access list entries");
        return error ? fail(catalog, "acl list", error, argv[1]) : 0;
    }
    if (argc != 4 || (strcmp(argv[0], "grant") != 0 && strcmp(argv[0], "revoke") != 0))
        return EX_USAGE;
    grant = strcmp(argv[0], "grant") == 0;
    error = catalog_acl_set(catalog, argv[1], argv[2], argv[3], grant, &changed);
    if (error == FR_EINVAL) {
        fprintf(stderr, "filerepo: acl %s: %s\n", argv[0], catalog_last_error(catalog));
        return EX_DATAERR;
    }
    if (error)
        return fail(catalog, "acl", error, argv[1]);
    if (json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "repository", argv[1]);
        cJSON_AddStringToObject(o, "jid", argv[2]);
        cJSON_AddStringToObject(o, "role", argv[3]);
        cJSON_AddBoolToObject(o, "granted", grant);
        cJSON_AddBoolToObject(o, "changed", changed);
        json_print(o);
        putchar('\n');
    } else if (!changed)
        printf("%s %s %s of %s already\n", argv[2], grant ? "is" : "is not", argv[3], argv[1]);
    else
        printf("%s %s %s of %s; the daemon updates the affiliations of every node\n", argv[2],
               grant ? "is now" : "is no longer", argv[3], argv[1]);
    return 0;
}

int cmd_revision(struct catalog *catalog, int argc, char **argv, bool json)
{
    const char *repo, *path;
    char buf[4096], *end;
    bool changed = false;
    long number;
    int error;

    if (argc != 3 || strcmp(argv[0], "withdraw") != 0 ||
        split_target(argv[1], buf, sizeof(buf), &repo, &path) != 0 || !*path)
        return EX_USAGE;
    number = strtol(argv[2], &end, 10);
    if (*end || end == argv[2] || number < 1 || number > 2147483647L)
        return EX_USAGE;
    error = catalog_revision_withdraw(catalog, repo, path, (int)number, &changed);
    if (error == FR_ENOTFOUND) {
        fprintf(stderr, "filerepo: revision withdraw: no revision %ld of %s\n", number, argv[1]);
        return EX_NOINPUT;
    }
    if (error)
        return fail(catalog, "revision withdraw", error, argv[1]);
    if (json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "path", argv[1]);
        cJSON_AddNumberToObject(o, "revision", (double)number);
        cJSON_AddBoolToObject(o, "changed", changed);
        json_print(o);
        putchar('\n');
    } else
        printf(changed ? "revision %ld of %s withdrawn; its item will be retracted\n"
                       : "revision %ld of %s was withdrawn already\n", number, argv[1]);
    return 0;
}

int cmd_republish(struct catalog *catalog, int argc, char **argv, bool json)
{
    int64_t rows = 0;
    int error;

    if (argc != 1)
        return EX_USAGE;
    error = catalog_republish(catalog, argv[0], &rows);
    if (error)
        return fail(catalog, "republish", error, argv[0]);
    if (json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "repository", argv[0]);
        cJSON_AddNumberToObject(o, "queued", (double)rows);
        json_print(o);
        putchar('\n');
    } else
        printf("%s: %" PRId64 " nodes and items queued for publishing\n", argv[0], rows);
    return 0;
}
