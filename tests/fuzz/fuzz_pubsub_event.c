/*
 * fuzz_pubsub_event.c - libFuzzer target: any <message/> a pubsub service
 * (or anyone) could send to `filerepo subscribe`, read for revision items.
 *
 * The bytes are parsed by libstrophe as the stream parser would; whatever
 * comes out goes through pubsub_event_items, which must report only what is
 * there, with every string it hands out terminated, and never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "xmpp/pubsub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static xmpp_ctx_t *ctx;

static void touch(const struct pubsub_notice *n, void *data)
{
    size_t *total = data;

    /* Every string handed out is readable to its end. */
    *total += strlen(n->node) + strlen(n->item);
    if (n->path)
        *total += strlen(n->path);
    if (n->sha256_hex)
        *total += strlen(n->sha256_hex);
    for (size_t i = 0; i < n->mirrors_count; i++)
        *total += strlen(n->mirrors[i]);
    if (n->mirrors_count > sizeof(n->mirrors) / sizeof(*n->mirrors) || n->size < -1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmpp_stanza_t *stanza;
    size_t total = 0;
    char *text;

    if (!ctx) {
        xmpp_initialize();
        if (!(ctx = xmpp_ctx_new(NULL, NULL)))
            abort();
    }
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    stanza = xmpp_stanza_new_from_string(ctx, text);
    free(text);
    if (!stanza)
        return 0;
    if (pubsub_event_items(stanza, touch, &total) < 0)
        abort();
    xmpp_stanza_release(stanza);
    return 0;
}
