/*
 * publisher.c - outbox rows become pubsub IQs.
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

#define PUBLISHER_IN_FLIGHT 32       /* IQs awaiting their result */
#define PUBLISHER_OPS_MAX 128        /* rows held in memory */
#define PUBLISHER_SEND_QUEUE_MAX 64  /* stanzas queued in libstrophe */
#define PUBLISHER_IQ_TIMEOUT_MS 30000u
#define PUBLISHER_RETRY_MIN_MS 1000u
#define PUBLISHER_RETRY_MAX_MS 300000u
#define PUBLISHER_STEPS_MAX 12
#define PUBLISHER_OUTCOMES_MAX (PUBLISHER_OPS_MAX * 2)

enum publisher_step_kind {
    STEP_CREATE,
    STEP_CONFIGURE,
    STEP_AFFILIATIONS_GET,
    STEP_AFFILIATIONS_SET,
    STEP_PUBLISH,
    STEP_RETRACT,
    STEP_DELETE,
};

static const char *const publisher_step_names[] = {
    [STEP_CREATE] = "create",
    [STEP_CONFIGURE] = "configure",
    [STEP_AFFILIATIONS_GET] = "affiliations-get",
    [STEP_AFFILIATIONS_SET] = "affiliations-set",
    [STEP_PUBLISH] = "publish",
    [STEP_RETRACT] = "retract",
    [STEP_DELETE] = "delete",
};

struct publisher_step {
    enum publisher_step_kind kind; /* what the IQ does */
    bool feed;                     /* on the change-feed node (else the row's node) */
};

/* One affiliation change computed from an affiliation query. */
struct publisher_affiliation {
    char *jid;                     /* owned */
    const char *affiliation;       /* static */
};

struct publisher_op {
    int64_t id;                    /* outbox id */
    char *action;                  /* outbox action */
    char *key;                     /* the row's node text: the order key */
    char *node;                    /* the node id as published */
    char *feed;                    /* the repository's change-feed node */
    char *parent;                  /* parent collection, NULL for a root */
    char *title, *description;     /* node configuration */
    char *path;                    /* entry path */
    char *acl;                     /* "role jid" lines */
    bool collection;               /* a directory's node */
    bool root;                     /* the repository's root */
    bool whitelist;                /* access model */
    int attempts;                  /* failed attempts before this one */
    int64_t entry_id;              /* 0 when none */
    int64_t revision_id;           /* publish: the revision */
    char item[16];                 /* revision number as item id */
    xmpp_stanza_t *entry;          /* publish: the revision payload, owned */
    struct publisher_step steps[PUBLISHER_STEPS_MAX]; /* the plan */
    int steps_count, step;         /* how many, the one running */
    bool started;                  /* an IQ of it went out */
    bool finished;                 /* outcome recorded: to be dropped */
    char iq_id[40];                /* the IQ awaited */
    uint64_t deadline_ms;          /* when that IQ counts as lost */
    struct publisher_affiliation *changes; /* affiliations to set, owned */
    size_t changes_count, changes_cap; /* how many, room for */
};

enum publisher_outcome_kind { OUTCOME_DONE, OUTCOME_RETRY, OUTCOME_PARK };

struct publisher_outcome {
    enum publisher_outcome_kind kind;   /* what happened */
    struct catalog_outbox_done done;    /* DONE: what to record */
    unsigned delay_ms;                  /* RETRY: when to try again */
    char error[400];                    /* RETRY, PARK: why */
};

struct publisher {
    const struct config *config;   /* borrowed */
    struct catalog *catalog;       /* owned: the publisher's own connection */
    struct keeper *keeper;         /* owned */
    xmpp_conn_t *conn;             /* the stream while up, borrowed */
    bool listening;                /* LISTEN issued on this catalog connection */
    bool dirty;                    /* the outbox may hold rows not fetched */
    uint64_t retry_at_ms;          /* a waiting row comes due then (0: none) */
    uint64_t record_at_ms;         /* recording failed: try again then (0: now) */
    struct publisher_op *ops[PUBLISHER_OPS_MAX]; /* fetched rows, id order */
    size_t ops_count;              /* how many */
    struct publisher_outcome *outcomes; /* PUBLISHER_OUTCOMES_MAX, to record */
    struct catalog_outbox_done *done;   /* PUBLISHER_OUTCOMES_MAX, scratch of record() */
    size_t outcomes_count;         /* how many */
    unsigned long long iq_serial;  /* for IQ ids */
};

static void publisher_op_free(struct publisher_op *op)
{
    if (!op)
        return;
    free(op->action);
    free(op->key);
    free(op->node);
    free(op->feed);
    free(op->parent);
    free(op->title);
    free(op->description);
    free(op->path);
    free(op->acl);
    for (size_t i = 0; i < op->changes_count; i++)
        free(op->changes[i].jid);
    free(op->changes);
    if (op->entry)
        xmpp_stanza_release(op->entry);
    free(op);
}

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

static void publisher_op_done(struct publisher *p, struct publisher_op *op)
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

static void publisher_op_retry(struct publisher *p, struct publisher_op *op, const char *why)
{
    struct publisher_outcome *o = publisher_outcome_add(p, op, OUTCOME_RETRY);

    if (!o)
        return;
    o->delay_ms = publisher_retry_delay(op->attempts);
    snprintf(o->error, sizeof(o->error), "%s", why);
    log_warn("publish", "id=%" PRId64 " %s node=%s: %s; retrying in %u ms", op->id, op->action,
             op->node, why, o->delay_ms);
}

static void publisher_op_park(struct publisher *p, struct publisher_op *op, const char *why)
{
    struct publisher_outcome *o = publisher_outcome_add(p, op, OUTCOME_PARK);

    if (!o)
        return;
    snprintf(o->error, sizeof(o->error), "%s", why);
    log_warn("publish", "id=%" PRId64 " %s node=%s parked: %s", op->id, op->action, op->node,
             why);
}

/* ------------------------------------------------------------ steps */

static void publisher_config_of(const struct publisher_op *op, bool feed,
                                struct pubsub_node_config *c)
{
    static char feed_title[512];

    if (feed) {
        snprintf(feed_title, sizeof(feed_title), "%s: changes", op->title);
        *c = (struct pubsub_node_config){
            .collection = false, .parent = NULL, .title = feed_title,
            .description = "one item per new revision in the repository, with its path",
            .whitelist = op->whitelist,
        };
        return;
    }
    *c = (struct pubsub_node_config){
        .collection = op->collection, .parent = op->parent, .title = op->title,
        .description = op->description, .whitelist = op->whitelist,
    };
}

static xmpp_stanza_t *publisher_step_iq(struct publisher *p, struct publisher_op *op)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(p->conn);
    const struct publisher_step *s = &op->steps[op->step];
    const char *to = p->config->xmpp_pubsub;
    const char *node = s->feed ? op->feed : op->node;
    struct pubsub_node_config config;
    struct pubsub_affiliation *affiliations;
    xmpp_stanza_t *iq = NULL, *change;
    char feed_item[24];

    snprintf(op->iq_id, sizeof(op->iq_id), "pub%" PRId64 "-%llu", op->id, ++p->iq_serial);
    switch (s->kind) {
    case STEP_CREATE:
        publisher_config_of(op, s->feed, &config);
        iq = pubsub_create_iq(ctx, to, op->iq_id, node, &config);
        break;
    case STEP_CONFIGURE:
        publisher_config_of(op, s->feed, &config);
        iq = pubsub_configure_iq(ctx, to, op->iq_id, node, &config);
        break;
    case STEP_AFFILIATIONS_GET:
        iq = pubsub_affiliations_get_iq(ctx, to, op->iq_id, node);
        break;
    case STEP_AFFILIATIONS_SET:
        affiliations = calloc(op->changes_count, sizeof(*affiliations));
        if (!affiliations)
            break;
        for (size_t i = 0; i < op->changes_count; i++)
            affiliations[i] = (struct pubsub_affiliation){ op->changes[i].jid,
                                                           op->changes[i].affiliation };
        iq = pubsub_affiliations_set_iq(ctx, to, op->iq_id, node, affiliations,
                                        op->changes_count);
        free(affiliations);
        break;
    case STEP_PUBLISH:
        if (!s->feed) {
            iq = pubsub_publish_iq(ctx, to, op->iq_id, node, op->item, op->entry);
            break;
        }
        snprintf(feed_item, sizeof(feed_item), "%" PRId64, op->revision_id);
        change = pubsub_change_entry(ctx, op->path, op->node, op->item, op->entry);
        if (change) {
            iq = pubsub_publish_iq(ctx, to, op->iq_id, node, feed_item, change);
            xmpp_stanza_release(change);
        }
        break;
    case STEP_RETRACT:
        iq = pubsub_retract_iq(ctx, to, op->iq_id, node, op->item);
        break;
    case STEP_DELETE:
        iq = pubsub_delete_iq(ctx, to, op->iq_id, node);
        break;
    }
    if (iq)
        xmpp_stanza_set_from(iq, p->config->xmpp_component);
    return iq;
}

/* Sends the op's current step, or ends the op when no step is left. */
static void publisher_op_advance(struct publisher *p, struct publisher_op *op, uint64_t now)
{
    xmpp_stanza_t *iq;

    if (op->step >= op->steps_count) {
        publisher_op_done(p, op);
        return;
    }
    if (!p->conn)
        return;
    iq = publisher_step_iq(p, op);
    if (!iq) {
        publisher_op_retry(p, op, "out of memory building the IQ");
        return;
    }
    op->started = true;
    op->deadline_ms = now + PUBLISHER_IQ_TIMEOUT_MS;
    xmpp_send(p->conn, iq);
    xmpp_stanza_release(iq);
}

static bool publisher_op_insert_step(struct publisher_op *op, enum publisher_step_kind kind,
                                     bool feed)
{
    if (op->steps_count >= PUBLISHER_STEPS_MAX)
        return false;
    memmove(&op->steps[op->step + 2], &op->steps[op->step + 1],
            sizeof(op->steps[0]) * (size_t)(op->steps_count - op->step - 1));
    op->steps[op->step + 1] = (struct publisher_step){ kind, feed };
    op->steps_count++;
    return true;
}

static void publisher_op_plan(struct publisher_op *op, enum publisher_step_kind kind, bool feed)
{
    if (op->steps_count < PUBLISHER_STEPS_MAX)
        op->steps[op->steps_count++] = (struct publisher_step){ kind, feed };
}

/* The affiliation the acl gives `jid` on a node of this repository. */
static const char *publisher_acl_affiliation(const struct publisher_op *op, const char *jid,
                                             size_t jid_len)
{
    const char *best = NULL;

    for (const char *line = op->acl; line && *line;) {
        const char *end = strchr(line, '\n');
        const char *sp = strchr(line, ' ');
        size_t len = end ? (size_t)(end - line) : strlen(line);

        if (sp && sp < line + len && (size_t)(line + len - sp - 1) == jid_len &&
            strncasecmp(sp + 1, jid, jid_len) == 0) {
            size_t role_len = (size_t)(sp - line);

            if (role_len == 5 && strncmp(line, "owner", 5) == 0)
                best = "owner";
            else if (role_len == 9 && strncmp(line, "publisher", 9) == 0 &&
                     (!best || strcmp(best, "owner") != 0))
                best = "publisher";
            else if (role_len == 6 && strncmp(line, "member", 6) == 0 && op->whitelist && !best)
                best = "member";
        }
        line = end ? end + 1 : NULL;
    }
    return best;
}

static bool publisher_acl_wanted(const struct publisher_op *op)
{
    for (const char *line = op->acl; line && *line;) {
        const char *end = strchr(line, '\n');

        if (strncmp(line, "owner ", 6) == 0 || strncmp(line, "publisher ", 10) == 0 ||
            (op->whitelist && strncmp(line, "member ", 7) == 0))
            return true;
        line = end ? end + 1 : NULL;
    }
    return false;
}

static bool publisher_add_change(struct publisher_op *op, const char *jid, size_t len,
                                 const char *affiliation)
{
    char *copy;

    if (op->changes_count == op->changes_cap) {
        size_t cap = op->changes_cap ? op->changes_cap * 2 : 8;
        struct publisher_affiliation *grown = realloc(op->changes, cap * sizeof(*grown));

        if (!grown)
            return false;
        op->changes = grown;
        op->changes_cap = cap;
    }
    if (!(copy = strndup(jid, len)))
        return false;
    op->changes[op->changes_count++] = (struct publisher_affiliation){ copy, affiliation };
    return true;
}

/* From the affiliations the service reported, the changes that make them
 * the acl's (the component's own ownership stays). */
static void publisher_affiliations_diff(struct publisher *p, struct publisher_op *op,
                                        xmpp_stanza_t *reply)
{
    xmpp_stanza_t *pubsub = xmpp_stanza_get_child_by_name(reply, "pubsub");
    xmpp_stanza_t *list = pubsub ? xmpp_stanza_get_child_by_name(pubsub, "affiliations") : NULL;

    for (size_t i = 0; i < op->changes_count; i++)
        free(op->changes[i].jid);
    op->changes_count = 0;
    /* Present now: "none" where the acl says nothing, corrected where it
     * says otherwise. */
    for (xmpp_stanza_t *a = list ? xmpp_stanza_get_children(list) : NULL; a;
         a = xmpp_stanza_get_next(a)) {
        const char *jid = xmpp_stanza_is_tag(a) ? xmpp_stanza_get_attribute(a, "jid") : NULL;
        const char *have = jid ? xmpp_stanza_get_attribute(a, "affiliation") : NULL;
        const char *want;

        if (!jid || !have || strcasecmp(jid, p->config->xmpp_component) == 0)
            continue;
        want = publisher_acl_affiliation(op, jid, strlen(jid));
        if (!want)
            want = "none";
        if (strcmp(have, want) != 0 && strcmp(have, "none") != 0)
            publisher_add_change(op, jid, strlen(jid), want);
    }
    /* Wanted and absent. */
    for (const char *line = op->acl; line && *line;) {
        const char *end = strchr(line, '\n');
        const char *sp = strchr(line, ' ');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        bool present = false;

        if (sp && sp < line + len) {
            const char *jid = sp + 1;
            size_t jid_len = (size_t)(line + len - jid);
            const char *want = publisher_acl_affiliation(op, jid, jid_len);

            for (xmpp_stanza_t *a = list ? xmpp_stanza_get_children(list) : NULL; a && !present;
                 a = xmpp_stanza_get_next(a)) {
                const char *have = xmpp_stanza_is_tag(a) ? xmpp_stanza_get_attribute(a, "jid")
                                                         : NULL;

                present = have && strlen(have) == jid_len && strncasecmp(have, jid, jid_len) == 0;
            }
            for (size_t i = 0; i < op->changes_count && !present; i++)
                present = strlen(op->changes[i].jid) == jid_len &&
                          strncasecmp(op->changes[i].jid, jid, jid_len) == 0;
            if (!present && want)
                publisher_add_change(op, jid, jid_len, want);
        }
        line = end ? end + 1 : NULL;
    }
}

/* Errors that another attempt may not meet. */
static bool publisher_error_transient(const char *type, const char *condition)
{
    static const char *const transient[] = {
        "remote-server-not-found", "remote-server-timeout", "service-unavailable",
        "internal-server-error", "resource-constraint", "recipient-unavailable",
    };

    if (type && strcmp(type, "wait") == 0)
        return true;
    for (size_t i = 0; condition && i < sizeof(transient) / sizeof(*transient); i++)
        if (strcmp(condition, transient[i]) == 0)
            return true;
    return false;
}

/* "condition (pubsub condition): text" of an error reply. */
static void publisher_error_text(xmpp_stanza_t *reply, char *out, size_t len)
{
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(reply, "error");
    const char *condition = stanza_error_condition(reply);
    const char *extra = NULL;
    char *text = NULL;

    for (xmpp_stanza_t *c = error ? xmpp_stanza_get_children(error) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *ns = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_ns(c) : NULL;

        if (!ns)
            continue;
        if (strcmp(ns, XMPP_NS_STANZAS) == 0 && strcmp(xmpp_stanza_get_name(c), "text") == 0)
            text = xmpp_stanza_get_text(c);
        else if (strcmp(ns, XMPP_NS_STANZAS) != 0)
            extra = xmpp_stanza_get_name(c);
    }
    snprintf(out, len, "%s%s%s%s%s%s", condition ? condition : "undefined-condition",
             extra ? " (" : "", extra ? extra : "", extra ? ")" : "", text ? ": " : "",
             text ? text : "");
    if (text)
        xmpp_free(xmpp_stanza_get_context(reply), text);
}

static void publisher_on_result(struct publisher *p, struct publisher_op *op,
                                xmpp_stanza_t *reply, uint64_t now)
{
    const struct publisher_step *s = &op->steps[op->step];
    const char *type = xmpp_stanza_get_type(reply);

    if (strcmp(type, "result") == 0) {
        if (s->kind == STEP_AFFILIATIONS_GET) {
            publisher_affiliations_diff(p, op, reply);
            if (op->changes_count > 0 &&
                !publisher_op_insert_step(op, STEP_AFFILIATIONS_SET, s->feed)) {
                publisher_op_park(p, op, "too many steps");
                return;
            }
        }
        op->step++;
        publisher_op_advance(p, op, now);
        return;
    }

    /* type='error' */
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(reply, "error");
    const char *error_type = error ? xmpp_stanza_get_type(error) : NULL;
    const char *condition = stanza_error_condition(reply);
    char why[400], text[300];

    publisher_error_text(reply, text, sizeof(text));
    if (condition && s->kind == STEP_CREATE && strcmp(condition, "conflict") == 0) {
        /* The node exists: make its configuration and affiliations ours. */
        bool has_affiliations = false;

        for (int i = op->step + 1; i < op->steps_count; i++)
            if (op->steps[i].kind == STEP_AFFILIATIONS_GET && op->steps[i].feed == s->feed)
                has_affiliations = true;
        if ((!has_affiliations && !publisher_op_insert_step(op, STEP_AFFILIATIONS_GET, s->feed)) ||
            !publisher_op_insert_step(op, STEP_CONFIGURE, s->feed)) {
            publisher_op_park(p, op, "too many steps");
            return;
        }
        op->step++;
        publisher_op_advance(p, op, now);
        return;
    }
    if (condition && strcmp(condition, "item-not-found") == 0 &&
        (s->kind == STEP_DELETE || s->kind == STEP_RETRACT)) {
        /* Gone already: what was asked for holds. */
        op->step++;
        publisher_op_advance(p, op, now);
        return;
    }
    snprintf(why, sizeof(why), "%s %s: %s", publisher_step_names[s->kind],
             s->feed ? op->feed : op->node, text);
    if (publisher_error_transient(error_type, condition))
        publisher_op_retry(p, op, why);
    else
        publisher_op_park(p, op, why);
}

static int publisher_on_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct publisher *p = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    const char *id = xmpp_stanza_get_id(stanza);

    (void)conn;
    if (!type || !id || strncmp(id, "pub", 3) != 0 ||
        (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return 1;
    for (size_t i = 0; i < p->ops_count; i++) {
        struct publisher_op *op = p->ops[i];

        if (op->started && !op->finished && strcmp(op->iq_id, id) == 0) {
            publisher_on_result(p, op, stanza, clock_now_ms());
            break;
        }
    }
    /* An answer to an IQ already given up on is dropped. */
    return 1;
}

/* ------------------------------------------------------------ fetching */

static char *publisher_strdup(const char *s, bool *failed)
{
    char *copy = strdup(s ? s : "");

    if (!copy)
        *failed = true;
    return copy;
}

/* Builds the op of one row; NULL when out of memory or the node id does
 * not fit (then the row is parked). */
static int publisher_on_row(const struct catalog_outbox_row *row, void *data)
{
    struct publisher *p = data;
    struct publisher_op *op = calloc(1, sizeof(*op));
    char node[1024], parent[1024], feed[1024];
    bool failed = false;
    const char *action = row->action;

    if (!op)
        return FR_ENOMEM;
    op->id = row->id;
    op->attempts = row->attempts;
    op->root = *row->path == '\0';
    op->collection = row->is_dir || op->root;
    op->whitelist = row->whitelist;
    op->entry_id = row->entry_id;
    op->revision_id = row->revision_id;
    snprintf(op->item, sizeof(op->item), "%d", row->revision);
    op->action = publisher_strdup(action, &failed);
    op->key = publisher_strdup(row->node, &failed);
    op->path = publisher_strdup(row->path, &failed);
    op->acl = publisher_strdup(row->acl, &failed);
    op->title = publisher_strdup(op->root ? row->repo_title : row->name, &failed);
    op->description = publisher_strdup(op->root ? row->repo_description : "", &failed);
    if (pubsub_node_id(node, sizeof(node), row->repo, row->path, NULL) < 0 ||
        pubsub_node_id(feed, sizeof(feed), row->repo, "", PUBSUB_FEED_SUFFIX) < 0 ||
        (!op->root && pubsub_parent_node_id(parent, sizeof(parent), row->repo, row->path) < 0)) {
        op->node = publisher_strdup(row->node, &failed);
        p->ops[p->ops_count++] = op;
        publisher_op_park(p, op, "the node id would be longer than 1023 bytes");
        return failed ? FR_ENOMEM : 0;
    }
    op->node = publisher_strdup(node, &failed);
    op->feed = publisher_strdup(feed, &failed);
    op->parent = op->root ? NULL : publisher_strdup(parent, &failed);
    if (failed) {
        publisher_op_free(op);
        return FR_ENOMEM;
    }
    p->ops[p->ops_count++] = op;

    if (strcmp(action, "create_collection") == 0 || strcmp(action, "create_leaf") == 0) {
        bool acl = publisher_acl_wanted(op);

        op->collection = strcmp(action, "create_collection") == 0;
        publisher_op_plan(op, STEP_CREATE, false);
        if (acl)
            publisher_op_plan(op, STEP_AFFILIATIONS_GET, false);
        if (op->root) {
            publisher_op_plan(op, STEP_CREATE, true);
            if (acl)
                publisher_op_plan(op, STEP_AFFILIATIONS_GET, true);
        }
    } else if (strcmp(action, "configure_node") == 0 ||
               strcmp(action, "set_affiliations") == 0) {
        enum publisher_step_kind kind = action[0] == 'c' ? STEP_CONFIGURE : STEP_AFFILIATIONS_GET;

        if (op->root && !row->expanded) {
            /* Repository-wide: one row per node, in the catalog. */
            int error = catalog_outbox_expand(p->catalog, op->id);

            op->finished = true; /* dropped without an outcome: the catalog has it */
            if (error != 0)
                return error;
            p->dirty = true;
            return 0;
        }
        publisher_op_plan(op, kind, false);
        if (op->root)
            publisher_op_plan(op, kind, true);
    } else if (strcmp(action, "publish_item") == 0 || strcmp(action, "publish_feed") == 0) {
        xmpp_ctx_t *ctx = xmpp_conn_get_context(p->conn);
        char sipub_id[32];
        const struct pubsub_revision rev = {
            .name = row->name, .size = row->size, .modified = row->modified,
            .mime = row->mime ? row->mime : "application/octet-stream",
            .description = row->description,
            .sha256_hex = row->sha256_hex, .sha1_hex = row->sha1_hex, .md5_hex = row->md5_hex,
            .sha512_hex = row->sha512_hex, .crc32_hex = row->crc32_hex,
            .sha256_b64 = row->sha256_b64, .sha1_b64 = row->sha1_b64,
            .sha512_b64 = row->sha512_b64,
            .sipub_from = p->config->xmpp_component, .sipub_id = sipub_id,
        };

        if (row->revision_id == 0 || !row->modified) {
            publisher_op_park(p, op, "the revision is no longer in the catalog");
            return 0;
        }
        if (row->withdrawn) {
            /* Withdrawn before it went out: nothing to announce. */
            publisher_op_done(p, op);
            return 0;
        }
        snprintf(sipub_id, sizeof(sipub_id), "rev-%" PRId64, row->revision_id);
        if (!(op->entry = pubsub_revision_entry(ctx, &rev)))
            return FR_ENOMEM;
        if (action[8] == 'i')
            publisher_op_plan(op, STEP_PUBLISH, false);
        publisher_op_plan(op, STEP_PUBLISH, true);
    } else if (strcmp(action, "retract_item") == 0) {
        if (row->revision == 0) {
            publisher_op_park(p, op, "no revision number to retract");
            return 0;
        }
        publisher_op_plan(op, STEP_RETRACT, false);
    } else if (strcmp(action, "delete_node") == 0) {
        publisher_op_plan(op, STEP_DELETE, false);
        if (op->root)
            publisher_op_plan(op, STEP_DELETE, true);
    } else {
        publisher_op_park(p, op, "unknown action");
    }
    return 0;
}

/* Whether a and b are one node or one lies below the other. */
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
                                 (int)(PUBLISHER_OPS_MAX - p->ops_count), publisher_on_row, p,
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
                     publisher_step_names[op->steps[op->step].kind],
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
