/*
 * fuzz_si.c - libFuzzer target: any stanza a requester could send to the
 * sipub / SI code, read as a sipub <start/> and as the answer to an SI
 * offer (with every set of methods offered).
 *
 * The parsers must accept or refuse with a condition, never crash or leak;
 * what they accept must hold what they promise (a NUL-terminated non-empty
 * id within its field; a chosen method that was offered, a range within
 * bounds).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "xmpp/si.h"
#include "fuzz_stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_start(xmpp_stanza_t *stanza)
{
    struct si_refusal why;
    char id[SI_TEXT_MAX];

    if (sipub_start_parse(stanza, id, sizeof(id), &why)) {
        if (!id[0] || memchr(id, '\0', sizeof(id)) == NULL)
            abort();
        if (sipub_id_revision(id) < 0)
            abort();
    } else if (!why.condition || !why.type || !why.text || id[0]) {
        abort();
    }
}

static void fuzz_result(xmpp_stanza_t *stanza)
{
    for (unsigned offered = 1; offered <= (SI_METHOD_S5B | SI_METHOD_IBB); offered++) {
        struct si_choice choice;
        struct si_refusal why;

        if (si_result_parse(stanza, offered, &choice, &why)) {
            if (!(choice.method & offered) || !si_method_ns(choice.method) ||
                choice.offset < 0 || choice.length < -1)
                abort();
        } else if (!why.condition || !why.type || !why.text) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmpp_stanza_t *stanza;

    stanza = fuzz_stanza(data, size);
    if (!stanza)
        return 0;
    fuzz_start(stanza);
    fuzz_result(stanza);
    xmpp_stanza_release(stanza);
    return 0;
}
