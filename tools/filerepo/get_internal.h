/*
 * get_internal.h - what the parts of `filerepo get` share: get.c (the
 * command: login, --rev, the output file, checks, reports) and
 * get_session.c (the Jingle session, its transports and the bytes).
 */
#ifndef FILEREPO_CLI_GET_INTERNAL_H
#define FILEREPO_CLI_GET_INTERNAL_H

#include "get.h"
#include "get_sink.h"
#include "socks5.h"

#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#define GET_CANDIDATES_MAX 8   /* of the daemon's candidates, the best kept */
#define GET_ACCEPTED_MAX 4     /* connections to our listener negotiated at once */
#define GET_CONNECT_MS 5000    /* to negotiate one SOCKS5 candidate */
#define GET_TERMINATE_WAIT_MS 2000 /* for the answer to our session-terminate */
#define GET_JID_MAX 3072
#define GET_NS_S5B "urn:xmpp:jingle:transports:s5b:1"

enum get_state {
    GET_INITIATING,    /* session-initiate sent, awaiting its result */
    GET_PENDING,       /* acknowledged, awaiting session-accept */
    GET_CONNECTING,    /* SOCKS5: trying their candidates, awaiting their word on ours */
    GET_ACTIVATING,    /* SOCKS5: their proxy nominated, awaiting <activated/> */
    GET_S5B_RECEIVING, /* SOCKS5: bytes flowing on the nominated link */
    GET_REPLACING,     /* SOCKS5 failed: awaiting their transport-replace */
    GET_IBB_OPENING,   /* IBB <open/> sent, awaiting its result */
    GET_IBB_RECEIVING, /* IBB: blocks flowing */
    GET_FINISHING,     /* the bytes are in: awaiting checksum and terminate */
    GET_DONE,          /* terminated with success */
    GET_FAILED,        /* over; `status` and `message` say why */
};

/** One candidate the daemon offered (XEP-0260 §2.2). */
struct get_candidate {
    char cid[64];       /* its id */
    char host[256];     /* address */
    unsigned port;      /* port */
    uint32_t priority;  /* higher is better */
    bool proxy;         /* type='proxy' (else direct, assisted, tunnel) */
    char jid[GET_JID_MAX]; /* the proxy's JID (for a proxy) */
};

struct get {
    /* The request. */
    const struct get_options *options; /* borrowed */
    const char *peer;                  /* the daemon's JID */
    const char *path;                  /* REPO/PATH asked for, or NULL */
    bool has_sha256;                   /* a hash names the content */
    unsigned char sha256[32];          /* that hash */
    int64_t offset;                    /* bytes already in the file */
    bool json;                         /* --json */

    /* XMPP. */
    xmpp_ctx_t *ctx;                   /* libstrophe context */
    xmpp_conn_t *conn;                 /* the client connection */
    bool connected;                    /* logged in */
    bool lost;                         /* the connection closed */
    int conn_error;                    /* libstrophe's error when it failed */
    char jid[GET_JID_MAX];             /* our full JID */
    char local_host[64];               /* our end of the XMPP socket, numeric */
    xmpp_stanza_t *reply;              /* an awaited answer (get.c), owned */
    const char *reply_id;              /* its id */

    /* The session. */
    enum get_state state;              /* see get_session.c */
    char sid[32];                      /* Jingle sid */
    char tsid[32];                     /* transport sid (SOCKS5 or IBB) */
    bool ibb;                          /* the transport is (now) IBB */
    bool retried_ibb;                  /* SOCKS5 refused: asked again with IBB */
    unsigned serial;                   /* of our IQ ids */
    int64_t size;                      /* of the whole file, from session-accept (-1) */
    bool has_checksum;                 /* the session-info <checksum/> came */
    unsigned char checksum[32];        /* its sha-256 */
    bool has_accept_hash;              /* session-accept named the sha-256 */
    unsigned char accept_hash[32];     /* that one */
    char reason[32];                   /* their session-terminate reason */
    bool terminated;                   /* their session-terminate came (or ours went) */
    bool terminate_sent;               /* ours went, */
    bool terminate_answered;           /* and its answer came */

    /* SOCKS5. */
    struct get_candidate theirs[GET_CANDIDATES_MAX]; /* sorted, best first */
    size_t theirs_count;               /* how many */
    size_t trying;                     /* index of the one being tried */
    struct s5_stream out;              /* our stream to theirs[trying] (fd -1: none) */
    int used_theirs;                   /* index we reported used, -1: error, -2: not yet */
    int listen_fd;                     /* our direct candidate's listener, -1 */
    char our_cid[16];                  /* its cid */
    uint32_t our_priority;             /* its priority */
    char our_dstaddr[S5_DST_LEN + 1];  /* what they must ask for */
    struct s5_stream in[GET_ACCEPTED_MAX]; /* connections to our listener (fd -1: free) */
    int they_used;                     /* 1: our candidate, -1: error, 0: not yet */
    int data_fd;                       /* the nominated link's socket, -1 */
    bool activated;                    /* their proxy is activated */

    /* IBB. */
    unsigned block_size;               /* granted */
    uint16_t seq;                      /* expected next */

    /* The bytes. */
    int fd;                            /* the output file */
    bool created;                      /* it did not exist before this run */
    bool regular;                      /* a regular file (else /dev/null, a pipe) */
    EVP_MD_CTX *sha;                   /* sha-256 of the whole file so far */
    struct get_sink *sink;             /* writes and hashes what arrives */
    int64_t received;                  /* bytes written in this run */
    int write_errno;                   /* why the last write failed */
    const char *method;                /* "socks5-direct", "socks5-proxy", "ibb" */
    uint64_t started_ms, last_progress_ms, drawn_ms; /* clocks */
    bool progress;                     /* draw a progress bar (stderr is a tty) */
    int status;                        /* exit status once FAILED */
    char message[512];                 /* what to tell, once FAILED */
};

extern volatile sig_atomic_t get_interrupted; /* SIGINT or SIGTERM came */
extern int get_xmpp_fd;                      /* libstrophe's socket, -1 unknown */

uint64_t get_now_ms(void);

/* get_session.c: the state machine and what both transports send with. */
void get_enter_state(struct get *g, enum get_state s);
int64_t get_expected(const struct get *g);   /* bytes this session must bring (-1) */
bool get_over(const struct get *g);          /* DONE or FAILED */
void get_random_id(char *out, size_t len);
void get_send(struct get *g, xmpp_stanza_t *stanza); /* sends and releases; NULL is fine */
xmpp_stanza_t *get_jingle_iq(struct get *g, const char *action, const char *step,
                             xmpp_stanza_t **jingle);
xmpp_stanza_t *get_content(xmpp_stanza_t *jingle); /* our <content/> under jingle */
bool get_set_number(xmpp_stanza_t *el, const char *name, int64_t value);
/** Fails the session with exit `status`, ending it with `reason` (NULL: over already). */
void get_fail(struct get *g, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* get_socks5.c: the SOCKS5 transport. */
void get_open_listener(struct get *g);       /* our direct candidate, unless --ibb/--no-direct */
/** Leaves a stream idle without touching a socket: fd -1, FAILED with no reason. */
void get_s5_idle(struct s5_stream *s);
void get_close_s5b(struct get *g);           /* every SOCKS5 socket */
bool get_add_s5b_transport(struct get *g, xmpp_stanza_t *content);
void get_read_candidates(struct get *g, xmpp_stanza_t *transport); /* theirs, best first */
void get_connect_advance(struct get *g, uint64_t now); /* CONNECTING: the next step */
void get_send_transport_info(struct get *g, const char *what, const char *cid);
void get_on_transport_info(struct get *g, xmpp_stanza_t *jingle);

/** xmpp_stanza_release() for a stanza that may be NULL. */
static inline void get_stanza_free(xmpp_stanza_t *stanza)
{
    if (stanza)
        xmpp_stanza_release(stanza);
}

/** Runs the loop once: poll our sockets and libstrophe's, up to timeout_ms. */
void get_loop_once(struct get *g, int timeout_ms);

/**
 * Runs the session after login with g's request, until DONE or FAILED.
 * Returns 0 when the daemon said success and every byte was written; else
 * the exit status, with g->message set.
 */
int get_session_run(struct get *g);

/** Hashes and writes `len` received bytes; false on an I/O error (g->write_errno). */
bool get_write(struct get *g, const unsigned char *buf, size_t len);

/** A buffer of GET_SINK_CHUNK bytes to receive into; get_commit() takes it. */
unsigned char *get_buffer(struct get *g);

/** Writes and hashes the first `len` bytes of get_buffer(); as get_write(). */
bool get_commit(struct get *g, size_t len);

/** Draws the progress bar if due (force: now, and end the line). */
void get_progress(struct get *g, bool force);

#endif
