/*
 * test_get_s5b.c - the SOCKS5 links of `filerepo get` (tools/filerepo/
 * get_s5b.c): DST.ADDR as XEP-0260's examples compute it; a link we open
 * negotiating with a link our listener accepted, over loopback, and the
 * bytes after the handshake left for the reader; a wrong DST.ADDR, a
 * server that wants authentication, a peer that closes, and the deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "get_s5b.h"

static const char *const dst_a = "972b7bf47291ca609517f67f86b5081086052dad";

static void test_get_s5b__dstaddr(void **state)
{
    char out[S5B_DSTADDR_LEN + 1];

    (void)state;
    /* XEP-0260 §2.2 and §2.3: the initiator's and the responder's. */
    s5b_dstaddr(out, "vj3hs98y", "romeo@montague.lit/orchard", "juliet@capulet.lit/balcony");
    assert_string_equal(out, dst_a);
    s5b_dstaddr(out, "vj3hs98y", "juliet@capulet.lit/balcony", "romeo@montague.lit/orchard");
    assert_string_equal(out, "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba");
}

/* Steps both links until neither has changed for 100 ms. */
static void pump(struct s5b_link *a, struct s5b_link *b, uint64_t now)
{
    for (int i = 0, quiet = 0; i < 400 && quiet < 20; i++) {
        enum s5b_link_state sa = a->state, sb = b->state;

        struct pollfd fds[2];
        nfds_t n = 0;
        int ia = -1, ib = -1;

        if (s5b_link_events(a)) {
            ia = (int)n;
            fds[n++] = (struct pollfd){ a->fd, s5b_link_events(a), 0 };
        }
        if (s5b_link_events(b)) {
            ib = (int)n;
            fds[n++] = (struct pollfd){ b->fd, s5b_link_events(b), 0 };
        }
        if (n == 0)
            return;
        poll(fds, n, 5);
        s5b_link_step(a, ia >= 0 ? fds[ia].revents : 0, now);
        s5b_link_step(b, ib >= 0 ? fds[ib].revents : 0, now);
        quiet = a->state == sa && b->state == sb ? quiet + 1 : 0;
    }
}

static int accept_one(int listener)
{
    struct pollfd p = { listener, POLLIN, 0 };

    assert_int_equal(poll(&p, 1, 2000), 1);
    return accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static void test_get_s5b__negotiates_and_leaves_the_bytes(void **state)
{
    struct s5b_link ours, theirs;
    unsigned port = 0;
    int listener = s5b_listen("127.0.0.1", &port);
    char buf[16];
    ssize_t n;

    (void)state;
    assert_true(listener >= 0 && port > 0);
    s5b_link_connect(&ours, "127.0.0.1", port, dst_a, 1000, 2000);
    assert_int_equal(ours.state, S5B_LINK_CONNECTING);
    s5b_link_accepted(&theirs, accept_one(listener), dst_a, 1000, 2000);
    pump(&ours, &theirs, 1000);
    assert_int_equal(ours.state, S5B_LINK_READY);
    assert_int_equal(theirs.state, S5B_LINK_READY);
    /* What follows the handshake is the reader's, both ways. */
    assert_int_equal(send(theirs.fd, "file bytes", 10, 0), 10);
    assert_int_equal(send(ours.fd, "back", 4, 0), 4);
    usleep(20000);
    n = recv(ours.fd, buf, sizeof(buf), 0);
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "file bytes", 10);
    n = recv(theirs.fd, buf, sizeof(buf), 0);
    assert_int_equal(n, 4);
    s5b_link_close(&ours);
    s5b_link_close(&theirs);
    assert_int_equal(ours.fd, -1);
    close(listener);
}

static void test_get_s5b__wrong_dstaddr_fails(void **state)
{
    struct s5b_link ours, theirs;
    unsigned port = 0;
    int listener = s5b_listen("127.0.0.1", &port);

    (void)state;
    s5b_link_connect(&ours, "127.0.0.1", port, "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba", 0,
                     2000);
    s5b_link_accepted(&theirs, accept_one(listener), dst_a, 0, 2000);
    pump(&ours, &theirs, 0);
    assert_int_equal(theirs.state, S5B_LINK_FAILED);
    assert_non_null(strstr(theirs.why, "DST.ADDR"));
    assert_int_equal(theirs.fd, -1);
    /* Ours sees the connection closed. */
    assert_int_equal(ours.state, S5B_LINK_FAILED);
    close(listener);
}

/* A server end driven by hand: `reply` to the greeting, then close. */
static void test_get_s5b__refusals(void **state)
{
    static const unsigned char auth_only[] = { 0x05, 0xff };
    struct s5b_link ours;
    unsigned port = 0;
    int listener = s5b_listen("127.0.0.1", &port), fd;
    unsigned char greeting[3];

    (void)state;
    s5b_link_connect(&ours, "127.0.0.1", port, dst_a, 0, 2000);
    fd = accept_one(listener);
    pump(&ours, &ours, 0); /* connected, greeting sent; waits for the choice */
    assert_int_equal(ours.state, S5B_LINK_GREETING);
    usleep(20000);
    assert_int_equal(recv(fd, greeting, sizeof(greeting), 0), 3);
    assert_int_equal(greeting[0], 0x05);
    assert_int_equal(send(fd, auth_only, sizeof(auth_only), 0), 2);
    pump(&ours, &ours, 0);
    assert_int_equal(ours.state, S5B_LINK_FAILED);
    assert_non_null(strstr(ours.why, "authentication"));
    close(fd);

    /* A peer that closes before answering. */
    s5b_link_connect(&ours, "127.0.0.1", port, dst_a, 0, 2000);
    fd = accept_one(listener);
    close(fd);
    pump(&ours, &ours, 0);
    assert_int_equal(ours.state, S5B_LINK_FAILED);

    /* Silence past the deadline. */
    s5b_link_connect(&ours, "127.0.0.1", port, dst_a, 0, 2000);
    fd = accept_one(listener);
    pump(&ours, &ours, 0);
    assert_int_equal(ours.state, S5B_LINK_GREETING);
    assert_int_equal(s5b_link_step(&ours, 0, 2001), S5B_LINK_FAILED);
    assert_string_equal(ours.why, "timed out");
    close(fd);
    close(listener);

    /* Nothing listening. */
    s5b_link_connect(&ours, "127.0.0.1", port, dst_a, 0, 2000);
    pump(&ours, &ours, 0);
    assert_int_equal(ours.state, S5B_LINK_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_s5b__dstaddr),
        cmocka_unit_test(test_get_s5b__negotiates_and_leaves_the_bytes),
        cmocka_unit_test(test_get_s5b__wrong_dstaddr_fails),
        cmocka_unit_test(test_get_s5b__refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
