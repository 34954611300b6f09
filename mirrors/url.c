/*
 * url.c - mirror types and base URLs (see url.h).  A small parser of its
 * own rather than a general URL library: a mirror's base URL is a narrow
 * thing (scheme, host, optional port, path), and everything outside it
 * (credentials, a query, a fragment, "..") is refused with a sentence that
 * says what to do instead.
 */
#include "url.h"
#include "fr_error.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const mirror_type_names[] = {
    [MIRROR_HTTP] = "http", [MIRROR_HTTPS] = "https", [MIRROR_FTP] = "ftp",
    [MIRROR_SFTP] = "sftp", [MIRROR_SMB] = "smb",     [MIRROR_WEBDAV] = "webdav",
};

#define MIRROR_TYPES_COUNT (sizeof(mirror_type_names) / sizeof(*mirror_type_names))

int mirror_type_parse(enum mirror_type *out, const char *name)
{
    for (size_t i = 0; i < MIRROR_TYPES_COUNT; i++)
        if (strcmp(name, mirror_type_names[i]) == 0) {
            *out = (enum mirror_type)i;
            return 0;
        }
    return FR_EINVAL;
}

const char *mirror_type_name(enum mirror_type type)
{
    return (size_t)type < MIRROR_TYPES_COUNT ? mirror_type_names[type] : "?";
}

static int mirror_url_fail(char *out, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int mirror_url_fail(char *out, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    out[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return FR_EINVAL;
}

static bool mirror_host_ok(const char *host, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    if (host[0] == '[')
        return n > 2 && host[n - 1] == ']' &&
               strspn(host + 1, "0123456789abcdefABCDEF:.") == n - 2;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)host[i]) && host[i] != '-' && host[i] != '.')
            return false;
    return host[0] != '.' && host[0] != '-';
}

int mirror_url_check(char *out, size_t len, enum mirror_type *type_out, const char *url,
                     const char *type, char *err, size_t errlen)
{
    char scheme[8];
    const char *p, *authority, *path, *colon, *host_end;
    enum mirror_type t = MIRROR_HTTP;
    size_t n, host_len;
    long port = 0;
    int written;

    if (len == 0)
        return FR_EINVAL;
    out[0] = '\0';
    if (type && mirror_type_parse(&t, type) != 0)
        return mirror_url_fail(out, err, errlen,
                               "unknown mirror type \"%s\": expected http, https, ftp, sftp, "
                               "smb or webdav", type);
    n = strlen(url);
    if (n == 0 || n > MIRROR_URL_MAX)
        return mirror_url_fail(out, err, errlen, "a mirror URL has 1 to %d bytes",
                               MIRROR_URL_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f || url[i] == '\\' || url[i] == '"')
            return mirror_url_fail(out, err, errlen,
                                   "\"%s\": blanks, control characters, '\\' and '\"' are not "
                                   "allowed in a URL (percent-encode them)", url);
    p = strstr(url, "://");
    n = p ? (size_t)(p - url) : 0;
    if (!p || n == 0 || n >= sizeof(scheme))
        return mirror_url_fail(out, err, errlen,
                               "\"%s\" is not a URL: expected SCHEME://HOST[:PORT]/PATH/", url);
    for (size_t i = 0; i < n; i++)
        scheme[i] = (char)tolower((unsigned char)url[i]);
    scheme[n] = '\0';
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0 &&
        strcmp(scheme, "ftp") != 0 && strcmp(scheme, "sftp") != 0 && strcmp(scheme, "smb") != 0)
        return mirror_url_fail(out, err, errlen,
                               "\"%s\": scheme \"%s\" is not one of http, https, ftp, sftp, smb",
                               url, scheme);
    if (!type)
        mirror_type_parse(&t, scheme);
    else if (t == MIRROR_WEBDAV ? strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0
                                : strcmp(scheme, mirror_type_names[t]) != 0)
        return mirror_url_fail(out, err, errlen, "\"%s\": a %s mirror needs a%s URL, not %s://",
                               url, mirror_type_names[t],
                               t == MIRROR_WEBDAV ? "n http:// or https://"
                               : t == MIRROR_HTTP || t == MIRROR_HTTPS ? "n http(s)://"
                               : " matching",
                               scheme);
    if (strpbrk(url, "?#"))
        return mirror_url_fail(out, err, errlen,
                               "\"%s\": a mirror's base URL has no query or fragment", url);
    authority = p + 3;
    path = strchr(authority, '/');
    if (!path)
        path = authority + strlen(authority);
    if (memchr(authority, '@', (size_t)(path - authority)))
        return mirror_url_fail(out, err, errlen,
                               "\"%s\": no credentials in the URL; give --user and "
                               "--password-file instead", url);
    host_end = path;
    colon = NULL;
    if (authority[0] == '[') {
        const char *close = memchr(authority, ']', (size_t)(path - authority));

        if (close && close + 1 < path && close[1] == ':')
            colon = close + 1;
        else if (close && close + 1 != path)
            return mirror_url_fail(out, err, errlen, "\"%s\": bad host", url);
    } else {
        colon = memchr(authority, ':', (size_t)(path - authority));
    }
    if (colon) {
        char *end;

        host_end = colon;
        port = strtol(colon + 1, &end, 10);
        if (end != path || colon + 1 == path || port < 1 || port > 65535 ||
            !isdigit((unsigned char)colon[1]))
            return mirror_url_fail(out, err, errlen, "\"%s\": the port must be 1 to 65535",
                                   url);
    }
    host_len = (size_t)(host_end - authority);
    if (!mirror_host_ok(authority, host_len))
        return mirror_url_fail(out, err, errlen, "\"%s\": \"%.*s\" is not a host name or address",
                               url, (int)host_len, authority);
    /* No ".." or "." segments: the base must be one directory, as written. */
    for (const char *s = path; *s;) {
        const char *e = strchr(s + 1, '/');
        size_t seg = e ? (size_t)(e - s - 1) : strlen(s + 1);

        if ((seg == 1 && s[1] == '.') || (seg == 2 && s[1] == '.' && s[2] == '.'))
            return mirror_url_fail(out, err, errlen, "\"%s\": no \".\" or \"..\" in the path",
                                   url);
        if (!e)
            break;
        s = e;
    }
    written = snprintf(out, len, "%s://", scheme);
    for (size_t i = 0; i < host_len && (size_t)written + 1 < len; i++)
        out[written++] = (char)tolower((unsigned char)authority[i]);
    out[written < (int)len ? written : (int)len - 1] = '\0';
    if (colon)
        written += snprintf(out + written, len > (size_t)written ? len - (size_t)written : 0,
                            ":%ld", port);
    written += snprintf(out + written, len > (size_t)written ? len - (size_t)written : 0, "%s%s",
                        *path ? path : "/",
                        *path && path[strlen(path) - 1] == '/' ? "" : (*path ? "/" : ""));
    if (written < 0 || (size_t)written >= len || written > MIRROR_URL_MAX)
        return mirror_url_fail(out, err, errlen, "\"%s\": too long", url);
    *type_out = t;
    return 0;
}

int mirror_url_split(struct mirror_url_parts *out, const char *url)
{
    const char *p = strstr(url, "://"), *authority, *path, *colon = NULL, *host_end;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (!p || (size_t)(p - url) >= sizeof(out->scheme))
        return FR_EINVAL;
    memcpy(out->scheme, url, (size_t)(p - url));
    authority = p + 3;
    path = strchr(authority, '/');
    if (!path)
        return FR_EINVAL;
    if (authority[0] == '[') {
        const char *close = memchr(authority, ']', (size_t)(path - authority));

        if (!close)
            return FR_EINVAL;
        if (close[1] == ':')
            colon = close + 1;
    } else {
        colon = memchr(authority, ':', (size_t)(path - authority));
    }
    host_end = colon ? colon : path;
    n = (size_t)(host_end - authority);
    if (n == 0 || n >= sizeof(out->host))
        return FR_EINVAL;
    memcpy(out->host, authority, n);
    if (colon) {
        n = (size_t)(path - colon - 1);
        if (n == 0 || n >= sizeof(out->port))
            return FR_EINVAL;
        memcpy(out->port, colon + 1, n);
    }
    if (strlen(path) >= sizeof(out->path))
        return FR_EINVAL;
    strcpy(out->path, path);
    return 0;
}

int mirror_url_file(char *out, size_t len, const char *base, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(base);

    if (n >= len)
        return -1;
    memcpy(out, base, n);
    for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
        bool plain = isalnum(*s) || strchr("-._~/", *s);

        if (n + (plain ? 1 : 3) >= len)
            return -1;
        if (plain) {
            out[n++] = (char)*s;
        } else {
            out[n++] = '%';
            out[n++] = hex[*s >> 4];
            out[n++] = hex[*s & 15];
        }
    }
    out[n] = '\0';
    return (int)n;
}

bool mirror_description_ok(const char *description)
{
    size_t n = strlen(description);

    if (n > 1024)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)description[i] < ' ' || description[i] == 0x7f)
            return false;
    return true;
}
