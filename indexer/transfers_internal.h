/*
 * transfers_internal.h - what the two halves of the transfers share:
 * transfers.c (requests, answers, the loop) and transfers_session.c (one
 * session's state machine and the stanzas it sends).
 */
#ifndef FILEREPO_TRANSFERS_INTERNAL_H
#define FILEREPO_TRANSFERS_INTERNAL_H

#include "transfers.h"
#include "sipub.h"
#include "socks5.h"
#include "transfer.h"
#include "xmpp/jingle.h"

#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#define TRANSFER_QUEUE_MAX 16   /* stanzas in libstrophe's queue before we wait */
#define TRANSFER_PUMP_MS 10     /* retry delay while that queue is full */
#define TRANSFER_JID_MAX 3072
#define TRANSFER_CONNECT_MS 5000 /* one SOCKS5 candidate or handshake may take this long */
#define TRANSFER_PENDING_MAX 16  /* connections to our listener not yet matched */
#define TRANSFER_CHUNK (1 << 20) /* bytes handed to the socket at once */

enum xfer_state {
    XFER_NEW,        /* initiate acknowledged; session-accept not yet sent */
    XFER_FAILING,    /* initiate acknowledged; the bytes are not there */
    XFER_ACCEPTING,  /* session-accept sent, awaiting its result */
    XFER_CONNECTING, /* SOCKS5: trying their candidates, awaiting their report */
    XFER_ACTIVATING, /* SOCKS5: our proxy nominated; connecting to it, activating */
    XFER_AWAITING,   /* SOCKS5: their proxy nominated; awaiting their <activated/> */
    XFER_STREAMING,  /* SOCKS5: the bytes going out on the socket */
    XFER_DRAINING,   /* SOCKS5: all written; waiting for the peer to take them */
    XFER_REPLACING,  /* transport-replace (to IBB) sent, awaiting transport-accept */
    XFER_OPENING,    /* awaiting the requester's IBB <open/> */
    XFER_SENDING,    /* IBB blocks going out */
    XFER_CLOSING,    /* IBB <close/> sent, awaiting its result */
    XFER_ENDING,     /* session-terminate sent, awaiting its result */
    XFER_ENDED,      /* to be freed */
};

enum xfer_event {
    XFER_EV_TICK,       /* the loop's turn: send what is due, run the sockets */
    XFER_EV_RESULT,     /* a result to our IQ of step `arg` */
    XFER_EV_ERROR,      /* an error answering our IQ of step `arg` */
    XFER_EV_OPEN,       /* the requester's IBB <open/>, checked */
    XFER_EV_CLOSE,      /* the requester's IBB <close/>, answered */
    XFER_EV_REPORT,     /* the requester's s5b transport-info (x->their_*) */
    XFER_EV_REPLACE,    /* the requester's transport-replace to IBB, answered */
    XFER_EV_TRANSPORT_ACCEPT, /* the requester accepted our transport-replace */
    XFER_EV_TERMINATE,  /* the requester's session-terminate, reason `arg` */
    XFER_EV_IDLE,       /* the idle timeout passed */
    XFER_EV_STOP,       /* the daemon is stopping */
    XFER_EV_LOST,       /* the stream is gone */
};

/* What one side reported of the other's SOCKS5 candidates. */
enum xfer_report {
    XFER_REPORT_NONE,   /* not yet */
    XFER_REPORT_USED,   /* candidate-used */
    XFER_REPORT_ERROR,  /* candidate-error */
};

/* The SOCKS5 proxy offered as our candidate (found by disco or configured). */
struct xfer_proxy {
    bool known;
    char jid[JINGLE_TEXT_MAX];
    char host[64];
    int port;
};

struct xfer {
    struct xfer *next;
    enum xfer_state state;
    unsigned serial;                    /* in our IQ ids */
    char peer[TRANSFER_JID_MAX];        /* the requester's full JID */
    struct jingle_request req;          /* what was asked */
    struct catalog_transfer_file file;  /* what it resolved to */
    unsigned block_size;                /* negotiated */
    int fd;                             /* the content store object, or -1 */
    int64_t start, end;                 /* byte range sent: [start, end) */
    int64_t next_offset;                /* of the next block to read */
    int64_t acked;                      /* bytes acknowledged */
    unsigned in_flight;                 /* blocks awaiting their result */
    uint16_t seq;                       /* IBB seq of the next block */
    uint64_t deadline_ms;               /* idle timeout */
    int64_t row_id;                     /* its transfer row, 0: none */
    bool recorded;                      /* its outcome is written */
    char bare[TRANSFER_JID_MAX];        /* the requester's bare JID (per-requester limit) */

    /* SOCKS5 (XEP-0260): set while the transport is s5b. */
    bool s5b;
    char our_dst[S5_DST_LEN + 1];       /* DST.ADDR to our candidates */
    char their_dst[S5_DST_LEN + 1];     /* DST.ADDR to theirs */
    char direct_cid[16], proxy_cid[16]; /* our candidates ("" when not offered) */
    uint32_t direct_priority, proxy_priority;
    struct xfer_proxy proxy;            /* our proxy candidate as offered */
    size_t trying;                      /* index in req.s5b of the candidate tried */
    struct s5_stream out;               /* our connection: their candidate or our proxy */
    struct s5_stream in;                /* theirs to our listener, once matched */
    short out_revents, in_revents;      /* poll results of this turn */
    enum xfer_report our_report;        /* what we said of their candidates */
    enum xfer_report their_report;      /* what they said of ours */
    char their_cid[JINGLE_TEXT_MAX];    /* the cid they reported used or activated */
    bool their_activated;               /* <activated/> came */
    enum jingle_s5b_info report;        /* their last transport-info (XFER_EV_REPORT) */
    int data_fd;                        /* the nominated socket (owned by in/out) */
    const char *method;                 /* "s5b-direct", "s5b-proxy", "ibb" */
};

struct transfers {
    const struct config *config;  /* borrowed */
    struct store *store;          /* borrowed */
    struct catalog *catalog;      /* owned: our own connection */
    struct keeper *keeper;        /* owned */
    xmpp_conn_t *conn;            /* the stream while it is up */
    struct xfer *sessions;        /* newest first */
    size_t count;                 /* sessions not yet ENDED */
    unsigned serial;              /* of the last session */
    struct sipub *sipub;          /* owned: sipub (XEP-0137) sessions, sipub.c */

    int listen_fd;                /* our SOCKS5 listener, -1: none */
    int listen_port;              /* its port */
    struct s5_stream pending[TRANSFER_PENDING_MAX]; /* accepted, not yet matched */
    short pending_revents[TRANSFER_PENDING_MAX];
    struct xfer_proxy proxy;      /* the proxy we offer, once found */
    unsigned proxy_probe;         /* serial of the disco round looking for it */

    /* The bandwidth cap: a token bucket of bytes shared by all sessions. */
    int64_t tokens;
    uint64_t tokens_at_ms;
};

/* Sessions under way, Jingle and sipub: what transfer.max_sessions bounds. */
static inline size_t transfers_in_use(const struct transfers *t)
{
    return t->count + sipub_count(t->sipub);
}

/* Sessions under way for one requester (bare JID), Jingle and sipub
 * (transfer.per_requester_max bounds it; transfers.c). */
size_t transfers_count_of(const struct transfers *t, const char *bare);

/* One session's clock and events (transfers_session.c). */
void xfer_touch(struct transfers *t, struct xfer *x, uint64_t now);
void xfer_dispatch(struct transfers *t, struct xfer *x, enum xfer_event ev, const char *arg,
                   uint64_t now);

/* Shared by the session's halves (transfers_session.c). */
void xfer_enter_state(struct xfer *x, enum xfer_state s);
void xfer_id(const struct xfer *x, char *out, size_t len, const char *step);
bool xfer_send(struct transfers *t, xmpp_stanza_t *stanza);
void xfer_terminate(struct transfers *t, struct xfer *x, const char *reason, uint64_t now);
void xfer_finish(struct transfers *t, struct xfer *x, uint64_t now);
xmpp_stanza_t *xfer_content(xmpp_stanza_t *jingle, const struct xfer *x);
bool xfer_set_number(xmpp_stanza_t *el, const char *name, int64_t value);
void xfer_set_method(struct transfers *t, struct xfer *x, const char *method);
bool xfer_send_ibb_transport(struct transfers *t, struct xfer *x, const char *action,
                             const char *step);
int64_t transfers_allowance(struct transfers *t, int64_t want, uint64_t now);
void transfers_give_back(struct transfers *t, int64_t bytes);

/* What transfers_sendfile() did. */
enum transfers_sent {
    TRANSFERS_SENT_LATER,      /* the socket is full or the cap reached: more later */
    TRANSFERS_SENT_ALL,        /* up to `end`, and the socket shut for writing */
    TRANSFERS_SENT_ERROR,      /* the socket failed (errno) */
    TRANSFERS_SENT_SHORT_FILE, /* the file ended before `end` */
};

/*
 * Sends bytes [*offset, end) of `fd` on `sock` with sendfile() as far as the
 * socket and the bandwidth cap allow; advances *offset and sets *sent to
 * the bytes sent now (transfers_loop.c).
 */
enum transfers_sent transfers_sendfile(struct transfers *t, int sock, int fd, int64_t *offset,
                                       int64_t end, int64_t *sent, uint64_t now);

/* Whether the peer's TCP has taken every byte written on `sock` (or it closed). */
bool transfers_drained(int sock);

/* SOCKS5 (transfers_s5b.c). */
bool xfer_s5b_add_candidates(struct transfers *t, struct xfer *x, xmpp_stanza_t *transport);
void xfer_s5b_tick(struct transfers *t, struct xfer *x, uint64_t now);
void xfer_s5b_on_report(struct transfers *t, struct xfer *x, enum jingle_s5b_info info,
                        uint64_t now);
void xfer_s5b_on_answer(struct transfers *t, struct xfer *x, bool error, const char *step,
                        uint64_t now);
void xfer_s5b_close(struct xfer *x);
void xfer_replace_with_ibb(struct transfers *t, struct xfer *x, uint64_t now);
int transfers_s5b_timeout(const struct transfers *t, const struct xfer *x, uint64_t now);
void transfers_s5b_listen(struct transfers *t);
void transfers_s5b_accept(struct transfers *t, uint64_t now);
void transfers_s5b_run_pending(struct transfers *t, uint64_t now);
void transfers_proxy_discover(struct transfers *t);
bool transfers_proxy_answer(struct transfers *t, xmpp_stanza_t *stanza);

#endif
