/*
 * get_s5b.h - the SOCKS5 bytestream links of `filerepo get` (XEP-0065 as
 * XEP-0260 uses it): a link we open to one of the sender's candidates (a
 * direct listener or a proxy65), and a link the sender opens to our own
 * direct candidate.  Both are non-blocking and advanced by s5b_link_step()
 * from the command's poll loop; neither carries data until it is READY.
 */
#ifndef FILEREPO_CLI_GET_S5B_H
#define FILEREPO_CLI_GET_S5B_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S5B_DSTADDR_LEN 40 /* hex SHA-1 */

enum s5b_link_state {
    S5B_LINK_IDLE,       /* no socket */
    S5B_LINK_CONNECTING, /* ours: TCP connect under way */
    S5B_LINK_GREETING,   /* ours: greeting sent, awaiting the method choice */
    S5B_LINK_REQUESTING, /* ours: CONNECT sent, awaiting the reply */
    S5B_LINK_ACCEPTED,   /* theirs: awaiting their greeting */
    S5B_LINK_ASKED,      /* theirs: method chosen, awaiting their CONNECT */
    S5B_LINK_READY,      /* negotiated: bytes may flow */
    S5B_LINK_FAILED,     /* closed; `why` says what went wrong */
};

/** One SOCKS5 connection and its negotiation. */
struct s5b_link {
    enum s5b_link_state state;       /* where the negotiation is */
    int fd;                          /* the socket, -1 when none */
    char dstaddr[S5B_DSTADDR_LEN + 1]; /* DST.ADDR sent (ours) or expected (theirs) */
    unsigned char in[320];           /* handshake bytes received, not yet used */
    size_t in_len;                   /* how many */
    unsigned char out[320];          /* handshake bytes to send */
    size_t out_len, out_off;         /* how many, how many sent */
    uint64_t deadline_ms;            /* negotiation must be done by then */
    const char *why;                 /* FAILED: the reason, static text */
};

/**
 * Writes hex SHA-1(sid + offerer + other) into out (41 bytes): the
 * DST.ADDR for a candidate offered by `offerer` (XEP-0260 §2.2).
 */
void s5b_dstaddr(char out[S5B_DSTADDR_LEN + 1], const char *sid, const char *offerer,
                 const char *other);

/** Resets a link to IDLE without touching any socket. */
void s5b_link_init(struct s5b_link *link);

/**
 * Starts connecting to host:port (a numeric address or a name) and
 * negotiating DST.ADDR `dstaddr`, to be done within timeout_ms.  Returns 0
 * (the link is CONNECTING or already FAILED with a reason).
 */
int s5b_link_connect(struct s5b_link *link, const char *host, unsigned port,
                     const char *dstaddr, uint64_t now_ms, unsigned timeout_ms);

/**
 * Takes an accepted socket `fd` (owned from now on) that must ask for
 * `dstaddr` within timeout_ms.
 */
void s5b_link_accepted(struct s5b_link *link, int fd, const char *dstaddr, uint64_t now_ms,
                       unsigned timeout_ms);

/** The poll events a negotiating link waits for (0: none). */
short s5b_link_events(const struct s5b_link *link);

/**
 * Advances the negotiation after poll reported `revents` (0: only check the
 * deadline).  Returns the new state.
 */
enum s5b_link_state s5b_link_step(struct s5b_link *link, short revents, uint64_t now_ms);

/** Closes the socket (READY links too); the state becomes IDLE. */
void s5b_link_close(struct s5b_link *link);

/**
 * Opens a TCP listener on the numeric address `host` with an ephemeral
 * port.  Returns the socket and sets *port, or -1.
 */
int s5b_listen(const char *host, unsigned *port);

#endif
