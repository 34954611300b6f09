/*
 * mirrors/metalink.h - Metalink 4 (RFC 5854) documents of one revision: its
 * name, size, hashes and the verified mirror URLs, for download managers.
 */
#ifndef FILEREPO_MIRRORS_METALINK_H
#define FILEREPO_MIRRORS_METALINK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** RFC 5854's namespace. */
#define METALINK_NS "urn:ietf:params:xml:ns:metalink"

/** One revision of a file as a Metalink <file/>. */
struct metalink_file {
    const char *name;          /* the file's path in the repository (RFC 5854 allows '/') */
    int64_t size;              /* bytes */
    const char *published;     /* RFC 3339 time of the revision, NULL: none */
    const char *description;   /* NULL or "": none */
    const char *sha256_hex, *sha1_hex, *md5_hex, *sha512_hex; /* NULL: not recorded */
    const char *const *urls;   /* verified mirror URLs of the file, best first */
    size_t urls_count;         /* how many */
    const char *generator;     /* "filerepo/VERSION" */
};

/**
 * Writes the Metalink 4 document of `file` to `out`, text escaped for XML.
 * Returns 0, or FR_ERROR when writing failed.
 */
int metalink_write(FILE *out, const struct metalink_file *file);

#endif
