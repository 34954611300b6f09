/*
 * socks5.h - SOCKS5 bytestream sockets as XEP-0065 and XEP-0260 use them:
 * no authentication, CONNECT to a "domain name" that is the 40 hex digits
 * of SHA-1(sid + offering JID + other JID), port 0 (RFC 1928).
 *
 * A struct s5_stream is one socket on its way to carrying bytes, driven
 * without blocking from a poll loop: s5_stream_events() says what to wait
 * for, s5_stream_run() advances on the poll result or the clock.  Both
 * ends are here: the connecting end (a candidate or a proxy we connect to)
 * and the accepting end (a peer connecting to our own listener).  The
 * accepting end stops at S5_REQUESTED once it knows the DST.ADDR asked for:
 * its owner then grants it (s5_stream_grant) or refuses it.
 *
 * Only IP literals are connected to: a host name would need a resolver that
 * blocks the loop.
 */
#ifndef FILEREPO_SOCKS5_H
#define FILEREPO_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define S5_DST_LEN 40      /* hex SHA-1 */
#define S5_WHY_MAX 128

enum s5_state {
    S5_CONNECTING,  /* connect() under way */
    S5_GREETING,    /* method selection being exchanged */
    S5_REQUEST,     /* CONNECT request being exchanged */
    S5_REQUESTED,   /* accepting end: DST.ADDR known, the owner decides */
    S5_REPLYING,    /* accepting end: the success reply going out */
    S5_READY,       /* the handshake is done: bytes may flow */
    S5_FAILED,      /* closed; `why` says why */
};

struct s5_stream {
    int fd;                          /* -1 when closed */
    bool accepting;                  /* we are the SOCKS5 server end */
    enum s5_state state;
    char dst[S5_DST_LEN + 1];        /* DST.ADDR asked for / to ask for */
    unsigned char buf[320];          /* handshake bytes in or out */
    size_t have;                     /* bytes in buf */
    size_t done;                     /* of them written (when writing) */
    bool writing;                    /* buf is going out, not coming in */
    uint64_t deadline_ms;            /* the handshake must be over by then */
    char why[S5_WHY_MAX];            /* when FAILED */
};

/**
 * Writes the hex SHA-1 of sid + a + b (the DST.ADDR of XEP-0065 §5.3.2)
 * into out.
 */
void s5_dst_addr(const char *sid, const char *a, const char *b, char out[S5_DST_LEN + 1]);

/**
 * Starts connecting to host:port (an IPv4 or IPv6 literal) to ask for `dst`.
 * Returns 0, or -1 with the stream FAILED and `why` set.
 */
int s5_stream_connect(struct s5_stream *s, const char *host, int port, const char *dst,
                      uint64_t deadline_ms);

/** Takes `fd`, just accepted (non-blocking), for the server handshake. */
void s5_stream_accept(struct s5_stream *s, int fd, uint64_t deadline_ms);

/** The accepting end in S5_REQUESTED: sends the success reply. */
void s5_stream_grant(struct s5_stream *s);

/** Closes the stream (a refusal gets the SOCKS5 failure reply first). */
void s5_stream_close(struct s5_stream *s, const char *why);

/** The poll events the stream waits for (0 when it waits on its owner or is done). */
short s5_stream_events(const struct s5_stream *s);

/** Advances on the poll results `revents` at now_ms; returns the new state. */
enum s5_state s5_stream_run(struct s5_stream *s, short revents, uint64_t now_ms);

/**
 * Opens a listening TCP socket on host:port (port 0: any), non-blocking.
 * Returns the fd and writes the port bound into *bound, or -1 with errno.
 */
int s5_listen(const char *host, int port, int *bound);

#endif
