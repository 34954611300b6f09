/*
 * transfers.c - Jingle file-transfer sessions over in-band bytestreams.
 *
 * Each session is an explicit state machine (enum xfer_state) driven by
 * events (enum xfer_event) through one xfer_dispatch(): switch on the event,
 * then on the state.  Every stanza the daemon sends for a session carries an
 * id "ft<serial>-<step>", so an answer finds its session.  Transitions:
 *
 *   NEW        session-initiate answered      --run-->  ACCEPTING (session-accept sent)
 *              (or FAILING: bytes not there)  --run-->  ENDING (terminate failed-application)
 *   ACCEPTING  result of session-accept       ------->  OPENING
 *   OPENING    requester's IBB <open/>        ------->  SENDING
 *   SENDING    last block acknowledged        ------->  CLOSING (IBB <close/> sent)
 *   CLOSING    result of <close/>             ------->  ENDING (checksum, terminate success)
 *   ENDING     result of session-terminate    ------->  ENDED (freed)
 *
 * From any state before ENDING: an error answer to our IQs → terminate
 * failed-transport (failed-application for the accept); the requester's
 * <close/> → terminate cancel; no answer or request for idle_timeout →
 * terminate timeout; the requester's session-terminate → ENDED with its
 * reason, no terminate of ours; the stream lost → ENDED, failed-transport.
 * The daemon stopping: terminate cancel.  The outcome is recorded when the
 * session leaves for ENDING or ENDED.
 *
 * Memory is bounded: at most ibb_window blocks are in flight per session,
 * and none is read while libstrophe's send queue holds TRANSFER_QUEUE_MAX
 * stanzas.
 */
#include "transfers_internal.h"
#include "catalog.h"
#include "clock.h"
#include "fr_error.h"
#include "keeper.h"
#include "log.h"
#include "store.h"
#include "transfer.h"
#include "xmpp/jingle.h"
#include "xmpp/stanza.h"

#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int transfers_new(struct transfers **out, const struct config *config, struct store *store)
{
    struct transfers *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (!t)
        return FR_ENOMEM;
    t->config = config;
    t->store = store;
    transfers_s5b_listen(t);
    if (catalog_new(&t->catalog, config->db_conninfo, config->db_password) != 0 ||
        keeper_new(&t->keeper, t->catalog, config->db_reconnect_max_seconds) != 0 ||
        sipub_new(&t->sipub, t) != 0) {
        transfers_free(t);
        return FR_ENOMEM;
    }
    *out = t;
    return 0;
}

/* ------------------------------------------------------------ recording */

/* ------------------------------------------------------------ answers */

static struct xfer *xfer_by_serial(struct transfers *t, unsigned serial)
{
    for (struct xfer *x = t->sessions; x; x = x->next)
        if (x->serial == serial && x->state != XFER_ENDED)
            return x;
    return NULL;
}

static struct xfer *xfer_by_sid(struct transfers *t, const char *peer, const char *sid, bool ibb)
{
    for (struct xfer *x = t->sessions; x; x = x->next)
        if (x->state != XFER_ENDED && strcmp(x->peer, peer) == 0 &&
            strcmp(ibb ? x->req.ibb_sid : x->req.sid, sid) == 0)
            return x;
    return NULL;
}

/* A result or error to one of our IQs. */
static int transfers_on_answer(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct transfers *t = userdata;
    const char *type = xmpp_stanza_get_type(stanza), *id = xmpp_stanza_get_id(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    uint64_t now = clock_now_ms();
    unsigned serial;
    char step[16];
    struct xfer *x;
    bool error;

    (void)conn;
    if (!type || !id || !from ||
        (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return 1;
    if (transfers_proxy_answer(t, stanza))
        return 1;
    if (strncmp(id, "ft", 2) != 0 || sscanf(id, "ft%u-%15s", &serial, step) != 2 ||
        !(x = xfer_by_serial(t, serial)))
        return 1;
    /* Our IQs go to the requester, and the activation to our proxy. */
    if (strcmp(from, strcmp(step, "v") == 0 ? x->proxy.jid : x->peer) != 0)
        return 1;
    error = strcmp(type, "error") == 0;
    if (error)
        log_info("transfer", "sid=%s: %s answered %s to %s", x->req.sid, x->peer,
                 stanza_error_condition(stanza) ? stanza_error_condition(stanza) : "an error",
                 step);
    xfer_dispatch(t, x, error ? XFER_EV_ERROR : XFER_EV_RESULT, step, now);
    return 1;
}

void transfers_on_stream(void *data, xmpp_conn_t *conn)
{
    struct transfers *t = data;

    if (conn) {
        t->conn = conn;
        /* A reused connection object keeps its user handlers: never twice. */
        xmpp_handler_delete(conn, transfers_on_answer);
        xmpp_handler_add(conn, transfers_on_answer, NULL, "iq", NULL, t);
        sipub_on_stream(t->sipub, conn);
        transfers_proxy_discover(t);
        return;
    }
    t->conn = NULL;
    sipub_on_stream(t->sipub, NULL);
    for (struct xfer *x = t->sessions; x; x = x->next)
        xfer_dispatch(t, x, XFER_EV_LOST, NULL, clock_now_ms());
}

/* ------------------------------------------------------------ requests */

static xmpp_stanza_t *transfers_unknown_session(xmpp_ctx_t *ctx, xmpp_stanza_t *iq)
{
    xmpp_stanza_t *reply = stanza_iq_error(ctx, iq, "cancel", "item-not-found", NULL);
    xmpp_stanza_t *error = reply ? xmpp_stanza_get_child_by_name(reply, "error") : NULL;

    if (error && !stanza_add_element(error, "unknown-session", "urn:xmpp:jingle:errors:1")) {
        xmpp_stanza_release(reply);
        return NULL;
    }
    return reply;
}

/* Their reason element, as one of the transfer table's outcomes. */
static const char *transfers_their_reason(xmpp_stanza_t *jingle)
{
    static const char *const known[] = { "success", "decline", "cancel", "timeout",
                                         "failed-transport", "failed-application" };
    xmpp_stanza_t *reason = xmpp_stanza_get_child_by_name(jingle, "reason");

    for (xmpp_stanza_t *c = reason ? xmpp_stanza_get_children(reason) : NULL; c;
         c = xmpp_stanza_get_next(c))
        for (size_t i = 0; xmpp_stanza_is_tag(c) && i < sizeof(known) / sizeof(*known); i++)
            if (strcmp(xmpp_stanza_get_name(c), known[i]) == 0)
                return known[i];
    return "cancel";
}

/* A refused request is a row too; one that cannot be written is only logged. */
static void transfers_record_refusal(struct transfers *t, const char *from, const char *sid)
{
    if (catalog_transfer_refused(t->catalog, "jingle", from, sid) != 0)
        log_warn("transfer", "cannot record a refused request: %s",
                 catalog_last_error(t->catalog));
}

/* The bare JID of `jid`. */
static void transfers_bare(char out[TRANSFER_JID_MAX], const char *jid)
{
    size_t len = strcspn(jid, "/");

    if (len >= TRANSFER_JID_MAX)
        len = TRANSFER_JID_MAX - 1;
    memcpy(out, jid, len);
    out[len] = '\0';
}

/* Sessions under way for one requester, Jingle and sipub. */
size_t transfers_count_of(const struct transfers *t, const char *bare)
{
    size_t n = sipub_count_of(t->sipub, bare);

    for (const struct xfer *x = t->sessions; x; x = x->next)
        if (x->state != XFER_ENDED && x->state != XFER_ENDING && strcmp(x->bare, bare) == 0)
            n++;
    return n;
}

static xmpp_stanza_t *transfers_initiate(struct transfers *t, xmpp_stanza_t *iq,
                                         xmpp_stanza_t *jingle, const char *from)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    struct jingle_refusal why;
    struct xfer *x;
    int error;

    if (strlen(from) >= TRANSFER_JID_MAX)
        return stanza_iq_error(ctx, iq, "modify", "bad-request", "JID too long");
    if (!(x = calloc(1, sizeof(*x))))
        return stanza_iq_error(ctx, iq, "wait", "resource-constraint", NULL);
    x->fd = -1;
    if (!jingle_request_parse(jingle, &x->req, &why)) {
        free(x);
        return stanza_iq_error(ctx, iq, why.type, why.condition, why.text);
    }
    if (x->req.transport_s5b && t->listen_fd < 0 && !t->proxy.known) {
        free(x);
        return stanza_iq_error(ctx, iq, "cancel", "feature-not-implemented",
                               "SOCKS5 is not offered here; ask with " XMPP_NS_JINGLE_IBB);
    }
    if (xfer_by_sid(t, from, x->req.sid, false) ||
        (x->req.transport_ibb && xfer_by_sid(t, from, x->req.ibb_sid, true))) {
        free(x);
        return stanza_iq_error(ctx, iq, "cancel", "conflict", "that sid is in use");
    }
    if (!keeper_is_connected(t->keeper)) {
        free(x);
        return stanza_iq_error(ctx, iq, "wait", "internal-server-error",
                               "the catalog is not reachable; try again later");
    }
    if (transfers_in_use(t) >= (size_t)t->config->transfer_max_sessions) {
        transfers_record_refusal(t, from, x->req.sid);
        free(x);
        return stanza_iq_error(ctx, iq, "wait", "resource-constraint",
                               "too many transfers under way; try again later");
    }
    snprintf(x->peer, sizeof(x->peer), "%s", from);
    transfers_bare(x->bare, from);
    if (transfers_count_of(t, x->bare) >= (size_t)t->config->transfer_per_requester_max) {
        log_info("transfer", "%s asked for more than %d transfers at once", x->bare,
                 t->config->transfer_per_requester_max);
        transfers_record_refusal(t, from, x->req.sid);
        free(x);
        return stanza_iq_error(ctx, iq, "wait", "resource-constraint",
                               "too many of your transfers under way; try again later");
    }
    error = catalog_transfer_find(t->catalog, from, x->req.name[0] ? x->req.name : NULL,
                                  x->req.has_sha256 ? x->req.sha256 : NULL, &x->file);
    if (error != 0) {
        if (error != FR_ENOTFOUND)
            log_warn("transfer", "cannot look up %s: %s", x->req.name,
                     catalog_last_error(t->catalog));
        else
            log_info("transfer", "%s asked for %s%s: not found", from,
                     x->req.name[0] ? x->req.name : "content",
                     x->req.has_sha256 ? " by hash" : "");
        if (error == FR_ENOTFOUND)
            transfers_record_refusal(t, from, x->req.sid);
        free(x);
        if (error == FR_ENOTFOUND)
            return stanza_iq_error(ctx, iq, "cancel", "item-not-found", "no such file");
        return stanza_iq_error(ctx, iq, "wait", "internal-server-error",
                               "the catalog could not answer; try again later");
    }
    x->start = x->req.offset;
    x->end = x->file.size;
    if (x->start > x->file.size) {
        free(x);
        return stanza_iq_error(ctx, iq, "modify", "bad-request",
                               "the range starts after the end of the file");
    }
    if (x->req.length >= 0 && x->req.length < x->end - x->start)
        x->end = x->start + x->req.length;
    x->next_offset = x->start;
    x->block_size = x->req.block_size;
    if (x->block_size > (unsigned)t->config->transfer_ibb_block_size)
        x->block_size = (unsigned)t->config->transfer_ibb_block_size;
    x->s5b = x->req.transport_s5b;
    x->in.fd = x->out.fd = x->data_fd = -1;
    x->in.state = x->out.state = S5_FAILED;
    x->method = x->s5b ? NULL : "ibb";
    if (catalog_transfer_begin(t->catalog, "jingle", from, x->file.revision_id, x->method,
                               x->req.sid, x->start,
                               x->req.length >= 0 ? x->end - x->start : -1, &x->row_id) != 0) {
        log_warn("transfer", "cannot record a transfer: %s", catalog_last_error(t->catalog));
        free(x);
        return stanza_iq_error(ctx, iq, "wait", "internal-server-error",
                               "the catalog could not answer; try again later");
    }
    x->fd = t->store ? store_object_open(t->store, x->file.sha256) : FR_ENOTFOUND;
    if (x->fd < 0) {
        log_warn("transfer", "%s: revision %" PRId64 " is not in the content store",
                 x->file.path, x->file.revision_id);
        x->fd = -1;
        x->state = XFER_FAILING;
    } else {
        x->state = XFER_NEW;
    }
    x->serial = ++t->serial;
    x->next = t->sessions;
    t->sessions = x;
    t->count++;
    xfer_touch(t, x, clock_now_ms());
    log_info("transfer", "%s asked for %s (revision %" PRId64 ", bytes %" PRId64 "-%" PRId64
             ") sid=%s", from, x->file.path, x->file.revision_id, x->start, x->end, x->req.sid);
    /* The accept goes once this result is out: transfers_run(). */
    return stanza_iq_result(ctx, iq);
}

/* Their s5b transport-info: what they reached of our candidates. */
static xmpp_stanza_t *transfers_transport_info(struct transfers *t, struct xfer *x,
                                               xmpp_stanza_t *iq, xmpp_stanza_t *jingle)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    xmpp_stanza_t *reply;
    enum jingle_s5b_info info;

    if (!x->s5b)
        return stanza_iq_error(ctx, iq, "cancel", "unexpected-request",
                               "this session's transport is not SOCKS5");
    info = jingle_s5b_info_parse(jingle, x->req.s5b.sid, x->their_cid);
    if (info == JINGLE_S5B_UNKNOWN)
        return stanza_iq_error(ctx, iq, "modify", "bad-request",
                               "an s5b transport-info of this session's transport is expected");
    if (info == JINGLE_S5B_CANDIDATE_USED &&
        (!x->direct_cid[0] || strcmp(x->their_cid, x->direct_cid) != 0) &&
        (!x->proxy_cid[0] || strcmp(x->their_cid, x->proxy_cid) != 0))
        return stanza_iq_error(ctx, iq, "cancel", "item-not-found", "no such candidate");
    if ((info == JINGLE_S5B_CANDIDATE_USED || info == JINGLE_S5B_CANDIDATE_ERROR) &&
        x->their_report != XFER_REPORT_NONE)
        return stanza_iq_error(ctx, iq, "cancel", "unexpected-request",
                               "the candidates were reported already");
    /* The result goes before what the report makes us send. */
    reply = stanza_iq_result(ctx, iq);
    if (reply && t->conn)
        xmpp_send(t->conn, reply);
    xmpp_stanza_release(reply);
    x->report = info;
    xfer_dispatch(t, x, XFER_EV_REPORT, NULL, clock_now_ms());
    return NULL;
}

/* Their transport-replace: IBB is accepted instead of SOCKS5, never the reverse. */
static xmpp_stanza_t *transfers_transport_replace(struct transfers *t, struct xfer *x,
                                                  xmpp_stanza_t *iq, xmpp_stanza_t *jingle)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    xmpp_stanza_t *transport, *reply;
    struct jingle_refusal why;
    unsigned block;
    char sid[JINGLE_TEXT_MAX];
    const char *ns;

    transport = jingle_transport(jingle, &ns);
    if (!transport || !ns || strcmp(ns, XMPP_NS_JINGLE_IBB) != 0)
        return stanza_iq_error(ctx, iq, "cancel", "feature-not-implemented",
                               "a transport can be replaced with " XMPP_NS_JINGLE_IBB " only");
    if (!jingle_ibb_parse(transport, sid, &block, &why))
        return stanza_iq_error(ctx, iq, why.type, why.condition, why.text);
    if (!x->s5b || x->state == XFER_STREAMING || x->state == XFER_DRAINING)
        return stanza_iq_error(ctx, iq, "cancel", "unexpected-request",
                               "the transport cannot be replaced now");
    memcpy(x->req.ibb_sid, sid, sizeof(sid));
    x->block_size = block < (unsigned)t->config->transfer_ibb_block_size
                        ? block : (unsigned)t->config->transfer_ibb_block_size;
    reply = stanza_iq_result(ctx, iq);
    if (reply && t->conn)
        xmpp_send(t->conn, reply);
    xmpp_stanza_release(reply);
    xfer_dispatch(t, x, XFER_EV_REPLACE, NULL, clock_now_ms());
    return NULL;
}

xmpp_stanza_t *transfers_on_jingle(struct transfers *t, xmpp_stanza_t *iq, xmpp_stanza_t *jingle)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    const char *from = xmpp_stanza_get_from(iq);
    const char *action = xmpp_stanza_get_attribute(jingle, "action");
    const char *sid = xmpp_stanza_get_attribute(jingle, "sid");
    struct xfer *x;

    if (!from || !action)
        return stanza_iq_error(ctx, iq, "modify", "bad-request", "a Jingle action is needed");
    if (strcmp(action, "session-initiate") == 0)
        return transfers_initiate(t, iq, jingle, from);
    x = sid ? xfer_by_sid(t, from, sid, false) : NULL;
    if (!x || x->state == XFER_ENDING)
        return transfers_unknown_session(ctx, iq);
    xfer_touch(t, x, clock_now_ms());
    if (strcmp(action, "session-terminate") == 0) {
        xfer_dispatch(t, x, XFER_EV_TERMINATE, transfers_their_reason(jingle), clock_now_ms());
        return stanza_iq_result(ctx, iq);
    }
    if (strcmp(action, "session-info") == 0) /* <received/> and the like */
        return stanza_iq_result(ctx, iq);
    if (strcmp(action, "transport-info") == 0)
        return transfers_transport_info(t, x, iq, jingle);
    if (strcmp(action, "transport-replace") == 0)
        return transfers_transport_replace(t, x, iq, jingle);
    if (strcmp(action, "transport-accept") == 0 || strcmp(action, "transport-reject") == 0) {
        xmpp_stanza_t *reply;

        if (x->state != XFER_REPLACING)
            return stanza_iq_error(ctx, iq, "cancel", "unexpected-request",
                                   "no transport-replace of ours is pending");
        reply = stanza_iq_result(ctx, iq);
        if (reply && t->conn)
            xmpp_send(t->conn, reply);
        xmpp_stanza_release(reply);
        if (action[10] == 'a')
            xfer_dispatch(t, x, XFER_EV_TRANSPORT_ACCEPT, NULL, clock_now_ms());
        else
            xfer_terminate(t, x, "failed-transport", clock_now_ms());
        return NULL;
    }
    return stanza_iq_error(ctx, iq, "cancel", "feature-not-implemented",
                           "this action is not served");
}

xmpp_stanza_t *transfers_on_ibb(struct transfers *t, xmpp_stanza_t *iq, xmpp_stanza_t *payload)
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(iq);
    const char *from = xmpp_stanza_get_from(iq);
    const char *name = xmpp_stanza_get_name(payload);
    const char *sid = xmpp_stanza_get_attribute(payload, "sid");
    uint64_t now = clock_now_ms();
    struct xfer *x = from && sid ? xfer_by_sid(t, from, sid, true) : NULL;

    if (!x && sipub_has_bytestream(t->sipub, from, sid))
        return sipub_on_ibb(t->sipub, iq, payload);
    if (!x || x->state == XFER_ENDING)
        return stanza_iq_error(ctx, iq, "cancel", "item-not-found", "no such bytestream");
    xfer_touch(t, x, now);
    if (strcmp(name, "open") == 0) {
        const char *block = xmpp_stanza_get_attribute(payload, "block-size");
        const char *stanza = xmpp_stanza_get_attribute(payload, "stanza");
        char expected[16];

        if (x->state != XFER_OPENING && x->state != XFER_REPLACING)
            return stanza_iq_error(ctx, iq, "cancel", "not-acceptable",
                                   "the bytestream is not waiting to be opened");
        snprintf(expected, sizeof(expected), "%u", x->block_size);
        if (!block || strcmp(block, expected) != 0)
            return stanza_iq_error(ctx, iq, "modify", "not-acceptable",
                                   "the block-size is the one of the session-accept");
        if (stanza && strcmp(stanza, "iq") != 0)
            return stanza_iq_error(ctx, iq, "cancel", "feature-not-implemented",
                                   "data goes in <iq/> stanzas only");
        /* The blocks follow the result: transfers_run(). */
        xfer_dispatch(t, x, XFER_EV_OPEN, NULL, now);
        return stanza_iq_result(ctx, iq);
    }
    if (strcmp(name, "close") == 0) {
        xmpp_stanza_t *reply = stanza_iq_result(ctx, iq);

        /* The result goes before the terminate the close may cause. */
        if (reply && t->conn)
            xmpp_send(t->conn, reply);
        xmpp_stanza_release(reply);
        xfer_dispatch(t, x, XFER_EV_CLOSE, NULL, now);
        return NULL;
    }
    return stanza_iq_error(ctx, iq, "cancel", "not-acceptable", "this bytestream only sends");
}

void transfers_free(struct transfers *t)
{
    if (!t)
        return;
    sipub_free(t->sipub);
    while (t->sessions) {
        struct xfer *x = t->sessions;

        t->sessions = x->next;
        xfer_dispatch(t, x, XFER_EV_LOST, NULL, clock_now_ms());
        free(x);
    }
    for (size_t i = 0; i < TRANSFER_PENDING_MAX; i++)
        if (t->pending[i].fd >= 0)
            s5_stream_close(&t->pending[i], "stopping");
    if (t->listen_fd >= 0)
        close(t->listen_fd);
    keeper_free(t->keeper);
    catalog_free(t->catalog);
    free(t);
}
