/*
 * sipub_session.c - one sipub session: its state machine (sipub_dispatch():
 * switch on the event, then on the state), the stanzas it sends (the SI
 * offer, the IBB <open/>, blocks and <close/>) and its row in the catalog.
 *
 *   NEW        <starting/> answered          --tick-->   OFFERING (SI offer sent)
 *   OFFERING   result choosing IBB           ------->    OPENING (IBB <open/> sent)
 *              error (declined)              ------->    ENDED 'decline'
 *   OPENING    result of <open/>             ------->    SENDING
 *              resource-constraint           ------->    OPENING (a smaller block-size)
 *   SENDING    last block acknowledged       ------->    CLOSING (IBB <close/> sent)
 *   CLOSING    answer to <close/>            ------->    ENDED 'success'
 *
 * Every other way out: an error to a block → <close/>, 'failed-transport';
 * the requester's <close/> → 'cancel'; nothing heard for idle_timeout →
 * <close/> when the bytestream is open, 'timeout'; the daemon stopping →
 * <close/>, 'cancel'; the stream lost → 'failed-transport'.  SI has no
 * terminate of its own: closing the bytestream is the end.
 */
#include "sipub_internal.h"
#include "catalog.h"
#include "keeper.h"
#include "log.h"
#include "transfer.h"
#include "xmpp/ibb.h"
#include "xmpp/stanza.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIPUB_BLOCK_MIN 512  /* XEP-0047's smallest sensible block-size */

static const char *sipub_state_name(enum sipub_state s)
{
    static const char *const names[] = { "new", "offering", "opening", "sending", "closing",
                                         "s5b-offered", "activating", "streaming",
                                         "draining", "ended" };

    return names[s];
}

void sipub_enter_state(struct sipub_session *x, enum sipub_state s)
{
    log_debug("sipub", "sid=%s %s -> %s", x->sid, sipub_state_name(x->state),
              sipub_state_name(s));
    x->state = s;
}

void sipub_touch(struct sipub *s, struct sipub_session *x, uint64_t now)
{
    x->deadline_ms = now + (uint64_t)s->transfers->config->transfer_idle_timeout_seconds * 1000u;
}

/* Records the outcome once, closes the file, and leaves for ENDED. */
void sipub_end(struct sipub *s, struct sipub_session *x, const char *outcome)
{
    struct transfers *t = s->transfers;

    if (x->state == SIPUB_ENDED)
        return;
    if (!x->recorded) {
        x->recorded = true;
        log_info("sipub", "%s %s sid=%s %" PRId64 " bytes: %s", x->peer, x->file.path, x->sid,
                 x->acked, outcome);
        if (!keeper_is_connected(t->keeper) ||
            catalog_transfer_end(t->catalog, x->row_id, x->acked, outcome) != 0)
            log_warn("sipub", "cannot record transfer %" PRId64 ": %s", x->row_id,
                     catalog_last_error(t->catalog));
    }
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
    sipub_s5b_close(x);
    if (s->count > 0)
        s->count--;
    sipub_enter_state(x, SIPUB_ENDED);
}

/* ------------------------------------------------------------ sending */

void sipub_id(const struct sipub_session *x, char *out, size_t len, const char *step)
{
    snprintf(out, len, "sp%u-%s", x->serial, step);
}

/* Sends `stanza` from the component's JID and releases it; false when
 * there is no stream or no stanza. */
bool sipub_send(struct sipub *s, xmpp_stanza_t *stanza)
{
    bool sent = false;

    if (!stanza)
        return false;
    if (s->conn &&
        xmpp_stanza_set_from(stanza, s->transfers->config->xmpp_component) == XMPP_EOK) {
        xmpp_send(s->conn, stanza);
        sent = true;
    }
    xmpp_stanza_release(stanza);
    return sent;
}

static void sipub_send_offer(struct sipub *s, struct sipub_session *x, uint64_t now)
{
    char id[64];
    const struct si_offer offer = {
        .sid = x->sid, .mime_type = x->file.mime, .name = x->file.name, .size = x->file.size,
        .md5_hex = x->file.md5_hex[0] ? x->file.md5_hex : NULL, .date = x->file.modified,
        .desc = x->file.description, .ranged = true, .methods = x->offered,
    };

    sipub_id(x, id, sizeof(id), "o");
    if (!sipub_send(s, si_offer_iq_new(xmpp_conn_get_context(s->conn), x->peer, id, &offer))) {
        sipub_end(s, x, "failed-application");
        return;
    }
    sipub_enter_state(x, SIPUB_OFFERING);
    sipub_touch(s, x, now);
}

static void sipub_send_open(struct sipub *s, struct sipub_session *x, uint64_t now)
{
    char id[64];

    sipub_id(x, id, sizeof(id), "p");
    if (!sipub_send(s, ibb_open_iq_new(xmpp_conn_get_context(s->conn), x->peer, id, x->sid,
                                       x->block_size))) {
        sipub_end(s, x, "failed-transport");
        return;
    }
    sipub_enter_state(x, SIPUB_OPENING);
    sipub_touch(s, x, now);
}

/* Our <close/>; `step` "c" after the last block (its answer ends the
 * session), "x" when giving up (no answer is awaited). */
static bool sipub_send_close(struct sipub *s, struct sipub_session *x, const char *step)
{
    char id[64];

    sipub_id(x, id, sizeof(id), step);
    return s->conn &&
           sipub_send(s, ibb_close_iq_new(xmpp_conn_get_context(s->conn), x->peer, id, x->sid));
}

/* Gives up: closes an open bytestream, then ends with `outcome`. */
static void sipub_abort(struct sipub *s, struct sipub_session *x, const char *outcome)
{
    if (x->state == SIPUB_OPENING || x->state == SIPUB_SENDING)
        sipub_send_close(s, x, "x");
    sipub_end(s, x, outcome);
}

/* Reads and sends one block; false when the file could not be read. */
static bool sipub_send_block(struct sipub *s, struct sipub_session *x)
{
    unsigned char buf[65536];
    size_t want = (size_t)(x->end - x->next_offset);
    char id[64], step[16];
    ssize_t got;

    if (want > x->block_size)
        want = x->block_size;
    do
        got = pread(x->fd, buf, want, x->next_offset);
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)want) {
        log_warn("sipub", "sid=%s: reading %s at %" PRId64 ": %s", x->sid, x->file.path,
                 x->next_offset, got < 0 ? strerror(errno) : "short read");
        return false;
    }
    snprintf(step, sizeof(step), "d%u", (unsigned)x->seq);
    sipub_id(x, id, sizeof(id), step);
    if (!sipub_send(s, ibb_data_iq_new(xmpp_conn_get_context(s->conn), x->peer, id, x->sid,
                                       x->seq, buf, want)))
        return false;
    x->next_offset += (int64_t)want;
    x->seq++; /* wraps at 65535 to 0 (XEP-0047 §2.2) */
    x->in_flight++;
    return true;
}

/* Sends what the window and the send queue allow; the close after the last. */
static void sipub_pump(struct sipub *s, struct sipub_session *x, uint64_t now)
{
    const struct config *config = s->transfers->config;

    if (x->state != SIPUB_SENDING || !s->conn)
        return;
    while (x->next_offset < x->end && x->in_flight < (unsigned)config->transfer_ibb_window &&
           xmpp_conn_send_queue_len(s->conn) < TRANSFER_QUEUE_MAX) {
        int64_t block = x->end - x->next_offset < x->block_size ? x->end - x->next_offset
                                                                : x->block_size;
        int64_t allowed = transfers_allowance(s->transfers, block, now);

        if (allowed < block) {
            transfers_give_back(s->transfers, allowed);
            break; /* over the bandwidth cap: a later tick */
        }
        if (!sipub_send_block(s, x)) {
            sipub_abort(s, x, "failed-application");
            return;
        }
    }
    if (x->next_offset >= x->end && x->in_flight == 0) {
        if (!sipub_send_close(s, x, "c")) {
            sipub_end(s, x, "failed-transport");
            return;
        }
        sipub_enter_state(x, SIPUB_CLOSING);
        sipub_touch(s, x, now);
    }
}

/* ------------------------------------------------------------ answers */

/* The requester's choice: record it and open the bytestream. */
static void sipub_chosen(struct sipub *s, struct sipub_session *x, xmpp_stanza_t *result,
                         uint64_t now)
{
    struct si_choice choice;
    struct si_refusal why;

    if (!si_result_parse(result, x->offered, &choice, &why)) {
        log_info("sipub", "sid=%s: %s answered the offer: %s", x->sid, x->peer, why.text);
        sipub_end(s, x, "failed-application");
        return;
    }
    if (choice.offset > x->file.size) {
        log_info("sipub", "sid=%s: the range starts after the end of the file", x->sid);
        sipub_end(s, x, "failed-application");
        return;
    }
    x->method = choice.method;
    x->start = choice.offset;
    x->end = x->file.size;
    if (choice.length >= 0 && choice.length < x->end - x->start)
        x->end = x->start + choice.length;
    x->next_offset = x->start;
    x->ranged = choice.length >= 0;
    log_info("sipub", "sid=%s: %s chose %s, bytes %" PRId64 "-%" PRId64, x->sid, x->peer,
             si_method_ns(x->method), x->start, x->end);
    if (x->method == SI_METHOD_S5B) {
        sipub_s5b_offer(s, x, now); /* the method is recorded once a streamhost is used */
        return;
    }
    sipub_record_method(s, x, "ibb");
    sipub_send_open(s, x, now);
}

void sipub_record_method(struct sipub *s, struct sipub_session *x, const char *method)
{
    struct transfers *t = s->transfers;

    if (!keeper_is_connected(t->keeper) ||
        catalog_transfer_method(t->catalog, x->row_id, method, x->start,
                             x->ranged ? x->end - x->start : -1) != 0)
        log_warn("sipub", "cannot record the method of transfer %" PRId64 ": %s", x->row_id,
                 catalog_last_error(t->catalog));
}

/* An error to our offer: declined, or no stream method in common. */
static void sipub_refused_offer(struct sipub *s, struct sipub_session *x,
                                xmpp_stanza_t *error_iq)
{
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(error_iq, "error");
    bool no_streams = error && xmpp_stanza_get_child_by_ns(error, XMPP_NS_SI) &&
                      strcmp(xmpp_stanza_get_name(xmpp_stanza_get_child_by_ns(error, XMPP_NS_SI)),
                             "no-valid-streams") == 0;

    sipub_end(s, x, no_streams ? "failed-transport" : "decline");
}

/* An error to our <open/>: a smaller block-size when that is what it asks. */
static void sipub_open_refused(struct sipub *s, struct sipub_session *x,
                               xmpp_stanza_t *error_iq, uint64_t now)
{
    const char *condition = stanza_error_condition(error_iq);

    if (condition && strcmp(condition, "resource-constraint") == 0 &&
        x->block_size / 2 >= SIPUB_BLOCK_MIN) {
        x->block_size /= 2;
        log_info("sipub", "sid=%s: %s wants smaller blocks: %u", x->sid, x->peer,
                 x->block_size);
        sipub_send_open(s, x, now);
        return;
    }
    sipub_end(s, x, "failed-transport");
}

/* A block acknowledged: the bytes it carried count as sent. */
static void sipub_acked(struct sipub_session *x)
{
    int64_t left = x->end - x->start - x->acked;

    if (x->in_flight == 0)
        return;
    x->in_flight--;
    x->acked += left < x->block_size ? left : x->block_size;
}

/* ------------------------------------------------------------ dispatch */

/* Every byte went: acknowledged (IBB) or written to the socket (SOCKS5). */
static bool sipub_all_sent(const struct sipub_session *x)
{
    return x->state == SIPUB_CLOSING || x->state == SIPUB_DRAINING;
}

static void sipub_on_answer(struct sipub *s, struct sipub_session *x, bool error,
                            const char *step, xmpp_stanza_t *stanza, uint64_t now)
{
    switch (x->state) {
    case SIPUB_OFFERING:
        if (strcmp(step, "o") != 0)
            break;
        if (error)
            sipub_refused_offer(s, x, stanza);
        else
            sipub_chosen(s, x, stanza, now);
        break;
    case SIPUB_OPENING:
        if (strcmp(step, "p") != 0)
            break;
        if (error)
            sipub_open_refused(s, x, stanza, now);
        else
            sipub_enter_state(x, SIPUB_SENDING); /* blocks follow at once */
        sipub_pump(s, x, now);
        break;
    case SIPUB_SENDING:
        if (step[0] != 'd')
            break;
        if (error) {
            sipub_abort(s, x, "failed-transport");
            break;
        }
        sipub_acked(x);
        sipub_pump(s, x, now);
        break;
    case SIPUB_CLOSING:
        if (strcmp(step, "c") == 0)
            sipub_end(s, x, "success"); /* every byte was acknowledged */
        break;
    case SIPUB_S5B_OFFERED:
    case SIPUB_ACTIVATING:
        sipub_s5b_on_answer(s, x, error, step, stanza, now);
        break;
    default:
        break;
    }
}

void sipub_dispatch(struct sipub *s, struct sipub_session *x, enum sipub_event ev,
                    const char *step, xmpp_stanza_t *stanza, uint64_t now)
{
    if (x->state == SIPUB_ENDED)
        return;
    switch (ev) {
    case SIPUB_EV_TICK:
        switch (x->state) {
        case SIPUB_NEW:
            sipub_send_offer(s, x, now);
            break;
        case SIPUB_SENDING:
            sipub_pump(s, x, now);
            break;
        case SIPUB_S5B_OFFERED:
        case SIPUB_ACTIVATING:
        case SIPUB_STREAMING:
        case SIPUB_DRAINING:
            sipub_s5b_tick(s, x, now);
            break;
        default:
            break;
        }
        break;
    case SIPUB_EV_RESULT:
    case SIPUB_EV_ERROR:
        sipub_touch(s, x, now);
        sipub_on_answer(s, x, ev == SIPUB_EV_ERROR, step, stanza, now);
        break;
    case SIPUB_EV_CLOSE:
        /* Closed under us: the requester gave up on the bytes. */
        if (x->state == SIPUB_OPENING || x->state == SIPUB_SENDING)
            sipub_end(s, x, "cancel");
        else if (x->state == SIPUB_CLOSING)
            sipub_end(s, x, "success");
        break;
    case SIPUB_EV_IDLE:
        log_info("sipub", "sid=%s: nothing heard from %s while %s", x->sid, x->peer,
                 sipub_state_name(x->state));
        /* In CLOSING every byte was acknowledged; only the close's answer is missing. */
        sipub_abort(s, x, sipub_all_sent(x) ? "success" : "timeout");
        break;
    case SIPUB_EV_STOP:
        log_info("sipub", "sid=%s: the daemon is stopping", x->sid);
        sipub_abort(s, x, sipub_all_sent(x) ? "success" : "cancel");
        break;
    case SIPUB_EV_LOST:
        sipub_end(s, x, sipub_all_sent(x) ? "success" : "failed-transport");
        break;
    }
}
