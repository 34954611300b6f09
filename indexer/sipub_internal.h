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
    int64_t next_offset;                /* of the next block to read */
    int64_t acked;                      /* bytes acknowledged */
    unsigned in_flight;                 /* blocks awaiting their result */
    uint16_t seq;                       /* IBB seq of the next block */
    uint64_t deadline_ms;               /* idle timeout */
    int64_t row_id;                     /* its transfer row */
    bool recorded;                      /* its outcome is written */
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

#endif
