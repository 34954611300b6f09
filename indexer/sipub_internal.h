/*
 * sipub_internal.h - what the two halves of the sipub sessions share:
 * sipub.c (requests, answers, the loop) and sipub_session.c (one session's
 * state machine and the stanzas it sends).
 */
#ifndef FILEREPO_SIPUB_INTERNAL_H
#define FILEREPO_SIPUB_INTERNAL_H

#include "sipub.h"
#include "transfer_sipub.h"
#include "transfers_internal.h"
#include "xmpp/si.h"

#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#define SIPUB_SID_MAX 64

enum sipub_state {
    SIPUB_NEW,      /* <starting/> answered; the SI offer not yet sent */
    SIPUB_OFFERING, /* SI offer sent, awaiting the requester's choice */
    SIPUB_OPENING,  /* IBB <open/> sent, awaiting its result */
    SIPUB_SENDING,  /* blocks going out */
    SIPUB_CLOSING,  /* IBB <close/> sent after the last block, awaiting its result */
    SIPUB_S5B_OFFERED, /* SOCKS5 streamhosts sent, awaiting <streamhost-used/> */
    SIPUB_ACTIVATING,  /* the proxy was used: connecting to it, then activating */
    SIPUB_STREAMING,   /* SOCKS5: the bytes going out on the socket */
    SIPUB_DRAINING,    /* SOCKS5: all written; waiting for the peer to take them */
    SIPUB_ENDED,    /* recorded; to be freed */
};

enum sipub_event {
    SIPUB_EV_TICK,    /* the loop's turn: send what is due */
    SIPUB_EV_RESULT,  /* a result to our IQ of step `step` (the stanza with it) */
    SIPUB_EV_ERROR,   /* an error answering our IQ of step `step` */
    SIPUB_EV_CLOSE,   /* the requester's IBB <close/>, answered */
    SIPUB_EV_IDLE,    /* the idle timeout passed */
    SIPUB_EV_STOP,    /* the daemon is stopping */
    SIPUB_EV_LOST,    /* the stream is gone */
};

struct sipub_session {
    struct sipub_session *next;
    enum sipub_state state;
    unsigned serial;                    /* in our IQ ids: "sp<serial>-<step>" */
    char peer[TRANSFER_JID_MAX];        /* the requester's full JID */
    char sid[SIPUB_SID_MAX];            /* the SI id, also the bytestream's sid */
    struct catalog_sipub_file file;     /* the revision offered */
    unsigned offered;                   /* enum si_method bits offered */
    enum si_method method;              /* chosen */
    unsigned block_size;                /* IBB block-size of our <open/> */
    int fd;                             /* the content store object, or -1 */
    int64_t start, end;                 /* byte range sent: [start, end) */
    bool ranged;                        /* the range has a length (recorded) */
    int64_t next_offset;                /* of the next block to read */
    int64_t acked;                      /* bytes acknowledged */
    unsigned in_flight;                 /* blocks awaiting their result */
    uint16_t seq;                       /* IBB seq of the next block */
    uint64_t deadline_ms;               /* idle timeout */
    int64_t row_id;                     /* its transfer row */
    bool recorded;                      /* its outcome is written */

    /* SOCKS5 (XEP-0065): the daemon is the initiator, the requester the target. */
    char dst[S5_DST_LEN + 1];           /* SHA-1(sid + our JID + theirs) */
    bool direct_offered;                /* our listener is a streamhost */
    struct xfer_proxy proxy;            /* the proxy offered as a streamhost */
    struct s5_stream in;                /* their connection to our listener */
    struct s5_stream out;               /* ours to the proxy */
    short in_revents, out_revents;      /* poll results of this turn */
    int data_fd;                        /* the socket carrying the bytes (owned by in/out) */
};

struct sipub {
    struct transfers *transfers;      /* borrowed: config, store, catalog, keeper */
    xmpp_conn_t *conn;                /* the stream while it is up */
    struct sipub_session *sessions;   /* newest first */
    size_t count;                     /* sessions not yet ENDED */
    unsigned serial;                  /* of the last session */
};

/* One session's clock and events (sipub_session.c). */
void sipub_touch(struct sipub *s, struct sipub_session *x, uint64_t now);
void sipub_dispatch(struct sipub *s, struct sipub_session *x, enum sipub_event ev,
                    const char *step, xmpp_stanza_t *stanza, uint64_t now);

/* Shared by the session's halves (sipub_session.c). */
void sipub_enter_state(struct sipub_session *x, enum sipub_state s);
void sipub_end(struct sipub *s, struct sipub_session *x, const char *outcome);
void sipub_id(const struct sipub_session *x, char *out, size_t len, const char *step);
bool sipub_send(struct sipub *s, xmpp_stanza_t *stanza);
void sipub_record_method(struct sipub *s, struct sipub_session *x, const char *method);

/* SOCKS5 (sipub_s5b.c). */
unsigned sipub_s5b_available(const struct sipub *s);
void sipub_s5b_offer(struct sipub *s, struct sipub_session *x, uint64_t now);
void sipub_s5b_on_answer(struct sipub *s, struct sipub_session *x, bool error,
                         const char *step, xmpp_stanza_t *stanza, uint64_t now);
void sipub_s5b_tick(struct sipub *s, struct sipub_session *x, uint64_t now);
int sipub_s5b_timeout(const struct sipub *s, const struct sipub_session *x, uint64_t now);
void sipub_s5b_close(struct sipub_session *x);
void sipub_take_revents(struct sipub *s, const struct pollfd *fds, size_t count);

#endif
