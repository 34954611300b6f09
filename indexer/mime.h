/*
 * mime.h - media types of published files, by file name.
 *
 * The system's table (/etc/mime.types, Debian's media-types) answers for
 * most names; a few kinds common in release directories that it lacks
 * (bz2, lz, checksum files, detached signatures, wheels, crates) are known
 * here.  Anything else is application/octet-stream.
 */
#ifndef FILEREPO_MIME_H
#define FILEREPO_MIME_H

#include "fr_error.h"

struct mime;

/**
 * Loads the table at `path` (NULL: /etc/mime.types).  A missing or
 * unreadable table is not an error: the built-in types still answer.
 * Returns 0 and hands the table to *out, or FR_ENOMEM.
 */
int mime_new(struct mime **out, const char *path);

/** Frees the table; NULL is fine. */
void mime_free(struct mime *mime);

/**
 * Returns the media type for file name `name` (its last extension, case
 * insensitive), or "application/octet-stream".  The string is borrowed from
 * the table.  Safe to call from several threads at once.
 */
const char *mime_type(const struct mime *mime, const char *name);

#endif
