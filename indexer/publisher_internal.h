/*
 * publisher_internal.h - what publisher.c (the loop: fetching, starting,
 * recording) and publisher_op.c (one row's steps and their answers) share,
 * and nobody else.
 */
#ifndef FILEREPO_PUBLISHER_INTERNAL_H
#define FILEREPO_PUBLISHER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <strophe.h>

#include "catalog.h"
#include "config.h"
#include "keeper.h"
#include "outbox.h"

#define PUBLISHER_IN_FLIGHT 32       /* IQs awaiting their result */
#define PUBLISHER_OPS_MAX 128        /* rows held in memory */
#define PUBLISHER_SEND_QUEUE_MAX 64  /* stanzas queued in libstrophe */
#define PUBLISHER_IQ_TIMEOUT_MS 30000u
#define PUBLISHER_RETRY_MIN_MS 1000u
#define PUBLISHER_RETRY_MAX_MS 300000u
#define PUBLISHER_STEPS_MAX 12
#define PUBLISHER_OUTCOMES_MAX (PUBLISHER_OPS_MAX * 2)

enum publisher_step_kind {
    STEP_CREATE,
    STEP_CONFIGURE,
    STEP_AFFILIATIONS_GET,
    STEP_AFFILIATIONS_SET,
    STEP_PUBLISH,
    STEP_RETRACT,
    STEP_DELETE,
};


struct publisher_step {
    enum publisher_step_kind kind; /* what the IQ does */
    bool feed;                     /* on the change-feed node (else the row's node) */
};

/* One affiliation change computed from an affiliation query. */
struct publisher_affiliation {
    char *jid;                     /* owned */
    const char *affiliation;       /* static */
};

struct publisher_op {
    int64_t id;                    /* outbox id */
    char *action;                  /* outbox action */
    char *key;                     /* the row's node text: the order key */
    char *node;                    /* the node id as published */
    char *feed;                    /* the repository's change-feed node */
    char *parent;                  /* parent collection, NULL for a root */
    char *title, *description;     /* node configuration */
    char *path;                    /* entry path */
    char *acl;                     /* "role jid" lines */
    bool collection;               /* a directory's node */
    bool root;                     /* the repository's root */
    bool whitelist;                /* access model */
    bool feed_on;                  /* the repository's change feed is published */
    int attempts;                  /* failed attempts before this one */
    int64_t entry_id;              /* 0 when none */
    int64_t revision_id;           /* publish: the revision */
    char item[16];                 /* revision number as item id */
    xmpp_stanza_t *entry;          /* publish: the revision payload, owned */
    struct publisher_step steps[PUBLISHER_STEPS_MAX]; /* the plan */
    int steps_count, step;         /* how many, the one running */
    bool started;                  /* an IQ of it went out */
    bool finished;                 /* outcome recorded: to be dropped */
    char iq_id[40];                /* the IQ awaited */
    uint64_t deadline_ms;          /* when that IQ counts as lost */
    struct publisher_affiliation *changes; /* affiliations to set, owned */
    size_t changes_count, changes_cap; /* how many, room for */
};

enum publisher_outcome_kind { OUTCOME_DONE, OUTCOME_RETRY, OUTCOME_PARK };

struct publisher_outcome {
    enum publisher_outcome_kind kind;   /* what happened */
    struct catalog_outbox_done done;    /* DONE: what to record */
    unsigned delay_ms;                  /* RETRY: when to try again */
    char error[400];                    /* RETRY, PARK: why */
};

struct publisher {
    const struct config *config;   /* borrowed */
    struct catalog *catalog;       /* owned: the publisher's own connection */
    struct keeper *keeper;         /* owned */
    xmpp_conn_t *conn;             /* the stream while up, borrowed */
    bool listening;                /* LISTEN issued on this catalog connection */
    bool dirty;                    /* the outbox may hold rows not fetched */
    uint64_t retry_at_ms;          /* a waiting row comes due then (0: none) */
    uint64_t record_at_ms;         /* recording failed: try again then (0: now) */
    struct publisher_op *ops[PUBLISHER_OPS_MAX]; /* fetched rows, id order */
    size_t ops_count;              /* how many */
    struct publisher_outcome *outcomes; /* PUBLISHER_OUTCOMES_MAX, to record */
    struct catalog_outbox_done *done;   /* PUBLISHER_OUTCOMES_MAX, scratch of record() */
    size_t outcomes_count;         /* how many */
    unsigned long long iq_serial;  /* for IQ ids */
};

/** Frees an op and what it owns; NULL is fine. */
void publisher_op_free(struct publisher_op *op);

/** The row is done: its outcome is recorded at the next turn. */
void publisher_op_done(struct publisher *p, struct publisher_op *op);

/** The row goes again after a delay growing with its attempts. */
void publisher_op_retry(struct publisher *p, struct publisher_op *op, const char *why);

/** The row is parked with `why`. */
void publisher_op_park(struct publisher *p, struct publisher_op *op, const char *why);

/** Sends the op's current step, or ends the op when no step is left. */
void publisher_op_advance(struct publisher *p, struct publisher_op *op, uint64_t now);

/**
 * Makes an op of outbox row `row` (a catalog_outbox_fetch callback; data
 * is the publisher) and appends it to p->ops.  Returns 0 or FR_E*.
 */
int publisher_op_from_row(const struct catalog_outbox_row *row, void *data);

/** The stanza handler of IQ results and errors (registered per stream). */
int publisher_on_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata);

/** The name of a step kind, for logs. */
const char *publisher_step_name(enum publisher_step_kind kind);

#endif
