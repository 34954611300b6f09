/*
 * mirrors/url.h - mirror types and base URLs: checking what an admin typed,
 * and composing the address of one file on a mirror.
 *
 * A mirror is a base URL (http, https, ftp, sftp, smb; a webdav mirror is an
 * http or https URL the daemon fills itself, XEP-0129) under which the
 * repository's tree is served: file "dir/a.tar.xz" of a mirror at
 * "https://m.example.net/pub/" is "https://m.example.net/pub/dir/a.tar.xz".
 * Credentials never go in the URL: they are the mirror's user and password
 * file.  Nothing here touches the network or the catalog.
 */
#ifndef FILEREPO_MIRRORS_URL_H
#define FILEREPO_MIRRORS_URL_H

#include <stdbool.h>
#include <stddef.h>

/** Longest base URL accepted, in bytes. */
#define MIRROR_URL_MAX 2048

/** The mirror types, as the catalog spells them (XEP-0214's names plus webdav). */
enum mirror_type {
    MIRROR_HTTP,
    MIRROR_HTTPS,
    MIRROR_FTP,
    MIRROR_SFTP,
    MIRROR_SMB,
    MIRROR_WEBDAV,
};

/** Parses a type name; returns 0, or FR_EINVAL for a name not in the list. */
int mirror_type_parse(enum mirror_type *out, const char *name);

/** Returns the catalog's name of a type. */
const char *mirror_type_name(enum mirror_type type);

/**
 * Checks base URL `url` for a mirror of type `type` (NULL: the URL's
 * scheme decides) and writes its normal form into out (len bytes): scheme
 * and host in lower case, the path ending in '/'.  *type_out gets the type.
 * On failure writes one line saying what is wrong into err (errlen bytes)
 * and returns FR_EINVAL; out is then "".
 */
int mirror_url_check(char *out, size_t len, enum mirror_type *type_out, const char *url,
                     const char *type, char *err, size_t errlen);

/** The parts of a (checked) base URL. */
struct mirror_url_parts {
    char scheme[8];      /* http, https, ftp, sftp, smb */
    char host[256];      /* host name, IPv4, or [IPv6] with its brackets */
    char port[8];        /* as written, "" when the URL gives none */
    char path[MIRROR_URL_MAX]; /* from the first '/' on, ending in '/' */
};

/** Splits a checked base URL; returns 0, or FR_EINVAL when it is not one. */
int mirror_url_split(struct mirror_url_parts *out, const char *url);

/**
 * Writes the URL of file `path` (relative, '/'-separated, as in the
 * catalog) below base URL `base` into out: each byte outside RFC 3986's
 * unreserved set and '/' is percent-encoded.  Returns the length, or -1
 * when it does not fit.
 */
int mirror_url_file(char *out, size_t len, const char *base, const char *path);

/**
 * Checks a mirror's description as given by an admin: printable, no
 * control characters, at most 1024 bytes.  Returns true when fine.
 */
bool mirror_description_ok(const char *description);

#endif
