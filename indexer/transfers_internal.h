/*
 * transfers_internal.h - what the two halves of the transfers share:
 * transfers.c (requests, answers, the loop) and transfers_session.c (one
 * session's state machine and the stanzas it sends).
 */
#ifndef FILEREPO_TRANSFERS_INTERNAL_H
#define FILEREPO_TRANSFERS_INTERNAL_H

#include "transfers.h"
#include "sipub.h"
#include "transfer.h"
#include "xmpp/jingle.h"

#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#define TRANSFER_QUEUE_MAX 16   /* stanzas in libstrophe's queue before we wait */
#define TRANSFER_PUMP_MS 10     /* retry delay while that queue is full */
#define TRANSFER_JID_MAX 3072

enum xfer_state {
    XFER_NEW,       /* initiate acknowledged; session-accept not yet sent */
    XFER_FAILING,   /* initiate acknowledged; the bytes are not there */
    XFER_ACCEPTING, /* session-accept sent, awaiting its result */
    XFER_OPENING,   /* awaiting the requester's IBB <open/> */
    XFER_SENDING,   /* blocks going out */
    XFER_CLOSING,   /* IBB <close/> sent, awaiting its result */
    XFER_ENDING,    /* session-terminate sent, awaiting its result */
    XFER_ENDED,     /* to be freed */
};

enum xfer_event {
    XFER_EV_TICK,       /* the loop's turn: send what is due */
    XFER_EV_RESULT,     /* a result to our IQ of step `arg` */
    XFER_EV_ERROR,      /* an error answering our IQ of step `arg` */
    XFER_EV_OPEN,       /* the requester's IBB <open/>, checked */
    XFER_EV_CLOSE,      /* the requester's IBB <close/>, answered */
    XFER_EV_TERMINATE,  /* the requester's session-terminate, reason `arg` */
    XFER_EV_IDLE,       /* the idle timeout passed */
    XFER_EV_STOP,       /* the daemon is stopping */
    XFER_EV_LOST,       /* the stream is gone */
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
};

/* Sessions under way, Jingle and sipub: what transfer.max_sessions bounds. */
static inline size_t transfers_in_use(const struct transfers *t)
{
    return t->count + sipub_count(t->sipub);
}

/* One session's clock and events (transfers_session.c). */
void xfer_touch(struct transfers *t, struct xfer *x, uint64_t now);
void xfer_dispatch(struct transfers *t, struct xfer *x, enum xfer_event ev, const char *arg,
                   uint64_t now);

#endif
