/*
 * transfers_session.c - one Jingle file-transfer session: its state
 * machine (xfer_dispatch(), see transfers.c for the transitions), the
 * stanzas it sends (session-accept, IBB blocks and close, checksum,
 * session-terminate) and its row in the catalog.
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
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *xfer_state_name(enum xfer_state s)
{
    static const char *const names[] = { "new", "failing", "accepting", "connecting",
                                         "activating", "awaiting", "streaming", "draining",
                                         "replacing", "opening", "sending", "closing",
                                         "ending", "ended" };

    return names[s];
}

static void xfer_record(struct transfers *t, struct xfer *x, const char *outcome)
{
    int64_t bytes = x->acked;

    if (x->recorded)
        return;
    x->recorded = true;
    log_info("transfer", "%s %s sid=%s %" PRId64 " bytes: %s", x->peer,
             x->file.path[0] ? x->file.path : "?", x->req.sid, bytes, outcome);
    if (x->row_id == 0)
        return;
    if (!keeper_is_connected(t->keeper) ||
        catalog_transfer_end(t->catalog, x->row_id, bytes, outcome) != 0)
        log_warn("transfer", "cannot record transfer %" PRId64 ": %s", x->row_id,
                 catalog_last_error(t->catalog));
}

void xfer_enter_state(struct xfer *x, enum xfer_state s)
{
    log_debug("transfer", "sid=%s %s -> %s", x->req.sid, xfer_state_name(x->state),
              xfer_state_name(s));
    x->state = s;
}

void xfer_set_method(struct transfers *t, struct xfer *x, const char *method)
{
    x->method = method;
    if (x->row_id != 0 && keeper_is_connected(t->keeper) &&
        catalog_transfer_method(t->catalog, x->row_id, method, -1, -1) != 0)
        log_warn("transfer", "cannot record the method of transfer %" PRId64 ": %s",
                 x->row_id, catalog_last_error(t->catalog));
}

void xfer_touch(struct transfers *t, struct xfer *x, uint64_t now)
{
    x->deadline_ms = now + (uint64_t)t->config->transfer_idle_timeout_seconds * 1000u;
}

static void xfer_close_fd(struct xfer *x)
{
    xfer_s5b_close(x);
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
}

/* The session is over without a word from us (theirs came, or the stream went). */
static void xfer_ended(struct transfers *t, struct xfer *x, const char *outcome)
{
    xfer_record(t, x, outcome);
    xfer_close_fd(x);
    if (x->state != XFER_ENDED && t->count > 0)
        t->count--;
    xfer_enter_state(x, XFER_ENDED);
}

/* ------------------------------------------------------------ sending */

void xfer_id(const struct xfer *x, char *out, size_t len, const char *step)
{
    snprintf(out, len, "ft%u-%s", x->serial, step);
}

/* Sends `stanza` from the component's JID (a component must say who
 * speaks) and releases it; false when there is no stream or no stanza. */
bool xfer_send(struct transfers *t, xmpp_stanza_t *stanza)
{
    if (!stanza)
        return false;
    if (t->conn && xmpp_stanza_set_from(stanza, t->config->xmpp_component) == XMPP_EOK)
        xmpp_send(t->conn, stanza);
    xmpp_stanza_release(stanza);
    return t->conn != NULL;
}

/* Sends session-terminate with `reason` and records the outcome. */
void xfer_terminate(struct transfers *t, struct xfer *x, const char *reason,
                           uint64_t now)
{
    xmpp_ctx_t *ctx = t->conn ? xmpp_conn_get_context(t->conn) : NULL;
    xmpp_stanza_t *iq = NULL, *jingle;
    char id[64];

    xfer_record(t, x, reason);
    xfer_close_fd(x);
    xfer_id(x, id, sizeof(id), "t");
    if (ctx)
        iq = jingle_iq_new(ctx, x->peer, id, "session-terminate", x->req.sid, &jingle);
    if (iq && jingle_add_reason(jingle, reason, NULL, NULL) != 0) {
        xmpp_stanza_release(iq);
        iq = NULL;
    }
    if (!xfer_send(t, iq)) {
        xfer_ended(t, x, reason);
        return;
    }
    xfer_enter_state(x, XFER_ENDING);
    xfer_touch(t, x, now);
}

static xmpp_stanza_t *xfer_hash(xmpp_stanza_t *parent, const unsigned char sha256[32])
{
    xmpp_ctx_t *ctx = xmpp_stanza_get_context(parent);
    xmpp_stanza_t *hash = stanza_add_element(parent, "hash", XMPP_NS_HASHES);
    xmpp_stanza_t *text = xmpp_stanza_new(ctx);
    char *b64 = xmpp_base64_encode(ctx, sha256, 32);
    bool ok = hash && text && b64 &&
              xmpp_stanza_set_attribute(hash, "algo", "sha-256") == XMPP_EOK &&
              xmpp_stanza_set_text(text, b64) == XMPP_EOK &&
              xmpp_stanza_add_child(hash, text) == XMPP_EOK;

    xmpp_free(ctx, b64);
    xmpp_stanza_release(text);
    return ok ? hash : NULL;
}

static bool xfer_text_child(xmpp_stanza_t *parent, const char *name, const char *value)
{
    xmpp_stanza_t *el = stanza_add_element(parent, name, NULL);
    xmpp_stanza_t *text = el ? xmpp_stanza_new(xmpp_stanza_get_context(parent)) : NULL;
    bool ok = text && xmpp_stanza_set_text(text, value) == XMPP_EOK &&
              xmpp_stanza_add_child(el, text) == XMPP_EOK;

    xmpp_stanza_release(text);
    return ok;
}

bool xfer_set_number(xmpp_stanza_t *el, const char *name, int64_t value)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, value);
    return xmpp_stanza_set_attribute(el, name, buf) == XMPP_EOK;
}

/* <content creator name senders='responder'/> under `jingle`. */
xmpp_stanza_t *xfer_content(xmpp_stanza_t *jingle, const struct xfer *x)
{
    xmpp_stanza_t *content = stanza_add_element(jingle, "content", NULL);

    if (!content || xmpp_stanza_set_attribute(content, "creator", x->req.creator) != XMPP_EOK ||
        xmpp_stanza_set_attribute(content, "name", x->req.content_name) != XMPP_EOK ||
        xmpp_stanza_set_attribute(content, "senders", "responder") != XMPP_EOK)
        return NULL;
    return content;
}

static void xfer_send_accept(struct transfers *t, struct xfer *x, uint64_t now)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(t->conn);
    xmpp_stanza_t *iq, *jingle, *content, *desc, *file, *transport, *range;
    const char *base;
    char id[64];
    bool ok;

    xfer_id(x, id, sizeof(id), "a");
    iq = jingle_iq_new(ctx, x->peer, id, "session-accept", x->req.sid, &jingle);
    base = strrchr(x->file.path, '/');
    ok = iq && xmpp_stanza_set_attribute(jingle, "responder", t->config->xmpp_component) ==
                   XMPP_EOK &&
         (content = xfer_content(jingle, x)) &&
         (desc = stanza_add_element(content, "description", XMPP_NS_JINGLE_FT)) &&
         (file = stanza_add_element(desc, "file", NULL)) &&
         xfer_text_child(file, "name", base ? base + 1 : x->file.path) &&
         xfer_text_child(file, "size", "0") && xfer_hash(file, x->file.sha256);
    if (ok) {
        /* The size is the whole file's; the range says what is sent. */
        char size[24];

        snprintf(size, sizeof(size), "%" PRId64, x->file.size);
        xmpp_stanza_set_text(xmpp_stanza_get_children(
                                 xmpp_stanza_get_child_by_name(file, "size")), size);
        if (x->req.has_range)
            ok = (range = stanza_add_element(file, "range", NULL)) &&
                 xfer_set_number(range, "offset", x->start) &&
                 xfer_set_number(range, "length", x->end - x->start);
    }
    if (x->s5b)
        ok = ok && (transport = stanza_add_element(content, "transport", XMPP_NS_JINGLE_S5B)) &&
             xfer_s5b_add_candidates(t, x, transport);
    else
        ok = ok && (transport = stanza_add_element(content, "transport", XMPP_NS_JINGLE_IBB)) &&
             xfer_set_number(transport, "block-size", x->block_size) &&
             xmpp_stanza_set_attribute(transport, "sid", x->req.ibb_sid) == XMPP_EOK;
    if (!ok) {
        xmpp_stanza_release(iq);
        xfer_terminate(t, x, "failed-application", now);
        return;
    }
    xfer_send(t, iq);
    xfer_enter_state(x, XFER_ACCEPTING);
    xfer_touch(t, x, now);
}

/* Reads and sends one block; false when the file could not be read. */
static bool xfer_send_block(struct transfers *t, struct xfer *x)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(t->conn);
    unsigned char buf[65536];
    size_t want = (size_t)(x->end - x->next_offset);
    xmpp_stanza_t *iq, *data, *text;
    char id[64], step[16], seq[8], *b64;
    ssize_t got;

    if (want > x->block_size)
        want = x->block_size;
    do
        got = pread(x->fd, buf, want, x->next_offset);
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)want) {
        log_warn("transfer", "sid=%s: reading %s at %" PRId64 ": %s", x->req.sid, x->file.path,
                 x->next_offset, got < 0 ? strerror(errno) : "short read");
        return false;
    }
    snprintf(step, sizeof(step), "d%u", (unsigned)x->seq);
    xfer_id(x, id, sizeof(id), step);
    snprintf(seq, sizeof(seq), "%u", (unsigned)x->seq);
    b64 = xmpp_base64_encode(ctx, buf, want);
    iq = xmpp_iq_new(ctx, "set", id);
    text = xmpp_stanza_new(ctx);
    if (!b64 || !iq || !text || xmpp_stanza_set_to(iq, x->peer) != XMPP_EOK ||
        !(data = stanza_add_element(iq, "data", XMPP_NS_IBB)) ||
        xmpp_stanza_set_attribute(data, "seq", seq) != XMPP_EOK ||
        xmpp_stanza_set_attribute(data, "sid", x->req.ibb_sid) != XMPP_EOK ||
        xmpp_stanza_set_text(text, b64) != XMPP_EOK || xmpp_stanza_add_child(data, text) != XMPP_EOK) {
        xmpp_free(ctx, b64);
        xmpp_stanza_release(text);
        xmpp_stanza_release(iq);
        return false;
    }
    xmpp_free(ctx, b64);
    xmpp_stanza_release(text);
    xfer_send(t, iq);
    x->next_offset += (int64_t)want;
    x->seq++; /* wraps at 65535 to 0 (XEP-0047 §2.2) */
    x->in_flight++;
    return true;
}

static void xfer_send_close(struct transfers *t, struct xfer *x, uint64_t now)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(t->conn);
    xmpp_stanza_t *iq, *close_el;
    char id[64];

    xfer_id(x, id, sizeof(id), "c");
    iq = xmpp_iq_new(ctx, "set", id);
    if (!iq || xmpp_stanza_set_to(iq, x->peer) != XMPP_EOK ||
        !(close_el = stanza_add_element(iq, "close", XMPP_NS_IBB)) ||
        xmpp_stanza_set_attribute(close_el, "sid", x->req.ibb_sid) != XMPP_EOK) {
        xmpp_stanza_release(iq);
        xfer_terminate(t, x, "failed-application", now);
        return;
    }
    xfer_send(t, iq);
    xfer_enter_state(x, XFER_CLOSING);
    xfer_touch(t, x, now);
}

/* The bytes are through: session-info <checksum/>, then terminate success. */
void xfer_finish(struct transfers *t, struct xfer *x, uint64_t now)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(t->conn);
    xmpp_stanza_t *iq, *jingle, *checksum, *file;
    char id[64];

    xfer_id(x, id, sizeof(id), "i");
    iq = jingle_iq_new(ctx, x->peer, id, "session-info", x->req.sid, &jingle);
    if (iq && (checksum = stanza_add_element(jingle, "checksum", XMPP_NS_JINGLE_FT)) &&
        xmpp_stanza_set_attribute(checksum, "creator", x->req.creator) == XMPP_EOK &&
        xmpp_stanza_set_attribute(checksum, "name", x->req.content_name) == XMPP_EOK &&
        (file = stanza_add_element(checksum, "file", NULL)) && xfer_hash(file, x->file.sha256))
        xfer_send(t, iq);
    else
        xmpp_stanza_release(iq);
    xfer_terminate(t, x, "success", now);
}

/* Sends what the window and the send queue allow. */
static void xfer_pump(struct transfers *t, struct xfer *x, uint64_t now)
{
    if (x->state != XFER_SENDING || !t->conn)
        return;
    while (x->next_offset < x->end &&
           x->in_flight < (unsigned)t->config->transfer_ibb_window &&
           xmpp_conn_send_queue_len(t->conn) < TRANSFER_QUEUE_MAX) {
        int64_t block = x->end - x->next_offset < x->block_size ? x->end - x->next_offset
                                                                : x->block_size;

        int64_t allowed = transfers_allowance(t, block, now);

        if (allowed < block) {
            transfers_give_back(t, allowed);
            break; /* over the bandwidth cap: a later tick */
        }
        if (!xfer_send_block(t, x)) {
            xfer_terminate(t, x, "failed-application", now);
            return;
        }
    }
    if (x->next_offset >= x->end && x->in_flight == 0)
        xfer_send_close(t, x, now);
}

/* ------------------------------------------------------------ dispatch */

/* A block acknowledged: the bytes it carried count as sent. */
static void xfer_acked(struct xfer *x)
{
    int64_t left = x->end - x->start - x->acked;

    if (x->in_flight == 0)
        return;
    x->in_flight--;
    x->acked += left < x->block_size ? left : x->block_size;
}

/* transport-accept or transport-replace with our IBB transport; the SOCKS5
 * sockets are closed.  False when it could not be sent. */
bool xfer_send_ibb_transport(struct transfers *t, struct xfer *x, const char *action,
                             const char *step)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(t->conn);
    xmpp_stanza_t *iq, *jingle, *content, *transport;
    char id[64];

    xfer_s5b_close(x);
    x->s5b = false;
    xfer_id(x, id, sizeof(id), step);
    iq = jingle_iq_new(ctx, x->peer, id, action, x->req.sid, &jingle);
    if (!iq || !(content = xfer_content(jingle, x)) ||
        !(transport = stanza_add_element(content, "transport", XMPP_NS_JINGLE_IBB)) ||
        !xfer_set_number(transport, "block-size", x->block_size) ||
        xmpp_stanza_set_attribute(transport, "sid", x->req.ibb_sid) != XMPP_EOK) {
        xmpp_stanza_release(iq);
        return false;
    }
    return xfer_send(t, iq);
}

/* Their transport-replace (already answered): transport-accept with IBB. */
static void xfer_accept_ibb(struct transfers *t, struct xfer *x, uint64_t now)
{
    if (!xfer_send_ibb_transport(t, x, "transport-accept", "x")) {
        xfer_terminate(t, x, "failed-application", now);
        return;
    }
    xfer_enter_state(x, XFER_OPENING);
    xfer_touch(t, x, now);
}

static void xfer_on_answer(struct transfers *t, struct xfer *x, bool error, const char *step,
                           uint64_t now)
{
    xfer_touch(t, x, now);
    switch (x->state) {
    case XFER_ACCEPTING:
        if (strcmp(step, "a") != 0)
            break;
        if (error)
            xfer_terminate(t, x, "failed-application", now);
        else
            xfer_enter_state(x, x->s5b ? XFER_CONNECTING : XFER_OPENING);
        break;
    case XFER_ACTIVATING:
    case XFER_REPLACING:
        xfer_s5b_on_answer(t, x, error, step, now);
        break;
    case XFER_OPENING:
        if (error && strcmp(step, "x") == 0)
            xfer_terminate(t, x, "failed-transport", now);
        break;
    case XFER_SENDING:
        if (step[0] != 'd')
            break;
        if (error) {
            xfer_terminate(t, x, "failed-transport", now);
            break;
        }
        xfer_acked(x);
        xfer_pump(t, x, now);
        break;
    case XFER_CLOSING:
        if (strcmp(step, "c") != 0)
            break;
        if (error)
            xfer_terminate(t, x, "failed-transport", now);
        else
            xfer_finish(t, x, now);
        break;
    case XFER_ENDING:
        if (strcmp(step, "t") == 0)
            xfer_ended(t, x, "success"); /* recorded when it was sent */
        break;
    default:
        break;
    }
}

/* The one place a session's state changes on an event. */
void xfer_dispatch(struct transfers *t, struct xfer *x, enum xfer_event ev, const char *arg,
                   uint64_t now)
{
    if (x->state == XFER_ENDED)
        return;
    switch (ev) {
    case XFER_EV_TICK:
        switch (x->state) {
        case XFER_NEW:
            xfer_send_accept(t, x, now);
            break;
        case XFER_FAILING:
            xfer_terminate(t, x, "failed-application", now);
            break;
        case XFER_SENDING:
            xfer_pump(t, x, now);
            break;
        case XFER_ACCEPTING:
        case XFER_CONNECTING:
        case XFER_ACTIVATING:
        case XFER_AWAITING:
        case XFER_STREAMING:
        case XFER_DRAINING:
            if (x->s5b)
                xfer_s5b_tick(t, x, now);
            break;
        default:
            break;
        }
        break;
    case XFER_EV_RESULT:
    case XFER_EV_ERROR:
        xfer_on_answer(t, x, ev == XFER_EV_ERROR, arg, now);
        break;
    case XFER_EV_OPEN:
        xfer_touch(t, x, now);
        if (x->state == XFER_OPENING || x->state == XFER_REPLACING) {
            if (!x->method || strcmp(x->method, "ibb") != 0)
                xfer_set_method(t, x, "ibb");
            xfer_enter_state(x, XFER_SENDING); /* blocks follow at the next tick */
        }
        break;
    case XFER_EV_CLOSE:
        /* Closed under us: the requester gave up on the bytes. */
        if (x->state == XFER_OPENING || x->state == XFER_SENDING)
            xfer_terminate(t, x, "cancel", now);
        break;
    case XFER_EV_REPORT:
        xfer_touch(t, x, now);
        if (x->s5b)
            xfer_s5b_on_report(t, x, x->report, now);
        break;
    case XFER_EV_REPLACE:
        xfer_accept_ibb(t, x, now);
        break;
    case XFER_EV_TRANSPORT_ACCEPT:
        xfer_touch(t, x, now);
        if (x->state == XFER_REPLACING)
            xfer_enter_state(x, XFER_OPENING);
        break;
    case XFER_EV_TERMINATE:
        xfer_ended(t, x, arg);
        break;
    case XFER_EV_IDLE:
        log_info("transfer", "sid=%s: nothing heard from %s while %s", x->req.sid, x->peer,
                 xfer_state_name(x->state));
        if (x->state == XFER_ENDING)
            xfer_ended(t, x, "timeout");
        else
            xfer_terminate(t, x, "timeout", now);
        break;
    case XFER_EV_STOP:
        if (x->state != XFER_ENDING) {
            log_info("transfer", "sid=%s: the daemon is stopping", x->req.sid);
            xfer_terminate(t, x, "cancel", now);
        }
        break;
    case XFER_EV_LOST:
        xfer_ended(t, x, "failed-transport");
        break;
    }
}
