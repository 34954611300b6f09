/*
 * test_socks5.c - both ends of the SOCKS5 handshake over real loopback
 * sockets: a stream that reaches READY carries bytes, a DST.ADDR refused
 * by the accepting end fails the connecting one, and bad peers (a server
 * that wants authentication or closes, a client that is not SOCKS5),
 * closed ports, host names and deadlines end in S5_FAILED with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "socks5.h"

static const char dst[] = "972b7bf47291ca609517f67f86b5081086052dad";

/* Runs both ends until neither moves or `until` states are reached. */
static void drive(struct s5_stream *a, struct s5_stream *b, enum s5_state a_until,
                  enum s5_state b_until)
{
    for (int round = 0; round < 200; round++) {
        struct pollfd fds[2] = { { .fd = a->fd, .events = s5_stream_events(a) },
                                 { .fd = b->fd, .events = s5_stream_events(b) } };

        if ((a->state == a_until || a->state == S5_FAILED) &&
            (b->state == b_until || b->state == S5_FAILED))
            return;
        poll(fds, 2, 50);
        s5_stream_run(a, fds[0].revents, clock_now_ms());
        s5_stream_run(b, fds[1].revents, clock_now_ms());
    }
}

/* A connecting end and the accepting end it reached on a fresh listener. */
static int pair(struct s5_stream *out, struct s5_stream *in, const char *want)
{
    int port = 0, lfd = s5_listen("127.0.0.1", 0, &port), fd = -1;
    uint64_t deadline = clock_now_ms() + 5000;

    assert_true(lfd >= 0);
    assert_true(port > 0);
    assert_int_equal(s5_stream_connect(out, "127.0.0.1", port, want, deadline), 0);
    for (int i = 0; i < 100 && fd < 0; i++) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };

        poll(&p, 1, 50);
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    assert_true(fd >= 0);
    s5_stream_accept(in, fd, deadline);
    return lfd;
}

/* recv() on a non-blocking socket, waiting up to 5 s for something to come. */
static ssize_t recv_wait(int fd, void *buf, size_t len)
{
    ssize_t n = -1;

    for (int i = 0; i < 100 && n < 0; i++) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        poll(&p, 1, 50);
        n = recv(fd, buf, len, 0);
    }
    return n;
}

static void test_socks5__dst_addr(void **state)
{
    char out[S5_DST_LEN + 1];

    (void)state;
    /* XEP-0260's example: SHA-1("vj3hs98y" + romeo's JID + juliet's JID). */
    s5_dst_addr("vj3hs98y", "romeo@montague.lit/orchard", "juliet@capulet.lit/balcony", out);
    assert_string_equal(out, dst);
    /* And the responder's candidates: the JIDs the other way round. */
    s5_dst_addr("vj3hs98y", "juliet@capulet.lit/balcony", "romeo@montague.lit/orchard", out);
    assert_string_equal(out, "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba");
}

static void test_socks5__granted_carries_bytes(void **state)
{
    struct s5_stream out, in;
    int lfd = pair(&out, &in, dst);
    char buf[16] = { 0 };
    ssize_t n;

    (void)state;
    drive(&out, &in, S5_REQUEST, S5_REQUESTED);
    assert_int_equal(in.state, S5_REQUESTED);
    assert_string_equal(in.dst, dst);
    assert_int_equal(s5_stream_events(&in), 0); /* it waits on its owner */
    s5_stream_grant(&in);
    drive(&out, &in, S5_READY, S5_READY);
    assert_int_equal(out.state, S5_READY);
    assert_int_equal(in.state, S5_READY);

    assert_int_equal(send(in.fd, "payload", 7, 0), 7);
    n = recv_wait(out.fd, buf, sizeof(buf));
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "payload", 7);
    /* And the other way: nothing of the handshake is left to read. */
    assert_int_equal(send(out.fd, "back", 4, 0), 4);
    n = recv_wait(in.fd, buf, sizeof(buf));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "back", 4);
    s5_stream_close(&out, "done");
    s5_stream_close(&in, "done");
    assert_int_equal(out.fd, -1);
    close(lfd);
}

static void test_socks5__refused(void **state)
{
    struct s5_stream out, in;
    int lfd = pair(&out, &in, dst);

    (void)state;
    drive(&out, &in, S5_REQUEST, S5_REQUESTED);
    assert_int_equal(in.state, S5_REQUESTED);
    s5_stream_close(&in, "unknown DST.ADDR");
    assert_int_equal(in.state, S5_FAILED);
    assert_string_equal(in.why, "unknown DST.ADDR");
    drive(&out, &in, S5_READY, S5_FAILED);
    assert_int_equal(out.state, S5_FAILED);
    assert_string_equal(out.why, "the server refused the stream");
    close(lfd);
}

static void test_socks5__not_socks(void **state)
{
    struct s5_stream out, in;
    int lfd = pair(&out, &in, dst);

    (void)state;
    /* A peer that speaks SOCKS4 to our listener. */
    s5_stream_close(&out, "replaced");
    {
        int port = 0, l2 = s5_listen("127.0.0.1", 0, &port), c, a = -1;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(0x7f000001) };

        c = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(send(c, "\x04\x01\x00\x50", 4, 0), 4);
        for (int i = 0; i < 100 && a < 0; i++) {
            struct pollfd p = { .fd = l2, .events = POLLIN };

            poll(&p, 1, 50);
            a = accept4(l2, NULL, NULL, SOCK_NONBLOCK);
        }
        s5_stream_close(&in, "replaced");
        s5_stream_accept(&in, a, clock_now_ms() + 5000);
        for (int i = 0; i < 50 && in.state != S5_FAILED; i++) {
            struct pollfd p = { .fd = in.fd, .events = POLLIN };

            poll(&p, 1, 50);
            s5_stream_run(&in, p.revents, clock_now_ms());
        }
        assert_int_equal(in.state, S5_FAILED);
        assert_string_equal(in.why, "not SOCKS5");
        close(c);
        close(l2);
    }
    close(lfd);
}

/* Runs the connecting end alone until it fails or `until` is reached. */
static void drive_one(struct s5_stream *s, enum s5_state until)
{
    for (int i = 0; i < 100 && s->state != until && s->state != S5_FAILED; i++) {
        struct pollfd p = { .fd = s->fd, .events = s5_stream_events(s) };

        poll(&p, 1, 50);
        s5_stream_run(s, p.revents, clock_now_ms());
    }
}

/* A server end driven by hand: it wants authentication, or it closes. */
static void test_socks5__server_refusals(void **state)
{
    static const unsigned char auth_only[] = { 5, 0xff };
    struct s5_stream out, in;
    unsigned char greeting[3];
    int lfd = pair(&out, &in, dst);

    (void)state;
    drive_one(&out, S5_GREETING);
    assert_int_equal(recv_wait(in.fd, greeting, sizeof(greeting)), 3);
    assert_memory_equal(greeting, "\x05\x01\x00", 3);
    assert_int_equal(send(in.fd, auth_only, sizeof(auth_only), 0), 2);
    drive_one(&out, S5_REQUEST);
    assert_int_equal(out.state, S5_FAILED);
    assert_string_equal(out.why, "the server wants authentication");
    assert_int_equal(out.fd, -1);
    close(in.fd);
    close(lfd);

    /* A server that closes before answering the greeting. */
    lfd = pair(&out, &in, dst);
    close(in.fd);
    drive_one(&out, S5_REQUEST);
    assert_int_equal(out.state, S5_FAILED);
    assert_non_null(strstr(out.why, "greeting")); /* closed, or could not be sent */
    close(lfd);
}

static void test_socks5__unreachable(void **state)
{
    struct s5_stream out;
    int port = 0, lfd = s5_listen("127.0.0.1", 0, &port);

    (void)state;
    close(lfd); /* nobody listens there now */
    assert_int_equal(s5_stream_connect(&out, "127.0.0.1", port, dst, clock_now_ms() + 5000), 0);
    for (int i = 0; i < 100 && out.state != S5_FAILED; i++) {
        struct pollfd p = { .fd = out.fd, .events = s5_stream_events(&out) };

        poll(&p, 1, 50);
        s5_stream_run(&out, p.revents, clock_now_ms());
    }
    assert_int_equal(out.state, S5_FAILED);
    assert_string_equal(out.why, strerror(ECONNREFUSED));

    /* Names are never resolved, and ports must be ports. */
    assert_int_equal(s5_stream_connect(&out, "proxy.example.org", 7777, dst, 0), -1);
    assert_string_equal(out.why, "the host is not an IP address");
    assert_int_equal(s5_stream_connect(&out, "127.0.0.1", 0, dst, 0), -1);
    assert_int_equal(out.state, S5_FAILED);
}

static void test_socks5__deadline(void **state)
{
    struct s5_stream out, in;
    int lfd = pair(&out, &in, dst);

    (void)state;
    /* The accepting end never answers: the connecting end gives up in time. */
    out.deadline_ms = clock_now_ms() + 100;
    for (int i = 0; i < 100 && out.state != S5_FAILED; i++) {
        struct pollfd p = { .fd = out.fd, .events = s5_stream_events(&out) };

        poll(&p, 1, 20);
        s5_stream_run(&out, p.revents, clock_now_ms());
    }
    assert_int_equal(out.state, S5_FAILED);
    assert_non_null(strstr(out.why, "too long"));
    s5_stream_close(&in, "done");
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socks5__dst_addr),
        cmocka_unit_test(test_socks5__granted_carries_bytes),
        cmocka_unit_test(test_socks5__refused),
        cmocka_unit_test(test_socks5__not_socks),
        cmocka_unit_test(test_socks5__server_refusals),
        cmocka_unit_test(test_socks5__unreachable),
        cmocka_unit_test(test_socks5__deadline),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
