/*
 * transfers_loop.c - the transfers' turn in the daemon's loop: the sockets
 * to poll (catalog, SOCKS5 listener and streams, sipub's), the time until
 * the next thing is due, the bandwidth cap's token bucket, and running
 * every session on the poll results.
 */
#include "transfers_internal.h"
#include "clock.h"
#include "keeper.h"
#include "log.h"

#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void transfers_stop(struct transfers *t, uint64_t now)
{
    for (struct xfer *x = t->sessions; x; x = x->next)
        xfer_dispatch(t, x, XFER_EV_STOP, NULL, now);
    sipub_stop(t->sipub, now);
}

int64_t transfers_allowance(struct transfers *t, int64_t want, uint64_t now)
{
    int64_t rate = (int64_t)t->config->transfer_bandwidth_kib * 1024;
    int64_t burst = rate / 10 > (1 << 16) ? rate / 10 : (1 << 16);

    if (rate == 0)
        return want;
    if (now > t->tokens_at_ms) {
        t->tokens += rate * (int64_t)(now - t->tokens_at_ms) / 1000;
        if (t->tokens > burst)
            t->tokens = burst;
        t->tokens_at_ms = now;
    }
    if (want > t->tokens)
        want = t->tokens > 0 ? t->tokens : 0;
    t->tokens -= want;
    return want;
}

void transfers_give_back(struct transfers *t, int64_t bytes)
{
    if (t->config->transfer_bandwidth_kib != 0)
        t->tokens += bytes;
}

enum transfers_sent transfers_sendfile(struct transfers *t, int sock, int fd, int64_t *offset,
                                       int64_t end, int64_t *sent, uint64_t now)
{
    *sent = 0;
    while (*offset < end) {
        int64_t want = end - *offset;
        off_t off = (off_t)*offset;
        ssize_t n;

        if (want > TRANSFER_CHUNK)
            want = TRANSFER_CHUNK;
        want = transfers_allowance(t, want, now);
        if (want == 0)
            return TRANSFERS_SENT_LATER;
        n = sendfile(sock, fd, &off, (size_t)want);
        if (n > 0) {
            *offset += n;
            *sent += n;
            if (n < want) {
                transfers_give_back(t, want - n); /* what the socket did not take */
                return TRANSFERS_SENT_LATER;
            }
            continue;
        }
        transfers_give_back(t, want);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return TRANSFERS_SENT_LATER;
        return n == 0 ? TRANSFERS_SENT_SHORT_FILE : TRANSFERS_SENT_ERROR;
    }
    shutdown(sock, SHUT_WR);
    return TRANSFERS_SENT_ALL;
}

bool transfers_drained(int sock)
{
    int unsent = 0;
    char byte;

    return !(ioctl(sock, SIOCOUTQ, &unsent) == 0 && unsent > 0 &&
             recv(sock, &byte, 1, MSG_DONTWAIT) != 0);
}

size_t transfers_pollfds_max(const struct transfers *t)
{
    return 2 + TRANSFER_PENDING_MAX + 2 * (size_t)t->config->transfer_max_sessions;
}

size_t transfers_pollfds(const struct transfers *t, struct pollfd *fds, size_t max)
{
    size_t n = 0;
    short events = 0;
    int fd = keeper_fd(t->keeper, &events);

    if (fd >= 0 && n < max)
        fds[n++] = (struct pollfd){ .fd = fd, .events = events };
    if (t->listen_fd >= 0 && n < max)
        fds[n++] = (struct pollfd){ .fd = t->listen_fd, .events = POLLIN };
    for (size_t i = 0; i < TRANSFER_PENDING_MAX && n < max; i++)
        if (t->pending[i].fd >= 0 && s5_stream_events(&t->pending[i]))
            fds[n++] = (struct pollfd){ .fd = t->pending[i].fd,
                                        .events = s5_stream_events(&t->pending[i]) };
    for (const struct xfer *x = t->sessions; x && n < max; x = x->next) {
        if (x->state == XFER_ENDED || !x->s5b)
            continue;
        if (x->state == XFER_STREAMING && x->data_fd >= 0) {
            /* Over the cap, the socket waits for the clock, not for room. */
            if (t->config->transfer_bandwidth_kib == 0 || t->tokens > 0)
                fds[n++] = (struct pollfd){ .fd = x->data_fd, .events = POLLOUT };
            continue;
        }
        if (x->out.fd >= 0 && s5_stream_events(&x->out) && n < max)
            fds[n++] = (struct pollfd){ .fd = x->out.fd, .events = s5_stream_events(&x->out) };
        if (x->in.fd >= 0 && s5_stream_events(&x->in) && n < max)
            fds[n++] = (struct pollfd){ .fd = x->in.fd, .events = s5_stream_events(&x->in) };
    }
    n += sipub_pollfds(t->sipub, fds + n, max - n);
    return n;
}

int transfers_timeout_ms(const struct transfers *t, uint64_t now_ms)
{
    int timeout = keeper_timeout_ms(t->keeper, now_ms);
    int sipub_timeout = sipub_timeout_ms(t->sipub, now_ms);

    if (sipub_timeout >= 0 && (timeout < 0 || sipub_timeout < timeout))
        timeout = sipub_timeout;

    for (size_t i = 0; i < TRANSFER_PENDING_MAX; i++)
        if (t->pending[i].fd >= 0) {
            int until = t->pending[i].deadline_ms > now_ms
                            ? (int)(t->pending[i].deadline_ms - now_ms) : 0;

            if (timeout < 0 || until < timeout)
                timeout = until;
        }
    for (const struct xfer *x = t->sessions; x; x = x->next) {
        int until, s5;

        if (x->state == XFER_ENDED || x->state == XFER_NEW || x->state == XFER_FAILING)
            return 0;
        if (x->state == XFER_SENDING && x->next_offset < x->end &&
            x->in_flight < (unsigned)t->config->transfer_ibb_window)
            until = t->conn && xmpp_conn_send_queue_len(t->conn) < TRANSFER_QUEUE_MAX &&
                            (t->config->transfer_bandwidth_kib == 0 || t->tokens > 0)
                        ? 0 : TRANSFER_PUMP_MS;
        else
            until = x->deadline_ms > now_ms ? (int)(x->deadline_ms - now_ms) : 0;
        s5 = x->s5b ? transfers_s5b_timeout(t, x, now_ms) : -1;
        if (s5 >= 0 && s5 < until)
            until = s5;
        if (timeout < 0 || until < timeout)
            timeout = until;
    }
    return timeout;
}

void transfers_run(struct transfers *t, const struct pollfd *fds, size_t count, uint64_t now)
{
    struct xfer **link = &t->sessions;
    short cat_revents = 0;
    short cat_events;
    int cat_fd = keeper_fd(t->keeper, &cat_events);

    /* Hand each poll result to whoever owns the socket. */
    for (size_t i = 0; i < count; i++) {
        if (!fds[i].revents)
            continue;
        if (fds[i].fd == cat_fd)
            cat_revents = fds[i].revents;
        else if (fds[i].fd == t->listen_fd)
            transfers_s5b_accept(t, now);
        for (size_t j = 0; j < TRANSFER_PENDING_MAX; j++)
            if (t->pending[j].fd == fds[i].fd)
                t->pending_revents[j] = fds[i].revents;
        for (struct xfer *x = t->sessions; x; x = x->next) {
            if (x->state == XFER_ENDED || !x->s5b)
                continue;
            if (x->out.fd == fds[i].fd)
                x->out_revents = fds[i].revents;
            if (x->in.fd == fds[i].fd)
                x->in_revents = fds[i].revents;
        }
    }
    keeper_run(t->keeper, cat_revents, now);
    transfers_s5b_run_pending(t, now);
    sipub_run(t->sipub, fds, count, now);
    for (struct xfer *x = t->sessions; x; x = x->next) {
        if (!t->conn)
            xfer_dispatch(t, x, XFER_EV_LOST, NULL, now);
        else if (now >= x->deadline_ms)
            xfer_dispatch(t, x, XFER_EV_IDLE, NULL, now);
        else
            xfer_dispatch(t, x, XFER_EV_TICK, NULL, now);
    }
    while (*link) {
        struct xfer *x = *link;

        if (x->state == XFER_ENDED) {
            *link = x->next;
            free(x);
        } else {
            link = &x->next;
        }
    }
}

