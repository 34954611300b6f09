/*
 * get_s5b.c - SOCKS5 (RFC 1928, as XEP-0065 restricts it) negotiation for
 * `filerepo get`: no authentication, CONNECT with a domain-name address
 * that is the 40 hex digits of the DST.ADDR hash, port 0.
 *
 * A link we open: TCP connect -> greeting 05 01 00 -> expect 05 00 ->
 * CONNECT 05 01 00 03 28 <hash> 00 00 -> expect 05 00 00 03 <len> <addr>
 * <port> -> READY.  A link accepted on our listener: expect a greeting
 * offering method 00 -> answer 05 00 -> expect CONNECT for exactly the
 * hash we gave -> answer 05 00 00 03 28 <hash> 00 00 -> READY.  Anything
 * else, or the deadline, fails the link.
 */
#include "get_s5b.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void s5b_dstaddr(char out[S5B_DSTADDR_LEN + 1], const char *sid, const char *offerer,
                 const char *other)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *sha = EVP_MD_CTX_new();

    memset(digest, 0, sizeof(digest));
    if (sha && EVP_DigestInit_ex(sha, EVP_sha1(), NULL) == 1 &&
        EVP_DigestUpdate(sha, sid, strlen(sid)) == 1 &&
        EVP_DigestUpdate(sha, offerer, strlen(offerer)) == 1 &&
        EVP_DigestUpdate(sha, other, strlen(other)) == 1)
        EVP_DigestFinal_ex(sha, digest, &len);
    EVP_MD_CTX_free(sha);
    for (size_t i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

void s5b_link_init(struct s5b_link *link)
{
    memset(link, 0, sizeof(*link));
    link->fd = -1;
    link->state = S5B_LINK_IDLE;
}

static void s5b_link_fail(struct s5b_link *link, const char *why)
{
    if (link->fd >= 0)
        close(link->fd);
    link->fd = -1;
    link->state = S5B_LINK_FAILED;
    link->why = why;
}

void s5b_link_close(struct s5b_link *link)
{
    if (link->fd >= 0)
        close(link->fd);
    s5b_link_init(link);
}

/* 05 01 00 03 28 <hash> 00 00 (CONNECT request) or 05 00 00 03 … (reply). */
static void s5b_link_queue_address(struct s5b_link *link, unsigned char second)
{
    unsigned char *p = link->out;

    *p++ = 0x05;
    *p++ = second;
    *p++ = 0x00;
    *p++ = 0x03;
    *p++ = S5B_DSTADDR_LEN;
    memcpy(p, link->dstaddr, S5B_DSTADDR_LEN);
    p += S5B_DSTADDR_LEN;
    *p++ = 0;
    *p++ = 0;
    link->out_len = (size_t)(p - link->out);
    link->out_off = 0;
}

static void s5b_link_queue(struct s5b_link *link, const unsigned char *bytes, size_t len)
{
    memcpy(link->out, bytes, len);
    link->out_len = len;
    link->out_off = 0;
}

int s5b_link_connect(struct s5b_link *link, const char *host, unsigned port,
                     const char *dstaddr, uint64_t now_ms, unsigned timeout_ms)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char service[8];
    int fd;

    s5b_link_init(link);
    memcpy(link->dstaddr, dstaddr, S5B_DSTADDR_LEN + 1);
    link->deadline_ms = now_ms + timeout_ms;
    snprintf(service, sizeof(service), "%u", port);
    if (port == 0 || port > 65535 || getaddrinfo(host, service, &hints, &res) != 0 || !res) {
        s5b_link_fail(link, "cannot resolve the candidate's host");
        return 0;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        s5b_link_fail(link, "cannot create a socket");
        return 0;
    }
    link->fd = fd;
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        freeaddrinfo(res);
        s5b_link_fail(link, "connection refused");
        return 0;
    }
    freeaddrinfo(res);
    link->state = S5B_LINK_CONNECTING;
    return 0;
}

void s5b_link_accepted(struct s5b_link *link, int fd, const char *dstaddr, uint64_t now_ms,
                       unsigned timeout_ms)
{
    s5b_link_init(link);
    link->fd = fd;
    memcpy(link->dstaddr, dstaddr, S5B_DSTADDR_LEN + 1);
    link->deadline_ms = now_ms + timeout_ms;
    link->state = S5B_LINK_ACCEPTED;
}

short s5b_link_events(const struct s5b_link *link)
{
    switch (link->state) {
    case S5B_LINK_CONNECTING:
        return POLLOUT;
    case S5B_LINK_GREETING:
    case S5B_LINK_REQUESTING:
    case S5B_LINK_ACCEPTED:
    case S5B_LINK_ASKED:
        return link->out_off < link->out_len ? (short)(POLLIN | POLLOUT) : POLLIN;
    default:
        return 0;
    }
}

/* Sends what is queued; false when the socket failed. */
static bool s5b_link_flush(struct s5b_link *link)
{
    while (link->out_off < link->out_len) {
        ssize_t n = send(link->fd, link->out + link->out_off, link->out_len - link->out_off,
                         MSG_NOSIGNAL);

        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        link->out_off += (size_t)n;
    }
    return true;
}

/* Reads what has come (never past the handshake); false on EOF or error. */
static bool s5b_link_fill(struct s5b_link *link, size_t want)
{
    while (link->in_len < want) {
        ssize_t n = recv(link->fd, link->in + link->in_len, want - link->in_len, 0);

        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        link->in_len += (size_t)n;
    }
    return true;
}

/* Length of a complete address message (request or reply) in link->in,
 * 0 while incomplete; sets *bad for one that is not a domain name. */
static size_t s5b_link_address_len(const struct s5b_link *link, bool *bad)
{
    *bad = false;
    if (link->in_len < 5)
        return 0;
    if (link->in[0] != 0x05 || link->in[3] != 0x03) {
        *bad = true;
        return 0;
    }
    return link->in_len >= 5u + link->in[4] + 2u ? 5u + link->in[4] + 2u : 0;
}

static void s5b_link_step_ours(struct s5b_link *link, short revents)
{
    static const unsigned char greeting[] = { 0x05, 0x01, 0x00 };
    bool bad;
    size_t len;

    if (link->state == S5B_LINK_CONNECTING) {
        int error = 0;
        socklen_t elen = sizeof(error);

        if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
            return;
        if (getsockopt(link->fd, SOL_SOCKET, SO_ERROR, &error, &elen) != 0 || error != 0) {
            s5b_link_fail(link, "cannot connect to the candidate");
            return;
        }
        s5b_link_queue(link, greeting, sizeof(greeting));
        link->state = S5B_LINK_GREETING;
    }
    if (!s5b_link_flush(link)) {
        s5b_link_fail(link, "the candidate closed the connection");
        return;
    }
    if (link->state == S5B_LINK_GREETING) {
        if (!s5b_link_fill(link, 2)) {
            s5b_link_fail(link, "the candidate closed the connection");
            return;
        }
        if (link->in_len < 2)
            return;
        if (link->in[0] != 0x05 || link->in[1] != 0x00) {
            s5b_link_fail(link, "the candidate wants an authentication");
            return;
        }
        link->in_len = 0;
        s5b_link_queue_address(link, 0x01);
        link->state = S5B_LINK_REQUESTING;
        if (!s5b_link_flush(link)) {
            s5b_link_fail(link, "the candidate closed the connection");
            return;
        }
    }
    if (link->state == S5B_LINK_REQUESTING) {
        /* The header first, then the address it announces: never read past
         * the reply, the file's bytes may follow it. */
        if (!s5b_link_fill(link, 5) ||
            (link->in_len >= 5 && !s5b_link_fill(link, 5u + link->in[4] + 2u))) {
            s5b_link_fail(link, "the candidate closed the connection");
            return;
        }
        len = s5b_link_address_len(link, &bad);
        if (bad || (len && link->in[1] != 0x00)) {
            s5b_link_fail(link, "the candidate refused the stream");
            return;
        }
        if (len) {
            link->in_len = 0;
            link->state = S5B_LINK_READY;
        }
    }
}

static void s5b_link_step_theirs(struct s5b_link *link)
{
    static const unsigned char choice[] = { 0x05, 0x00 };
    bool bad;
    size_t len;

    if (!s5b_link_flush(link)) {
        s5b_link_fail(link, "the peer closed the connection");
        return;
    }
    if (link->state == S5B_LINK_ACCEPTED) {
        if (!s5b_link_fill(link, 2) ||
            (link->in_len >= 2 && !s5b_link_fill(link, 2u + link->in[1]))) {
            s5b_link_fail(link, "the peer closed the connection");
            return;
        }
        if (link->in_len < 2 || link->in_len < 2u + link->in[1])
            return;
        if (link->in[0] != 0x05 || !memchr(link->in + 2, 0x00, link->in[1])) {
            s5b_link_fail(link, "the peer does not offer SOCKS5 without authentication");
            return;
        }
        link->in_len = 0;
        s5b_link_queue(link, choice, sizeof(choice));
        link->state = S5B_LINK_ASKED;
        if (!s5b_link_flush(link)) {
            s5b_link_fail(link, "the peer closed the connection");
            return;
        }
    }
    if (link->state == S5B_LINK_ASKED) {
        if (!s5b_link_fill(link, 5) ||
            (link->in_len >= 5 && !s5b_link_fill(link, 5u + link->in[4] + 2u))) {
            s5b_link_fail(link, "the peer closed the connection");
            return;
        }
        len = s5b_link_address_len(link, &bad);
        if (bad || (len && (link->in[1] != 0x01 || link->in[4] != S5B_DSTADDR_LEN ||
                            memcmp(link->in + 5, link->dstaddr, S5B_DSTADDR_LEN) != 0))) {
            s5b_link_fail(link, "the peer asked for another stream (DST.ADDR)");
            return;
        }
        if (!len)
            return;
        link->in_len = 0;
        s5b_link_queue_address(link, 0x00);
        if (!s5b_link_flush(link) || link->out_off < link->out_len) {
            /* 47 bytes into a fresh socket's buffer: short only if broken. */
            s5b_link_fail(link, "the peer closed the connection");
            return;
        }
        link->state = S5B_LINK_READY;
    }
}

enum s5b_link_state s5b_link_step(struct s5b_link *link, short revents, uint64_t now_ms)
{
    switch (link->state) {
    case S5B_LINK_CONNECTING:
    case S5B_LINK_GREETING:
    case S5B_LINK_REQUESTING:
        s5b_link_step_ours(link, revents);
        break;
    case S5B_LINK_ACCEPTED:
    case S5B_LINK_ASKED:
        s5b_link_step_theirs(link);
        break;
    default:
        return link->state;
    }
    if (link->state != S5B_LINK_READY && link->state != S5B_LINK_FAILED &&
        now_ms >= link->deadline_ms)
        s5b_link_fail(link, "timed out");
    return link->state;
}

int s5b_listen(const char *host, unsigned *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
    struct addrinfo *res = NULL;
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    int fd = -1;

    if (getaddrinfo(host, "0", &hints, &res) != 0 || !res)
        return -1;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    *port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                             : ((struct sockaddr_in *)&addr)->sin_port);
    return fd;
}
