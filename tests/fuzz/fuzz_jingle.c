/*
 * fuzz_jingle.c - libFuzzer target: any <jingle/> a requester could send,
 * read by the session-initiate parser and the s5b transport-info parser.
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
#include "fuzz_stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jingle_request req;
    struct jingle_refusal why;
    xmpp_stanza_t *stanza;

    stanza = fuzz_stanza(data, size);
    if (!stanza)
        return 0;
    if (jingle_request_parse(stanza, &req, &why)) {
        if (!req.sid[0] || !req.content_name[0] || req.transport_ibb == req.transport_s5b ||
            memchr(req.name, '\0', sizeof(req.name)) == NULL || req.offset < 0 ||
            req.length < -1 || (!req.name[0] && !req.has_sha256))
            abort();
        if (req.transport_ibb &&
            (!req.ibb_sid[0] || req.block_size < 1 || req.block_size > 65535))
            abort();
        if (req.transport_s5b && (!req.s5b.sid[0] || req.s5b.count > JINGLE_CANDIDATES_MAX))
            abort();
        for (size_t i = 0; req.transport_s5b && i < req.s5b.count; i++)
            if (req.s5b.candidates[i].port < 1 || req.s5b.candidates[i].port > 65535 ||
                (i > 0 && req.s5b.candidates[i].priority > req.s5b.candidates[i - 1].priority))
                abort();
    } else if (!why.condition || !why.type || !why.text) {
        abort();
    }
    {
        char cid[JINGLE_TEXT_MAX];

        /* The same bytes as a transport-info. */
        if (jingle_s5b_info_parse(stanza, "t1", cid) != JINGLE_S5B_UNKNOWN &&
            memchr(cid, '\0', sizeof(cid)) == NULL)
            abort();
    }
    xmpp_stanza_release(stanza);
    return 0;
}
