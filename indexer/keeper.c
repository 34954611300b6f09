/*
 * keeper.c - the catalog connection's life.
 *
 * States (keeper_enter_state logs each change at debug):
 *   WAITING    -> CONNECTING  when the back-off delay has passed
 *   CONNECTING -> CONNECTED   handshake done and migrations applied
 *   CONNECTING -> WAITING     refused, failed or timed out (delay doubles)
 *   CONNECTED  -> WAITING     the connection was lost (try again at once)
 *   any        -> FATAL       the schema is newer than this binary
 * Migrating blocks for the few queries it takes on a server that just
 * accepted us; connecting never blocks.
 */
#include "keeper.h"
#include "backoff.h"
#include "fr_error.h"
#include "log.h"

#include <poll.h>
#include <stdlib.h>

#define KEEPER_CONNECT_TIMEOUT_MS 10000u

enum keeper_state {
    KEEPER_WAITING,
    KEEPER_CONNECTING,
    KEEPER_CONNECTED,
    KEEPER_FATAL,
};

static const char *const keeper_state_names[] = {
    [KEEPER_WAITING] = "waiting",
    [KEEPER_CONNECTING] = "connecting",
    [KEEPER_CONNECTED] = "connected",
    [KEEPER_FATAL] = "fatal",
};

struct keeper {
    struct catalog *catalog;    /* borrowed */
    enum keeper_state state;    /* see the overview */
    struct backoff backoff;     /* delays between attempts */
    uint64_t next_attempt_ms;   /* WAITING: when to try again */
    uint64_t deadline_ms;       /* CONNECTING: give up then */
    bool want_write;            /* CONNECTING: libpq waits to write */
    uint64_t lost_at_ms;        /* when the connection was lost, 0: never */
    bool fresh;                 /* connected since keeper_take_connected() last said so */
};

static void keeper_enter_state(struct keeper *keeper, enum keeper_state state)
{
    if (keeper->state == state)
        return;
    log_debug("catalog", "state %s -> %s", keeper_state_names[keeper->state],
              keeper_state_names[state]);
    keeper->state = state;
}

int keeper_new(struct keeper **out, struct catalog *catalog, int reconnect_max_seconds)
{
    struct keeper *keeper = calloc(1, sizeof(*keeper));

    *out = NULL;
    if (!keeper)
        return FR_ENOMEM;
    keeper->catalog = catalog;
    keeper->state = KEEPER_WAITING;
    backoff_init(&keeper->backoff, reconnect_max_seconds);
    *out = keeper;
    return 0;
}

void keeper_free(struct keeper *keeper)
{
    free(keeper);
}

static void keeper_retry_later(struct keeper *keeper, uint64_t now, const char *reason)
{
    unsigned wait = backoff_next(&keeper->backoff);

    catalog_disconnect(keeper->catalog);
    log_warn("catalog", "unavailable: %s; retrying in %u ms", reason, wait);
    keeper->next_attempt_ms = now + wait;
    keeper_enter_state(keeper, KEEPER_WAITING);
}

static void keeper_start(struct keeper *keeper, uint64_t now)
{
    if (catalog_connect_start(keeper->catalog) != 0) {
        keeper_retry_later(keeper, now, catalog_last_error(keeper->catalog));
        return;
    }
    keeper->deadline_ms = now + KEEPER_CONNECT_TIMEOUT_MS;
    keeper->want_write = true;
    keeper_enter_state(keeper, KEEPER_CONNECTING);
}

/* Connected: bring the schema up to date, then serve. */
static void keeper_connected(struct keeper *keeper, uint64_t now)
{
    int applied = 0, version = 0;
    int error = catalog_migrate(keeper->catalog, &applied, &version);

    if (error == FR_ESCHEMA) {
        log_error("catalog", "%s", catalog_last_error(keeper->catalog));
        catalog_disconnect(keeper->catalog);
        keeper_enter_state(keeper, KEEPER_FATAL);
        return;
    }
    if (error != 0) {
        keeper_retry_later(keeper, now, catalog_last_error(keeper->catalog));
        return;
    }
    if (keeper->lost_at_ms)
        log_info("catalog", "connected, schema version %d, %llu ms after the loss", version,
                 (unsigned long long)(now - keeper->lost_at_ms));
    else
        log_info("catalog", "connected, schema version %d (%d migration%s applied)", version,
                 applied, applied == 1 ? "" : "s");
    backoff_reset(&keeper->backoff);
    keeper->fresh = true;
    keeper_enter_state(keeper, KEEPER_CONNECTED);
}

int keeper_fd(const struct keeper *keeper, short *events)
{
    switch (keeper->state) {
    case KEEPER_CONNECTING:
        *events = keeper->want_write ? POLLOUT : POLLIN;
        return catalog_socket(keeper->catalog);
    case KEEPER_CONNECTED:
        *events = POLLIN;
        return catalog_socket(keeper->catalog);
    case KEEPER_WAITING:
    case KEEPER_FATAL:
        break;
    }
    *events = 0;
    return -1;
}

int keeper_timeout_ms(const struct keeper *keeper, uint64_t now_ms)
{
    uint64_t at;

    switch (keeper->state) {
    case KEEPER_WAITING:
        at = keeper->next_attempt_ms;
        break;
    case KEEPER_CONNECTING:
        at = keeper->deadline_ms;
        break;
    case KEEPER_CONNECTED:
    case KEEPER_FATAL:
    default:
        return -1;
    }
    return at > now_ms ? (int)(at - now_ms) : 0;
}

void keeper_run(struct keeper *keeper, short revents, uint64_t now_ms)
{
    int rc;

    switch (keeper->state) {
    case KEEPER_WAITING:
        if (now_ms >= keeper->next_attempt_ms)
            keeper_start(keeper, now_ms);
        break;
    case KEEPER_CONNECTING:
        if (revents) {
            rc = catalog_connect_poll(keeper->catalog, &keeper->want_write);
            if (rc == 0)
                keeper_connected(keeper, now_ms);
            else if (rc < 0)
                keeper_retry_later(keeper, now_ms, catalog_last_error(keeper->catalog));
        } else if (now_ms >= keeper->deadline_ms) {
            keeper_retry_later(keeper, now_ms, "no answer to the connection attempt");
        }
        break;
    case KEEPER_CONNECTED:
        if (revents && catalog_consume(keeper->catalog) != 0) {
            log_warn("catalog", "connection lost: %s; reconnecting",
                     catalog_last_error(keeper->catalog));
            keeper->lost_at_ms = now_ms;
            backoff_reset(&keeper->backoff);
            keeper->next_attempt_ms = now_ms;
            keeper_enter_state(keeper, KEEPER_WAITING);
            keeper_start(keeper, now_ms);
        }
        break;
    case KEEPER_FATAL:
        break;
    }
}

bool keeper_is_connected(const struct keeper *keeper)
{
    return keeper->state == KEEPER_CONNECTED;
}

bool keeper_take_connected(struct keeper *keeper)
{
    bool fresh = keeper->fresh && keeper->state == KEEPER_CONNECTED;

    keeper->fresh = false;
    return fresh;
}

bool keeper_is_fatal(const struct keeper *keeper)
{
    return keeper->state == KEEPER_FATAL;
}
