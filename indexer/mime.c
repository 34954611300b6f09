/*
 * mime.c - extension -> media type, from /etc/mime.types plus a few
 * release-directory kinds.
 *
 * The table is read once into a sorted array of (extension, type) pairs and
 * looked up with bsearch; it is never changed afterwards, so lookups need no
 * lock.  Built-in entries are added before the file's, and a later entry for
 * the same extension does not replace an earlier one, so ours win.
 */
#include "mime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIME_DEFAULT "application/octet-stream"
#define MIME_SYSTEM_TABLE "/etc/mime.types"

struct mime_pair {
    char *ext;    /* lower case, without the dot */
    char *type;   /* media type */
    size_t order; /* position of addition: the first of equal exts wins */
};

struct mime {
    struct mime_pair *pairs; /* sorted by ext */
    size_t count;            /* entries */
    size_t cap;              /* allocated */
};

static const struct { const char *ext, *type; } mime_builtin[] = {
    { "bz2", "application/x-bzip2" },
    { "lz", "application/x-lzip" },
    { "lzma", "application/x-lzma" },
    { "zst", "application/zstd" },
    { "xz", "application/x-xz" },
    { "asc", "application/pgp-signature" }, /* release.tar.xz.asc: a detached signature */
    { "sig", "application/pgp-signature" },
    { "minisig", "text/plain" },
    { "sha256", "text/plain" },
    { "sha512", "text/plain" },
    { "sha1", "text/plain" },
    { "md5", "text/plain" },
    { "sha256sum", "text/plain" },
    { "sha512sum", "text/plain" },
    { "whl", "application/zip" },
    { "crate", "application/gzip" },
    { "gem", "application/x-tar" },
};

static int mime_add(struct mime *mime, const char *ext, size_t ext_len, const char *type,
                    size_t type_len)
{
    struct mime_pair *p;

    if (mime->count == mime->cap) {
        size_t cap = mime->cap ? mime->cap * 2 : 1024;
        struct mime_pair *grown = realloc(mime->pairs, cap * sizeof(*grown));

        if (!grown)
            return FR_ENOMEM;
        mime->pairs = grown;
        mime->cap = cap;
    }
    p = &mime->pairs[mime->count];
    p->order = mime->count;
    p->ext = strndup(ext, ext_len);
    p->type = strndup(type, type_len);
    if (!p->ext || !p->type) {
        free(p->ext);
        free(p->type);
        return FR_ENOMEM;
    }
    for (char *c = p->ext; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    mime->count++;
    return 0;
}

/* Lines: "type ext ext …"; '#' starts a comment. */
static int mime_load(struct mime *mime, FILE *f)
{
    char line[1024];

    while (fgets(line, sizeof(line), f)) {
        char *p = line, *type;
        size_t type_len;

        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        type = p;
        type_len = strcspn(p, " \t\r\n");
        p += type_len;
        for (;;) {
            size_t len;

            p += strspn(p, " \t\r\n");
            if (*p == '\0' || *p == '#')
                break;
            len = strcspn(p, " \t\r\n");
            if (mime_add(mime, p, len, type, type_len) != 0)
                return FR_ENOMEM;
            p += len;
        }
    }
    return 0;
}

static int mime_pair_cmp_ext(const void *a, const void *b)
{
    return strcmp(((const struct mime_pair *)a)->ext, ((const struct mime_pair *)b)->ext);
}

static int mime_pair_cmp(const void *a, const void *b)
{
    const struct mime_pair *x = a, *y = b;
    int c = strcmp(x->ext, y->ext);

    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

int mime_new(struct mime **out, const char *path)
{
    struct mime *mime = calloc(1, sizeof(*mime));
    size_t kept = 0;
    FILE *f;

    *out = NULL;
    if (!mime)
        return FR_ENOMEM;
    for (size_t i = 0; i < sizeof(mime_builtin) / sizeof(*mime_builtin); i++)
        if (mime_add(mime, mime_builtin[i].ext, strlen(mime_builtin[i].ext), mime_builtin[i].type,
                     strlen(mime_builtin[i].type)) != 0)
            goto fail;
    f = fopen(path ? path : MIME_SYSTEM_TABLE, "r");
    if (f) {
        int error = mime_load(mime, f);

        fclose(f);
        if (error)
            goto fail;
    }
    qsort(mime->pairs, mime->count, sizeof(*mime->pairs), mime_pair_cmp);
    for (size_t i = 0; i < mime->count; i++) {
        if (kept > 0 && strcmp(mime->pairs[kept - 1].ext, mime->pairs[i].ext) == 0) {
            free(mime->pairs[i].ext);
            free(mime->pairs[i].type);
            continue;
        }
        mime->pairs[kept++] = mime->pairs[i];
    }
    mime->count = kept;
    *out = mime;
    return 0;
fail:
    mime_free(mime);
    return FR_ENOMEM;
}

void mime_free(struct mime *mime)
{
    if (!mime)
        return;
    for (size_t i = 0; i < mime->count; i++) {
        free(mime->pairs[i].ext);
        free(mime->pairs[i].type);
    }
    free(mime->pairs);
    free(mime);
}

const char *mime_type(const struct mime *mime, const char *name)
{
    const char *dot = strrchr(name, '.');
    struct mime_pair key, *found;
    char ext[32];
    size_t len;

    /* No extension, a dot-file's name, or an absurd extension. */
    if (!dot || dot == name || dot[1] == '\0' || (len = strlen(dot + 1)) >= sizeof(ext))
        return MIME_DEFAULT;
    for (size_t i = 0; i <= len; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    key.ext = ext;
    found = bsearch(&key, mime->pairs, mime->count, sizeof(*mime->pairs), mime_pair_cmp_ext);
    return found ? found->type : MIME_DEFAULT;
}
