/*
 * fuzz_iq.c - libFuzzer target: any stanza the server could deliver to the
 * component, answered by the IQ router.
 *
 * The bytes are parsed by libstrophe (as the stream parser would); every
 * stanza that results goes through service_handle_iq, which must answer a
 * request with a result or an error and ignore everything else, without
 * crashing or leaking.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static xmpp_ctx_t *ctx;
static struct service *service;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmpp_stanza_t *stanza, *reply;
    char *text;

    if (!ctx) {
        xmpp_initialize();
        ctx = xmpp_ctx_new(NULL, NULL);
        /* No catalog: requests that need one get a wait error after their
         * parsing, which is what the fuzzer is for.  No rate limit worth
         * the name, so every input reaches its handler. */
        const struct service_settings settings = {
            .name = "fuzz", .pubsub = "pubsub.localhost", .page_max = 250, .verbose_max = 50,
            .rate_per_second = 100000, .rate_burst = 100000,
        };

        if (!ctx || service_new(&service, &settings) != 0)
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

    reply = service_handle_iq(service, stanza);
    if (reply) {
        const char *type = xmpp_stanza_get_type(reply);
        char *buf = NULL;
        size_t len = 0;

        /* A reply is a result or an error, and it serializes. */
        if (!type || (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
            abort();
        if (xmpp_stanza_to_text(reply, &buf, &len) != XMPP_EOK)
            abort();
        xmpp_free(ctx, buf);
        xmpp_stanza_release(reply);
    }
    xmpp_stanza_release(stanza);
    return 0;
}
