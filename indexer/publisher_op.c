/*
 * publisher_op.c - one outbox row as a list of steps, each one IQ.
 *
 * The plan comes from the row's action; the answers may add steps: a
 * create answered with <conflict/> (the node exists) is followed by a
 * configure that makes its configuration ours and by an affiliation query,
 * and an affiliation query by the changes it shows are needed.  Errors that
 * another attempt may get over retry the row; the others park it.
 */
#include "publisher_internal.h"
#include "publisher_mirrors.h"
#include "clock.h"
#include "fr_error.h"
#include "log.h"
#include "xmpp/pubsub.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const publisher_step_names[] = {
    [STEP_CREATE] = "create",
    [STEP_CONFIGURE] = "configure",
    [STEP_AFFILIATIONS_GET] = "affiliations-get",
    [STEP_AFFILIATIONS_SET] = "affiliations-set",
    [STEP_PUBLISH] = "publish",
    [STEP_RETRACT] = "retract",
    [STEP_DELETE] = "delete",
};

const char *publisher_step_name(enum publisher_step_kind kind)
{
    return publisher_step_names[kind];
}

void publisher_op_free(struct publisher_op *op)
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

/* ------------------------------------------------------------ steps */

/* The configuration of the op's node, or of its repository's change feed
 * (whose title is written into feed_title). */
static void publisher_config_of(const struct publisher *p, const struct publisher_op *op,
                                bool feed, struct pubsub_node_config *c, char *feed_title,
                                size_t len, char *max_items, size_t max_len)
{
    if (feed) {
        snprintf(feed_title, len, "%s: changes", op->title);
        /* Bounded: a node's item list is rewritten on every publish by
         * ejabberd, and the catalog (filerepo log) keeps the history. */
        snprintf(max_items, max_len, "%d", p->config->xmpp_change_feed_max_items);
        *c = (struct pubsub_node_config){
            .collection = false, .parent = NULL, .title = feed_title,
            .description = "one item per new revision in the repository, with its path",
            .whitelist = op->whitelist, .max_items = max_items,
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
    char feed_title[512], max_items[16];
    struct pubsub_affiliation *affiliations;
    xmpp_stanza_t *iq = NULL, *change;
    char feed_item[24];

    snprintf(op->iq_id, sizeof(op->iq_id), "pub%" PRId64 "-%llu", op->id, ++p->iq_serial);
    switch (s->kind) {
    case STEP_CREATE:
        publisher_config_of(p, op, s->feed, &config, feed_title, sizeof(feed_title), max_items,
                            sizeof(max_items));
        iq = pubsub_create_iq(ctx, to, op->iq_id, node, &config);
        break;
    case STEP_CONFIGURE:
        publisher_config_of(p, op, s->feed, &config, feed_title, sizeof(feed_title), max_items,
                            sizeof(max_items));
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

void publisher_op_advance(struct publisher *p, struct publisher_op *op, uint64_t now)
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
    if (feed && !op->feed_on)
        return; /* xmpp.change_feed off */
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
    snprintf(why, sizeof(why), "%s %s on %s: %s", publisher_step_names[s->kind],
             s->feed ? op->feed : op->node, p->config->xmpp_pubsub, text);
    if (publisher_error_transient(error_type, condition))
        publisher_op_retry(p, op, why);
    else
        publisher_op_park(p, op, why);
}

int publisher_on_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
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

/* ------------------------------------------------------------ from a row */

static char *publisher_strdup(const char *s, bool *failed)
{
    char *copy = strdup(s ? s : "");

    if (!copy)
        *failed = true;
    return copy;
}

/* The revision payload of a row that announces one, in op->entry.
 * Returns 0 when it is there to publish, 1 when there is nothing to
 * announce (a withdrawn revision: the row's op is done; a revision gone
 * from the catalog: parked), or FR_ENOMEM.  A create_leaf row's leaf is
 * created either way: only its publish is left out. */
static int publisher_op_entry(struct publisher *p, struct publisher_op *op,
                              const struct catalog_outbox_row *row)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(p->conn);
    bool create = strcmp(op->action, "create_leaf") == 0;
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
    struct publisher_mirrors mirrors;
    struct pubsub_revision with_mirrors = rev;

    if (row->revision_id == 0 || !row->modified) {
        if (create)
            log_warn("publish", "id=%" PRId64 " %s: revision %" PRId64 " is no longer in the"
                     " catalog; creating the node only", op->id, op->node, row->revision_id);
        else
            publisher_op_park(p, op, "the revision is no longer in the catalog");
        return 1;
    }
    if (row->withdrawn) {
        /* Withdrawn before it went out: nothing to announce. */
        if (!create)
            publisher_op_done(p, op);
        return 1;
    }
    snprintf(sipub_id, sizeof(sipub_id), "rev-%" PRId64, row->revision_id);
    /* Only copies the checker verified, on mirrors in good health. */
    if (publisher_mirrors_parse(&mirrors, row->mirrors, row->path) != 0)
        return FR_ENOMEM;
    with_mirrors.mirrors = mirrors.items;
    with_mirrors.mirrors_count = mirrors.count;
    op->entry = pubsub_revision_entry(ctx, &with_mirrors);
    publisher_mirrors_clear(&mirrors);
    return op->entry ? 0 : FR_ENOMEM;
}

/* Builds the op of one row and plans its steps.  A row that cannot be
 * published as it stands (a node id too long, a revision gone) is parked
 * on the spot; one that needs no IQ (a withdrawn revision) is done. */
int publisher_op_from_row(const struct catalog_outbox_row *row, void *data)
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
    op->feed_on = p->config->xmpp_change_feed != 0;
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
        if (!op->collection && row->revision_id != 0) {
            /* A new file's leaf, with its first revision to announce. */
            int ready = publisher_op_entry(p, op, row);

            if (ready < 0)
                return ready;
            if (ready == 0) {
                publisher_op_plan(op, STEP_PUBLISH, false);
                publisher_op_plan(op, STEP_PUBLISH, true);
            }
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
        int ready = publisher_op_entry(p, op, row);

        if (ready < 0)
            return ready;
        if (ready == 0) {
            if (action[8] == 'i')
                publisher_op_plan(op, STEP_PUBLISH, false);
            publisher_op_plan(op, STEP_PUBLISH, true);
        }
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
