/*
 * fuzz_jingle.c - libFuzzer target: any <jingle/> a requester could send,
 * read by the session-initiate parser.
 *
 * The parser must accept or refuse with a condition, never crash or leak;
 * what it accepts must hold what it promises (NUL-terminated strings within
 * their fields, a block-size of 1-65535, a range within bounds).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "xmpp/jingle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static xmpp_ctx_t *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jingle_request req;
    struct jingle_refusal why;
    xmpp_stanza_t *stanza;
    char *text;

    if (!ctx) {
        xmpp_initialize();
        ctx = xmpp_ctx_new(NULL, NULL);
        if (!ctx)
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
    if (jingle_request_parse(stanza, &req, &why)) {
        if (!req.sid[0] || !req.content_name[0] || !req.ibb_sid[0] ||
            memchr(req.name, '\0', sizeof(req.name)) == NULL ||
            req.block_size < 1 || req.block_size > 65535 || req.offset < 0 ||
            req.length < -1 || (!req.name[0] && !req.has_sha256))
            abort();
    } else if (!why.condition || !why.type || !why.text) {
        abort();
    }
    xmpp_stanza_release(stanza);
    return 0;
}
