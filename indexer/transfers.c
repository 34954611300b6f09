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
#include "transfers.h"
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

#define TRANSFER_QUEUE_MAX 16   /* stanzas in libstrophe's queue before we wait */
#define TRANSFER_PUMP_MS 10     /* retry delay while that queue is full */
#define TRANSFER_JID_MAX 3072

enum xfer_state {
    XFER_NEW,       /* initiate acknowledged; session-accept not yet sent */
    XFER_FAILING,   /* initiate acknowledged; the bytes are not there */
    XFER_ACCEPTING, /* session-accept sent, awaiting its result */
    XFER_OPENING,   /* awaiting the requester's IBB <open/> */
    XFER_SENDING,   /* blocks going out */
    XFER_CLOSING,   /* IBB <close/> sent, awaiting its result */
    XFER_ENDING,    /* session-terminate sent, awaiting its result */
    XFER_ENDED,     /* to be freed */
};

enum xfer_event {
    XFER_EV_TICK,       /* the loop's turn: send what is due */
    XFER_EV_RESULT,     /* a result to our IQ of step `arg` */
    XFER_EV_ERROR,      /* an error answering our IQ of step `arg` */
    XFER_EV_OPEN,       /* the requester's IBB <open/>, checked */
    XFER_EV_CLOSE,      /* the requester's IBB <close/>, answered */
    XFER_EV_TERMINATE,  /* the requester's session-terminate, reason `arg` */
    XFER_EV_IDLE,       /* the idle timeout passed */
    XFER_EV_STOP,       /* the daemon is stopping */
    XFER_EV_LOST,       /* the stream is gone */
};

struct xfer {
    struct xfer *next;
    enum xfer_state state;
    unsigned serial;                    /* in our IQ ids */
    char peer[TRANSFER_JID_MAX];        /* the requester's full JID */
    struct jingle_request req;          /* what was asked */
    struct catalog_transfer_file file;  /* what it resolved to */
    unsigned block_size;                /* negotiated */
    int fd;                             /* the content store object, or -1 */
    int64_t start, end;                 /* byte range sent: [start, end) */
    int64_t next_offset;                /* of the next block to read */
    int64_t acked;                      /* bytes acknowledged */
    unsigned in_flight;                 /* blocks awaiting their result */
    uint16_t seq;                       /* IBB seq of the next block */
    uint64_t deadline_ms;               /* idle timeout */
    int64_t row_id;                     /* its transfer row, 0: none */
    bool recorded;                      /* its outcome is written */
};

struct transfers {
    const struct config *config;  /* borrowed */
    struct store *store;          /* borrowed */
    struct catalog *catalog;      /* owned: our own connection */
    struct keeper *keeper;        /* owned */
    xmpp_conn_t *conn;            /* the stream while it is up */
    struct xfer *sessions;        /* newest first */
    size_t count;                 /* sessions not yet ENDED */
    unsigned serial;              /* of the last session */
};

static const char *xfer_state_name(enum xfer_state s)
{
    static const char *const names[] = { "new", "failing", "accepting", "opening",
                                         "sending", "closing", "ending", "ended" };

    return names[s];
}

int transfers_new(struct transfers **out, const struct config *config, struct store *store)
{
    struct transfers *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (!t)
        return FR_ENOMEM;
    t->config = config;
    t->store = store;
    if (catalog_new(&t->catalog, config->db_conninfo, config->db_password) != 0 ||
        keeper_new(&t->keeper, t->catalog, config->db_reconnect_max_seconds) != 0) {
        transfers_free(t);
        return FR_ENOMEM;
    }
    *out = t;
    return 0;
}

/* ------------------------------------------------------------ recording */

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

static void xfer_enter_state(struct xfer *x, enum xfer_state s)
{
    log_debug("transfer", "sid=%s %s -> %s", x->req.sid, xfer_state_name(x->state),
              xfer_state_name(s));
    x->state = s;
}

static void xfer_touch(struct transfers *t, struct xfer *x, uint64_t now)
{
    x->deadline_ms = now + (uint64_t)t->config->transfer_idle_timeout_seconds * 1000u;
}

static void xfer_close_fd(struct xfer *x)
{
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

static void xfer_id(const struct xfer *x, char *out, size_t len, const char *step)
{
    snprintf(out, len, "ft%u-%s", x->serial, step);
}

/* Sends `stanza` from the component's JID (a component must say who
 * speaks) and releases it; false when there is no stream or no stanza. */
static bool xfer_send(struct transfers *t, xmpp_stanza_t *stanza)
{
    if (!stanza)
        return false;
    if (t->conn && xmpp_stanza_set_from(stanza, t->config->xmpp_component) == XMPP_EOK)
        xmpp_send(t->conn, stanza);
    xmpp_stanza_release(stanza);
    return t->conn != NULL;
}

/* Sends session-terminate with `reason` and records the outcome. */
static void xfer_terminate(struct transfers *t, struct xfer *x, const char *reason,
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

static bool xfer_set_number(xmpp_stanza_t *el, const char *name, int64_t value)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, value);
    return xmpp_stanza_set_attribute(el, name, buf) == XMPP_EOK;
}

/* <content creator name senders='responder'/> under `jingle`. */
static xmpp_stanza_t *xfer_content(xmpp_stanza_t *jingle, const struct xfer *x)
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
static void xfer_finish(struct transfers *t, struct xfer *x, uint64_t now)
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

/* The one place a session's state changes on an event. */
static void xfer_dispatch(struct transfers *t, struct xfer *x, enum xfer_event ev,
                          const char *arg, uint64_t now)
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
        default:
            break;
        }
        break;
    case XFER_EV_RESULT:
    case XFER_EV_ERROR:
        xfer_touch(t, x, now);
        switch (x->state) {
        case XFER_ACCEPTING:
            if (strcmp(arg, "a") != 0)
                break;
            if (ev == XFER_EV_ERROR)
                xfer_terminate(t, x, "failed-application", now);
            else
                xfer_enter_state(x, XFER_OPENING);
            break;
        case XFER_SENDING:
            if (arg[0] != 'd')
                break;
            if (ev == XFER_EV_ERROR) {
                xfer_terminate(t, x, "failed-transport", now);
                break;
            }
            xfer_acked(x);
            xfer_pump(t, x, now);
            break;
        case XFER_CLOSING:
            if (strcmp(arg, "c") != 0)
                break;
            if (ev == XFER_EV_ERROR)
                xfer_terminate(t, x, "failed-transport", now);
            else
                xfer_finish(t, x, now);
            break;
        case XFER_ENDING:
            if (strcmp(arg, "t") == 0)
                xfer_ended(t, x, "success"); /* recorded when it was sent */
            break;
        default:
            break;
        }
        break;
    case XFER_EV_OPEN:
        xfer_touch(t, x, now);
        if (x->state == XFER_OPENING)
            xfer_enter_state(x, XFER_SENDING); /* blocks follow at the next tick */
        break;
    case XFER_EV_CLOSE:
        /* Closed under us: the requester gave up on the bytes. */
        if (x->state == XFER_OPENING || x->state == XFER_SENDING)
            xfer_terminate(t, x, "cancel", now);
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
    if (!type || !id || !from || strncmp(id, "ft", 2) != 0 ||
        (strcmp(type, "result") != 0 && strcmp(type, "error") != 0) ||
        sscanf(id, "ft%u-%15s", &serial, step) != 2 || !(x = xfer_by_serial(t, serial)) ||
        strcmp(from, x->peer) != 0)
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
        return;
    }
    t->conn = NULL;
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
    if (catalog_transfer_refused(t->catalog, from, sid) != 0)
        log_warn("transfer", "cannot record a refused request: %s",
                 catalog_last_error(t->catalog));
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
    if (xfer_by_sid(t, from, x->req.sid, false) || xfer_by_sid(t, from, x->req.ibb_sid, true)) {
        free(x);
        return stanza_iq_error(ctx, iq, "cancel", "conflict", "that sid is in use");
    }
    if (!keeper_is_connected(t->keeper)) {
        free(x);
        return stanza_iq_error(ctx, iq, "wait", "internal-server-error",
                               "the catalog is not reachable; try again later");
    }
    if (t->count >= (size_t)t->config->transfer_max_sessions) {
        transfers_record_refusal(t, from, x->req.sid);
        free(x);
        return stanza_iq_error(ctx, iq, "wait", "resource-constraint",
                               "too many transfers under way; try again later");
    }
    snprintf(x->peer, sizeof(x->peer), "%s", from);
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
    if (catalog_transfer_begin(t->catalog, from, x->file.revision_id, "ibb", x->req.sid,
                               x->start, x->req.length >= 0 ? x->end - x->start : -1,
                               &x->row_id) != 0) {
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

    if (!x || x->state == XFER_ENDING)
        return stanza_iq_error(ctx, iq, "cancel", "item-not-found", "no such bytestream");
    xfer_touch(t, x, now);
    if (strcmp(name, "open") == 0) {
        const char *block = xmpp_stanza_get_attribute(payload, "block-size");
        const char *stanza = xmpp_stanza_get_attribute(payload, "stanza");
        char expected[16];

        if (x->state != XFER_OPENING)
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

/* ------------------------------------------------------------ the loop */

void transfers_stop(struct transfers *t, uint64_t now)
{
    for (struct xfer *x = t->sessions; x; x = x->next)
        xfer_dispatch(t, x, XFER_EV_STOP, NULL, now);
}

int transfers_fd(const struct transfers *t, short *events)
{
    return keeper_fd(t->keeper, events);
}

int transfers_timeout_ms(const struct transfers *t, uint64_t now_ms)
{
    int timeout = keeper_timeout_ms(t->keeper, now_ms);

    for (const struct xfer *x = t->sessions; x; x = x->next) {
        int until;

        if (x->state == XFER_ENDED || x->state == XFER_NEW || x->state == XFER_FAILING)
            return 0;
        if (x->state == XFER_SENDING && x->next_offset < x->end &&
            x->in_flight < (unsigned)t->config->transfer_ibb_window)
            until = t->conn && xmpp_conn_send_queue_len(t->conn) < TRANSFER_QUEUE_MAX
                        ? 0 : TRANSFER_PUMP_MS;
        else
            until = x->deadline_ms > now_ms ? (int)(x->deadline_ms - now_ms) : 0;
        if (timeout < 0 || until < timeout)
            timeout = until;
    }
    return timeout;
}

void transfers_run(struct transfers *t, short revents, uint64_t now)
{
    struct xfer **link = &t->sessions;

    keeper_run(t->keeper, revents, now);
    for (struct xfer *x = t->sessions; x; x = x->next) {
        if (!t->conn)
            xfer_dispatch(t, x, XFER_EV_LOST, NULL, now);
        else if (now >= x->deadline_ms)
            xfer_dispatch(t, x, XFER_EV_IDLE, NULL, now);
        else
            xfer_dispatch(t, x, XFER_EV_TICK, NULL, now);
    }
    while (*link) {
        struct xfer *x = *link;

        if (x->state == XFER_ENDED) {
            *link = x->next;
            free(x);
        } else {
            link = &x->next;
        }
    }
}

void transfers_free(struct transfers *t)
{
    if (!t)
        return;
    while (t->sessions) {
        struct xfer *x = t->sessions;

        t->sessions = x->next;
        xfer_dispatch(t, x, XFER_EV_LOST, NULL, clock_now_ms());
        free(x);
    }
    keeper_free(t->keeper);
    catalog_free(t->catalog);
    free(t);
}
