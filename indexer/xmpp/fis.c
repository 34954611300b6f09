/*
 * xmpp/fis.c - XEP-0329 <file/> elements and request paths.
 *
 * A path is checked here once, as text: the daemon resolves it in the
 * catalog only, never on the file system, and a path that could mean
 * anything other than the entry it spells is refused before it gets there.
 */
#include "xmpp/fis.h"
#include "fr_error.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

xmpp_stanza_t *fis_file_add(xmpp_stanza_t *parent, const struct fis_file *file)
{
    xmpp_stanza_t *el = stanza_add_element(parent, "file", XMPP_NS_JINGLE_FT);
    char num[24];

    if (!el || !stanza_add_text_element(el, "name", NULL, file->name))
        return NULL;
    if (file->date && !stanza_add_text_element(el, "date", NULL, file->date))
        return NULL;
    if (file->desc && !stanza_add_text_element(el, "desc", NULL, file->desc))
        return NULL;
    if (file->media_type && !stanza_add_text_element(el, "media-type", NULL, file->media_type))
        return NULL;
    if (file->size >= 0) {
        snprintf(num, sizeof(num), "%" PRId64, file->size);
        if (!stanza_add_text_element(el, "size", NULL, num))
            return NULL;
    }
    for (size_t i = 0; i < file->hashes_count && i < FIS_HASHES_MAX; i++) {
        xmpp_stanza_t *hash = stanza_add_text_element(el, "hash", XMPP_NS_HASHES,
                                                      file->hashes[i].value);

        if (!hash || xmpp_stanza_set_attribute(hash, "algo", file->hashes[i].algo) != XMPP_EOK)
            return NULL;
    }
    return el;
}

/* The text of element el, borrowed ("" when empty). */
static const char *fis_text(xmpp_stanza_t *el)
{
    xmpp_stanza_t *t = xmpp_stanza_get_children(el);
    const char *text = t ? xmpp_stanza_get_text_ptr(t) : NULL;

    return text ? text : "";
}

int fis_file_parse(struct fis_file *out, xmpp_stanza_t *el)
{
    memset(out, 0, sizeof(*out));
    out->size = -1;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(el); c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);

        if (!xmpp_stanza_is_tag(c))
            continue;
        if (strcmp(name, "name") == 0)
            out->name = fis_text(c);
        else if (strcmp(name, "date") == 0)
            out->date = fis_text(c);
        else if (strcmp(name, "desc") == 0)
            out->desc = fis_text(c);
        else if (strcmp(name, "media-type") == 0)
            out->media_type = fis_text(c);
        else if (strcmp(name, "size") == 0)
            out->size = strtoll(fis_text(c), NULL, 10);
        else if (strcmp(name, "hash") == 0 && out->hashes_count < FIS_HASHES_MAX &&
                 xmpp_stanza_get_attribute(c, "algo")) {
            out->hashes[out->hashes_count].algo = xmpp_stanza_get_attribute(c, "algo");
            out->hashes[out->hashes_count++].value = fis_text(c);
        }
    }
    return out->name ? 0 : FR_EINVAL;
}

int fis_node_split(const char *node, char *repo, char *path, const char **why)
{
    size_t len = strlen(node), seg = 0;
    const char *slash;

    *why = NULL;
    if (len == 0)
        *why = "the node names no path";
    else if (len > FIS_PATH_MAX)
        *why = "the path is too long";
    for (size_t i = 0; !*why && i <= len; i++) {
        unsigned char c = (unsigned char)node[i];

        if (c == '/' || c == '\0') {
            if (seg == 0)
                *why = "the path has an empty segment";
            else if ((seg == 1 && node[i - 1] == '.') ||
                     (seg == 2 && node[i - 1] == '.' && node[i - 2] == '.'))
                *why = "the path may not contain \".\" or \"..\"";
            else if (seg > FIS_NAME_MAX)
                *why = "a name in the path is too long";
            seg = 0;
        } else if (c < 0x20 || c == 0x7f) {
            *why = "the path contains a control character";
        } else {
            seg++;
        }
    }
    if (*why)
        return FR_EINVAL;
    slash = strchr(node, '/');
    if (!slash) {
        memcpy(repo, node, len + 1);
        path[0] = '\0';
    } else {
        memcpy(repo, node, (size_t)(slash - node));
        repo[slash - node] = '\0';
        memcpy(path, slash + 1, len - (size_t)(slash - node));
    }
    return 0;
}
