/*
 * sipub_s5b.c - the SOCKS5 bytestream (XEP-0065) of an SI file transfer:
 * the daemon, the stream's initiator, offers its streamhosts (its own
 * listener, shared with Jingle, and the server's proxy when it knows one);
 * the requester, the target, connects to one and says which with
 * <streamhost-used/>:
 *
 *   our listener   their connection (claimed from the listener's pending
 *                  ones by its DST.ADDR) carries the bytes: 's5b-direct'
 *   the proxy      we connect to it with the same DST.ADDR, activate it,
 *                  and our connection carries the bytes: 's5b-proxy'
 *
 * An error to the streamhosts (none worked for the requester), a
 * streamhost never offered, a proxy that cannot be reached or activated:
 * 'failed-transport' (SI negotiated the method; there is nothing to fall
 * back to).  The bytes go from the content store with sendfile(), as fast
 * as the socket and the shared bandwidth cap allow; once all are written
 * the session waits for the peer's TCP to have taken them (SIOCOUTQ empty)
 * and ends 'success'.  The socket closing early ends it 'cancel': closing
 * is how a SOCKS5 target gives up.
 */
#include "sipub_internal.h"
#include "clock.h"
#include "log.h"
#include "xmpp/stanza.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define SIPUB_DRAIN_POLL_MS 5

unsigned sipub_s5b_available(const struct sipub *s)
{
    const struct transfers *t = s->transfers;

    return t->config->transfer_socks5 && (t->listen_fd >= 0 || t->proxy.known)
               ? SI_METHOD_S5B : 0;
}

void sipub_s5b_close(struct sipub_session *x)
{
    if (x->in.fd >= 0)
        s5_stream_close(&x->in, "done");
    if (x->out.fd >= 0)
        s5_stream_close(&x->out, "done");
    x->data_fd = -1;
}

void sipub_s5b_offer(struct sipub *s, struct sipub_session *x, uint64_t now)
{
    const struct transfers *t = s->transfers;
    const char *me = t->config->xmpp_component;
    struct bytestreams_host hosts[2];
    size_t count = 0;
    char id[64];

    s5_dst_addr(x->sid, me, x->peer, x->dst);
    if (t->listen_fd >= 0) {
        hosts[count++] = (struct bytestreams_host){
            .jid = me, .port = t->listen_port,
            .host = t->config->transfer_socks5_host ? t->config->transfer_socks5_host
                                                    : t->config->transfer_socks5_bind,
        };
        x->direct_offered = true;
    }
    x->proxy = t->proxy;
    if (x->proxy.known)
        hosts[count++] = (struct bytestreams_host){ .jid = x->proxy.jid, .host = x->proxy.host,
                                                    .port = x->proxy.port };
    sipub_id(x, id, sizeof(id), "h");
    if (count == 0 ||
        !sipub_send(s, bytestreams_offer_iq_new(xmpp_conn_get_context(s->conn), x->peer, id,
                                                x->sid, hosts, count))) {
        sipub_end(s, x, "failed-transport");
        return;
    }
    sipub_enter_state(x, SIPUB_S5B_OFFERED);
    sipub_touch(s, x, now);
}

/* The bytes go out on `fd` now. */
static void sipub_s5b_stream_on(struct sipub *s, struct sipub_session *x, int fd,
                                const char *method, uint64_t now)
{
    log_info("sipub", "sid=%s: sending over %s", x->sid, method);
    x->data_fd = fd;
    sipub_record_method(s, x, method);
    sipub_enter_state(x, SIPUB_STREAMING);
    sipub_touch(s, x, now);
}

/* <streamhost-used/>: ours, or the proxy's. */
static void sipub_s5b_used(struct sipub *s, struct sipub_session *x, xmpp_stanza_t *result,
                           uint64_t now)
{
    char jid[TRANSFER_JID_MAX];

    if (!bytestreams_used_parse(result, jid, sizeof(jid))) {
        log_info("sipub", "sid=%s: %s named no streamhost it used", x->sid, x->peer);
        sipub_end(s, x, "failed-transport");
        return;
    }
    if (x->direct_offered && strcmp(jid, s->transfers->config->xmpp_component) == 0) {
        if (x->in.fd < 0 || x->in.state == S5_FAILED) {
            log_info("sipub", "sid=%s: %s used our streamhost, but no connection of its is here",
                     x->sid, x->peer);
            sipub_end(s, x, "failed-transport");
            return;
        }
        sipub_s5b_stream_on(s, x, x->in.fd, "s5b-direct", now);
        return;
    }
    if (x->proxy.known && strcmp(jid, x->proxy.jid) == 0) {
        if (x->in.fd >= 0)
            s5_stream_close(&x->in, "the proxy was used");
        if (s5_stream_connect(&x->out, x->proxy.host, x->proxy.port, x->dst,
                              now + TRANSFER_CONNECT_MS) != 0) {
            log_info("sipub", "sid=%s: proxy %s: %s", x->sid, x->proxy.jid, x->out.why);
            sipub_end(s, x, "failed-transport");
            return;
        }
        sipub_enter_state(x, SIPUB_ACTIVATING);
        sipub_touch(s, x, now);
        return;
    }
    log_info("sipub", "sid=%s: %s used a streamhost never offered: %s", x->sid, x->peer, jid);
    sipub_end(s, x, "failed-transport");
}

void sipub_s5b_on_answer(struct sipub *s, struct sipub_session *x, bool error,
                         const char *step, xmpp_stanza_t *stanza, uint64_t now)
{
    if (x->state == SIPUB_S5B_OFFERED && strcmp(step, "h") == 0) {
        if (error)
            sipub_end(s, x, "failed-transport"); /* no streamhost worked for them */
        else
            sipub_s5b_used(s, x, stanza, now);
    } else if (x->state == SIPUB_ACTIVATING && strcmp(step, "v") == 0) {
        if (error)
            sipub_end(s, x, "failed-transport");
        else
            sipub_s5b_stream_on(s, x, x->out.fd, "s5b-proxy", now);
    }
}

/* Writes what the socket and the cap allow. */
static void sipub_s5b_pump(struct sipub *s, struct sipub_session *x, short revents,
                           uint64_t now)
{
    struct transfers *t = s->transfers;

    if (revents & (POLLERR | POLLHUP)) {
        log_info("sipub", "sid=%s: the requester closed the bytestream at %" PRId64, x->sid,
                 x->next_offset);
        sipub_end(s, x, "cancel");
        return;
    }
    int64_t sent;
    enum transfers_sent r = transfers_sendfile(t, x->data_fd, x->fd, &x->next_offset, x->end,
                                               &sent, now);

    x->acked += sent;
    if (sent > 0)
        sipub_touch(s, x, now);
    if (r == TRANSFERS_SENT_LATER)
        return;
    if (r != TRANSFERS_SENT_ALL) {
        log_info("sipub", "sid=%s: sending at %" PRId64 ": %s", x->sid, x->next_offset,
                 r == TRANSFERS_SENT_SHORT_FILE ? "the file ended early" : strerror(errno));
        sipub_end(s, x, r == TRANSFERS_SENT_SHORT_FILE ? "failed-application" : "cancel");
        return;
    }
    sipub_enter_state(x, SIPUB_DRAINING);
}

/* All written: done when the peer's TCP has taken every byte, or it closed. */
static void sipub_s5b_drain(struct sipub *s, struct sipub_session *x)
{
    if (transfers_drained(x->data_fd))
        sipub_end(s, x, "success");
}

void sipub_s5b_tick(struct sipub *s, struct sipub_session *x, uint64_t now)
{
    short in_revents = x->in_revents, out_revents = x->out_revents;
    char id[64];

    x->in_revents = x->out_revents = 0;
    if (x->in.fd >= 0 && x->in.state != S5_READY)
        s5_stream_run(&x->in, in_revents, now);
    switch (x->state) {
    case SIPUB_ACTIVATING:
        if (x->out.state == S5_READY)
            break; /* the activation's answer is awaited */
        if (s5_stream_run(&x->out, out_revents, now) == S5_READY) {
            sipub_id(x, id, sizeof(id), "v");
            if (!sipub_send(s, bytestreams_activate_iq_new(xmpp_conn_get_context(s->conn),
                                                           x->proxy.jid, id, x->sid, x->peer)))
                sipub_end(s, x, "failed-transport");
        } else if (x->out.state == S5_FAILED) {
            log_info("sipub", "sid=%s: proxy %s: %s", x->sid, x->proxy.jid, x->out.why);
            sipub_end(s, x, "failed-transport");
        }
        break;
    case SIPUB_STREAMING:
        /* Their connection to our listener may still be sending its reply. */
        if (x->data_fd == x->in.fd && x->in.state != S5_READY) {
            if (x->in.state == S5_FAILED) {
                log_info("sipub", "sid=%s: %s", x->sid, x->in.why);
                sipub_end(s, x, "failed-transport");
            }
            break;
        }
        sipub_s5b_pump(s, x, x->data_fd == x->in.fd ? in_revents : out_revents, now);
        break;
    case SIPUB_DRAINING:
        sipub_s5b_drain(s, x);
        break;
    default:
        break;
    }
}

int sipub_s5b_timeout(const struct sipub *s, const struct sipub_session *x, uint64_t now)
{
    const struct transfers *t = s->transfers;
    const struct s5_stream *pending = x->state == SIPUB_ACTIVATING ? &x->out
                                      : x->in.fd >= 0 && x->in.state != S5_READY ? &x->in
                                                                                  : NULL;

    if (x->state == SIPUB_DRAINING)
        return SIPUB_DRAIN_POLL_MS;
    if (x->state == SIPUB_STREAMING && x->data_fd >= 0 &&
        (x->data_fd != x->in.fd || x->in.state == S5_READY))
        return t->tokens > 0 || t->config->transfer_bandwidth_kib == 0 ? -1 : TRANSFER_PUMP_MS;
    if (pending && pending->fd >= 0 && pending->state != S5_READY)
        return pending->deadline_ms > now ? (int)(pending->deadline_ms - now) : 0;
    return -1;
}

/* ------------------------------------------------------------ the loop's sockets */

int sipub_s5b_claim(struct sipub *s, struct s5_stream *pending)
{
    for (struct sipub_session *x = s ? s->sessions : NULL; x; x = x->next)
        if (x->state == SIPUB_S5B_OFFERED && x->direct_offered && x->in.fd < 0 &&
            strcmp(x->dst, pending->dst) == 0) {
            s5_stream_grant(pending);
            x->in = *pending;
            pending->fd = -1;
            return 1;
        }
    return 0;
}

size_t sipub_pollfds(const struct sipub *s, struct pollfd *fds, size_t max)
{
    const struct transfers *t = s->transfers;
    size_t n = 0;

    for (const struct sipub_session *x = s->sessions; x && n < max; x = x->next) {
        if (x->state == SIPUB_ENDED)
            continue;
        if (x->state == SIPUB_STREAMING && x->data_fd >= 0 &&
            (x->data_fd != x->in.fd || x->in.state == S5_READY)) {
            /* Over the cap, the socket waits for the clock, not for room. */
            if (t->config->transfer_bandwidth_kib == 0 || t->tokens > 0)
                fds[n++] = (struct pollfd){ .fd = x->data_fd, .events = POLLOUT };
            continue;
        }
        if (x->in.fd >= 0 && s5_stream_events(&x->in) && n < max)
            fds[n++] = (struct pollfd){ .fd = x->in.fd, .events = s5_stream_events(&x->in) };
        if (x->out.fd >= 0 && s5_stream_events(&x->out) && n < max)
            fds[n++] = (struct pollfd){ .fd = x->out.fd, .events = s5_stream_events(&x->out) };
    }
    return n;
}

void sipub_take_revents(struct sipub *s, const struct pollfd *fds, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (!fds[i].revents || fds[i].fd < 0)
            continue;
        for (struct sipub_session *x = s->sessions; x; x = x->next) {
            if (x->state == SIPUB_ENDED)
                continue;
            if (x->in.fd == fds[i].fd)
                x->in_revents = fds[i].revents;
            if (x->out.fd == fds[i].fd)
                x->out_revents = fds[i].revents;
        }
    }
}
