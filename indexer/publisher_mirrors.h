/*
 * publisher_mirrors.h - the verified mirrors of a revision (the outbox
 * row's lines, catalog/mirror.h) as XEP-0214 <mirror/> settings.
 */
#ifndef FILEREPO_PUBLISHER_MIRRORS_H
#define FILEREPO_PUBLISHER_MIRRORS_H

#include <stddef.h>

#include "xmpp/pubsub.h"

struct publisher_mirror_text;

/** A revision's mirrors, ready for pubsub_revision_entry(). */
struct publisher_mirrors {
    struct pubsub_mirror *items;        /* count of them, strings in text */
    size_t count;                       /* how many */
    struct publisher_mirror_text *text; /* owned storage */
};

/**
 * Reads `lines` ("type\turl\tdescription\tuser\tpassword_file" each) for
 * file `path`: a webdav mirror is advertised as the http or https server it
 * is, ref is the URL's path below the server plus the file's path
 * (percent-encoded), and a public password is read from its file (left out
 * when unreadable).  Lines that cannot be read are skipped.
 * Returns 0 or FR_ENOMEM (out is then empty).
 */
int publisher_mirrors_parse(struct publisher_mirrors *out, const char *lines, const char *path);

/** Frees what publisher_mirrors_parse() made and empties it. */
void publisher_mirrors_clear(struct publisher_mirrors *mirrors);

#endif
