/*
 * socks5.c - the SOCKS5 handshakes of XEP-0065 bytestreams, both ends,
 * without blocking.
 *
 * Each handshake step is a write of `buf` (done < have) followed by a read
 * into `buf` until the message is whole; s5_stream_run() loops over the
 * steps as far as the socket allows.  The messages (RFC 1928):
 *
 *   greeting   05 01 00                       → 05 00
 *   request    05 01 00 03 28 <40 hex> 00 00  → 05 00 00 <address> <port>
 */
#include "socks5.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void s5_dst_addr(const char *sid, const char *a, const char *b, char out[S5_DST_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    memset(md, 0, sizeof(md));
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, sid, strlen(sid)) == 1 &&
        EVP_DigestUpdate(ctx, a, strlen(a)) == 1 && EVP_DigestUpdate(ctx, b, strlen(b)) == 1)
        EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[S5_DST_LEN] = '\0';
}

static enum s5_state s5_fail(struct s5_stream *s, const char *why)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->state != S5_FAILED)
        snprintf(s->why, sizeof(s->why), "%s", why);
    s->state = S5_FAILED;
    return S5_FAILED;
}

static void s5_init(struct s5_stream *s, int fd, bool accepting, enum s5_state state,
                    uint64_t deadline_ms)
{
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->accepting = accepting;
    s->state = state;
    s->deadline_ms = deadline_ms;
}

/* Puts `len` bytes in buf to be written. */
static void s5_queue(struct s5_stream *s, const unsigned char *bytes, size_t len)
{
    memcpy(s->buf, bytes, len);
    s->have = len;
    s->done = 0;
    s->writing = true;
}

/* The request (or the reply to it) for dst: 05 <code> 00 03 28 <dst> 00 00. */
static void s5_queue_dst(struct s5_stream *s, unsigned char code)
{
    unsigned char msg[5 + S5_DST_LEN + 2] = { 5, code, 0, 3, S5_DST_LEN };

    memcpy(msg + 5, s->dst, S5_DST_LEN);
    s5_queue(s, msg, sizeof(msg));
}

/* Writes what is queued: 1 when all is out, 0 when the socket is full, -1 on error. */
static int s5_flush(struct s5_stream *s)
{
    while (s->done < s->have) {
        ssize_t n = send(s->fd, s->buf + s->done, s->have - s->done, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        s->done += (size_t)n;
    }
    s->have = s->done = 0;
    s->writing = false;
    return 1;
}

/* Reads until buf holds `want` bytes: 1 when it does, 0 when more must
 * come, -1 on error or end of stream. */
static int s5_fill(struct s5_stream *s, size_t want)
{
    while (s->have < want) {
        ssize_t n = recv(s->fd, s->buf + s->have, want - s->have, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        s->have += (size_t)n;
    }
    return 1;
}

/* How long the reply to a request is, once its first bytes are in; 0: not yet known. */
static size_t s5_reply_len(const struct s5_stream *s)
{
    if (s->have < 5)
        return 0;
    switch (s->buf[3]) {
    case 1:
        return 4 + 4 + 2;
    case 4:
        return 4 + 16 + 2;
    case 3:
        return 4 + 1 + s->buf[4] + 2;
    default:
        return 5; /* malformed: judged once five bytes are in */
    }
}

/* The connecting end, one step at a time. */
static enum s5_state s5_run_connecting(struct s5_stream *s)
{
    static const unsigned char greeting[] = { 5, 1, 0 };
    int r, err = 0;
    socklen_t len = sizeof(err);

    for (;;) {
        switch (s->state) {
        case S5_CONNECTING:
            /* Called on a poll result: writable (connected) or an error. */
            if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
                return s5_fail(s, strerror(err ? err : errno));
            s5_queue(s, greeting, sizeof(greeting));
            s->state = S5_GREETING;
            break;
        case S5_GREETING:
            if (s->writing) {
                r = s5_flush(s);
                if (r <= 0)
                    return r < 0 ? s5_fail(s, "the greeting could not be sent") : s->state;
            }
            r = s5_fill(s, 2);
            if (r <= 0)
                return r < 0 ? s5_fail(s, "closed during the greeting") : s->state;
            if (s->buf[0] != 5 || s->buf[1] != 0)
                return s5_fail(s, "the server wants authentication");
            s5_queue_dst(s, 1);
            s->state = S5_REQUEST;
            break;
        case S5_REQUEST: {
            size_t want;

            if (s->writing) {
                r = s5_flush(s);
                if (r <= 0)
                    return r < 0 ? s5_fail(s, "the request could not be sent") : s->state;
            }
            r = s5_fill(s, 5);
            if (r <= 0)
                return r < 0 ? s5_fail(s, "closed during the request") : s->state;
            if (s->buf[0] != 5 || s->buf[1] != 0)
                return s5_fail(s, "the server refused the stream");
            want = s5_reply_len(s);
            if (want <= 5 && s->buf[3] != 3)
                return s5_fail(s, "malformed reply");
            r = s5_fill(s, want);
            if (r <= 0)
                return r < 0 ? s5_fail(s, "closed during the reply") : s->state;
            s->have = 0;
            s->state = S5_READY;
            return S5_READY;
        }
        default:
            return s->state;
        }
    }
}

/* The accepting end, one step at a time. */
static enum s5_state s5_run_accepting(struct s5_stream *s)
{
    static const unsigned char chosen[] = { 5, 0 };
    int r;

    for (;;) {
        switch (s->state) {
        case S5_GREETING: {
            bool no_auth = false;

            r = s5_fill(s, 2);
            if (r > 0)
                r = s5_fill(s, 2 + (size_t)s->buf[1]);
            if (r <= 0)
                return r < 0 ? s5_fail(s, "closed during the greeting") : s->state;
            if (s->buf[0] != 5)
                return s5_fail(s, "not SOCKS5");
            for (size_t i = 0; i < s->buf[1]; i++)
                no_auth = no_auth || s->buf[2 + i] == 0;
            if (!no_auth) {
                static const unsigned char none[] = { 5, 0xff };

                s5_queue(s, none, sizeof(none));
                s5_flush(s);
                return s5_fail(s, "the client offers no method without authentication");
            }
            s5_queue(s, chosen, sizeof(chosen));
            s->state = S5_REQUEST;
            break;
        }
        case S5_REQUEST:
            if (s->writing) {
                r = s5_flush(s);
                if (r <= 0)
                    return r < 0 ? s5_fail(s, "closed during the greeting") : s->state;
            }
            r = s5_fill(s, 5);
            if (r > 0 && s->buf[3] == 3)
                r = s5_fill(s, 5 + (size_t)s->buf[4] + 2);
            if (r <= 0)
                return r < 0 ? s5_fail(s, "closed during the request") : s->state;
            if (s->buf[0] != 5 || s->buf[1] != 1 || s->buf[3] != 3 || s->buf[4] != S5_DST_LEN) {
                static const unsigned char bad[] = { 5, 8, 0, 1, 0, 0, 0, 0, 0, 0 };

                s5_queue(s, bad, sizeof(bad));
                s5_flush(s);
                return s5_fail(s, "not a CONNECT to a 40-character address");
            }
            memcpy(s->dst, s->buf + 5, S5_DST_LEN);
            s->dst[S5_DST_LEN] = '\0';
            s->have = 0;
            s->state = S5_REQUESTED;
            return s->state;
        case S5_REPLYING:
            r = s5_flush(s);
            if (r <= 0)
                return r < 0 ? s5_fail(s, "closed during the reply") : s->state;
            s->state = S5_READY;
            return s->state;
        default:
            return s->state;
        }
    }
}

/* host (an IPv4 or IPv6 literal) and port as a socket address; false for a name. */
static bool s5_address(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof(*in4);
        return true;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return true;
    }
    return false;
}

int s5_stream_connect(struct s5_stream *s, const char *host, int port, const char *dst,
                      uint64_t deadline_ms)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;

    s5_init(s, -1, false, S5_CONNECTING, deadline_ms);
    snprintf(s->dst, sizeof(s->dst), "%s", dst);
    if (port <= 0 || port > 65535) {
        s5_fail(s, "no such port");
        return -1;
    }
    if (!s5_address(host, port, &ss, &len)) {
        s5_fail(s, "the host is not an IP address");
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        s5_fail(s, strerror(errno));
        return -1;
    }
    s->fd = fd;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
        s5_fail(s, strerror(errno));
        return -1;
    }
    return 0;
}

void s5_stream_accept(struct s5_stream *s, int fd, uint64_t deadline_ms)
{
    s5_init(s, fd, true, S5_GREETING, deadline_ms);
}

void s5_stream_grant(struct s5_stream *s)
{
    if (s->state != S5_REQUESTED)
        return;
    s5_queue_dst(s, 0);
    s->state = S5_REPLYING;
    s5_run_accepting(s);
}

void s5_stream_close(struct s5_stream *s, const char *why)
{
    if (s->state == S5_REQUESTED) {
        s5_queue_dst(s, 4); /* host unreachable: no such stream here */
        s5_flush(s);
    }
    s5_fail(s, why);
}

short s5_stream_events(const struct s5_stream *s)
{
    switch (s->state) {
    case S5_CONNECTING:
        return POLLOUT;
    case S5_GREETING:
    case S5_REQUEST:
    case S5_REPLYING:
        return s->writing ? POLLOUT : POLLIN;
    default:
        return 0;
    }
}

enum s5_state s5_stream_run(struct s5_stream *s, short revents, uint64_t now_ms)
{
    if (s->state == S5_FAILED || s->state == S5_READY || s->state == S5_REQUESTED)
        return s->state;
    if (now_ms >= s->deadline_ms)
        return s5_fail(s, s->state == S5_CONNECTING ? "no connection in time"
                                                      : "the handshake took too long");
    if (!revents && s->state == S5_CONNECTING)
        return s->state;
    return s->accepting ? s5_run_accepting(s) : s5_run_connecting(s);
}

int s5_listen(const char *host, int port, int *bound)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1, saved;

    if (!s5_address(host, port, &ss, &len)) {
        errno = EINVAL;
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                           : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}
