/*
 * fuzz_stanza.h - the fuzz targets' common first step: the input bytes
 * as a stanza, parsed by libstrophe in one context kept for the whole run.
 */
#ifndef FILEREPO_FUZZ_STANZA_H
#define FILEREPO_FUZZ_STANZA_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

/** The context the stanzas are parsed in (created on first use). */
static inline xmpp_ctx_t *fuzz_ctx(void)
{
    static xmpp_ctx_t *ctx;

    if (!ctx) {
        xmpp_initialize();
        ctx = xmpp_ctx_new(NULL, NULL);
        if (!ctx)
            abort();
    }
    return ctx;
}

/** `data` as a stanza (the caller releases it), or NULL when it is not one. */
static inline xmpp_stanza_t *fuzz_stanza(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    xmpp_stanza_t *stanza;

    if (!text)
        return NULL;
    memcpy(text, data, size);
    text[size] = '\0';
    stanza = xmpp_stanza_new_from_string(fuzz_ctx(), text);
    free(text);
    return stanza;
}

#endif
