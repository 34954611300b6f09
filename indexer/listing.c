/*
 * listing.c - XEP-0329 listings, the XEP-0214 repository list and disco#items,
 * read from the catalog.
 *
 * RSM UIDs are opaque to clients: 'd' (directory) or 'f' (file) followed by
 * the entry's name in hex, which is exactly the (kind, name) key of the
 * catalog's keyset, so a page after or before a UID is one index walk.
 * Names that XML cannot carry (control characters, broken UTF-8) are shown
 * with U+FFFD in their place; their UIDs still name them exactly.
 *
 * Positions (<first index=…/>, <index/> jumps) in a big directory would
 * cost a count from its start.  Instead the service remembers, per big
 * directory, every CHECKPOINTS_EVERY-th key with the directory's version
 * (checkpoints.c), and counts only from the nearest checkpoint.  A page
 * whose answer shows another version is asked again with fresh
 * checkpoints, so positions are always those of one snapshot.  Reading
 * them walks the directory's index once (about half a second for a million
 * entries, on the loop thread), once per version of the directory.
 */
#include "listing.h"
#include "checkpoints.h"
#include "fis.h"
#include "fr_error.h"
#include "log.h"
#include "xmpp/disco.h"
#include "xmpp/fis.h"
#include "xmpp/rsm.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest JID (RFC 7622: three parts of 1023 bytes and two separators). */
#define LISTING_JID_MAX 3071
/* A UID: kind letter, two hex digits per byte of a name. */
#define LISTING_UID_MAX (1 + 2 * FIS_NAME_MAX)

struct listing {
    struct checkpoints *checkpoints; /* big directories' remembered keys, owned */
    char *pubsub;                    /* XEP-0214 <repo address=…/> */
    int page_max;                    /* cap of every reply */
    int verbose_max;                 /* pages up to this size are verbose */
    struct catalog *catalog;         /* borrowed; NULL: none */
};

/* The requester as the catalog's access checks see it. */
struct listing_who {
    char bare[LISTING_JID_MAX + 1];     /* user@domain */
    struct catalog_fis_requester req;  /* points into bare and the stanza */
};

int listing_new(struct listing **out, const struct listing_settings *settings)
{
    struct listing *listing = calloc(1, sizeof(*listing));

    *out = NULL;
    if (!listing || !(listing->pubsub = strdup(settings->pubsub ? settings->pubsub : "")) ||
        checkpoints_new(&listing->checkpoints) != 0) {
        listing_free(listing);
        return FR_ENOMEM;
    }
    listing->page_max = settings->page_max > 0 ? settings->page_max : 1;
    listing->verbose_max = settings->verbose_max;
    *out = listing;
    return 0;
}

void listing_free(struct listing *listing)
{
    if (!listing)
        return;
    checkpoints_free(listing->checkpoints);
    free(listing->pubsub);
    free(listing);
}

void listing_set_catalog(struct listing *listing, struct catalog *catalog)
{
    listing->catalog = catalog;
}

static void listing_who_read(struct listing_who *who, xmpp_stanza_t *iq)
{
    const char *from = xmpp_stanza_get_from(iq);
    const char *slash = from ? strchr(from, '/') : NULL;
    size_t len;

    memset(&who->req, 0, sizeof(who->req));
    who->bare[0] = '\0';
    if (!from || !*from)
        return;
    len = slash ? (size_t)(slash - from) : strlen(from);
    if (len == 0 || len > LISTING_JID_MAX)
        return;
    memcpy(who->bare, from, len);
    who->bare[len] = '\0';
    who->req.bare = who->bare;
    who->req.full = slash ? from : NULL;
}

static xmpp_stanza_t *listing_bad_request(xmpp_stanza_t *iq, const char *why)
{
    return stanza_iq_error(xmpp_stanza_get_context(iq), iq, "modify", "bad-request", why);
}

static xmpp_stanza_t *listing_not_found(xmpp_stanza_t *iq)
{
    return stanza_iq_error(xmpp_stanza_get_context(iq), iq, "cancel", "item-not-found",
                           "no such repository or path");
}

/* The reply for a catalog failure (or FR_ENOTFOUND). */
static xmpp_stanza_t *listing_failure(struct listing *listing, xmpp_stanza_t *iq, int error)
{
    if (error == FR_ENOTFOUND)
        return listing_not_found(iq);
    if (error == FR_ENOMEM)
        return NULL;
    if (listing->catalog)
        log_warn("query", "catalog: %s", catalog_last_error(listing->catalog));
    return stanza_iq_error(xmpp_stanza_get_context(iq), iq, "wait", "internal-server-error",
                           "the catalog is unavailable; try again later");
}

static bool listing_catalog_ready(struct listing *listing)
{
    return listing->catalog && catalog_is_connected(listing->catalog);
}

/* Copies text into out (size len) with what XML cannot carry replaced. */
static const char *listing_xml_text(const char *text, char *out, size_t len)
{
    size_t o = 0;

    if (stanza_text_is_valid(text))
        return text;
    for (const unsigned char *s = (const unsigned char *)text; *s && o + 4 < len; s++) {
        char one[2] = { (char)*s, '\0' };

        if (*s < 0x80 && stanza_text_is_valid(one)) {
            out[o++] = (char)*s;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
        }
    }
    out[o] = '\0';
    return out;
}

static void listing_uid_encode(char *out, bool is_dir, const char *name)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    out[o++] = is_dir ? 'd' : 'f';
    for (const unsigned char *s = (const unsigned char *)name; *s && o + 2 <= LISTING_UID_MAX; s++) {
        out[o++] = hex[*s >> 4];
        out[o++] = hex[*s & 15];
    }
    out[o] = '\0';
}

static int listing_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Reads a UID this service handed out; returns 0 or FR_EINVAL. */
static int listing_uid_decode(const char *uid, bool *is_dir, char *name)
{
    size_t len = strlen(uid), n = 0;

    if (len < 3 || len > LISTING_UID_MAX || len % 2 == 0 || (uid[0] != 'd' && uid[0] != 'f'))
        return FR_EINVAL;
    *is_dir = uid[0] == 'd';
    for (size_t i = 1; i < len; i += 2) {
        int hi = listing_hex_digit(uid[i]), lo = listing_hex_digit(uid[i + 1]);

        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return FR_EINVAL;
        name[n++] = (char)(hi << 4 | lo);
    }
    name[n] = '\0';
    return 0;
}

/* <query xmlns='urn:xmpp:fis:0' [node=…]/> in a new result; NULL: no memory. */
static xmpp_stanza_t *listing_fis_reply(xmpp_stanza_t *iq, const char *node, xmpp_stanza_t **out)
{
    xmpp_stanza_t *reply = stanza_iq_result(xmpp_stanza_get_context(iq), iq);

    *out = reply ? stanza_add_element(reply, "query", XMPP_NS_FIS) : NULL;
    if (!*out || (node && xmpp_stanza_set_attribute(*out, "node", node) != XMPP_EOK)) {
        xmpp_stanza_release(reply);
        return NULL;
    }
    return reply;
}

/* Reads the request's <set/> and checks it against the cap. */
static xmpp_stanza_t *listing_rsm_read(struct listing *listing, xmpp_stanza_t *iq,
                                     xmpp_stanza_t *payload, struct rsm_request *rsm)
{
    const char *why;
    char text[128];

    if (rsm_request_parse(rsm, &why, payload) != 0)
        return listing_bad_request(iq, why);
    if (rsm->max > listing->page_max) {
        snprintf(text, sizeof(text), "<max/> may be at most %d", listing->page_max);
        return listing_bad_request(iq, text);
    }
    if (rsm->max < 0)
        rsm->max = listing->page_max;
    return NULL;
}

/* ---- the repositories: few, configured, paged in memory ---------------- */

struct listing_repos {
    char **names;              /* visible repositories, by name */
    size_t count, alloc;       /* how many, room */
};

static int listing_repos_collect(const struct catalog_fis_repo *repo, void *data)
{
    struct listing_repos *repos = data;

    if (repos->count == repos->alloc) {
        size_t alloc = repos->alloc ? repos->alloc * 2 : 16;
        char **grown = realloc(repos->names, alloc * sizeof(*grown));

        if (!grown)
            return FR_ENOMEM;
        repos->names = grown;
        repos->alloc = alloc;
    }
    if (!(repos->names[repos->count] = strdup(repo->name)))
        return FR_ENOMEM;
    repos->count++;
    return 0;
}

static void listing_repos_clear(struct listing_repos *repos)
{
    for (size_t i = 0; i < repos->count; i++)
        free(repos->names[i]);
    free(repos->names);
}

static xmpp_stanza_t *listing_fis_root(struct listing *listing, xmpp_stanza_t *iq,
                                     const struct listing_who *who, const struct rsm_request *rsm)
{
    struct listing_repos repos = { 0 };
    xmpp_stanza_t *reply = NULL, *el;
    size_t start = 0, end;
    char uid[LISTING_UID_MAX + 1], first[LISTING_UID_MAX + 1] = "", name[FIS_NAME_MAX + 1];
    char shown[4 * FIS_NAME_MAX + 1];
    int error = catalog_fis_repos(listing->catalog, &who->req, listing_repos_collect, &repos);
    bool is_dir;

    if (error != 0) {
        reply = listing_failure(listing, iq, error);
        goto done;
    }
    if (rsm->from == RSM_FROM_AFTER || rsm->from == RSM_FROM_BEFORE) {
        size_t i;

        if (listing_uid_decode(rsm->uid, &is_dir, name) != 0 || !is_dir) {
            reply = listing_bad_request(iq, "the RSM UID is not one this service handed out");
            goto done;
        }
        for (i = 0; i < repos.count && strcmp(repos.names[i], name) != 0; i++)
            ;
        if (i == repos.count) {
            reply = listing_not_found(iq);
            goto done;
        }
        if (rsm->from == RSM_FROM_AFTER)
            start = i + 1;
        else
            start = i > (size_t)rsm->max ? i - (size_t)rsm->max : 0;
        end = rsm->from == RSM_FROM_AFTER ? start + (size_t)rsm->max : i;
    } else if (rsm->from == RSM_FROM_END) {
        start = repos.count > (size_t)rsm->max ? repos.count - (size_t)rsm->max : 0;
        end = repos.count;
    } else {
        start = rsm->from == RSM_FROM_INDEX ? (size_t)rsm->index : 0;
        end = start + (size_t)rsm->max;
    }
    if (start > repos.count)
        start = repos.count;
    if (end > repos.count)
        end = repos.count;
    if (!(reply = listing_fis_reply(iq, NULL, &el)))
        goto done;
    for (size_t i = start; i < end; i++) {
        xmpp_stanza_t *dir = stanza_add_element(el, "directory", NULL);

        if (!dir || xmpp_stanza_set_attribute(dir, "name", listing_xml_text(repos.names[i], shown,
                                                                           sizeof(shown))) != XMPP_EOK)
            goto oom;
        if (i == start)
            listing_uid_encode(first, true, repos.names[i]);
    }
    if (end > start)
        listing_uid_encode(uid, true, repos.names[end - 1]);
    if (rsm_reply_add(el, &(struct rsm_reply){
            .first = end > start ? first : NULL, .first_index = (int64_t)start,
            .last = end > start ? uid : NULL, .count = (int64_t)repos.count }) != 0)
        goto oom;
    goto done;
oom:
    xmpp_stanza_release(reply);
    reply = NULL;
done:
    listing_repos_clear(&repos);
    return reply;
}

/* ---- a directory's page, a file's details ------------------------------ */

struct listing_page {
    xmpp_stanza_t *el;                    /* the <query/> being filled */
    bool verbose;                         /* files with their details */
    const struct catalog_fis_page_info *info; /* the page's size, once known */
    int verbose_max;                      /* with info: verbose up to this many rows */
    char first[LISTING_UID_MAX + 1];        /* UID of the first entry */
    char last[LISTING_UID_MAX + 1];         /* UID of the last entry */
    int rows;                             /* entries added */
};

static int listing_add_entry(const struct catalog_fis_entry *entry, void *data)
{
    struct listing_page *page = data;
    char shown[4 * FIS_NAME_MAX + 1], desc[4096];

    listing_uid_encode(page->rows == 0 ? page->first : page->last, entry->is_dir, entry->name);
    if (page->rows == 0)
        memcpy(page->last, page->first, sizeof(page->last));
    page->rows++;
    if (entry->is_dir) {
        xmpp_stanza_t *dir = stanza_add_element(page->el, "directory", NULL);

        return dir && xmpp_stanza_set_attribute(dir, "name", listing_xml_text(entry->name, shown,
                                                                            sizeof(shown)))
                          == XMPP_EOK ? 0 : FR_ENOMEM;
    }

    struct fis_file file = { .name = listing_xml_text(entry->name, shown, sizeof(shown)),
                             .size = -1 };
    bool verbose = page->verbose || (page->info && page->info->rows <= page->verbose_max);

    if (verbose && entry->has_revision) {
        const char *digests[][2] = { { "sha-256", entry->sha256 }, { "sha-1", entry->sha1 },
                                     { "md5", entry->md5 }, { "sha-512", entry->sha512 } };

        file.size = entry->size;
        file.date = entry->date;
        file.media_type = entry->mime;
        if (*entry->description)
            file.desc = listing_xml_text(entry->description, desc, sizeof(desc));
        for (size_t i = 0; i < sizeof(digests) / sizeof(*digests); i++) {
            if (*digests[i][1]) {
                file.hashes[file.hashes_count].algo = digests[i][0];
                file.hashes[file.hashes_count++].value = digests[i][1];
            }
        }
    }
    return fis_file_add(page->el, &file) ? 0 : FR_ENOMEM;
}

static xmpp_stanza_t *listing_fis_dir(struct listing *listing, xmpp_stanza_t *iq, const char *node,
                                    int64_t dir_id, const struct rsm_request *rsm)
{
    static const enum catalog_fis_from from[] = {
        [RSM_FROM_START] = CATALOG_FIS_START, [RSM_FROM_AFTER] = CATALOG_FIS_AFTER,
        [RSM_FROM_BEFORE] = CATALOG_FIS_BEFORE, [RSM_FROM_END] = CATALOG_FIS_END,
        [RSM_FROM_INDEX] = CATALOG_FIS_INDEX,
    };
    char key[FIS_NAME_MAX + 1];
    struct catalog_fis_page request = { .from = from[rsm->from], .index = rsm->index,
                                        .max = (int)rsm->max, .key_name = key };
    struct catalog_fis_page_info info = { 0 };
    struct listing_page page = { .info = &info, .verbose_max = listing->verbose_max };
    bool positioned = rsm->from == RSM_FROM_AFTER || rsm->from == RSM_FROM_BEFORE ||
                      rsm->from == RSM_FROM_INDEX;
    const struct checkpoints_dir *ranks = NULL;
    xmpp_stanza_t *reply = NULL;
    int error;

    if ((rsm->from == RSM_FROM_AFTER || rsm->from == RSM_FROM_BEFORE) &&
        listing_uid_decode(rsm->uid, &request.key_is_dir, key) != 0)
        return listing_bad_request(iq, "the RSM UID is not one this service handed out");
    if (positioned && !(ranks = checkpoints_find(listing->checkpoints, dir_id))) {
        int64_t count, version;

        error = catalog_fis_dir_stats(listing->catalog, dir_id, &count, &version);
        if (error != 0)
            return listing_failure(listing, iq, error);
        if (count >= CHECKPOINTS_MIN)
            ranks = checkpoints_build(listing->checkpoints, listing->catalog, dir_id);
    }
    for (int attempt = 0;; attempt++) {
        request.base_name = NULL;
        if (ranks)
            checkpoints_base(ranks, &request);
        page.rows = 0;
        if (!(reply = listing_fis_reply(iq, node, &page.el)))
            return NULL;
        error = catalog_fis_children(listing->catalog, dir_id, &request, listing_add_entry,
                                     &page, &info);
        if (error != 0) {
            xmpp_stanza_release(reply);
            return listing_failure(listing, iq, error);
        }
        /* Checkpoints of another version: positions may be off; again. */
        if (!ranks || !request.base_name || info.version == checkpoints_version(ranks) ||
            attempt > 0)
            break;
        xmpp_stanza_release(reply);
        checkpoints_forget(listing->checkpoints, dir_id);
        if (info.count >= CHECKPOINTS_MIN)
            ranks = checkpoints_build(listing->checkpoints, listing->catalog, dir_id);
        else
            ranks = NULL;
    }
    if (rsm_reply_add(page.el, &(struct rsm_reply){
            .first = page.rows ? page.first : NULL, .first_index = info.first_index,
            .last = page.rows ? page.last : NULL, .count = info.count }) != 0) {
        xmpp_stanza_release(reply);
        return NULL;
    }
    return reply;
}

xmpp_stanza_t *listing_fis(struct listing *listing, xmpp_stanza_t *iq, xmpp_stanza_t *payload)
{
    const char *node = xmpp_stanza_get_attribute(payload, "node");
    struct rsm_request rsm;
    struct listing_who who;
    char repo[FIS_PATH_MAX + 1], path[FIS_PATH_MAX + 1];
    const char *why;
    xmpp_stanza_t *reply;
    int64_t id;
    bool is_dir;
    int error;

    if (strcmp(xmpp_stanza_get_name(payload), "query") != 0)
        return listing_bad_request(iq, "expected <query xmlns='urn:xmpp:fis:0'/>");
    if ((reply = listing_rsm_read(listing, iq, payload, &rsm)))
        return reply;
    if (node && fis_node_split(node, repo, path, &why) != 0)
        return listing_bad_request(iq, why);
    if (!listing_catalog_ready(listing))
        return listing_failure(listing, iq, FR_ECONN);
    listing_who_read(&who, iq);
    if (!node)
        return listing_fis_root(listing, iq, &who, &rsm);

    error = catalog_fis_resolve(listing->catalog, &who.req, repo, path, &id, &is_dir);
    if (error != 0)
        return listing_failure(listing, iq, error);
    if (is_dir)
        return listing_fis_dir(listing, iq, node, id, &rsm);

    /* One file: always verbose. */
    struct listing_page page = { .verbose = true };

    if (!(reply = listing_fis_reply(iq, node, &page.el)))
        return NULL;
    error = catalog_fis_file(listing->catalog, id, listing_add_entry, &page);
    if (error != 0) {
        xmpp_stanza_release(reply);
        return listing_failure(listing, iq, error);
    }
    return reply;
}

/* ---- XEP-0214 list and disco#items ------------------------------------- */

struct listing_list {
    struct listing *listing;       /* for the pubsub address */
    xmpp_stanza_t *el;         /* <list/> or disco#items <query/> */
    const char *jid;           /* disco#items: the daemon's JID as asked */
    int left;                  /* room before the cap */
};

static int listing_add_repo(const struct catalog_fis_repo *repo, void *data)
{
    struct listing_list *list = data;
    char name[4 * FIS_NAME_MAX + 1], desc[4096];
    xmpp_stanza_t *el;

    if (list->left-- <= 0)
        return 0;
    el = stanza_add_element(list->el, list->jid ? "item" : "repo", NULL);
    if (!el)
        return FR_ENOMEM;
    if (list->jid)
        return xmpp_stanza_set_attribute(el, "jid", list->jid) == XMPP_EOK &&
               xmpp_stanza_set_attribute(el, "node", listing_xml_text(repo->node, name,
                                                                    sizeof(name))) == XMPP_EOK &&
               xmpp_stanza_set_attribute(el, "name", listing_xml_text(repo->title, desc,
                                                                    sizeof(desc))) == XMPP_EOK
                   ? 0 : FR_ENOMEM;
    return xmpp_stanza_set_attribute(el, "address", list->listing->pubsub) == XMPP_EOK &&
           xmpp_stanza_set_attribute(el, "node", listing_xml_text(repo->node, name,
                                                                sizeof(name))) == XMPP_EOK &&
           xmpp_stanza_set_attribute(el, "description",
                                     listing_xml_text(repo->description, desc, sizeof(desc)))
               == XMPP_EOK ? 0 : FR_ENOMEM;
}

static xmpp_stanza_t *listing_repo_list(struct listing *listing, xmpp_stanza_t *iq, bool disco)
{
    xmpp_stanza_t *reply, *top;
    struct listing_list list = { .listing = listing, .left = listing->page_max };
    struct listing_who who;
    int error;

    if (!listing_catalog_ready(listing))
        return listing_failure(listing, iq, FR_ECONN);
    listing_who_read(&who, iq);
    reply = stanza_iq_result(xmpp_stanza_get_context(iq), iq);
    if (!reply)
        return NULL;
    if (disco) {
        top = list.el = stanza_add_element(reply, "query", XMPP_NS_DISCO_ITEMS);
        list.jid = xmpp_stanza_get_to(iq) ? xmpp_stanza_get_to(iq) : "";
    } else {
        top = stanza_add_element(reply, "fileshare", XMPP_NS_FILESHARE);
        list.el = top ? stanza_add_element(top, "list", NULL) : NULL;
    }
    if (!top || !list.el) {
        xmpp_stanza_release(reply);
        return NULL;
    }
    error = catalog_fis_repos(listing->catalog, &who.req, listing_add_repo, &list);
    if (error != 0) {
        xmpp_stanza_release(reply);
        return listing_failure(listing, iq, error);
    }
    return reply;
}

xmpp_stanza_t *listing_fileshare(struct listing *listing, xmpp_stanza_t *iq, xmpp_stanza_t *payload)
{
    xmpp_stanza_t *list = stanza_first_element(payload);

    if (strcmp(xmpp_stanza_get_name(payload), "fileshare") != 0 || !list ||
        strcmp(xmpp_stanza_get_name(list), "list") != 0)
        return listing_bad_request(iq, "expected <fileshare><list/></fileshare>");
    return listing_repo_list(listing, iq, false);
}

xmpp_stanza_t *listing_disco_items(struct listing *listing, xmpp_stanza_t *iq,
                                 xmpp_stanza_t *payload)
{
    if (xmpp_stanza_get_attribute(payload, "node"))
        return listing_not_found(iq);
    return listing_repo_list(listing, iq, true);
}

xmpp_stanza_t *listing_node_check(struct listing *listing, xmpp_stanza_t *iq, const char *node)
{
    char repo[FIS_PATH_MAX + 1], path[FIS_PATH_MAX + 1];
    struct listing_who who;
    const char *why;
    int64_t id;
    bool is_dir;
    int error;

    if (fis_node_split(node, repo, path, &why) != 0)
        return listing_bad_request(iq, why);
    if (!listing_catalog_ready(listing))
        return listing_failure(listing, iq, FR_ECONN);
    listing_who_read(&who, iq);
    error = catalog_fis_resolve(listing->catalog, &who.req, repo, path, &id, &is_dir);
    return error == 0 ? NULL : listing_failure(listing, iq, error);
}
