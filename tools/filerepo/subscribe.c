/*
 * subscribe.c - `filerepo subscribe SERVICE NODE`: a user account follows a
 * node and prints one line per item notification.
 *
 * The login is browse's and get's (xmpp_login.h): the account from
 * --account or $FILEREPO_XMPP_JID, its password from --password-file,
 * $FILEREPO_XMPP_PASSWORD_FILE or $FILEREPO_XMPP_PASSWORD (never from the
 * command line, where other users could read it), --server HOST[:PORT] or
 * $FILEREPO_XMPP_SERVER to connect to a given address instead of the JID's
 * domain.  Runs until interrupted, or until --count notifications were
 * printed.
 */
#include "commands.h"
#include "xmpp/pubsub.h"
#include "xmpp/stanza.h"
#include "xmpp_login.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <sysexits.h>
#include <unistd.h>

#define SUBSCRIBE_IQ_ID "filerepo-subscribe"

static struct {
    const char *jid;            /* --account */
    const char *password_file;  /* --password-file */
    const char *server;         /* --server HOST[:PORT] */
    long count;                 /* --count: stop after so many (0: never) */
} subscribe_options;

static volatile sig_atomic_t subscribe_interrupted;

struct subscribe_state {
    const char *service;        /* pubsub JID */
    const char *node;           /* node followed */
    bool json;                  /* --json */
    bool subscribed;            /* the service said yes */
    bool done;                  /* stop the loop */
    int status;                 /* exit status */
    long printed;               /* notifications printed */
    xmpp_ctx_t *ctx;            /* libstrophe context */
};

void subscribe_set_options(const char *jid, const char *password_file, const char *server,
                           long count)
{
    subscribe_options.jid = jid;
    subscribe_options.password_file = password_file;
    subscribe_options.server = server;
    subscribe_options.count = count;
}

static void subscribe_on_signal(int sig)
{
    (void)sig;
    subscribe_interrupted = 1;
}

static void subscribe_print(const struct pubsub_notice *n, void *data)
{
    struct subscribe_state *s = data;

    if (s->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *mirrors = cJSON_AddArrayToObject(o, "mirrors");
        char *text;

        cJSON_AddStringToObject(o, "node", n->node);
        cJSON_AddStringToObject(o, "item", n->item);
        if (n->path)
            cJSON_AddStringToObject(o, "path", n->path);
        if (n->size >= 0)
            cJSON_AddNumberToObject(o, "size", (double)n->size);
        else
            cJSON_AddNullToObject(o, "size");
        if (n->sha256_hex)
            cJSON_AddStringToObject(o, "sha256", n->sha256_hex);
        else
            cJSON_AddNullToObject(o, "sha256");
        for (size_t i = 0; i < n->mirrors_count; i++)
            cJSON_AddItemToArray(mirrors, cJSON_CreateString(n->mirrors[i]));
        text = cJSON_PrintUnformatted(o);
        if (text)
            puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        char size[24];

        if (n->size >= 0)
            snprintf(size, sizeof(size), "%" PRId64, n->size);
        else
            snprintf(size, sizeof(size), "-");
        printf("%s %s %s %s", n->node, n->item, size, n->sha256_hex ? n->sha256_hex : "-");
        for (size_t i = 0; i < n->mirrors_count; i++)
            printf("%s%s", i ? "," : " ", n->mirrors[i]);
        if (n->mirrors_count == 0)
            printf(" -");
        putchar('\n');
    }
    fflush(stdout);
    s->printed++;
}

static int subscribe_on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct subscribe_state *s = userdata;

    pubsub_event_items(stanza, subscribe_print, s);
    if (subscribe_options.count > 0 && s->printed >= subscribe_options.count && !s->done) {
        s->done = true;
        xmpp_disconnect(conn);
    }
    return 1;
}

static int subscribe_on_reply(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct subscribe_state *s = userdata;
    const char *type = xmpp_stanza_get_type(stanza);

    if (type && strcmp(type, "result") == 0) {
        s->subscribed = true;
        fprintf(stderr, "filerepo: subscribed to %s on %s\n", s->node, s->service);
        return 0;
    }
    const char *condition = stanza_error_condition(stanza);

    fprintf(stderr, "filerepo: subscribe: %s refused: %s\n", s->service,
            condition ? condition : "error");
    s->status = condition && (strcmp(condition, "forbidden") == 0 ||
                              strcmp(condition, "not-authorized") == 0 ||
                              strcmp(condition, "not-allowed") == 0)
                    ? EX_NOPERM
                : condition && strcmp(condition, "item-not-found") == 0 ? EX_NOINPUT
                                                                        : EX_UNAVAILABLE;
    s->done = true;
    xmpp_disconnect(conn);
    return 0;
}

static void subscribe_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                              xmpp_stream_error_t *stream_error, void *userdata)
{
    struct subscribe_state *s = userdata;
    xmpp_stanza_t *presence, *iq;
    char *bare;

    (void)stream_error;
    if (event != XMPP_CONN_CONNECT) {
        if (!s->done) {
            fprintf(stderr, "filerepo: subscribe: %s%s%s\n",
                    s->subscribed ? "connection lost" : "cannot connect or log in",
                    error ? ": " : "", error ? strerror(error) : "");
            s->status = EX_UNAVAILABLE;
        }
        s->done = true;
        return;
    }
    xmpp_handler_add(conn, subscribe_on_message, NULL, "message", NULL, s);
    xmpp_id_handler_add(conn, subscribe_on_reply, SUBSCRIBE_IQ_ID, s);
    /* Presence first: the service delivers to available resources. */
    presence = xmpp_presence_new(s->ctx);
    if (presence) {
        xmpp_send(conn, presence);
        xmpp_stanza_release(presence);
    }
    bare = xmpp_jid_bare(s->ctx, xmpp_conn_get_bound_jid(conn));
    iq = pubsub_subscribe_iq(s->ctx, s->service, SUBSCRIBE_IQ_ID, s->node,
                             bare ? bare : xmpp_conn_get_jid(conn));
    if (iq) {
        xmpp_send(conn, iq);
        xmpp_stanza_release(iq);
    }
    xmpp_free(s->ctx, bare);
}

int cmd_subscribe(struct catalog *catalog, int argc, char **argv, bool json)
{
    struct subscribe_state s = { .json = json, .status = 0 };
    struct login l;
    xmpp_conn_t *conn = NULL;
    struct sigaction sa = { .sa_handler = subscribe_on_signal };

    (void)catalog;
    if (argc != 2)
        return EX_USAGE;
    s.service = argv[0];
    s.node = argv[1];
    switch (login_prepare(&l, "subscribe", subscribe_options.jid,
                          subscribe_options.password_file, subscribe_options.server)) {
    case LOGIN_READY:
        break;
    case LOGIN_NO_PASSWORD:
        login_clear(&l);
        return EX_NOINPUT;
    default:
        login_clear(&l);
        return EX_USAGE;
    }

    xmpp_initialize();
    s.status = login_connect(&l, &s.ctx, &conn, NULL, subscribe_on_conn, &s);
    login_clear(&l);
    if (s.status != 0)
        goto done;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!s.done) {
        xmpp_run_once(s.ctx, 200);
        if (subscribe_interrupted && !s.done) {
            s.done = true;
            xmpp_disconnect(conn);
        }
    }
    /* The closing tag was queued when s.done was set. */
    login_close(s.ctx, conn, true);

done:
    if (conn)
        xmpp_conn_release(conn);
    if (s.ctx)
        xmpp_ctx_free(s.ctx);
    xmpp_shutdown();
    return s.status;
}
