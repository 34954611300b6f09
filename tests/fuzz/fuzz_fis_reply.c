/*
 * fuzz_fis_reply.c - libFuzzer target: any answer a service could send to
 * `filerepo browse`, read as browse reads it.
 *
 * The bytes are parsed by libstrophe; the XEP-0329 listing in the result is
 * walked (<directory/> names, <file/> elements) and its XEP-0059 <set/>
 * read, which must never crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

#include "xmpp/fis.h"
#include "xmpp/rsm.h"
#include "xmpp/stanza.h"
#include "fuzz_stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmpp_stanza_t *stanza, *query;
    struct rsm_reply rsm;
    size_t total = 0;

    stanza = fuzz_stanza(data, size);
    if (!stanza)
        return 0;
    stanza_error_condition(stanza);
    query = xmpp_stanza_get_child_by_ns(stanza, XMPP_NS_FIS);
    if (query) {
        for (xmpp_stanza_t *c = xmpp_stanza_get_children(query); c; c = xmpp_stanza_get_next(c)) {
            struct fis_file file;

            if (!xmpp_stanza_is_tag(c))
                continue;
            if (strcmp(xmpp_stanza_get_name(c), "file") == 0 && fis_file_parse(&file, c) == 0) {
                total += strlen(file.name);
                for (size_t i = 0; i < file.hashes_count; i++)
                    total += strlen(file.hashes[i].algo) + strlen(file.hashes[i].value);
            }
        }
        if (rsm_reply_parse(&rsm, query) == 0) {
            total += rsm.first ? strlen(rsm.first) : 0;
            total += rsm.last ? strlen(rsm.last) : 0;
        }
    }
    xmpp_stanza_release(stanza);
    return total == (size_t)-1; /* keeps the reads */
}
