/*
 * transfers_s5b.c - the SOCKS5 transport of a Jingle file transfer
 * (XEP-0260 over XEP-0065): our candidates, trying theirs, the nomination,
 * proxy activation, streaming the bytes, and the fall back to IBB
 * (transport-replace) when no candidate works.
 *
 * The daemon is the responder.  It offers its own direct candidate (its
 * listener) and the server's proxy when it knows one; it tries the
 * requester's candidates in priority order, one at a time.  Once both sides
 * have reported (candidate-used or candidate-error), the nominated pair is
 * the one with the higher priority, the requester's choice on a tie:
 *
 *   our direct      the requester's connection to our listener carries the bytes
 *   our proxy       we connect to the proxy, activate it, send <activated/>
 *   their direct    our connection to their candidate carries the bytes
 *   their proxy     our connection to it, once they say <activated/>
 *   none            transport-replace with IBB (transfers_session.c sends the blocks)
 *
 * The bytes go from the content store to the socket with sendfile(), as
 * fast as the socket and the bandwidth cap allow; once all are written the
 * session waits for the peer's TCP to have taken them (SIOCOUTQ empty)
 * before the checksum and session-terminate go out on the XMPP stream.
 */
#include "transfers_internal.h"
#include "clock.h"
#include "log.h"
#include "xmpp/stanza.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define S5B_PRIORITY(type, local) (((uint32_t)(type) << 16) | (uint32_t)(local))
#define S5B_DIRECT 126
#define S5B_PROXY 10
#define S5B_DRAIN_POLL_MS 5

/* ------------------------------------------------------------ stanzas */

static bool s5b_candidate(xmpp_stanza_t *transport, const char *cid, const char *host, int port,
                          const char *jid, uint32_t priority, const char *type)
{
    xmpp_stanza_t *c = stanza_add_element(transport, "candidate", NULL);

    return c && xmpp_stanza_set_attribute(c, "cid", cid) == XMPP_EOK &&
           xmpp_stanza_set_attribute(c, "host", host) == XMPP_EOK &&
           xmpp_stanza_set_attribute(c, "jid", jid) == XMPP_EOK &&
           xfer_set_number(c, "port", port) && xfer_set_number(c, "priority", priority) &&
           xmpp_stanza_set_attribute(c, "type", type) == XMPP_EOK;
}

bool xfer_s5b_add_candidates(struct transfers *t, struct xfer *x, xmpp_stanza_t *transport)
{
    const char *me = t->config->xmpp_component;
    const char *host = t->config->transfer_socks5_host ? t->config->transfer_socks5_host
                                                       : t->config->transfer_socks5_bind;

    s5_dst_addr(x->req.s5b.sid, me, x->peer, x->our_dst);
    s5_dst_addr(x->req.s5b.sid, x->peer, me, x->their_dst);
    x->proxy = t->proxy;
    if (xmpp_stanza_set_attribute(transport, "sid", x->req.s5b.sid) != XMPP_EOK ||
        xmpp_stanza_set_attribute(transport, "mode", "tcp") != XMPP_EOK ||
        xmpp_stanza_set_attribute(transport, "dstaddr", x->our_dst) != XMPP_EOK)
        return false;
    if (t->listen_fd >= 0) {
        snprintf(x->direct_cid, sizeof(x->direct_cid), "fd%u", x->serial);
        x->direct_priority = S5B_PRIORITY(S5B_DIRECT, 1000);
        if (!s5b_candidate(transport, x->direct_cid, host, t->listen_port, me,
                           x->direct_priority, "direct"))
            return false;
    }
    if (x->proxy.known) {
        snprintf(x->proxy_cid, sizeof(x->proxy_cid), "fp%u", x->serial);
        x->proxy_priority = S5B_PRIORITY(S5B_PROXY, 1000);
        if (!s5b_candidate(transport, x->proxy_cid, x->proxy.host, x->proxy.port, x->proxy.jid,
                           x->proxy_priority, "proxy"))
            return false;
    }
    return true;
}

/* transport-info with <`what` [cid]/>; `step` names it in the IQ id. */
static void s5b_send_info(struct transfers *t, struct xfer *x, const char *what, const char *cid,
                          const char *step)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(t->conn);
    xmpp_stanza_t *iq, *jingle, *content, *transport, *el;
    char id[64];

    xfer_id(x, id, sizeof(id), step);
    iq = jingle_iq_new(ctx, x->peer, id, "transport-info", x->req.sid, &jingle);
    if (!iq || !(content = xfer_content(jingle, x)) ||
        !(transport = stanza_add_element(content, "transport", XMPP_NS_JINGLE_S5B)) ||
        xmpp_stanza_set_attribute(transport, "sid", x->req.s5b.sid) != XMPP_EOK ||
        !(el = stanza_add_element(transport, what, NULL)) ||
        (cid && xmpp_stanza_set_attribute(el, "cid", cid) != XMPP_EOK)) {
        xmpp_stanza_release(iq);
        return;
    }
    xfer_send(t, iq);
}

/* <iq to=proxy><query sid><activate>requester</activate></query></iq> (XEP-0065 §6.3.5). */
static bool s5b_send_activate(struct transfers *t, struct xfer *x)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(t->conn);
    xmpp_stanza_t *iq, *query, *activate, *text;
    char id[64];
    bool ok;

    xfer_id(x, id, sizeof(id), "v");
    iq = xmpp_iq_new(ctx, "set", id);
    text = xmpp_stanza_new(ctx);
    ok = iq && text && xmpp_stanza_set_to(iq, x->proxy.jid) == XMPP_EOK &&
         (query = stanza_add_element(iq, "query", XMPP_NS_BYTESTREAMS)) &&
         xmpp_stanza_set_attribute(query, "sid", x->req.s5b.sid) == XMPP_EOK &&
         (activate = stanza_add_element(query, "activate", NULL)) &&
         xmpp_stanza_set_text(text, x->peer) == XMPP_EOK &&
         xmpp_stanza_add_child(activate, text) == XMPP_EOK;
    xmpp_stanza_release(text);
    if (!ok) {
        xmpp_stanza_release(iq);
        return false;
    }
    return xfer_send(t, iq);
}

/* ------------------------------------------------------------ transitions */

void xfer_s5b_close(struct xfer *x)
{
    if (x->out.fd >= 0)
        s5_stream_close(&x->out, "closed");
    if (x->in.fd >= 0)
        s5_stream_close(&x->in, "closed");
    x->data_fd = -1;
}

void xfer_replace_with_ibb(struct transfers *t, struct xfer *x, uint64_t now)
{
    log_info("transfer", "sid=%s: no SOCKS5 candidate works; replacing the transport with IBB",
             x->req.sid);
    snprintf(x->req.ibb_sid, sizeof(x->req.ibb_sid), "ibb-%u", x->serial);
    x->block_size = (unsigned)t->config->transfer_ibb_block_size;
    if (!xfer_send_ibb_transport(t, x, "transport-replace", "r")) {
        xfer_terminate(t, x, "failed-transport", now);
        return;
    }
    xfer_enter_state(x, XFER_REPLACING);
    xfer_touch(t, x, now);
}

/* The bytes go out on `fd` now. */
static void s5b_stream_on(struct transfers *t, struct xfer *x, int fd, const char *method,
                          uint64_t now)
{
    log_info("transfer", "sid=%s: sending over %s", x->req.sid, method);
    x->data_fd = fd;
    xfer_set_method(t, x, method);
    xfer_enter_state(x, XFER_STREAMING);
    xfer_touch(t, x, now);
}

/* Both sides have reported: pick the pair, or fall back. */
static void s5b_nominate(struct transfers *t, struct xfer *x, uint64_t now)
{
    const struct jingle_candidate *theirs = NULL;
    bool ours_direct = false, ours_proxy = false;
    uint32_t ours_priority = 0;

    if (x->our_report == XFER_REPORT_NONE || x->their_report == XFER_REPORT_NONE ||
        x->state != XFER_CONNECTING)
        return;
    if (x->our_report == XFER_REPORT_USED)
        theirs = &x->req.s5b.candidates[x->trying];
    if (x->their_report == XFER_REPORT_USED) {
        ours_direct = x->direct_cid[0] && strcmp(x->their_cid, x->direct_cid) == 0;
        ours_proxy = x->proxy_cid[0] && strcmp(x->their_cid, x->proxy_cid) == 0;
        ours_priority = ours_direct ? x->direct_priority : x->proxy_priority;
    }
    /* The higher priority wins; on a tie, the initiator's choice (ours). */
    if ((ours_direct || ours_proxy) && theirs && theirs->priority > ours_priority)
        ours_direct = ours_proxy = false;
    if (ours_direct) {
        if (x->in.state != S5_READY) {
            xfer_replace_with_ibb(t, x, now);
            return;
        }
        if (x->out.fd >= 0)
            s5_stream_close(&x->out, "not nominated");
        s5b_stream_on(t, x, x->in.fd, "s5b-direct", now);
        return;
    }
    if (x->in.fd >= 0)
        s5_stream_close(&x->in, "not nominated");
    if (ours_proxy) {
        if (x->out.fd >= 0)
            s5_stream_close(&x->out, "not nominated");
        if (s5_stream_connect(&x->out, x->proxy.host, x->proxy.port, x->our_dst,
                              now + TRANSFER_CONNECT_MS) != 0) {
            log_info("transfer", "sid=%s: proxy %s: %s", x->req.sid, x->proxy.jid, x->out.why);
            s5b_send_info(t, x, "proxy-error", NULL, "e");
            xfer_replace_with_ibb(t, x, now);
            return;
        }
        xfer_enter_state(x, XFER_ACTIVATING);
        xfer_touch(t, x, now);
        return;
    }
    if (theirs && theirs->proxy) {
        xfer_enter_state(x, x->their_activated ? XFER_STREAMING : XFER_AWAITING);
        if (x->their_activated)
            s5b_stream_on(t, x, x->out.fd, "s5b-proxy", now);
        xfer_touch(t, x, now);
        return;
    }
    if (theirs) {
        s5b_stream_on(t, x, x->out.fd, "s5b-direct", now);
        return;
    }
    xfer_replace_with_ibb(t, x, now);
}

void xfer_s5b_on_report(struct transfers *t, struct xfer *x, enum jingle_s5b_info info,
                        uint64_t now)
{
    switch (info) {
    case JINGLE_S5B_CANDIDATE_USED:
        x->their_report = XFER_REPORT_USED;
        break;
    case JINGLE_S5B_CANDIDATE_ERROR:
        x->their_report = XFER_REPORT_ERROR;
        break;
    case JINGLE_S5B_ACTIVATED:
        x->their_activated = true;
        if (x->state == XFER_AWAITING)
            s5b_stream_on(t, x, x->out.fd, "s5b-proxy", now);
        return;
    case JINGLE_S5B_PROXY_ERROR:
        if (x->state == XFER_AWAITING || x->state == XFER_CONNECTING)
            xfer_replace_with_ibb(t, x, now);
        return;
    default:
        return;
    }
    s5b_nominate(t, x, now);
}

void xfer_s5b_on_answer(struct transfers *t, struct xfer *x, bool error, const char *step,
                        uint64_t now)
{
    if (strcmp(step, "v") == 0 && x->state == XFER_ACTIVATING) {
        if (error) {
            log_info("transfer", "sid=%s: proxy %s refused the activation", x->req.sid,
                     x->proxy.jid);
            s5b_send_info(t, x, "proxy-error", NULL, "e");
            xfer_replace_with_ibb(t, x, now);
            return;
        }
        s5b_send_info(t, x, "activated", x->proxy_cid, "n");
        s5b_stream_on(t, x, x->out.fd, "s5b-proxy", now);
    } else if (strcmp(step, "r") == 0 && error && x->state == XFER_REPLACING) {
        xfer_terminate(t, x, "failed-transport", now);
    }
}

/* ------------------------------------------------------------ the sockets */

/* Our side of the candidate search: one of theirs at a time, best first. */
static void s5b_try_theirs(struct transfers *t, struct xfer *x, uint64_t now)
{
    const struct jingle_s5b *s5b = &x->req.s5b;

    if (x->our_report != XFER_REPORT_NONE)
        return;
    if (x->out.fd >= 0) {
        enum s5_state st = s5_stream_run(&x->out, x->out_revents, now);

        if (st == S5_READY) {
            x->our_report = XFER_REPORT_USED;
            s5b_send_info(t, x, "candidate-used", s5b->candidates[x->trying].cid, "u");
            s5b_nominate(t, x, now);
            return;
        }
        if (st != S5_FAILED)
            return;
        log_info("transfer", "sid=%s: candidate %s (%s:%d): %s", x->req.sid,
                 s5b->candidates[x->trying].cid, s5b->candidates[x->trying].host,
                 s5b->candidates[x->trying].port, x->out.why);
        x->trying++;
    }
    while (x->trying < s5b->count) {
        const struct jingle_candidate *c = &s5b->candidates[x->trying];

        if (s5_stream_connect(&x->out, c->host, c->port, x->their_dst,
                              now + TRANSFER_CONNECT_MS) == 0)
            return;
        log_info("transfer", "sid=%s: candidate %s (%s:%d): %s", x->req.sid, c->cid, c->host,
                 c->port, x->out.why);
        x->trying++;
    }
    x->our_report = XFER_REPORT_ERROR;
    s5b_send_info(t, x, "candidate-error", NULL, "u");
    s5b_nominate(t, x, now);
}

/* Writes what the socket and the cap allow. */
static void s5b_pump(struct transfers *t, struct xfer *x, short revents, uint64_t now)
{
    if (revents & (POLLERR | POLLHUP)) {
        log_info("transfer", "sid=%s: the requester closed the bytestream at %" PRId64,
                 x->req.sid, x->next_offset);
        xfer_terminate(t, x, "failed-transport", now);
        return;
    }
    int64_t sent;
    enum transfers_sent r = transfers_sendfile(t, x->data_fd, x->fd, &x->next_offset, x->end,
                                               &sent, now);

    x->acked += sent;
    if (sent > 0)
        xfer_touch(t, x, now);
    if (r == TRANSFERS_SENT_LATER)
        return;
    if (r != TRANSFERS_SENT_ALL) {
        log_info("transfer", "sid=%s: sending at %" PRId64 ": %s", x->req.sid, x->next_offset,
                 r == TRANSFERS_SENT_SHORT_FILE ? "the file ended early" : strerror(errno));
        xfer_terminate(t, x, r == TRANSFERS_SENT_SHORT_FILE ? "failed-application"
                                                            : "failed-transport", now);
        return;
    }
    xfer_enter_state(x, XFER_DRAINING);
}

/* All written: done when the peer's TCP has taken every byte, or it closed. */
static void s5b_drain(struct transfers *t, struct xfer *x, uint64_t now)
{
    if (transfers_drained(x->data_fd))
        xfer_finish(t, x, now);
}

void xfer_s5b_tick(struct transfers *t, struct xfer *x, uint64_t now)
{
    short out_revents = x->out_revents, in_revents = x->in_revents;

    x->out_revents = x->in_revents = 0;
    if (x->in.fd >= 0 && x->in.state != S5_READY)
        s5_stream_run(&x->in, in_revents, now);
    switch (x->state) {
    case XFER_CONNECTING:
        x->out_revents = out_revents;
        s5b_try_theirs(t, x, now);
        x->out_revents = 0;
        break;
    case XFER_ACTIVATING:
        if (x->out.state == S5_READY)
            break; /* the activation's answer is awaited */
        if (s5_stream_run(&x->out, out_revents, now) == S5_READY) {
            if (!s5b_send_activate(t, x))
                xfer_terminate(t, x, "failed-transport", now);
        } else if (x->out.state == S5_FAILED) {
            log_info("transfer", "sid=%s: proxy %s: %s", x->req.sid, x->proxy.jid, x->out.why);
            s5b_send_info(t, x, "proxy-error", NULL, "e");
            xfer_replace_with_ibb(t, x, now);
        }
        break;
    case XFER_STREAMING:
        s5b_pump(t, x, x->data_fd == x->in.fd ? in_revents : out_revents, now);
        break;
    case XFER_DRAINING:
        s5b_drain(t, x, now);
        break;
    default:
        break;
    }
}

int transfers_s5b_timeout(const struct transfers *t, const struct xfer *x, uint64_t now)
{
    const struct s5_stream *s = x->state == XFER_CONNECTING || x->state == XFER_ACTIVATING
                                    ? &x->out : NULL;

    if (x->state == XFER_DRAINING)
        return S5B_DRAIN_POLL_MS;
    if (x->state == XFER_STREAMING)
        return t->tokens > 0 || t->config->transfer_bandwidth_kib == 0 ? -1 : TRANSFER_PUMP_MS;
    if (s && s->fd >= 0 && s->state != S5_READY)
        return s->deadline_ms > now ? (int)(s->deadline_ms - now) : 0;
    if (x->state == XFER_CONNECTING && x->our_report == XFER_REPORT_NONE && x->out.fd < 0)
        return 0;
    return -1;
}

/* ------------------------------------------------------------ the listener */

void transfers_s5b_listen(struct transfers *t)
{
    for (size_t i = 0; i < TRANSFER_PENDING_MAX; i++)
        t->pending[i].fd = -1;
    t->listen_fd = -1;
    if (!t->config->transfer_socks5)
        return;
    t->listen_fd = s5_listen(t->config->transfer_socks5_bind, t->config->transfer_socks5_port,
                             &t->listen_port);
    if (t->listen_fd < 0)
        log_warn("transfer", "cannot listen for SOCKS5 on %s port %d: %s; no direct candidate",
                 t->config->transfer_socks5_bind, t->config->transfer_socks5_port,
                 strerror(errno));
    else
        log_info("transfer", "SOCKS5 listener on %s port %d", t->config->transfer_socks5_bind,
                 t->listen_port);
}

void transfers_s5b_accept(struct transfers *t, uint64_t now)
{
    for (;;) {
        int fd = accept4(t->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        size_t i;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("transfer", "SOCKS5 accept: %s", strerror(errno));
            return;
        }
        for (i = 0; i < TRANSFER_PENDING_MAX && t->pending[i].fd >= 0; i++)
            ;
        if (i == TRANSFER_PENDING_MAX) {
            log_info("transfer", "SOCKS5: too many connections not yet matched; one refused");
            close(fd);
            continue;
        }
        s5_stream_accept(&t->pending[i], fd, now + TRANSFER_CONNECT_MS);
    }
}

/* Pending connections to our listener: their handshakes, then the session
 * whose DST.ADDR they ask for, or a refusal. */
void transfers_s5b_run_pending(struct transfers *t, uint64_t now)
{
    for (size_t i = 0; i < TRANSFER_PENDING_MAX; i++) {
        struct s5_stream *s = &t->pending[i];
        struct xfer *x;

        if (s->fd < 0)
            continue;
        if (s5_stream_run(s, t->pending_revents[i], now) != S5_REQUESTED)
            continue;
        for (x = t->sessions; x; x = x->next)
            if (x->s5b && x->direct_cid[0] && x->in.fd < 0 &&
                (x->state == XFER_ACCEPTING || x->state == XFER_CONNECTING) &&
                strcmp(x->our_dst, s->dst) == 0)
                break;
        if (!x && sipub_s5b_claim(t->sipub, s))
            continue; /* a sipub bytestream's */
        if (!x) {
            log_info("transfer", "SOCKS5: a connection for an unknown stream refused");
            s5_stream_close(s, "unknown DST.ADDR");
            continue;
        }
        s5_stream_grant(s);
        x->in = *s;
        s->fd = -1;
    }
    for (size_t i = 0; i < TRANSFER_PENDING_MAX; i++)
        t->pending_revents[i] = 0;
}

/* ------------------------------------------------------------ the proxy */

/* "s5p<round>-i": disco#items of the server; "s5p<round>-q": a bytestreams query. */
static void transfers_proxy_query(struct transfers *t, const char *to, const char *ns,
                                  const char *step)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(t->conn);
    char id[64];
    xmpp_stanza_t *iq;

    snprintf(id, sizeof(id), "s5p%u-%s", t->proxy_probe, step);
    iq = xmpp_iq_new(ctx, "get", id);
    if (!iq || xmpp_stanza_set_to(iq, to) != XMPP_EOK || !stanza_add_element(iq, "query", ns)) {
        xmpp_stanza_release(iq);
        return;
    }
    xfer_send(t, iq);
}

void transfers_proxy_discover(struct transfers *t)
{
    const char *proxy = t->config->transfer_socks5_proxy;
    const char *dot = strchr(t->config->xmpp_component, '.');

    t->proxy.known = false;
    t->proxy_probe++;
    if (!t->config->transfer_socks5 || !t->conn || strcmp(proxy, "off") == 0)
        return;
    if (strcmp(proxy, "auto") != 0)
        transfers_proxy_query(t, proxy, XMPP_NS_BYTESTREAMS, "q");
    else
        transfers_proxy_query(t, dot ? dot + 1 : t->config->xmpp_component,
                              "http://jabber.org/protocol/disco#items", "i");
}

bool transfers_proxy_answer(struct transfers *t, xmpp_stanza_t *stanza)
{
    const char *id = xmpp_stanza_get_id(stanza), *type = xmpp_stanza_get_type(stanza);
    xmpp_stanza_t *query, *host;
    unsigned round;
    char step[8];

    if (!id || strncmp(id, "s5p", 3) != 0)
        return false;
    if (sscanf(id, "s5p%u-%7s", &round, step) != 2 || round != t->proxy_probe ||
        !type || strcmp(type, "result") != 0 || t->proxy.known)
        return true;
    if (strcmp(step, "i") == 0) {
        query = xmpp_stanza_get_child_by_name(stanza, "query");
        for (xmpp_stanza_t *c = query ? xmpp_stanza_get_children(query) : NULL; c;
             c = xmpp_stanza_get_next(c)) {
            const char *jid = xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "item") == 0
                                  ? xmpp_stanza_get_attribute(c, "jid") : NULL;

            if (jid && !strchr(jid, '@') && strcmp(jid, t->config->xmpp_component) != 0)
                transfers_proxy_query(t, jid, XMPP_NS_BYTESTREAMS, "q");
        }
        return true;
    }
    query = xmpp_stanza_get_child_by_name_and_ns(stanza, "query", XMPP_NS_BYTESTREAMS);
    host = query ? xmpp_stanza_get_child_by_name(query, "streamhost") : NULL;
    if (host) {
        const char *jid = xmpp_stanza_get_attribute(host, "jid");
        const char *addr = xmpp_stanza_get_attribute(host, "host");
        const char *port = xmpp_stanza_get_attribute(host, "port");
        int p = port ? atoi(port) : 0;

        if (jid && addr && p > 0 && p < 65536 && strlen(jid) < sizeof(t->proxy.jid) &&
            strlen(addr) < sizeof(t->proxy.host)) {
            snprintf(t->proxy.jid, sizeof(t->proxy.jid), "%s", jid);
            snprintf(t->proxy.host, sizeof(t->proxy.host), "%s", addr);
            t->proxy.port = p;
            t->proxy.known = true;
            log_info("transfer", "SOCKS5 proxy %s at %s port %d", jid, addr, p);
        }
    }
    return true;
}
