/*
 * get_socks5.c - the SOCKS5 side of a `filerepo get` session (XEP-0260):
 * our direct candidate (a listener at our end of the XMPP connection),
 * trying the daemon's candidates best first, candidate-used /
 * candidate-error, the nomination, the daemon's proxy activation, reading
 * the nominated stream; and the poll loop that drives these sockets with
 * libstrophe's.  The state machine itself is get_session.c's.
 */
#include "get_internal.h"
#include "log.h"
#include "xmpp/jingle.h"
#include "xmpp/stanza.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

bool get_add_s5b_transport(struct get *g, xmpp_stanza_t *content)
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
void get_open_listener(struct get *g)
{
    int port = 0;

    g->listen_fd = -1;
    if (g->ibb || g->options->no_direct)
        return;
    g->listen_fd = s5_listen(g->local_host, 0, &port);
    if (g->listen_fd < 0) {
        log_warn("get", "cannot listen on %s: %s; offering no direct candidate", g->local_host,
                 strerror(errno));
        return;
    }
    get_random_id(g->our_cid, sizeof(g->our_cid));
    g->our_priority = (126u << 16) + 65535u;
}

void get_s5_idle(struct s5_stream *s)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->state = S5_FAILED;
}

/* Closes a stream (a READY one too) and leaves it idle. */
static void get_s5_close(struct s5_stream *s)
{
    if (s->fd >= 0)
        s5_stream_close(s, "closed");
    get_s5_idle(s);
}

void get_close_s5b(struct get *g)
{
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    g->listen_fd = -1;
    get_s5_close(&g->out);
    for (size_t i = 0; i < GET_ACCEPTED_MAX; i++)
        get_s5_close(&g->in[i]);
    g->data_fd = -1;
}

void get_send_transport_info(struct get *g, const char *what, const char *cid)
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

/* ------------------------------------------------------------ SOCKS5 */

static int get_candidate_cmp(const void *a, const void *b)
{
    const struct get_candidate *x = a, *y = b;

    return x->priority < y->priority ? 1 : x->priority > y->priority ? -1 : 0;
}

/* Reads their candidates from the accept's s5b <transport/>. */
void get_read_candidates(struct get *g, xmpp_stanza_t *transport)
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
        if (g->in[i].state == S5_READY) {
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
            get_s5_close(&g->in[i]);
        get_enter_state(g, k->proxy && !g->activated ? GET_ACTIVATING : GET_S5B_RECEIVING);
    } else {
        g->data_fd = g->in[ready_in].fd;
        g->method = "socks5-direct";
        log_debug("get", "sid=%s: nominated our candidate %s", g->sid, g->our_cid);
        get_s5_close(&g->out);
        for (int i = 0; i < GET_ACCEPTED_MAX; i++)
            if (i != ready_in)
                get_s5_close(&g->in[i]);
        get_enter_state(g, GET_S5B_RECEIVING);
    }
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    g->listen_fd = -1;
}

/* CONNECTING: try their candidates in order, one at a time.  g->out is
 * idle (fd -1, no reason), under way (fd >= 0), READY, or FAILED with a
 * reason: the candidate did not work. */
void get_connect_advance(struct get *g, uint64_t now)
{
    if (g->state != GET_CONNECTING)
        return;
    while (g->used_theirs == -2) {
        if (g->out.state == S5_READY) {
            g->used_theirs = (int)g->trying;
            get_send_transport_info(g, "candidate-used", g->theirs[g->trying].cid);
        } else if (g->out.state == S5_FAILED && g->out.why[0]) {
            log_info("get", "candidate %s (%s:%u): %s", g->theirs[g->trying].cid,
                     g->theirs[g->trying].host, g->theirs[g->trying].port, g->out.why);
            get_s5_idle(&g->out);
            g->trying++;
        } else if (g->out.fd >= 0) {
            break; /* under way */
        } else if (g->trying < g->theirs_count) {
            char dstaddr[S5_DST_LEN + 1];
            const struct get_candidate *k = &g->theirs[g->trying];

            /* Only IP literals are tried (socks5.h): a name is such a
             * candidate's failure, logged above. */
            s5_dst_addr(g->tsid, g->peer, g->jid, dstaddr);
            s5_stream_connect(&g->out, k->host, (int)k->port, dstaddr, now + GET_CONNECT_MS);
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

void get_on_transport_info(struct get *g, xmpp_stanza_t *jingle)
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

/* ------------------------------------------------------------ the loop */

/* A connection to our listener: it must ask for our DST.ADDR. */
static void get_run_accepted(struct get *g, struct s5_stream *s, short revents, uint64_t now)
{
    if (s5_stream_run(s, revents, now) == S5_REQUESTED) {
        if (strcmp(s->dst, g->our_dstaddr) == 0)
            s5_stream_grant(s);
        else
            s5_stream_close(s, "the peer asked for another stream (DST.ADDR)");
    }
    if (s->state == S5_FAILED) {
        log_info("get", "a connection to our candidate: %s", s->why);
        get_s5_idle(s);
    }
}

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
    if (g->out.fd >= 0 && s5_stream_events(&g->out)) {
        out_at = nfds;
        fds[nfds++] = (struct pollfd){ g->out.fd, s5_stream_events(&g->out), 0 };
    }
    for (int i = 0; i < GET_ACCEPTED_MAX; i++) {
        in_at[i] = -1;
        if (g->in[i].fd >= 0 && s5_stream_events(&g->in[i])) {
            in_at[i] = nfds;
            fds[nfds++] = (struct pollfd){ g->in[i].fd, s5_stream_events(&g->in[i]), 0 };
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
            if (g->in[i].fd < 0) {
                s5_stream_accept(&g->in[i], fd, now + GET_CONNECT_MS);
                fd = -1;
            }
        if (fd >= 0)
            close(fd);
    }
    if (g->state == GET_CONNECTING) {
        if (g->out.fd >= 0)
            s5_stream_run(&g->out, out_at >= 0 ? fds[out_at].revents : 0, now);
        for (int i = 0; i < GET_ACCEPTED_MAX; i++)
            if (g->in[i].fd >= 0)
                get_run_accepted(g, &g->in[i], in_at[i] >= 0 ? fds[in_at[i]].revents : 0, now);
        get_connect_advance(g, now);
    }
    if (data_at >= 0 && g->state == GET_S5B_RECEIVING && fds[data_at].revents)
        get_s5b_read(g);
}
