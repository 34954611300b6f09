/*
 * xmpp/pubsub.c - building the pubsub stanzas of a file repository
 * (reading its notifications: pubsub_event.c).
 *
 * Node configuration always uses the pubsub#node_config form: servers
 * (ejabberd 23.01 among them) refuse the pubsub#meta-data form that
 * XEP-0214's configuration examples show.
 */
#include "xmpp/pubsub.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends `s` escaped to out[*n]; false when it does not fit. */
static bool pubsub_escape_append(char *out, size_t len, size_t *n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '%') {
            if (*n + 3 >= len)
                return false;
            out[(*n)++] = '%';
            out[(*n)++] = hex[*p >> 4];
            out[(*n)++] = hex[*p & 15];
        } else {
            if (*n + 1 >= len)
                return false;
            out[(*n)++] = (char)*p;
        }
    }
    out[*n] = '\0';
    return true;
}

int pubsub_node_id(char *out, size_t len, const char *repo, const char *path, const char *suffix)
{
    size_t n = 0;

    if (len == 0)
        return -1;
    out[0] = '\0';
    if (!pubsub_escape_append(out, len, &n, repo))
        return -1;
    if (path && *path) {
        if (n + 1 >= len)
            return -1;
        out[n++] = '/';
        out[n] = '\0';
        if (!pubsub_escape_append(out, len, &n, path))
            return -1;
    }
    if (suffix) {
        size_t s = strlen(suffix);

        if (n + s >= len)
            return -1;
        memcpy(out + n, suffix, s + 1);
        n += s;
    }
    return (int)n;
}

int pubsub_parent_node_id(char *out, size_t len, const char *repo, const char *path)
{
    const char *slash;
    char *parent;
    int n;

    if (!path || !*path)
        return -1;
    slash = strrchr(path, '/');
    if (!slash)
        return pubsub_node_id(out, len, repo, "", NULL);
    if (!(parent = strndup(path, (size_t)(slash - path))))
        return -1;
    n = pubsub_node_id(out, len, repo, parent, NULL);
    free(parent);
    return n;
}

/* <name>text</name> under parent; the text is escaped by libstrophe. */
static xmpp_stanza_t *pubsub_add_text(xmpp_stanza_t *parent, const char *name, const char *text)
{
    xmpp_stanza_t *el = stanza_add_element(parent, name, NULL);
    xmpp_stanza_t *body;

    if (!el)
        return NULL;
    if (!text || !*text)
        return el;
    body = xmpp_stanza_new(xmpp_stanza_get_context(parent));
    if (!body)
        return NULL;
    if (xmpp_stanza_set_text(body, text) != XMPP_EOK || xmpp_stanza_add_child(el, body) != XMPP_EOK)
        el = NULL;
    xmpp_stanza_release(body);
    return el;
}

static bool pubsub_add_field(xmpp_stanza_t *form, const char *var, const char *type,
                             const char *value)
{
    xmpp_stanza_t *field = stanza_add_element(form, "field", NULL);

    if (!field || xmpp_stanza_set_attribute(field, "var", var) != XMPP_EOK)
        return false;
    if (type && xmpp_stanza_set_attribute(field, "type", type) != XMPP_EOK)
        return false;
    return pubsub_add_text(field, "value", value ? value : "") != NULL;
}

/* The node_config form; `create` adds what only creation may set. */
static bool pubsub_add_config_form(xmpp_stanza_t *parent, const struct pubsub_node_config *c,
                                   bool create)
{
    xmpp_stanza_t *form = stanza_add_element(parent, "x", XMPP_NS_DATA);

    if (!form || xmpp_stanza_set_type(form, "submit") != XMPP_EOK)
        return false;
    if (!pubsub_add_field(form, "FORM_TYPE", "hidden", XMPP_NS_PUBSUB_NODE_CONFIG))
        return false;
    if (create && !pubsub_add_field(form, "pubsub#node_type", NULL,
                                    c->collection ? "collection" : "leaf"))
        return false;
    if (c->parent && !pubsub_add_field(form, "pubsub#collection", NULL, c->parent))
        return false;
    if (!pubsub_add_field(form, "pubsub#title", NULL, c->title) ||
        !pubsub_add_field(form, "pubsub#description", NULL, c->description) ||
        !pubsub_add_field(form, "pubsub#access_model", NULL, c->whitelist ? "whitelist" : "open"))
        return false;
    if (!c->collection) {
        /* Every revision stays retrievable (unless the caller bounds it);
         * notifications carry it whole. */
        const char *max_items = c->max_items ? c->max_items : "max";

        if (!pubsub_add_field(form, "pubsub#max_items", NULL, max_items) ||
            !pubsub_add_field(form, "pubsub#persist_items", NULL, "1") ||
            !pubsub_add_field(form, "pubsub#deliver_payloads", NULL, "1"))
            return false;
    }
    /* A subscriber coming online is not sent an old item again. */
    return pubsub_add_field(form, "pubsub#notify_retract", NULL, "1") &&
           pubsub_add_field(form, "pubsub#notify_delete", NULL, "1") &&
           pubsub_add_field(form, "pubsub#send_last_published_item", NULL, "never");
}

/* <iq type=… to=… id=…><pubsub xmlns=ns/></iq>; *pubsub gets the element. */
static xmpp_stanza_t *pubsub_iq(xmpp_ctx_t *ctx, const char *type, const char *to, const char *id,
                                const char *ns, xmpp_stanza_t **pubsub)
{
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, type, id);

    if (!iq)
        return NULL;
    if (xmpp_stanza_set_to(iq, to) != XMPP_EOK ||
        !(*pubsub = stanza_add_element(iq, "pubsub", ns))) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

/* Adds <name node=node/> to parent; returns it. */
static xmpp_stanza_t *pubsub_add_node_element(xmpp_stanza_t *parent, const char *name,
                                              const char *node)
{
    xmpp_stanza_t *el = stanza_add_element(parent, name, NULL);

    if (el && xmpp_stanza_set_attribute(el, "node", node) != XMPP_EOK)
        return NULL;
    return el;
}

xmpp_stanza_t *pubsub_create_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                const char *node, const struct pubsub_node_config *config)
{
    xmpp_stanza_t *pubsub, *configure;
    xmpp_stanza_t *iq = pubsub_iq(ctx, "set", to, id, XMPP_NS_PUBSUB, &pubsub);

    if (!iq)
        return NULL;
    if (!pubsub_add_node_element(pubsub, "create", node) ||
        !(configure = stanza_add_element(pubsub, "configure", NULL)) ||
        !pubsub_add_config_form(configure, config, true)) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *pubsub_configure_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                   const char *node, const struct pubsub_node_config *config)
{
    xmpp_stanza_t *pubsub, *configure;
    xmpp_stanza_t *iq = pubsub_iq(ctx, "set", to, id, XMPP_NS_PUBSUB_OWNER, &pubsub);

    if (!iq)
        return NULL;
    if (!(configure = pubsub_add_node_element(pubsub, "configure", node)) ||
        !pubsub_add_config_form(configure, config, false)) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *pubsub_delete_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                const char *node)
{
    xmpp_stanza_t *pubsub;
    xmpp_stanza_t *iq = pubsub_iq(ctx, "set", to, id, XMPP_NS_PUBSUB_OWNER, &pubsub);

    if (iq && !pubsub_add_node_element(pubsub, "delete", node)) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *pubsub_retract_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                 const char *node, const char *item)
{
    xmpp_stanza_t *pubsub, *retract, *el;
    xmpp_stanza_t *iq = pubsub_iq(ctx, "set", to, id, XMPP_NS_PUBSUB, &pubsub);

    if (!iq)
        return NULL;
    if (!(retract = pubsub_add_node_element(pubsub, "retract", node)) ||
        xmpp_stanza_set_attribute(retract, "notify", "true") != XMPP_EOK ||
        !(el = stanza_add_element(retract, "item", NULL)) ||
        xmpp_stanza_set_attribute(el, "id", item) != XMPP_EOK) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *pubsub_publish_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                 const char *node, const char *item, xmpp_stanza_t *payload)
{
    xmpp_stanza_t *pubsub, *publish, *el, *copy = NULL;
    xmpp_stanza_t *iq = pubsub_iq(ctx, "set", to, id, XMPP_NS_PUBSUB, &pubsub);

    if (!iq)
        return NULL;
    if (!(publish = pubsub_add_node_element(pubsub, "publish", node)) ||
        !(el = stanza_add_element(publish, "item", NULL)) ||
        xmpp_stanza_set_attribute(el, "id", item) != XMPP_EOK ||
        !(copy = xmpp_stanza_copy(payload)) || xmpp_stanza_add_child(el, copy) != XMPP_EOK) {
        xmpp_stanza_release(copy);
        xmpp_stanza_release(iq);
        return NULL;
    }
    xmpp_stanza_release(copy);
    return iq;
}

xmpp_stanza_t *pubsub_affiliations_get_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                          const char *node)
{
    xmpp_stanza_t *pubsub;
    xmpp_stanza_t *iq = pubsub_iq(ctx, "get", to, id, XMPP_NS_PUBSUB_OWNER, &pubsub);

    if (iq && !pubsub_add_node_element(pubsub, "affiliations", node)) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *pubsub_affiliations_set_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                          const char *node,
                                          const struct pubsub_affiliation *affiliations,
                                          size_t count)
{
    xmpp_stanza_t *pubsub, *list;
    xmpp_stanza_t *iq = pubsub_iq(ctx, "set", to, id, XMPP_NS_PUBSUB_OWNER, &pubsub);

    if (!iq)
        return NULL;
    if (!(list = pubsub_add_node_element(pubsub, "affiliations", node)))
        goto fail;
    for (size_t i = 0; i < count; i++) {
        xmpp_stanza_t *a = stanza_add_element(list, "affiliation", NULL);

        if (!a || xmpp_stanza_set_attribute(a, "jid", affiliations[i].jid) != XMPP_EOK ||
            xmpp_stanza_set_attribute(a, "affiliation", affiliations[i].affiliation) != XMPP_EOK)
            goto fail;
    }
    return iq;
fail:
    xmpp_stanza_release(iq);
    return NULL;
}

xmpp_stanza_t *pubsub_subscribe_iq(xmpp_ctx_t *ctx, const char *to, const char *id,
                                   const char *node, const char *jid)
{
    xmpp_stanza_t *pubsub, *sub;
    xmpp_stanza_t *iq = pubsub_iq(ctx, "set", to, id, XMPP_NS_PUBSUB, &pubsub);

    if (!iq)
        return NULL;
    if (!(sub = pubsub_add_node_element(pubsub, "subscribe", node)) ||
        xmpp_stanza_set_attribute(sub, "jid", jid) != XMPP_EOK) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

static bool pubsub_add_checksum(xmpp_stanza_t *entry, const char *type, const char *hex)
{
    xmpp_stanza_t *el;

    if (!hex)
        return true;
    el = pubsub_add_text(entry, "checksum", hex);
    return el && xmpp_stanza_set_attribute(el, "type", type) == XMPP_EOK;
}

static bool pubsub_add_hash(xmpp_stanza_t *parent, const char *algo, const char *b64)
{
    xmpp_stanza_t *el;

    if (!b64)
        return true;
    el = pubsub_add_text(parent, "hash", b64);
    return el && xmpp_stanza_set_ns(el, XMPP_NS_HASHES) == XMPP_EOK &&
           xmpp_stanza_set_attribute(el, "algo", algo) == XMPP_EOK;
}

/* The sipub mirror: the daemon itself, as in XEP-0214's example. */
static bool pubsub_add_sipub_mirror(xmpp_stanza_t *mirrors, const struct pubsub_revision *rev)
{
    xmpp_stanza_t *mirror = stanza_add_element(mirrors, "mirror", NULL);
    xmpp_stanza_t *sipub, *file;
    char size[24], description[300];

    snprintf(size, sizeof(size), "%" PRId64, rev->size);
    snprintf(description, sizeof(description), "File transfer from %s", rev->sipub_from);
    if (!mirror || xmpp_stanza_set_attribute(mirror, "type", "sipub") != XMPP_EOK ||
        xmpp_stanza_set_attribute(mirror, "description", description) != XMPP_EOK)
        return false;
    sipub = stanza_add_element(mirror, "sipub", XMPP_NS_SIPUB);
    if (!sipub || xmpp_stanza_set_attribute(sipub, "from", rev->sipub_from) != XMPP_EOK ||
        xmpp_stanza_set_attribute(sipub, "id", rev->sipub_id) != XMPP_EOK ||
        xmpp_stanza_set_attribute(sipub, "mime-type", rev->mime) != XMPP_EOK ||
        xmpp_stanza_set_attribute(sipub, "profile", XMPP_NS_SI_FILE_TRANSFER) != XMPP_EOK)
        return false;
    file = stanza_add_element(sipub, "file", XMPP_NS_SI_FILE_TRANSFER);
    if (!file || xmpp_stanza_set_attribute(file, "name", rev->name) != XMPP_EOK ||
        xmpp_stanza_set_attribute(file, "size", size) != XMPP_EOK ||
        xmpp_stanza_set_attribute(file, "date", rev->modified) != XMPP_EOK)
        return false;
    /* XEP-0096's hash attribute is the MD5 of the file. */
    if (rev->md5_hex && xmpp_stanza_set_attribute(file, "hash", rev->md5_hex) != XMPP_EOK)
        return false;
    return true;
}

/* A mirror that serves the file itself: XEP-0214's attributes. */
static bool pubsub_add_mirror(xmpp_stanza_t *mirrors, const struct pubsub_mirror *m)
{
    xmpp_stanza_t *mirror = stanza_add_element(mirrors, "mirror", NULL);
    const char *const attrs[][2] = {
        { "type", m->type },      { "description", m->description }, { "user", m->user },
        { "pass", m->pass },      { "address", m->address },         { "port", m->port },
        { "ref", m->ref },
    };

    if (!mirror)
        return false;
    for (size_t i = 0; i < sizeof(attrs) / sizeof(*attrs); i++)
        if (attrs[i][1] && *attrs[i][1] &&
            xmpp_stanza_set_attribute(mirror, attrs[i][0], attrs[i][1]) != XMPP_EOK)
            return false;
    return true;
}

xmpp_stanza_t *pubsub_revision_entry(xmpp_ctx_t *ctx, const struct pubsub_revision *rev)
{
    xmpp_stanza_t *entry = xmpp_stanza_new(ctx);
    xmpp_stanza_t *mirrors;
    char size[24];

    if (!entry)
        return NULL;
    snprintf(size, sizeof(size), "%" PRId64, rev->size);
    if (xmpp_stanza_set_name(entry, "entry") != XMPP_EOK ||
        xmpp_stanza_set_ns(entry, XMPP_NS_FILESHARE_ITEM) != XMPP_EOK ||
        !pubsub_add_text(entry, "size", size) ||
        !pubsub_add_text(entry, "modified", rev->modified))
        goto fail;
    /* XEP-0214's checksum names. */
    if (!pubsub_add_checksum(entry, "sha512", rev->sha512_hex) ||
        !pubsub_add_checksum(entry, "sha256", rev->sha256_hex) ||
        !pubsub_add_checksum(entry, "sha1", rev->sha1_hex) ||
        !pubsub_add_checksum(entry, "md5", rev->md5_hex) ||
        !pubsub_add_checksum(entry, "crc32", rev->crc32_hex))
        goto fail;
    if (!pubsub_add_text(entry, "mime", rev->mime) ||
        (rev->description && *rev->description &&
         !pubsub_add_text(entry, "description", rev->description)))
        goto fail;
    if (!(mirrors = stanza_add_element(entry, "mirrors", NULL)) ||
        (rev->sipub_from && !pubsub_add_sipub_mirror(mirrors, rev)))
        goto fail;
    for (size_t i = 0; i < rev->mirrors_count; i++)
        if (!pubsub_add_mirror(mirrors, &rev->mirrors[i]))
            goto fail;
    /* XEP-0300, for clients that verify and request by hash. */
    if (!pubsub_add_hash(entry, "sha-256", rev->sha256_b64) ||
        !pubsub_add_hash(entry, "sha-512", rev->sha512_b64) ||
        !pubsub_add_hash(entry, "sha-1", rev->sha1_b64))
        goto fail;
    return entry;
fail:
    xmpp_stanza_release(entry);
    return NULL;
}

xmpp_stanza_t *pubsub_change_entry(xmpp_ctx_t *ctx, const char *path, const char *node,
                                   const char *revision, xmpp_stanza_t *entry)
{
    xmpp_stanza_t *change = xmpp_stanza_new(ctx);
    xmpp_stanza_t *copy = NULL;

    if (!change)
        return NULL;
    if (xmpp_stanza_set_name(change, "change") != XMPP_EOK ||
        xmpp_stanza_set_ns(change, XMPP_NS_FILEREPO_CHANGE) != XMPP_EOK ||
        xmpp_stanza_set_attribute(change, "path", path) != XMPP_EOK ||
        xmpp_stanza_set_attribute(change, "node", node) != XMPP_EOK ||
        xmpp_stanza_set_attribute(change, "revision", revision) != XMPP_EOK ||
        !(copy = xmpp_stanza_copy(entry)) || xmpp_stanza_add_child(change, copy) != XMPP_EOK) {
        xmpp_stanza_release(copy);
        xmpp_stanza_release(change);
        return NULL;
    }
    xmpp_stanza_release(copy);
    return change;
}
