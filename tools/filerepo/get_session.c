/*
 * get_session.c - the requester's side of one Jingle file-transfer session
 * (XEP-0166, XEP-0234 "Requesting a File") for `filerepo get`.
 *
 * The session is an explicit state machine (enum get_state), moved only by
 * get_enter_state().  Transitions:
 *
 *   INITIATING   result of session-initiate           -> PENDING
 *                feature-not-implemented, SOCKS5 asked -> INITIATING again, with IBB (once)
 *   PENDING      session-accept with SOCKS5           -> CONNECTING
 *                session-accept with IBB              -> IBB_OPENING (<open/> sent)
 *   CONNECTING   both sides told what they could use  -> S5B_RECEIVING, ACTIVATING
 *                (their proxy nominated) or REPLACING (nothing worked)
 *   ACTIVATING   their <activated/>                   -> S5B_RECEIVING
 *   CONNECTING, ACTIVATING, REPLACING: their transport-replace to IBB
 *                                                     -> IBB_OPENING (transport-accept sent)
 *   S5B_RECEIVING  end of stream after every byte     -> FINISHING
 *   IBB_OPENING  result of <open/>                    -> IBB_RECEIVING
 *   IBB_RECEIVING  their <close/> after every byte    -> FINISHING
 *   FINISHING    their session-terminate <success/>   -> DONE
 *
 * Every other way out is FAILED with an exit status and a message: an
 * error to our request, a session-terminate other than success, a stream
 * that ends early, an I/O error on the file, silence for --timeout seconds,
 * the XMPP connection lost, SIGINT.  When the session is still open then,
 * ours ends it with a session-terminate and its reason.  The daemon's
 * <success/> may overtake the last SOCKS5 bytes (two channels): the stream
 * is then read to its end before the session is done.  The SOCKS5 sockets,
 * the nomination and the poll loop are get_socks5.c's.
 */
#include "get_internal.h"
#include "log.h"
#include "xmpp/jingle.h"
#include "xmpp/stanza.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>

#define GET_NS_JINGLE_ERRORS "urn:xmpp:jingle:errors:1"

static const char *get_state_name(enum get_state s)
{
    static const char *const names[] = { "initiating", "pending", "connecting", "activating",
                                         "s5b-receiving", "replacing", "ibb-opening",
                                         "ibb-receiving", "finishing", "done", "failed" };

    return names[s];
}

void get_enter_state(struct get *g, enum get_state s)
{
    log_debug("get", "sid=%s %s -> %s", g->sid, get_state_name(g->state), get_state_name(s));
    g->state = s;
}

/* The bytes this session must bring: the whole file past what we had. */
int64_t get_expected(const struct get *g)
{
    return g->size >= 0 ? g->size - g->offset : -1;
}

bool get_over(const struct get *g)
{
    return g->state == GET_DONE || g->state == GET_FAILED;
}

void get_random_id(char *out, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[32];

    if (len > sizeof(bytes) + 1)
        len = sizeof(bytes) + 1;
    if (getrandom(bytes, len - 1, 0) != (ssize_t)(len - 1))
        for (size_t i = 0; i < len - 1; i++)
            bytes[i] = (unsigned char)rand();
    for (size_t i = 0; i < len - 1; i++)
        out[i] = alphabet[bytes[i] % (sizeof(alphabet) - 1)];
    out[len - 1] = '\0';
}

/* ------------------------------------------------------------ sending */

void get_send(struct get *g, xmpp_stanza_t *stanza)
{
    if (!stanza)
        return;
    if (g->conn && !g->lost)
        xmpp_send(g->conn, stanza);
    xmpp_stanza_release(stanza);
}

/* <iq type='set'><jingle action sid/></iq> with id "get-<serial>-<step>". */
xmpp_stanza_t *get_jingle_iq(struct get *g, const char *action, const char *step,
                                    xmpp_stanza_t **jingle)
{
    char id[64];

    snprintf(id, sizeof(id), "get-%u-%s", ++g->serial, step);
    return jingle_iq_new(g->ctx, g->peer, id, action, g->sid, jingle);
}

xmpp_stanza_t *get_content(xmpp_stanza_t *jingle)
{
    xmpp_stanza_t *content = stanza_add_element(jingle, "content", NULL);

    if (!content || xmpp_stanza_set_attribute(content, "creator", "initiator") != XMPP_EOK ||
        xmpp_stanza_set_attribute(content, "name", "f") != XMPP_EOK ||
        xmpp_stanza_set_attribute(content, "senders", "responder") != XMPP_EOK)
        return NULL;
    return content;
}

bool get_set_number(xmpp_stanza_t *el, const char *name, int64_t value)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, value);
    return xmpp_stanza_set_attribute(el, name, buf) == XMPP_EOK;
}

/* <transport xmlns=ibb sid block-size/> under content. */
static bool get_add_ibb_transport(struct get *g, xmpp_stanza_t *content, unsigned block_size)
{
    xmpp_stanza_t *t = stanza_add_element(content, "transport", XMPP_NS_JINGLE_IBB);

    return t && xmpp_stanza_set_attribute(t, "sid", g->tsid) == XMPP_EOK &&
           get_set_number(t, "block-size", block_size);
}

static void get_send_initiate(struct get *g)
{
    xmpp_stanza_t *iq, *jingle, *content, *desc, *file, *range;
    bool ok;

    get_random_id(g->sid, sizeof(g->sid));
    get_random_id(g->tsid, sizeof(g->tsid));
    s5_dst_addr(g->tsid, g->jid, g->peer, g->our_dstaddr);
    get_open_listener(g);
    iq = get_jingle_iq(g, "session-initiate", "init", &jingle);
    ok = iq && xmpp_stanza_set_attribute(jingle, "initiator", g->jid) == XMPP_EOK &&
         (content = get_content(jingle)) &&
         (desc = stanza_add_element(content, "description", XMPP_NS_JINGLE_FT)) &&
         (file = stanza_add_element(desc, "file", NULL)) &&
         (!g->path || stanza_add_text_element(file, "name", NULL, g->path));
    if (ok && g->has_sha256) {
        char *b64 = xmpp_base64_encode(g->ctx, g->sha256, 32);
        xmpp_stanza_t *hash = b64 ? stanza_add_text_element(file, "hash", XMPP_NS_HASHES, b64)
                                  : NULL;

        ok = hash && xmpp_stanza_set_attribute(hash, "algo", "sha-256") == XMPP_EOK;
        xmpp_free(g->ctx, b64);
    }
    if (ok && g->offset > 0)
        ok = (range = stanza_add_element(file, "range", NULL)) &&
             get_set_number(range, "offset", g->offset);
    ok = ok && (g->ibb ? get_add_ibb_transport(g, content, 65535)
                       : get_add_s5b_transport(g, content));
    if (!ok) {
        get_stanza_free(iq);
        snprintf(g->message, sizeof(g->message), "out of memory");
        g->status = EX_OSERR;
        get_enter_state(g, GET_FAILED);
        return;
    }
    log_debug("get", "session-initiate sid=%s transport=%s", g->sid, g->ibb ? "ibb" : "s5b");
    get_send(g, iq);
    get_enter_state(g, GET_INITIATING);
}

/* The session ends on our side: session-terminate with `reason`. */
static void get_terminate(struct get *g, const char *reason)
{
    xmpp_stanza_t *jingle, *iq;

    if (g->terminated || g->state == GET_INITIATING)
        return;
    g->terminated = true;
    iq = get_jingle_iq(g, "session-terminate", "term", &jingle);
    if (iq && jingle_add_reason(jingle, reason, NULL, NULL) == 0) {
        get_send(g, iq);
        g->terminate_sent = true;
    } else {
        get_stanza_free(iq);
    }
}

/* Fails the session with exit status `status`, ending it with `reason`
 * (NULL: it is over already). */
void get_fail(struct get *g, int status, const char *reason, const char *fmt, ...)
{
    va_list ap;

    if (get_over(g))
        return;
    va_start(ap, fmt);
    vsnprintf(g->message, sizeof(g->message), fmt, ap);
    va_end(ap);
    g->status = status;
    if (reason)
        get_terminate(g, reason);
    /* With a session-terminate on its way, the bytestream stays open until
     * it is answered (get_session_run): closed first, it would tell the
     * daemon "failed-transport" before the reason arrived. */
    if (!g->terminate_sent)
        get_close_s5b(g);
    get_enter_state(g, GET_FAILED);
}

static void get_send_ibb_open(struct get *g)
{
    char id[64];
    xmpp_stanza_t *iq, *open;

    snprintf(id, sizeof(id), "get-%u-open", ++g->serial);
    iq = xmpp_iq_new(g->ctx, "set", id);
    if (!iq || xmpp_stanza_set_to(iq, g->peer) != XMPP_EOK ||
        !(open = stanza_add_element(iq, "open", XMPP_NS_IBB)) ||
        xmpp_stanza_set_attribute(open, "sid", g->tsid) != XMPP_EOK ||
        !get_set_number(open, "block-size", g->block_size) ||
        xmpp_stanza_set_attribute(open, "stanza", "iq") != XMPP_EOK) {
        get_stanza_free(iq);
        get_fail(g, EX_OSERR, "failed-application", "out of memory");
        return;
    }
    get_send(g, iq);
    g->method = "ibb";
    g->seq = 0;
    get_enter_state(g, GET_IBB_OPENING);
}

/* ------------------------------------------------------------ stanzas */

/* The sha-256 <hash/> (XEP-0300) among the children of `file` (NULL: none)
 * into out; false when there is none of 32 bytes. */
static bool get_read_sha256(struct get *g, xmpp_stanza_t *file, unsigned char out[32])
{
    bool found = false;

    for (xmpp_stanza_t *h = file ? xmpp_stanza_get_children(file) : NULL; h;
         h = xmpp_stanza_get_next(h)) {
        const char *algo = xmpp_stanza_is_tag(h) ? xmpp_stanza_get_attribute(h, "algo") : NULL;
        unsigned char *bin = NULL;
        size_t len = 0;
        char *text;

        if (!algo || strcmp(xmpp_stanza_get_name(h), "hash") != 0 || strcmp(algo, "sha-256"))
            continue;
        text = xmpp_stanza_get_text(h);
        if (text)
            xmpp_base64_decode_bin(g->ctx, text, strlen(text), &bin, &len);
        if (bin && len == 32) {
            memcpy(out, bin, 32);
            found = true;
        }
        xmpp_free(g->ctx, bin);
        xmpp_free(g->ctx, text);
    }
    return found;
}

static void get_on_accept(struct get *g, xmpp_stanza_t *jingle)
{
    xmpp_stanza_t *content = xmpp_stanza_get_child_by_name(jingle, "content");
    xmpp_stanza_t *desc = content ? xmpp_stanza_get_child_by_ns(content, XMPP_NS_JINGLE_FT)
                                  : NULL;
    xmpp_stanza_t *file = desc ? xmpp_stanza_get_child_by_name(desc, "file") : NULL;
    xmpp_stanza_t *size = file ? xmpp_stanza_get_child_by_name(file, "size") : NULL;
    xmpp_stanza_t *transport = NULL;
    char *text = size ? xmpp_stanza_get_text(size) : NULL;
    const char *tns;

    for (xmpp_stanza_t *c = content ? xmpp_stanza_get_children(content) : NULL; c;
         c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "transport") == 0)
            transport = c;
    g->size = text && *text ? strtoll(text, NULL, 10) : -1;
    xmpp_free(g->ctx, text);
    if (get_read_sha256(g, file, g->accept_hash))
        g->has_accept_hash = true;
    tns = transport ? xmpp_stanza_get_ns(transport) : NULL;
    if (g->size < 0 || !tns) {
        get_fail(g, EX_PROTOCOL, "failed-application",
                 "the session-accept has no file size or no transport");
        return;
    }
    if (g->size < g->offset) {
        get_fail(g, 1, "cancel", "the local file (%" PRId64 " bytes) is longer than the "
                 "file offered (%" PRId64 " bytes): remove it and try again", g->offset, g->size);
        return;
    }
    if (strcmp(tns, XMPP_NS_JINGLE_IBB) == 0) {
        const char *bs = xmpp_stanza_get_attribute(transport, "block-size");
        const char *sid = xmpp_stanza_get_attribute(transport, "sid");
        long b = bs ? strtol(bs, NULL, 10) : 0;

        if (b < 1 || b > 65535 || !sid || strlen(sid) >= sizeof(g->tsid)) {
            get_fail(g, EX_PROTOCOL, "failed-transport", "the IBB transport has no sid or "
                     "block-size");
            return;
        }
        strcpy(g->tsid, sid);
        g->block_size = (unsigned)b;
        g->ibb = true;
        get_close_s5b(g);
        get_send_ibb_open(g);
    } else if (strcmp(tns, GET_NS_S5B) == 0 && !g->ibb) {
        get_read_candidates(g, transport);
        g->used_theirs = -2;
        g->they_used = g->listen_fd < 0 ? -1 : 0; /* nothing of ours to try */
        g->trying = 0;
        get_s5_idle(&g->out);
        get_enter_state(g, GET_CONNECTING);
        get_connect_advance(g, get_now_ms());
    } else {
        get_fail(g, EX_PROTOCOL, "unsupported-transports", "the daemon accepted with an "
                 "unknown transport %s", tns);
    }
}

static xmpp_stanza_t *get_on_replace(struct get *g, xmpp_stanza_t *iq, xmpp_stanza_t *jingle)
{
    xmpp_stanza_t *content = xmpp_stanza_get_child_by_name(jingle, "content");
    xmpp_stanza_t *t = content ? xmpp_stanza_get_child_by_ns(content, XMPP_NS_JINGLE_IBB) : NULL;
    const char *sid = t ? xmpp_stanza_get_attribute(t, "sid") : NULL;
    const char *bs = t ? xmpp_stanza_get_attribute(t, "block-size") : NULL;
    long b = bs ? strtol(bs, NULL, 10) : 0;
    xmpp_stanza_t *accept, *j2, *c2;

    if (!t || !sid || strlen(sid) >= sizeof(g->tsid) || b < 1 || b > 65535)
        return stanza_iq_error(g->ctx, iq, "cancel", "feature-not-implemented",
                               "only a replacement by IBB with a sid and block-size is taken");
    if (g->received > 0 || (g->state != GET_CONNECTING && g->state != GET_ACTIVATING &&
                            g->state != GET_REPLACING && g->state != GET_S5B_RECEIVING))
        return stanza_iq_error(g->ctx, iq, "cancel", "not-acceptable",
                               "the transport cannot change now");
    get_close_s5b(g);
    strcpy(g->tsid, sid);
    g->block_size = (unsigned)b;
    g->ibb = true;
    log_info("get", "falling back to in-band bytestreams (IBB)");
    {
        xmpp_stanza_t *result = stanza_iq_result(g->ctx, iq);

        get_send(g, result); /* before our transport-accept */
    }
    accept = get_jingle_iq(g, "transport-accept", "ta", &j2);
    if (!accept || !(c2 = get_content(j2)) || !get_add_ibb_transport(g, c2, g->block_size)) {
        get_stanza_free(accept);
        get_fail(g, EX_OSERR, "failed-application", "out of memory");
        return NULL;
    }
    get_send(g, accept);
    get_send_ibb_open(g);
    return NULL;
}

static void get_on_session_info(struct get *g, xmpp_stanza_t *jingle)
{
    xmpp_stanza_t *checksum = xmpp_stanza_get_child_by_ns(jingle, XMPP_NS_JINGLE_FT);
    xmpp_stanza_t *file = checksum ? xmpp_stanza_get_child_by_name(checksum, "file") : NULL;

    if (!checksum || strcmp(xmpp_stanza_get_name(checksum), "checksum") != 0)
        return;
    if (get_read_sha256(g, file, g->checksum))
        g->has_checksum = true;
}

static void get_on_terminate(struct get *g, xmpp_stanza_t *jingle)
{
    xmpp_stanza_t *reason = xmpp_stanza_get_child_by_name(jingle, "reason");
    xmpp_stanza_t *text = reason ? xmpp_stanza_get_child_by_name(reason, "text") : NULL;
    char *why = text ? xmpp_stanza_get_text(text) : NULL;

    snprintf(g->reason, sizeof(g->reason), "cancel");
    for (xmpp_stanza_t *c = reason ? xmpp_stanza_get_children(reason) : NULL; c;
         c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "text") != 0) {
            snprintf(g->reason, sizeof(g->reason), "%s", xmpp_stanza_get_name(c));
            break;
        }
    g->terminated = true;
    log_debug("get", "sid=%s: their session-terminate %s", g->sid, g->reason);
    if (strcmp(g->reason, "success") != 0)
        get_fail(g, EX_UNAVAILABLE, NULL, "the daemon ended the transfer: %s%s%s", g->reason,
                 why ? ": " : "", why ? why : "");
    else if (g->state == GET_FINISHING ||
             (g->state == GET_S5B_RECEIVING && g->received == get_expected(g))) {
        get_close_s5b(g);
        get_enter_state(g, GET_DONE);
    } else if (g->state != GET_S5B_RECEIVING) /* there: the stream's end decides */
        get_fail(g, EX_UNAVAILABLE, NULL, "the daemon ended the transfer as a success after "
                 "%" PRId64 " of %" PRId64 " bytes", g->received, get_expected(g));
    xmpp_free(g->ctx, why);
}

static xmpp_stanza_t *get_on_jingle(struct get *g, xmpp_stanza_t *iq, xmpp_stanza_t *jingle)
{
    const char *action = xmpp_stanza_get_attribute(jingle, "action");
    const char *sid = xmpp_stanza_get_attribute(jingle, "sid");

    if (!action || !sid || strcmp(sid, g->sid) != 0 || get_over(g)) {
        xmpp_stanza_t *reply = stanza_iq_error(g->ctx, iq, "cancel", "item-not-found", NULL);
        xmpp_stanza_t *error = reply ? xmpp_stanza_get_child_by_name(reply, "error") : NULL;

        if (error)
            stanza_add_element(error, "unknown-session", GET_NS_JINGLE_ERRORS);
        return reply;
    }
    if (strcmp(action, "session-accept") == 0) {
        if (g->state != GET_PENDING && g->state != GET_INITIATING)
            return stanza_iq_error(g->ctx, iq, "cancel", "unexpected-request", NULL);
        get_send(g, stanza_iq_result(g->ctx, iq)); /* before what the accept makes us send */
        get_enter_state(g, GET_PENDING);
        get_on_accept(g, jingle);
        return NULL;
    }
    if (strcmp(action, "transport-replace") == 0)
        return get_on_replace(g, iq, jingle);
    if (strcmp(action, "transport-info") == 0) {
        get_send(g, stanza_iq_result(g->ctx, iq));
        get_on_transport_info(g, jingle);
        return NULL;
    }
    if (strcmp(action, "session-info") == 0)
        get_on_session_info(g, jingle);
    else if (strcmp(action, "session-terminate") == 0)
        get_on_terminate(g, jingle);
    return stanza_iq_result(g->ctx, iq);
}

static xmpp_stanza_t *get_on_ibb(struct get *g, xmpp_stanza_t *iq, xmpp_stanza_t *payload)
{
    const char *name = xmpp_stanza_get_name(payload);
    const char *sid = xmpp_stanza_get_attribute(payload, "sid");
    xmpp_stanza_t *reply;

    if (!g->ibb || !sid || strcmp(sid, g->tsid) != 0 ||
        (g->state != GET_IBB_RECEIVING && g->state != GET_IBB_OPENING))
        return stanza_iq_error(g->ctx, iq, "cancel", "item-not-found", "no such bytestream");
    if (strcmp(name, "close") == 0) {
        get_send(g, stanza_iq_result(g->ctx, iq));
        if (g->received != get_expected(g))
            get_fail(g, EX_UNAVAILABLE, "failed-transport", "the daemon closed the bytestream "
                     "after %" PRId64 " of %" PRId64 " bytes", g->received, get_expected(g));
        else
            get_enter_state(g, g->terminated ? GET_DONE : GET_FINISHING);
        return NULL;
    }
    if (strcmp(name, "data") == 0) {
        const char *seq = xmpp_stanza_get_attribute(payload, "seq");
        char *text = xmpp_stanza_get_text(payload);
        unsigned char *bin = NULL;
        size_t len = 0;
        char expected[8];

        snprintf(expected, sizeof(expected), "%u", (unsigned)g->seq);
        if (text && *text)
            xmpp_base64_decode_bin(g->ctx, text, strlen(text), &bin, &len);
        xmpp_free(g->ctx, text);
        if (!seq || strcmp(seq, expected) != 0 || (!bin && len) || len > g->block_size ||
            g->received + (int64_t)len > get_expected(g)) {
            xmpp_free(g->ctx, bin);
            reply = stanza_iq_error(g->ctx, iq, "cancel", "unexpected-request", NULL);
            get_send(g, reply);
            get_fail(g, EX_PROTOCOL, "failed-transport", "a bad IBB block (seq %s, %zu bytes)",
                     seq ? seq : "none", len);
            return NULL;
        }
        g->seq++;
        if (g->state == GET_IBB_OPENING)
            get_enter_state(g, GET_IBB_RECEIVING); /* the block overtook our result */
        if (len && !get_write(g, bin, len)) {
            xmpp_free(g->ctx, bin);
            get_send(g, stanza_iq_error(g->ctx, iq, "cancel", "resource-constraint", NULL));
            get_fail(g, EX_IOERR, "failed-application", "writing the file: %s",
                     strerror(g->write_errno));
            return NULL;
        }
        xmpp_free(g->ctx, bin);
        return stanza_iq_result(g->ctx, iq);
    }
    return stanza_iq_error(g->ctx, iq, "cancel", "feature-not-implemented", NULL);
}

/* The answer to one of our requests. */
static void get_on_answer(struct get *g, xmpp_stanza_t *iq, const char *id, bool error)
{
    const char *step = strrchr(id, '-') + 1;
    const char *condition = error ? stanza_error_condition(iq) : NULL;

    if (strcmp(step, "term") == 0)
        g->terminate_answered = true;

    if (strcmp(step, "init") == 0 && g->state == GET_INITIATING) {
        if (!error) {
            get_enter_state(g, GET_PENDING);
            return;
        }
        if (!g->ibb && !g->retried_ibb && condition &&
            strcmp(condition, "feature-not-implemented") == 0) {
            log_info("get", "the daemon does not take SOCKS5; asking for in-band bytes (IBB)");
            get_close_s5b(g);
            g->ibb = g->retried_ibb = true;
            get_send_initiate(g);
            return;
        }
        {
            xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(iq, "error");
            xmpp_stanza_t *t = e ? xmpp_stanza_get_child_by_name(e, "text") : NULL;
            char *why = t ? xmpp_stanza_get_text(t) : NULL;
            int status = !condition ? EX_PROTOCOL
                         : strcmp(condition, "item-not-found") == 0 ? EX_NOINPUT
                         : strcmp(condition, "resource-constraint") == 0 ? EX_TEMPFAIL
                         : strcmp(condition, "bad-request") == 0 ? EX_DATAERR
                         : EX_UNAVAILABLE;

            if (why && status == EX_NOINPUT && strcmp(why, "no such file") == 0) {
                xmpp_free(g->ctx, why); /* said already */
                why = NULL;
            }
            get_fail(g, status, NULL, "%s%s%s",
                     status == EX_NOINPUT ? "no such file (item-not-found)"
                                          : condition ? condition : "refused",
                     why ? ": " : "", why ? why : "");
            xmpp_free(g->ctx, why);
        }
    } else if (strcmp(step, "open") == 0 && g->state == GET_IBB_OPENING) {
        if (error)
            get_fail(g, EX_UNAVAILABLE, "failed-transport", "the daemon refused the IBB "
                     "bytestream: %s", condition ? condition : "error");
        else
            get_enter_state(g, GET_IBB_RECEIVING);
    } else if (error) {
        log_info("get", "the daemon answered %s to our %s", condition ? condition : "an error",
                 step);
    }
}

static int get_on_iq(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *userdata)
{
    struct get *g = userdata;
    const char *type = xmpp_stanza_get_type(iq), *id = xmpp_stanza_get_id(iq);
    const char *from = xmpp_stanza_get_from(iq);
    xmpp_stanza_t *payload, *reply = NULL;

    (void)conn;
    if (!type || !from || strcmp(from, g->peer) != 0)
        return 1;
    g->last_progress_ms = get_now_ms();
    if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
        if (id && strncmp(id, "get-", 4) == 0 && strchr(id + 4, '-'))
            get_on_answer(g, iq, id, strcmp(type, "error") == 0);
        return 1;
    }
    if (strcmp(type, "set") != 0)
        return 1;
    if ((payload = xmpp_stanza_get_child_by_ns(iq, XMPP_NS_JINGLE)))
        reply = get_on_jingle(g, iq, payload);
    else if ((payload = xmpp_stanza_get_child_by_ns(iq, XMPP_NS_IBB)))
        reply = get_on_ibb(g, iq, payload);
    else
        reply = stanza_iq_error(g->ctx, iq, "cancel", "service-unavailable", NULL);
    get_send(g, reply);
    return 1;
}

int get_session_run(struct get *g)
{
    uint64_t timeout_ms = (uint64_t)(g->options->timeout_s > 0 ? g->options->timeout_s : 60) *
                          1000u;

    g->listen_fd = g->data_fd = -1;
    get_s5_idle(&g->out);
    for (int i = 0; i < GET_ACCEPTED_MAX; i++)
        get_s5_idle(&g->in[i]);
    g->size = -1;
    g->ibb = g->options->ibb_only;
    g->last_progress_ms = g->started_ms = get_now_ms();
    xmpp_handler_add(g->conn, get_on_iq, NULL, "iq", NULL, g);
    get_send_initiate(g);
    while (!get_over(g)) {
        get_loop_once(g, 50);
        if (get_over(g))
            break;
        if (get_interrupted)
            get_fail(g, 130, "cancel", "interrupted");
        else if (g->lost)
            get_fail(g, EX_UNAVAILABLE, NULL, "the XMPP connection was lost");
        else if (get_now_ms() - g->last_progress_ms > timeout_ms)
            get_fail(g, EX_UNAVAILABLE, "timeout", "nothing heard from %s for %" PRIu64 " s",
                     g->peer, timeout_ms / 1000u);
    }
    /* Our session-terminate is answered before anything closes: the daemon
     * has it (and records its reason) before the bytestream ends. */
    for (uint64_t until = get_now_ms() + GET_TERMINATE_WAIT_MS;
         g->terminate_sent && !g->terminate_answered && !g->lost && get_now_ms() < until;)
        get_loop_once(g, 50);
    xmpp_handler_delete(g->conn, get_on_iq);
    get_close_s5b(g);
    get_progress(g, true);
    return g->state == GET_DONE ? 0 : g->status;
}
