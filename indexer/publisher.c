/*
 * publisher.c - the publisher's loop: outbox rows fetched, started, and
 * their outcomes recorded.  One row's steps are in publisher_op.c.
 *
 * Each fetched row becomes an op: a short list of steps (create, configure,
 * affiliations, publish, feed publish, retract, delete), each one IQ, run
 * one after the other; the row is done when the last step's result
 * arrives.  Steps are added on the way when the answer asks for it: a
 * create answered with <conflict/> (the node exists) is followed by a
 * configure that makes its configuration ours, an affiliation query by the
 * changes it shows are needed.
 *
 * ops[] holds the fetched rows in id order, started or waiting.  A waiting
 * op starts when no earlier op touches its node, an ancestor of it, or a
 * node below it; at most PUBLISHER_IN_FLIGHT are started, and none while
 * libstrophe's send queue is long.  Outcomes (done, retry, park) are
 * collected in the stanza handler and written to the catalog at the next
 * turn, in one transaction for the done rows.
 */
#include "publisher.h"
#include "publisher_internal.h"
#include "catalog.h"
#include "clock.h"
#include "fr_error.h"
#include "keeper.h"
#include "log.h"
#include "outbox.h"
#include "xmpp/pubsub.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int publisher_new(struct publisher **out, const struct config *config)
{
    struct publisher *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (!p)
        return FR_ENOMEM;
    p->config = config;
    p->dirty = true;
    if (!(p->outcomes = calloc(PUBLISHER_OUTCOMES_MAX, sizeof(*p->outcomes))) ||
        !(p->done = calloc(PUBLISHER_OUTCOMES_MAX, sizeof(*p->done))) ||
        catalog_new(&p->catalog, config->db_conninfo, config->db_password) != 0 ||
        keeper_new(&p->keeper, p->catalog, config->db_reconnect_max_seconds) != 0) {
        publisher_free(p);
        return FR_ENOMEM;
    }
    *out = p;
    return 0;
}

static void publisher_drop_ops(struct publisher *p, bool unstarted_only)
{
    size_t kept = 0;

    for (size_t i = 0; i < p->ops_count; i++) {
        if (unstarted_only && p->ops[i]->started && !p->ops[i]->finished)
            p->ops[kept++] = p->ops[i];
        else
            publisher_op_free(p->ops[i]);
    }
    p->ops_count = kept;
}

void publisher_free(struct publisher *p)
{
    if (!p)
        return;
    publisher_drop_ops(p, false);
    free(p->outcomes);
    free(p->done);
    keeper_free(p->keeper);
    catalog_free(p->catalog);
    free(p);
}

/* ------------------------------------------------------------ outcomes */

static struct publisher_outcome *publisher_outcome_add(struct publisher *p,
                                                       struct publisher_op *op,
                                                       enum publisher_outcome_kind kind)
{
    struct publisher_outcome *o;

    /* Never more outcomes than ops: each op ends once. */
    if (p->outcomes_count >= PUBLISHER_OUTCOMES_MAX)
        return NULL;
    o = &p->outcomes[p->outcomes_count++];
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->done.id = op->id;
    op->finished = true;
    return o;
}

void publisher_op_done(struct publisher *p, struct publisher_op *op)
{
    struct publisher_outcome *o = publisher_outcome_add(p, op, OUTCOME_DONE);

    if (!o)
        return;
    o->done.entry_id = op->entry_id;
    o->done.root = op->root;
    if (strncmp(op->action, "create_", 7) == 0) {
        o->done.effect = CATALOG_OUTBOX_CREATED;
        snprintf(o->done.node, sizeof(o->done.node), "%s", op->node);
    } else if (strcmp(op->action, "delete_node") == 0) {
        o->done.effect = CATALOG_OUTBOX_DELETED;
    }
    log_debug("publish", "done id=%" PRId64 " %s node=%s", op->id, op->action, op->node);
}

static unsigned publisher_retry_delay(int attempts)
{
    unsigned delay = PUBLISHER_RETRY_MIN_MS;

    for (int i = 0; i < attempts && delay < PUBLISHER_RETRY_MAX_MS; i++)
        delay *= 2;
    return delay < PUBLISHER_RETRY_MAX_MS ? delay : PUBLISHER_RETRY_MAX_MS;
}

void publisher_op_retry(struct publisher *p, struct publisher_op *op, const char *why)
{
    struct publisher_outcome *o = publisher_outcome_add(p, op, OUTCOME_RETRY);

    if (!o)
        return;
    o->delay_ms = publisher_retry_delay(op->attempts);
    snprintf(o->error, sizeof(o->error), "%s", why);
    log_warn("publish", "id=%" PRId64 " %s node=%s: %s; retrying in %u ms", op->id, op->action,
             op->node, why, o->delay_ms);
}

void publisher_op_park(struct publisher *p, struct publisher_op *op, const char *why)
{
    struct publisher_outcome *o = publisher_outcome_add(p, op, OUTCOME_PARK);

    if (!o)
        return;
    snprintf(o->error, sizeof(o->error), "%s", why);
    log_warn("publish", "id=%" PRId64 " %s node=%s parked: %s", op->id, op->action, op->node,
             why);
}

static bool publisher_nodes_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > lb)
        return publisher_nodes_overlap(b, a);
    return strncmp(a, b, la) == 0 && (la == lb || b[la] == '/');
}

static size_t publisher_in_flight(const struct publisher *p)
{
    size_t n = 0;

    for (size_t i = 0; i < p->ops_count; i++)
        if (p->ops[i]->started && !p->ops[i]->finished)
            n++;
    return n;
}

/* Starts what may start, in id order. */
static void publisher_start_ops(struct publisher *p, uint64_t now)
{
    size_t in_flight = publisher_in_flight(p);

    for (size_t i = 0; i < p->ops_count && p->conn; i++) {
        struct publisher_op *op = p->ops[i];
        bool blocked = false;

        if (op->started || op->finished)
            continue;
        if (in_flight >= PUBLISHER_IN_FLIGHT ||
            xmpp_conn_send_queue_len(p->conn) >= PUBLISHER_SEND_QUEUE_MAX)
            break;
        for (size_t j = 0; j < i && !blocked; j++)
            blocked = !p->ops[j]->finished && publisher_nodes_overlap(p->ops[j]->key, op->key);
        if (blocked)
            continue;
        publisher_op_advance(p, op, now);
        if (op->started && !op->finished)
            in_flight++;
    }
}

static void publisher_fetch(struct publisher *p, uint64_t now)
{
    int64_t skip[PUBLISHER_OPS_MAX];
    size_t skip_count = 0;
    bool more = false;
    int retry_in = -1, error;

    for (size_t i = 0; i < p->ops_count; i++)
        skip[skip_count++] = p->ops[i]->id;
    p->dirty = false;
    error = catalog_outbox_fetch(p->catalog, skip, skip_count,
                                 (int)(PUBLISHER_OPS_MAX - p->ops_count), publisher_op_from_row, p,
                                 &more, &retry_in);
    if (error != 0) {
        log_warn("publish", "cannot read the outbox: %s", catalog_last_error(p->catalog));
        publisher_drop_ops(p, true);
        p->dirty = true;
        p->retry_at_ms = now + 1000;
        return;
    }
    if (more)
        p->dirty = true;
    p->retry_at_ms = retry_in >= 0 ? now + (uint64_t)retry_in + 1 : 0;
}

/* Writes the collected outcomes; keeps them when the catalog is away. */
static void publisher_record(struct publisher *p)
{
    struct catalog_outbox_done *done = p->done;
    size_t done_count = 0;
    bool retried = false;
    int error = 0;

    if (p->outcomes_count == 0 || !keeper_is_connected(p->keeper) ||
        clock_now_ms() < p->record_at_ms)
        return;
    for (size_t i = 0; i < p->outcomes_count; i++)
        if (p->outcomes[i].kind == OUTCOME_DONE)
            done[done_count++] = p->outcomes[i].done;
    error = catalog_outbox_finish(p->catalog, done, done_count);
    for (size_t i = 0; i < p->outcomes_count && error == 0; i++) {
        const struct publisher_outcome *o = &p->outcomes[i];

        if (o->kind == OUTCOME_RETRY) {
            error = catalog_outbox_retry(p->catalog, o->done.id, o->delay_ms, o->error);
            retried = true;
        } else if (o->kind == OUTCOME_PARK) {
            error = catalog_outbox_park(p->catalog, o->done.id, o->error);
        }
    }
    if (error != 0) {
        /* Done rows are written again next time (idempotent); a failed
         * retry or park leaves the row pending: it goes again. */
        log_warn("publish", "cannot record outcomes: %s", catalog_last_error(p->catalog));
        p->record_at_ms = clock_now_ms() + 1000;
        return;
    }
    p->record_at_ms = 0;
    p->outcomes_count = 0;
    if (retried) {
        /* Later rows of a retried node wait in the catalog with it. */
        publisher_drop_ops(p, true);
        p->dirty = true;
    }
}

static void publisher_check_deadlines(struct publisher *p, uint64_t now)
{
    for (size_t i = 0; i < p->ops_count; i++) {
        struct publisher_op *op = p->ops[i];

        if (op->started && !op->finished && now >= op->deadline_ms) {
            char why[200];

            snprintf(why, sizeof(why), "no answer to %s within %u s",
                     publisher_step_name(op->steps[op->step].kind),
                     PUBLISHER_IQ_TIMEOUT_MS / 1000);
            publisher_op_retry(p, op, why);
        }
    }
}

/* Frees finished ops; the rest keep their order. */
static void publisher_compact(struct publisher *p)
{
    size_t kept = 0;

    for (size_t i = 0; i < p->ops_count; i++) {
        if (p->ops[i]->finished)
            publisher_op_free(p->ops[i]);
        else
            p->ops[kept++] = p->ops[i];
    }
    p->ops_count = kept;
}

void publisher_on_stream(void *data, xmpp_conn_t *conn)
{
    struct publisher *p = data;

    if (conn) {
        p->conn = conn;
        /* A reused connection object keeps its user handlers: never twice. */
        xmpp_handler_delete(conn, publisher_on_iq);
        xmpp_handler_add(conn, publisher_on_iq, NULL, "iq", NULL, p);
        p->dirty = true;
        log_info("publish", "publishing to %s", p->config->xmpp_pubsub);
        return;
    }
    /* Lost: nothing in flight will be answered; the rows stay pending and
     * go again once the stream is back. */
    p->conn = NULL;
    publisher_drop_ops(p, false);
    p->dirty = true;
}

int publisher_fd(const struct publisher *p, short *events)
{
    return keeper_fd(p->keeper, events);
}

int publisher_timeout_ms(const struct publisher *p, uint64_t now_ms)
{
    int t = keeper_timeout_ms(p->keeper, now_ms);
    uint64_t at = 0;

    if (p->outcomes_count > 0 && keeper_is_connected(p->keeper)) {
        if (p->record_at_ms <= now_ms)
            return 0;
        at = p->record_at_ms;
    }
    if (p->conn && keeper_is_connected(p->keeper)) {
        bool waiting = false;

        for (size_t i = 0; i < p->ops_count && !waiting; i++)
            waiting = !p->ops[i]->started;
        /* A fetch is due (run() fetches only with nothing waiting). */
        if (p->dirty && !waiting && p->ops_count < PUBLISHER_OPS_MAX)
            return 0;
        if (p->retry_at_ms)
            at = p->retry_at_ms;
        for (size_t i = 0; i < p->ops_count; i++)
            if (p->ops[i]->started && !p->ops[i]->finished &&
                (at == 0 || p->ops[i]->deadline_ms < at))
                at = p->ops[i]->deadline_ms;
    }
    if (at) {
        int until = at > now_ms ? (int)(at - now_ms) : 0;

        if (t < 0 || until < t)
            t = until;
    }
    return t;
}

void publisher_run(struct publisher *p, short revents, uint64_t now)
{
    keeper_run(p->keeper, revents, now);
    if (keeper_take_connected(p->keeper)) {
        p->listening = catalog_outbox_listen(p->catalog) == 0;
        if (!p->listening)
            log_warn("publish", "cannot listen for outbox news: %s",
                     catalog_last_error(p->catalog));
        p->dirty = true;
    }
    if (!keeper_is_connected(p->keeper))
        return;
    if (catalog_take_notified(p->catalog))
        p->dirty = true;
    publisher_check_deadlines(p, now);
    publisher_record(p);
    publisher_compact(p);
    if (!p->conn)
        return;
    if (p->retry_at_ms && now >= p->retry_at_ms) {
        p->retry_at_ms = 0;
        p->dirty = true;
    }
    /* Fetch when everything fetched is under way: a page is worked
     * through before the next is read. */
    if (p->dirty && p->ops_count < PUBLISHER_OPS_MAX) {
        bool waiting = false;

        for (size_t i = 0; i < p->ops_count && !waiting; i++)
            waiting = !p->ops[i]->started;
        if (!waiting) {
            publisher_fetch(p, now);
            publisher_record(p); /* rows parked while reading them */
            publisher_compact(p);
        }
    }
    publisher_start_ops(p, now);
    /* Ops that ended without an IQ (withdrawn revisions). */
    if (p->outcomes_count > 0) {
        publisher_record(p);
        publisher_compact(p);
        publisher_start_ops(p, now);
    }
}

void publisher_flush(struct publisher *p)
{
    p->record_at_ms = 0;
    publisher_record(p);
}
