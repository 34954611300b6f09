/*
 * browse.c - `filerepo browse`, an XMPP client of the query service.
 *
 * One libstrophe client connection, driven synchronously: connect and log
 * in, then one XEP-0329 query per page with <set><max/><after/></set>,
 * printing each page as it arrives (so a directory of a million entries
 * never sits in memory), until a page comes back short or the count is
 * reached.  The password comes from a file (--password-file or
 * $FILEREPO_XMPP_PASSWORD_FILE) or $FILEREPO_XMPP_PASSWORD, never from the
 * command line, where other users could read it.
 */
#include "browse.h"
#include "fr_error.h"
#include "xmpp/fis.h"
#include "xmpp/rsm.h"
#include "xmpp/stanza.h"
#include "xmpp_login.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#define BROWSE_TIMEOUT_MS 30000

struct browse {
    xmpp_ctx_t *ctx;           /* libstrophe context */
    xmpp_conn_t *conn;         /* the client connection */
    bool connected;            /* logged in */
    bool failed;               /* the connection failed or closed */
    int stream_error;          /* libstrophe's error code when it failed */
    xmpp_stanza_t *reply;      /* the answer awaited, once it came (owned) */
    bool json;                 /* --json */
    int64_t printed;           /* entries printed */
};

static uint64_t browse_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void browse_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                           xmpp_stream_error_t *stream_error, void *userdata)
{
    struct browse *b = userdata;

    (void)conn;
    (void)stream_error;
    if (event == XMPP_CONN_CONNECT) {
        b->connected = true;
    } else {
        b->connected = false;
        b->failed = true;
        b->stream_error = error;
    }
}

static int browse_on_reply(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct browse *b = userdata;

    (void)conn;
    b->reply = xmpp_stanza_clone(stanza);
    return 0;
}

/* Runs the loop until `done` or the deadline; returns whether done. */
static bool browse_wait(struct browse *b, bool (*done)(struct browse *b))
{
    uint64_t deadline = browse_now_ms() + BROWSE_TIMEOUT_MS;

    while (!done(b) && !b->failed && browse_now_ms() < deadline)
        xmpp_run_once(b->ctx, 100);
    return done(b);
}

static bool browse_is_connected(struct browse *b)
{
    return b->connected;
}

static bool browse_has_reply(struct browse *b)
{
    return b->reply != NULL;
}

static void browse_print_directory(struct browse *b, const char *name)
{
    if (b->json) {
        cJSON *o = cJSON_CreateObject();
        char *text;

        cJSON_AddStringToObject(o, "type", "directory");
        cJSON_AddStringToObject(o, "name", name);
        text = cJSON_PrintUnformatted(o);
        printf("%s%s", b->printed ? "," : "", text ? text : "null");
        free(text);
        cJSON_Delete(o);
    } else {
        printf("%s/\n", name);
    }
    b->printed++;
}

static void browse_print_file(struct browse *b, const struct fis_file *file)
{
    if (b->json) {
        cJSON *o = cJSON_CreateObject();
        char *text;

        cJSON_AddStringToObject(o, "type", "file");
        cJSON_AddStringToObject(o, "name", file->name);
        if (file->size >= 0)
            cJSON_AddNumberToObject(o, "size", (double)file->size);
        if (file->date)
            cJSON_AddStringToObject(o, "date", file->date);
        if (file->media_type)
            cJSON_AddStringToObject(o, "media_type", file->media_type);
        if (file->desc)
            cJSON_AddStringToObject(o, "desc", file->desc);
        if (file->hashes_count) {
            cJSON *h = cJSON_AddObjectToObject(o, "hashes");

            for (size_t i = 0; h && i < file->hashes_count; i++)
                cJSON_AddStringToObject(h, file->hashes[i].algo, file->hashes[i].value);
        }
        text = cJSON_PrintUnformatted(o);
        printf("%s%s", b->printed ? "," : "", text ? text : "null");
        free(text);
        cJSON_Delete(o);
    } else if (file->size >= 0) {
        printf("%s\t%" PRId64 "\t%s\t%s\n", file->name, file->size, file->date ? file->date : "-",
               file->media_type ? file->media_type : "-");
        for (size_t i = 0; i < file->hashes_count; i++)
            printf("\t%s\t%s\n", file->hashes[i].algo, file->hashes[i].value);
    } else {
        printf("%s\n", file->name);
    }
    b->printed++;
}

/* Prints the entries of a listing reply; returns how many it had. */
static int64_t browse_print_page(struct browse *b, xmpp_stanza_t *query)
{
    int64_t n = 0;

    for (xmpp_stanza_t *c = xmpp_stanza_get_children(query); c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_name(c) : "";
        struct fis_file file;

        if (strcmp(name, "directory") == 0 && xmpp_stanza_get_attribute(c, "name")) {
            browse_print_directory(b, xmpp_stanza_get_attribute(c, "name"));
            n++;
        } else if (strcmp(name, "file") == 0 && fis_file_parse(&file, c) == 0) {
            browse_print_file(b, &file);
            n++;
        }
    }
    return n;
}

/* The exit status for an error reply, after saying what it was. */
static int browse_error_status(xmpp_stanza_t *reply, const char *target)
{
    const char *condition = stanza_error_condition(reply);
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(reply, "error");
    xmpp_stanza_t *text = error ? xmpp_stanza_get_child_by_name(error, "text") : NULL;
    char *why = text ? xmpp_stanza_get_text(text) : NULL;

    fprintf(stderr, "filerepo: browse: %s: %s%s%s\n", target,
            condition ? condition : "error", why ? ": " : "", why ? why : "");
    if (why)
        xmpp_free(xmpp_stanza_get_context(reply), why);
    if (condition && strcmp(condition, "item-not-found") == 0)
        return EX_NOINPUT;
    if (condition && strcmp(condition, "bad-request") == 0)
        return EX_DATAERR;
    if (condition && strcmp(condition, "resource-constraint") == 0)
        return EX_TEMPFAIL;
    return EX_UNAVAILABLE;
}

/* Sends one page request; waits for its answer into b->reply. */
static int browse_request(struct browse *b, const char *jid, const char *path, int page_size,
                          const char *after, unsigned serial)
{
    char id[32];
    xmpp_stanza_t *iq, *query;

    snprintf(id, sizeof(id), "browse-%u", serial);
    iq = xmpp_iq_new(b->ctx, "get", id);
    if (!iq)
        return FR_ENOMEM;
    xmpp_stanza_set_to(iq, jid);
    query = stanza_add_element(iq, "query", XMPP_NS_FIS);
    if (!query || (path && xmpp_stanza_set_attribute(query, "node", path) != XMPP_EOK) ||
        rsm_request_add(query, page_size, after ? RSM_FROM_AFTER : RSM_FROM_START, after, -1)
            != 0) {
        xmpp_stanza_release(iq);
        return FR_ENOMEM;
    }
    xmpp_id_handler_add(b->conn, browse_on_reply, id, b);
    xmpp_send(b->conn, iq);
    xmpp_stanza_release(iq);
    if (!browse_wait(b, browse_has_reply)) {
        xmpp_id_handler_delete(b->conn, browse_on_reply, id);
        return FR_ECONN;
    }
    return 0;
}

/* Pages through the listing; returns the exit status. */
static int browse_listing(struct browse *b, const char *jid, const char *path, int page_size)
{
    char after[RSM_UID_MAX + 1] = "";
    int64_t count = -1;
    unsigned serial = 0;
    int status = 0;

    if (b->json) {
        cJSON *head = cJSON_CreateObject();
        char *text;

        cJSON_AddStringToObject(head, "jid", jid);
        cJSON_AddStringToObject(head, "path", path ? path : "");
        text = cJSON_PrintUnformatted(head);
        /* The object stays open: entries stream into it. */
        if (text)
            printf("%.*s,\"entries\":[", (int)strlen(text) - 1, text);
        free(text);
        cJSON_Delete(head);
    }
    for (;;) {
        xmpp_stanza_t *query;
        struct rsm_reply rsm;
        int64_t n;
        int error = browse_request(b, jid, path, page_size, *after ? after : NULL, serial++);

        if (error != 0) {
            fprintf(stderr, "filerepo: browse: %s: %s\n", jid,
                    error == FR_ENOMEM ? "out of memory" : "no answer (connection lost or timed out)");
            status = EX_UNAVAILABLE;
            break;
        }
        if (strcmp(xmpp_stanza_get_type(b->reply) ? xmpp_stanza_get_type(b->reply) : "",
                   "result") != 0) {
            status = browse_error_status(b->reply, path ? path : jid);
            break;
        }
        query = xmpp_stanza_get_child_by_ns(b->reply, XMPP_NS_FIS);
        if (!query) {
            fprintf(stderr, "filerepo: browse: %s answered without a listing\n", jid);
            status = EX_PROTOCOL;
            break;
        }
        n = browse_print_page(b, query);
        /* A file's details, or a service that does not page: done. */
        if (rsm_reply_parse(&rsm, query) != 0 || !rsm.last || n == 0)
            break;
        if (rsm.count >= 0)
            count = rsm.count;
        /* The count says when the end is reached; without one, a short
         * page does. */
        if (count >= 0 ? b->printed >= count : n < page_size)
            break;
        if (strlen(rsm.last) > RSM_UID_MAX) {
            fprintf(stderr, "filerepo: browse: %s: an RSM id too long to follow\n", jid);
            status = EX_PROTOCOL;
            break;
        }
        strcpy(after, rsm.last);
        xmpp_stanza_release(b->reply);
        b->reply = NULL;
    }
    if (b->json) {
        printf("]");
        if (count >= 0)
            printf(",\"count\":%" PRId64, count);
        printf("}\n");
    }
    xmpp_stanza_release(b->reply);
    b->reply = NULL;
    return status;
}

int cmd_browse(const struct browse_options *options, int argc, char **argv, bool json)
{
    struct browse b = { .json = json };
    struct login l;
    int status;

    if (argc < 1 || argc > 2 || options->page_size < 1)
        return EX_USAGE;
    if (login_prepare(&l, "browse", options->account, options->password_file,
                      options->server) != LOGIN_READY) {
        login_clear(&l);
        return EX_CONFIG;
    }
    xmpp_initialize();
    status = login_connect(&l, &b.ctx, &b.conn, NULL, browse_on_conn, &b);
    if (status == 0 && !browse_wait(&b, browse_is_connected)) {
        login_say_refused(&l, b.stream_error);
        status = EX_UNAVAILABLE;
    }
    login_clear(&l);
    if (status != 0)
        goto done;
    status = browse_listing(&b, argv[0], argc == 2 ? argv[1] : NULL, options->page_size);
    if (!b.failed)
        login_close(b.ctx, b.conn, false);

done:
    if (b.conn)
        xmpp_conn_release(b.conn);
    if (b.ctx)
        xmpp_ctx_free(b.ctx);
    xmpp_shutdown();
    return status;
}
