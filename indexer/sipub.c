/*
 * sipub.c - sipub (XEP-0137) requests and the loop of their SI file
 * transfers: <start/> answered with <starting/>, answers to the daemon's
 * IQs routed to their session by id ("sp<serial>-<step>"), the requester's
 * IBB stanzas on a sipub bytestream, the clock.  One session's state
 * machine is in sipub_session.c.
 *
 * Memory is bounded as for Jingle: at most transfer.ibb_window blocks in
 * flight per session, none read while libstrophe's send queue holds
 * TRANSFER_QUEUE_MAX stanzas; sessions are bounded by transfer.max_sessions
 * counted together with the Jingle ones (transfers_in_use()).
 */
#include "sipub_internal.h"
#include "catalog.h"
#include "clock.h"
#include "fr_error.h"
#include "keeper.h"
#include "log.h"
#include "store.h"
#include "transfer.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int sipub_new(struct sipub **out, struct transfers *transfers)
{
    struct sipub *s = calloc(1, sizeof(*s));

    *out = s;
    if (!s)
        return FR_ENOMEM;
    s->transfers = transfers;
    return 0;
}

void sipub_free(struct sipub *s)
{
    if (!s)
        return;
    while (s->sessions) {
        struct sipub_session *x = s->sessions;

        s->sessions = x->next;
        sipub_dispatch(s, x, SIPUB_EV_LOST, NULL, NULL, clock_now_ms());
        free(x);
    }
    free(s);
}

size_t sipub_count(const struct sipub *s)
{
    return s ? s->count : 0;
}

size_t sipub_count_of(const struct sipub *s, const char *bare)
{
    size_t n = 0, len = strlen(bare);

    for (const struct sipub_session *x = s ? s->sessions : NULL; x; x = x->next)
        if (x->state != SIPUB_ENDED && strncmp(x->peer, bare, len) == 0 &&
            (x->peer[len] == '/' || x->peer[len] == '\0'))
            n++;
    return n;
}

static struct sipub_session *sipub_by_serial(struct sipub *s, unsigned serial)
{
    for (struct sipub_session *x = s->sessions; x; x = x->next)
        if (x->serial == serial && x->state != SIPUB_ENDED)
            return x;
    return NULL;
}

static struct sipub_session *sipub_by_sid(const struct sipub *s, const char *peer,
                                          const char *sid)
{
    for (struct sipub_session *x = s->sessions; x; x = x->next)
        if (x->state != SIPUB_ENDED && strcmp(x->peer, peer) == 0 && strcmp(x->sid, sid) == 0)
            return x;
    return NULL;
}

/* A result or error to one of our IQs. */
static int sipub_on_answer(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct sipub *s = userdata;
    const char *type = xmpp_stanza_get_type(stanza), *id = xmpp_stanza_get_id(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    struct sipub_session *x;
    unsigned serial;
    char step[16];
    bool error;

    (void)conn;
    if (!type || !id || !from || strncmp(id, "sp", 2) != 0 ||
        (strcmp(type, "result") != 0 && strcmp(type, "error") != 0) ||
        sscanf(id, "sp%u-%15s", &serial, step) != 2 || !(x = sipub_by_serial(s, serial)))
        return 1;
    /* The activation is answered by the proxy; everything else by the requester. */
    if (strcmp(from, strcmp(step, "v") == 0 ? x->proxy.jid : x->peer) != 0)
        return 1;
    error = strcmp(type, "error") == 0;
    if (error)
        log_info("sipub", "sid=%s: %s answered %s to %s", x->sid, x->peer,
                 stanza_error_condition(stanza) ? stanza_error_condition(stanza) : "an error",
                 step);
    sipub_dispatch(s, x, error ? SIPUB_EV_ERROR : SIPUB_EV_RESULT, step, stanza,
                   clock_now_ms());
    return 1;
}

void sipub_on_stream(struct sipub *s, xmpp_conn_t *conn)
{
    if (conn) {
        s->conn = conn;
        /* A reused connection object keeps its user handlers: never twice. */
        xmpp_handler_delete(conn, sipub_on_answer);
        xmpp_handler_add(conn, sipub_on_answer, NULL, "iq", NULL, s);
        return;
    }
    s->conn = NULL;
    for (struct sipub_session *x = s->sessions; x; x = x->next)
        sipub_dispatch(s, x, SIPUB_EV_LOST, NULL, NULL, clock_now_ms());
}

/* ------------------------------------------------------------ requests */

/* A refused request is a row too; one that cannot be written is only logged. */
static void sipub_record_refusal(struct transfers *t, const char *from, const char *id)
{
    if (catalog_transfer_refused(t->catalog, "sipub", from, id) != 0)
        log_warn("sipub", "cannot record a refused request: %s", catalog_last_error(t->catalog));
}

/* The bare JID of `from` into out (TRANSFER_JID_MAX bytes; from is shorter). */
static const char *sipub_bare(char *out, const char *from)
{
    size_t len = strcspn(from, "/");

    memcpy(out, from, len);
    out[len] = '\0';
    return out;
}

/* A fresh SI id: not guessable, so another requester cannot aim at it. */
static int sipub_new_sid(char out[SIPUB_SID_MAX], unsigned serial)
{
    unsigned char random[8];

    if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
        return FR_ERROR;
    snprintf(out, SIPUB_SID_MAX, "sipub-%u-%02x%02x%02x%02x%02x%02x%02x%02x", serial,
             random[0], random[1], random[2], random[3], random[4], random[5], random[6],
             random[7]);
    return 0;
}

/* The revision a start names, for `from`; an error reply, or NULL with *x filled.
 * XEP-0137 suggests not-acceptable for an unknown id and forbidden for a
 * requester without permission; both are item-not-found here, as for
 * Jingle and the listings, so a stranger cannot tell what exists. */
static xmpp_stanza_t *sipub_resolve(struct transfers *t, xmpp_stanza_t *iq, const char *from,
                                    const char *id, struct sipub_session *x)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    int64_t revision = sipub_id_revision(id);
    int error = revision > 0 ? catalog_sipub_find(t->catalog, from, revision, &x->file)
                             : FR_ENOTFOUND;

    if (error == FR_ENOTFOUND) {
        log_info("sipub", "%s asked for %s: not found", from, id);
        sipub_record_refusal(t, from, id);
        return stanza_iq_error(ctx, iq, "cancel", "item-not-found", "no such file");
    }
    if (error != 0) {
        log_warn("sipub", "cannot look up %s: %s", id, catalog_last_error(t->catalog));
        return stanza_iq_error(ctx, iq, "wait", "internal-server-error",
                               "the catalog could not answer; try again later");
    }
    if (catalog_transfer_begin(t->catalog, "sipub", from, x->file.revision_id, NULL,
                               x->sid, 0, -1, &x->row_id) != 0) {
        log_warn("sipub", "cannot record a transfer: %s", catalog_last_error(t->catalog));
        return stanza_iq_error(ctx, iq, "wait", "internal-server-error",
                               "the catalog could not answer; try again later");
    }
    x->fd = t->store ? store_object_open(t->store, x->file.sha256) : FR_ENOTFOUND;
    if (x->fd < 0) {
        log_warn("sipub", "%s: revision %" PRId64 " is not in the content store", x->file.path,
                 x->file.revision_id);
        x->fd = -1;
        if (catalog_transfer_end(t->catalog, x->row_id, 0, "failed-application") != 0)
            log_warn("sipub", "cannot record transfer %" PRId64 ": %s", x->row_id,
                     catalog_last_error(t->catalog));
        return stanza_iq_error(ctx, iq, "cancel", "item-not-found",
                               "the bytes of this revision are gone");
    }
    return NULL;
}

xmpp_stanza_t *transfers_on_sipub(struct transfers *t, xmpp_stanza_t *iq, xmpp_stanza_t *start)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    const char *from = xmpp_stanza_get_from(iq);
    struct sipub *s = t->sipub;
    struct sipub_session *x;
    xmpp_stanza_t *reply, *starting;
    struct si_refusal why;
    char id[SI_TEXT_MAX], bare[TRANSFER_JID_MAX];

    if (!from || strlen(from) >= TRANSFER_JID_MAX)
        return stanza_iq_error(ctx, iq, "modify", "bad-request", "who asks?");
    if (!sipub_start_parse(start, id, sizeof(id), &why))
        return stanza_iq_error(ctx, iq, why.type, why.condition, why.text);
    if (!keeper_is_connected(t->keeper))
        return stanza_iq_error(ctx, iq, "wait", "internal-server-error",
                               "the catalog is not reachable; try again later");
    if (transfers_in_use(t) >= (size_t)t->config->transfer_max_sessions) {
        sipub_record_refusal(t, from, id);
        return stanza_iq_error(ctx, iq, "wait", "resource-constraint",
                               "too many transfers under way; try again later");
    }
    if (transfers_count_of(t, sipub_bare(bare, from)) >=
        (size_t)t->config->transfer_per_requester_max) {
        log_info("sipub", "%s asked for more than %d transfers at once", bare,
                 t->config->transfer_per_requester_max);
        sipub_record_refusal(t, from, id);
        return stanza_iq_error(ctx, iq, "wait", "resource-constraint",
                               "too many of your transfers under way; try again later");
    }
    if (!(x = calloc(1, sizeof(*x))))
        return stanza_iq_error(ctx, iq, "wait", "resource-constraint", NULL);
    x->fd = x->in.fd = x->out.fd = x->data_fd = -1;
    x->serial = ++s->serial;
    snprintf(x->peer, sizeof(x->peer), "%s", from);
    if (sipub_new_sid(x->sid, x->serial) != 0) {
        free(x);
        return stanza_iq_error(ctx, iq, "wait", "internal-server-error", NULL);
    }
    if ((reply = sipub_resolve(t, iq, from, id, x))) {
        free(x);
        return reply;
    }
    reply = stanza_iq_result(ctx, iq);
    starting = sipub_starting_new(ctx, x->sid);
    if (!reply || !starting || xmpp_stanza_add_child(reply, starting) != XMPP_EOK) {
        xmpp_stanza_release(reply);
        xmpp_stanza_release(starting);
        close(x->fd);
        if (catalog_transfer_end(t->catalog, x->row_id, 0, "failed-application") != 0)
            log_warn("sipub", "cannot record transfer %" PRId64, x->row_id);
        free(x);
        return stanza_iq_error(ctx, iq, "wait", "resource-constraint", NULL);
    }
    xmpp_stanza_release(starting);
    x->offered = SI_METHOD_IBB | sipub_s5b_available(s);
    x->block_size = (unsigned)t->config->transfer_ibb_block_size;
    x->end = x->file.size;
    x->state = SIPUB_NEW;
    x->next = s->sessions;
    s->sessions = x;
    s->count++;
    sipub_touch(s, x, clock_now_ms());
    log_info("sipub", "%s asked for %s (%s, revision %" PRId64 ") sid=%s", from, id,
             x->file.path, x->file.revision_id, x->sid);
    /* The offer goes once this result is out: sipub_run(). */
    return reply;
}

int sipub_has_bytestream(const struct sipub *s, const char *peer, const char *sid)
{
    return s && peer && sid && sipub_by_sid(s, peer, sid) != NULL;
}

xmpp_stanza_t *sipub_on_ibb(struct sipub *s, xmpp_stanza_t *iq, xmpp_stanza_t *payload)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    const char *from = xmpp_stanza_get_from(iq);
    const char *sid = xmpp_stanza_get_attribute(payload, "sid");
    const char *name = xmpp_stanza_get_name(payload);
    struct sipub_session *x = from && sid ? sipub_by_sid(s, from, sid) : NULL;
    uint64_t now = clock_now_ms();

    if (!x)
        return stanza_iq_error(ctx, iq, "cancel", "item-not-found", "no such bytestream");
    if (strcmp(name, "close") == 0) {
        xmpp_stanza_t *reply = stanza_iq_result(ctx, iq);

        /* The result goes before anything the close may cause. */
        if (reply && s->conn)
            xmpp_send(s->conn, reply);
        xmpp_stanza_release(reply);
        sipub_dispatch(s, x, SIPUB_EV_CLOSE, NULL, NULL, now);
        return NULL;
    }
    if (strcmp(name, "open") == 0)
        return stanza_iq_error(ctx, iq, "cancel", "not-acceptable",
                               "the daemon opens this bytestream");
    return stanza_iq_error(ctx, iq, "cancel", "not-acceptable", "this bytestream only sends");
}

/* ------------------------------------------------------------ the loop */

void sipub_stop(struct sipub *s, uint64_t now)
{
    for (struct sipub_session *x = s->sessions; x; x = x->next)
        sipub_dispatch(s, x, SIPUB_EV_STOP, NULL, NULL, now);
}

int sipub_timeout_ms(const struct sipub *s, uint64_t now_ms)
{
    const struct config *config = s->transfers->config;
    int timeout = -1;

    for (const struct sipub_session *x = s->sessions; x; x = x->next) {
        int until;

        if (x->state == SIPUB_ENDED || x->state == SIPUB_NEW)
            return 0;
        if (x->state == SIPUB_SENDING && x->next_offset < x->end &&
            x->in_flight < (unsigned)config->transfer_ibb_window)
            until = s->conn && xmpp_conn_send_queue_len(s->conn) < TRANSFER_QUEUE_MAX &&
                            (config->transfer_bandwidth_kib == 0 || s->transfers->tokens > 0)
                        ? 0 : TRANSFER_PUMP_MS;
        else
            until = x->deadline_ms > now_ms ? (int)(x->deadline_ms - now_ms) : 0;
        if (timeout < 0 || until < timeout)
            timeout = until;
        until = sipub_s5b_timeout(s, x, now_ms);
        if (until >= 0 && until < timeout)
            timeout = until;
    }
    return timeout;
}

void sipub_run(struct sipub *s, const struct pollfd *fds, size_t count, uint64_t now)
{
    struct sipub_session **link = &s->sessions;

    sipub_take_revents(s, fds, count);

    for (struct sipub_session *x = s->sessions; x; x = x->next) {
        if (!s->conn)
            sipub_dispatch(s, x, SIPUB_EV_LOST, NULL, NULL, now);
        else if (now >= x->deadline_ms)
            sipub_dispatch(s, x, SIPUB_EV_IDLE, NULL, NULL, now);
        else
            sipub_dispatch(s, x, SIPUB_EV_TICK, NULL, NULL, now);
    }
    while (*link) {
        struct sipub_session *x = *link;

        if (x->state == SIPUB_ENDED) {
            *link = x->next;
            free(x);
        } else {
            link = &x->next;
        }
    }
}
