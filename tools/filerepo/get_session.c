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
 * is then read to its end before the session is done.
 */
#include "get_internal.h"
#include "log.h"
#include "xmpp/jingle.h"
#include "xmpp/stanza.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#define GET_NS_S5B "urn:xmpp:jingle:transports:s5b:1"
#define GET_NS_JINGLE_ERRORS "urn:xmpp:jingle:errors:1"

extern volatile sig_atomic_t get_interrupted;

static const char *get_state_name(enum get_state s)
{
    static const char *const names[] = { "initiating", "pending", "connecting", "activating",
                                         "s5b-receiving", "replacing", "ibb-opening",
                                         "ibb-receiving", "finishing", "done", "failed" };

    return names[s];
}

static void get_enter_state(struct get *g, enum get_state s)
{
    log_debug("get", "sid=%s %s -> %s", g->sid, get_state_name(g->state), get_state_name(s));
    g->state = s;
}

/* The bytes this session must bring: the whole file past what we had. */
static int64_t get_expected(const struct get *g)
{
    return g->size >= 0 ? g->size - g->offset : -1;
}

static bool get_over(const struct get *g)
{
    return g->state == GET_DONE || g->state == GET_FAILED;
}

static void get_random_id(char *out, size_t len)
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

static void get_send(struct get *g, xmpp_stanza_t *stanza)
{
    if (!stanza)
        return;
    if (g->conn && !g->lost)
        xmpp_send(g->conn, stanza);
    xmpp_stanza_release(stanza);
}

/* <iq type='set'><jingle action sid/></iq> with id "get-<serial>-<step>". */
static xmpp_stanza_t *get_jingle_iq(struct get *g, const char *action, const char *step,
                                    xmpp_stanza_t **jingle)
{
    char id[64];

    snprintf(id, sizeof(id), "get-%u-%s", ++g->serial, step);
    return jingle_iq_new(g->ctx, g->peer, id, action, g->sid, jingle);
}

static xmpp_stanza_t *get_content(xmpp_stanza_t *jingle)
{
    xmpp_stanza_t *content = stanza_add_element(jingle, "content", NULL);

    if (!content || xmpp_stanza_set_attribute(content, "creator", "initiator") != XMPP_EOK ||
        xmpp_stanza_set_attribute(content, "name", "f") != XMPP_EOK ||
        xmpp_stanza_set_attribute(content, "senders", "responder") != XMPP_EOK)
        return NULL;
    return content;
}

static bool get_set_number(xmpp_stanza_t *el, const char *name, int64_t value)
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

static bool get_add_s5b_transport(struct get *g, xmpp_stanza_t *content)
{
    xmpp_stanza_t *t = stanza_add_element(content, "transport", GET_NS_S5B), *c;

    if (!t || xmpp_stanza_set_attribute(t, "sid", g->tsid) != XMPP_EOK ||
        xmpp_stanza_set_attribute(t, "mode", "tcp") != XMPP_EOK ||
        xmpp_stanza_set_attribute(t, "dstaddr", g->our_dstaddr) != XMPP_EOK)
        return false;
    if (g->listen_fd < 0)
        return true;
    {
        struct sockaddr_storage addr;
        socklen_t len = sizeof(addr);
        unsigned port;

        if (getsockname(g->listen_fd, (struct sockaddr *)&addr, &len) != 0)
            return false;
        port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                : ((struct sockaddr_in *)&addr)->sin_port);
        c = stanza_add_element(t, "candidate", NULL);
        return c && xmpp_stanza_set_attribute(c, "cid", g->our_cid) == XMPP_EOK &&
               xmpp_stanza_set_attribute(c, "host", g->local_host) == XMPP_EOK &&
               xmpp_stanza_set_attribute(c, "jid", g->jid) == XMPP_EOK &&
               get_set_number(c, "port", port) &&
               get_set_number(c, "priority", g->our_priority) &&
               xmpp_stanza_set_attribute(c, "type", "direct") == XMPP_EOK;
    }
}

/* Our direct candidate: a listener at our end of the XMPP socket. */
static void get_open_listener(struct get *g)
{
    unsigned port = 0;

    g->listen_fd = -1;
    if (g->ibb || g->options->no_direct)
        return;
    g->listen_fd = s5b_listen(g->local_host, &port);
    if (g->listen_fd < 0) {
        log_warn("get", "cannot listen on %s: %s; offering no direct candidate", g->local_host,
                 strerror(errno));
        return;
    }
    get_random_id(g->our_cid, sizeof(g->our_cid));
    g->our_priority = (126u << 16) + 65535u;
}

static void get_close_s5b(struct get *g)
{
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    g->listen_fd = -1;
    s5b_link_close(&g->out);
    for (size_t i = 0; i < GET_ACCEPTED_MAX; i++)
        s5b_link_close(&g->in[i]);
    g->data_fd = -1;
}

static void get_send_initiate(struct get *g)
{
    xmpp_stanza_t *iq, *jingle, *content, *desc, *file, *range;
    bool ok;

    get_random_id(g->sid, sizeof(g->sid));
    get_random_id(g->tsid, sizeof(g->tsid));
    s5b_dstaddr(g->our_dstaddr, g->tsid, g->jid, g->peer);
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
    if (iq && jingle_add_reason(jingle, reason, NULL, NULL) == 0)
        get_send(g, iq);
    else
        get_stanza_free(iq);
}

/* Fails the session with exit status `status`, ending it with `reason`
 * (NULL: it is over already). */
static void get_fail(struct get *g, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void get_fail(struct get *g, int status, const char *reason, const char *fmt, ...)
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
    get_close_s5b(g);
    get_enter_state(g, GET_FAILED);
}

static void get_send_transport_info(struct get *g, const char *what, const char *cid)
{
    xmpp_stanza_t *jingle, *iq = get_jingle_iq(g, "transport-info", "ti", &jingle);
    xmpp_stanza_t *content, *t, *el;

    if (iq && (content = get_content(jingle)) &&
        (t = stanza_add_element(content, "transport", GET_NS_S5B)) &&
        xmpp_stanza_set_attribute(t, "sid", g->tsid) == XMPP_EOK &&
        (el = stanza_add_element(t, what, NULL)) &&
        (!cid || xmpp_stanza_set_attribute(el, "cid", cid) == XMPP_EOK)) {
        log_debug("get", "sid=%s: %s %s", g->sid, what, cid ? cid : "");
        get_send(g, iq);
    } else {
        get_stanza_free(iq);
    }
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

/* ------------------------------------------------------------ SOCKS5 */

static int get_candidate_cmp(const void *a, const void *b)
{
    const struct get_candidate *x = a, *y = b;

    return x->priority < y->priority ? 1 : x->priority > y->priority ? -1 : 0;
}

/* Reads their candidates from the accept's s5b <transport/>. */
static void get_read_candidates(struct get *g, xmpp_stanza_t *transport)
{
    g->theirs_count = 0;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(transport); c; c = xmpp_stanza_get_next(c)) {
        struct get_candidate *k = &g->theirs[g->theirs_count];
        const char *cid, *host, *port, *prio, *type, *jid;
        char *end;
        long p;

        if (g->theirs_count == GET_CANDIDATES_MAX)
            break;
        if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "candidate") != 0)
            continue;
        cid = xmpp_stanza_get_attribute(c, "cid");
        host = xmpp_stanza_get_attribute(c, "host");
        port = xmpp_stanza_get_attribute(c, "port");
        prio = xmpp_stanza_get_attribute(c, "priority");
        type = xmpp_stanza_get_attribute(c, "type");
        jid = xmpp_stanza_get_attribute(c, "jid");
        if (!cid || !host || !port || strlen(cid) >= sizeof(k->cid) ||
            strlen(host) >= sizeof(k->host) || (jid && strlen(jid) >= sizeof(k->jid)))
            continue;
        p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535)
            continue;
        memset(k, 0, sizeof(*k));
        strcpy(k->cid, cid);
        strcpy(k->host, host);
        k->port = (unsigned)p;
        k->priority = prio ? (uint32_t)strtoul(prio, NULL, 10) : 0;
        k->proxy = type && strcmp(type, "proxy") == 0;
        if (jid)
            strcpy(k->jid, jid);
        g->theirs_count++;
    }
    qsort(g->theirs, g->theirs_count, sizeof(*g->theirs), get_candidate_cmp);
}

/* Both sides have spoken: the nominated link carries the bytes (XEP-0260
 * §2.4: the higher priority wins; on a tie, the initiator's choice, which
 * is the candidate of theirs we used). */
static void get_nominate(struct get *g)
{
    int ready_in = -1;
    bool use_ours_link; /* the link we opened to their candidate */

    for (int i = 0; i < GET_ACCEPTED_MAX && g->they_used == 1; i++)
        if (g->in[i].state == S5B_LINK_READY) {
            ready_in = i;
            break;
        }
    if (g->they_used == 1 && ready_in < 0)
        g->they_used = -1; /* they say they connected; nothing did here */
    if (g->used_theirs < 0 && g->they_used < 0) {
        log_info("get", "no SOCKS5 candidate works; waiting for the daemon's fallback");
        get_close_s5b(g);
        get_enter_state(g, GET_REPLACING);
        return;
    }
    use_ours_link = g->used_theirs >= 0 &&
                    (g->they_used < 0 || g->theirs[g->used_theirs].priority >= g->our_priority);
    if (use_ours_link) {
        const struct get_candidate *k = &g->theirs[g->used_theirs];

        g->data_fd = g->out.fd;
        g->method = k->proxy ? "socks5-proxy" : "socks5-direct";
        log_debug("get", "sid=%s: nominated their %s candidate %s (%s:%u)", g->sid,
                  k->proxy ? "proxy" : "direct", k->cid, k->host, k->port);
        for (size_t i = 0; i < GET_ACCEPTED_MAX; i++)
            s5b_link_close(&g->in[i]);
        get_enter_state(g, k->proxy && !g->activated ? GET_ACTIVATING : GET_S5B_RECEIVING);
    } else {
        g->data_fd = g->in[ready_in].fd;
        g->method = "socks5-direct";
        log_debug("get", "sid=%s: nominated our candidate %s", g->sid, g->our_cid);
        s5b_link_close(&g->out);
        for (int i = 0; i < GET_ACCEPTED_MAX; i++)
            if (i != ready_in)
                s5b_link_close(&g->in[i]);
        get_enter_state(g, GET_S5B_RECEIVING);
    }
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    g->listen_fd = -1;
}

/* CONNECTING: try their candidates in order, one at a time. */
static void get_connect_advance(struct get *g, uint64_t now)
{
    if (g->state != GET_CONNECTING)
        return;
    while (g->used_theirs == -2) {
        if (g->out.state == S5B_LINK_READY) {
            g->used_theirs = (int)g->trying;
            get_send_transport_info(g, "candidate-used", g->theirs[g->trying].cid);
        } else if (g->out.state == S5B_LINK_FAILED) {
            log_info("get", "candidate %s (%s:%u): %s", g->theirs[g->trying].cid,
                     g->theirs[g->trying].host, g->theirs[g->trying].port, g->out.why);
            s5b_link_init(&g->out);
            g->trying++;
        } else if (g->out.state != S5B_LINK_IDLE) {
            break; /* under way */
        } else if (g->trying < g->theirs_count) {
            char dstaddr[S5B_DSTADDR_LEN + 1];
            const struct get_candidate *k = &g->theirs[g->trying];

            s5b_dstaddr(dstaddr, g->tsid, g->peer, g->jid);
            s5b_link_connect(&g->out, k->host, k->port, dstaddr, now, GET_CONNECT_MS);
        } else {
            g->used_theirs = -1;
            get_send_transport_info(g, "candidate-error", NULL);
        }
    }
    if (g->used_theirs != -2 && g->they_used != 0)
        get_nominate(g);
}

/* S5B_RECEIVING: read what the nominated link has. */
static void get_s5b_read(struct get *g)
{
    for (int round = 0; round < 16 && g->state == GET_S5B_RECEIVING; round++) {
        ssize_t n = recv(g->data_fd, get_buffer(g), GET_SINK_CHUNK, MSG_DONTWAIT);

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            int64_t expected = get_expected(g);

            if (n < 0 || g->received != expected) {
                get_fail(g, EX_UNAVAILABLE, "failed-transport",
                         "the SOCKS5 stream ended after %" PRId64 " of %" PRId64 " bytes",
                         g->received, expected);
                return;
            }
            get_close_s5b(g);
            get_enter_state(g, g->terminated ? GET_DONE : GET_FINISHING);
            return;
        }
        if (g->received + n > get_expected(g)) {
            get_fail(g, EX_PROTOCOL, "failed-transport",
                     "the daemon sent more than the %" PRId64 " bytes announced",
                     get_expected(g));
            return;
        }
        if (!get_commit(g, (size_t)n)) {
            get_fail(g, EX_IOERR, "failed-application", "writing the file: %s",
                     strerror(g->write_errno));
            return;
        }
    }
}

/* ------------------------------------------------------------ stanzas */

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
    for (xmpp_stanza_t *h = file ? xmpp_stanza_get_children(file) : NULL; h;
         h = xmpp_stanza_get_next(h)) {
        const char *algo = xmpp_stanza_is_tag(h) ? xmpp_stanza_get_attribute(h, "algo") : NULL;
        unsigned char *bin = NULL;
        size_t len = 0;

        if (!algo || strcmp(xmpp_stanza_get_name(h), "hash") != 0 || strcmp(algo, "sha-256"))
            continue;
        text = xmpp_stanza_get_text(h);
        if (text)
            xmpp_base64_decode_bin(g->ctx, text, strlen(text), &bin, &len);
        if (bin && len == 32) {
            memcpy(g->accept_hash, bin, 32);
            g->has_accept_hash = true;
        }
        xmpp_free(g->ctx, bin);
        xmpp_free(g->ctx, text);
    }
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
        s5b_link_init(&g->out);
        get_enter_state(g, GET_CONNECTING);
        get_connect_advance(g, get_now_ms());
    } else {
        get_fail(g, EX_PROTOCOL, "unsupported-transports", "the daemon accepted with an "
                 "unknown transport %s", tns);
    }
}

static void get_on_transport_info(struct get *g, xmpp_stanza_t *jingle)
{
    xmpp_stanza_t *content = xmpp_stanza_get_child_by_name(jingle, "content");
    xmpp_stanza_t *t = content ? xmpp_stanza_get_child_by_ns(content, GET_NS_S5B) : NULL;

    for (xmpp_stanza_t *c = t ? xmpp_stanza_get_children(t) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_name(c) : "";
        const char *cid = xmpp_stanza_get_attribute(c, "cid");

        log_debug("get", "sid=%s: their %s %s", g->sid, name, cid ? cid : "");
        if (strcmp(name, "candidate-used") == 0 && g->state == GET_CONNECTING)
            g->they_used = cid && strcmp(cid, g->our_cid) == 0 && g->listen_fd >= 0 ? 1 : -1;
        else if (strcmp(name, "candidate-error") == 0 && g->state == GET_CONNECTING)
            g->they_used = -1;
        else if (strcmp(name, "activated") == 0) {
            g->activated = true;
            if (g->state == GET_ACTIVATING)
                get_enter_state(g, GET_S5B_RECEIVING);
        } else if (strcmp(name, "proxy-error") == 0 && g->state == GET_ACTIVATING) {
            log_info("get", "the daemon could not activate the proxy; waiting for its fallback");
            get_close_s5b(g);
            get_enter_state(g, GET_REPLACING);
        }
    }
    get_connect_advance(g, get_now_ms());
}

/* Their transport-replace (to IBB): accept it, then open the bytestream. */
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
            memcpy(g->checksum, bin, 32);
            g->has_checksum = true;
        }
        xmpp_free(g->ctx, bin);
        xmpp_free(g->ctx, text);
    }
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

/* ------------------------------------------------------------ the loop */

extern int get_xmpp_fd;

void get_loop_once(struct get *g, int timeout_ms)
{
    struct pollfd fds[4 + GET_ACCEPTED_MAX];
    int nfds = 0, xmpp_at = -1, listen_at = -1, out_at = -1, data_at = -1;
    int in_at[GET_ACCEPTED_MAX];
    uint64_t now;

    if (get_xmpp_fd >= 0 && !g->lost) {
        xmpp_at = nfds;
        fds[nfds++] = (struct pollfd){ get_xmpp_fd,
                                       (short)(POLLIN | (xmpp_conn_send_queue_len(g->conn) > 0
                                                             ? POLLOUT : 0)), 0 };
    }
    if (g->listen_fd >= 0 && g->state == GET_CONNECTING) {
        listen_at = nfds;
        fds[nfds++] = (struct pollfd){ g->listen_fd, POLLIN, 0 };
    }
    if (s5b_link_events(&g->out)) {
        out_at = nfds;
        fds[nfds++] = (struct pollfd){ g->out.fd, s5b_link_events(&g->out), 0 };
    }
    for (int i = 0; i < GET_ACCEPTED_MAX; i++) {
        in_at[i] = -1;
        if (s5b_link_events(&g->in[i])) {
            in_at[i] = nfds;
            fds[nfds++] = (struct pollfd){ g->in[i].fd, s5b_link_events(&g->in[i]), 0 };
        }
    }
    if (g->state == GET_S5B_RECEIVING && g->data_fd >= 0) {
        data_at = nfds;
        fds[nfds++] = (struct pollfd){ g->data_fd, POLLIN, 0 };
    }
    if (xmpp_at < 0 && timeout_ms > 10)
        timeout_ms = 10; /* libstrophe's socket unknown: let it look often */
    if (poll(fds, (nfds_t)nfds, timeout_ms) < 0 && errno != EINTR)
        return;
    /* libstrophe reads at most a few KB a turn: give it a few turns. */
    for (int i = 0; i < (xmpp_at >= 0 && (fds[xmpp_at].revents & POLLIN) ? 8 : 1); i++)
        xmpp_run_once(g->ctx, 0);
    now = get_now_ms();
    if (listen_at >= 0 && (fds[listen_at].revents & POLLIN)) {
        int fd = accept4(g->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        for (int i = 0; fd >= 0 && i < GET_ACCEPTED_MAX; i++)
            if (g->in[i].state == S5B_LINK_IDLE || g->in[i].state == S5B_LINK_FAILED) {
                s5b_link_accepted(&g->in[i], fd, g->our_dstaddr, now, GET_CONNECT_MS);
                fd = -1;
            }
        if (fd >= 0)
            close(fd);
    }
    if (g->state == GET_CONNECTING) {
        s5b_link_step(&g->out, out_at >= 0 ? fds[out_at].revents : 0, now);
        for (int i = 0; i < GET_ACCEPTED_MAX; i++)
            if (s5b_link_step(&g->in[i], in_at[i] >= 0 ? fds[in_at[i]].revents : 0, now) ==
                S5B_LINK_FAILED) {
                log_info("get", "a connection to our candidate: %s", g->in[i].why);
                s5b_link_init(&g->in[i]);
            }
        get_connect_advance(g, now);
    }
    if (data_at >= 0 && g->state == GET_S5B_RECEIVING && fds[data_at].revents)
        get_s5b_read(g);
}

int get_session_run(struct get *g)
{
    uint64_t timeout_ms = (uint64_t)(g->options->timeout_s > 0 ? g->options->timeout_s : 60) *
                          1000u;

    g->listen_fd = g->data_fd = -1;
    s5b_link_init(&g->out);
    for (int i = 0; i < GET_ACCEPTED_MAX; i++)
        s5b_link_init(&g->in[i]);
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
    xmpp_handler_delete(g->conn, get_on_iq);
    get_close_s5b(g);
    get_progress(g, true);
    return g->state == GET_DONE ? 0 : g->status;
}
