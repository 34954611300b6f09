/*
 * component.c - the component connection's life: connect, serve, lose,
 * wait, connect again.
 *
 * States (component_enter_state logs each change):
 *   WAITING    -> CONNECTING  when the back-off delay has passed
 *   CONNECTING -> CONNECTED   on the server's handshake answer
 *   CONNECTING -> WAITING     on refusal or failure (delay doubles)
 *   CONNECTED  -> WAITING     on loss (delay starts again from the minimum)
 *   any        -> STOPPING -> STOPPED  on component_stop
 * One libstrophe connection object serves every attempt: libstrophe resets
 * it on each connect and keeps the handlers the service registered.
 */
#include "component.h"
#include "backoff.h"
#include "clock.h"
#include "fr_error.h"
#include "log.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum component_state {
    COMPONENT_WAITING,
    COMPONENT_CONNECTING,
    COMPONENT_CONNECTED,
    COMPONENT_STOPPING,
    COMPONENT_STOPPED,
};

static const char *const component_state_names[] = {
    [COMPONENT_WAITING] = "waiting",
    [COMPONENT_CONNECTING] = "connecting",
    [COMPONENT_CONNECTED] = "connected",
    [COMPONENT_STOPPING] = "stopping",
    [COMPONENT_STOPPED] = "stopped",
};

struct component {
    const struct config *config;  /* borrowed */
    struct service *service;      /* borrowed */
    xmpp_ctx_t *ctx;              /* libstrophe context, owned */
    xmpp_conn_t *conn;            /* the connection object, owned */
    enum component_state state;   /* see the overview */
    int fd;                       /* the stream's socket, -1 when none */
    uint64_t next_attempt_ms;     /* WAITING: when to try again */
    uint64_t attempt_started_ms;  /* CONNECTING: when this attempt began */
    uint64_t lost_at_ms;          /* when the stream was last lost, 0: never */
    struct backoff backoff;       /* delays between attempts */
    unsigned attempts;            /* failed attempts since the last success */
    void (*listener)(void *data, xmpp_conn_t *conn); /* told of connect and loss */
    void *listener_data;          /* its argument */
};

/* libstrophe's socket-option callback carries no user data; the component
 * that is connecting right now is remembered here (one per process). */
static struct component *component_connecting;

static void component_enter_state(struct component *component, enum component_state state)
{
    if (component->state == state)
        return;
    log_debug("xmpp", "state %s -> %s", component_state_names[component->state],
              component_state_names[state]);
    component->state = state;
}

static void component_strophe_log(void *userdata, xmpp_log_level_t level, const char *area,
                                  const char *msg)
{
    (void)userdata;
    (void)level;
    /* libstrophe speaks of every byte; its words are for debugging, the
     * events that matter are logged by this file. */
    log_debug("strophe", "%s: %s", area, msg);
}

static const xmpp_log_t component_logger = { component_strophe_log, NULL };

static int component_on_socket(xmpp_conn_t *conn, void *sock)
{
    int one = 1;

    if (component_connecting)
        component_connecting->fd = *(int *)sock;
    /* A stanza goes out at once: with Nagle's algorithm, one written while
     * the previous is not yet acknowledged waited for the server's delayed
     * ACK (40 ms on Linux), as a session-accept did after its IQ result. */
    setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Half-open TCP connections (a server host that vanished) are found
     * by keepalive probes. */
    return xmpp_sockopt_cb_keepalive(conn, sock);
}

static int component_refuse_socket(xmpp_conn_t *conn, void *sock)
{
    (void)conn;
    (void)sock;
    return -1;
}

static void component_ignore_conn(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                                  xmpp_stream_error_t *stream_error, void *userdata)
{
    (void)conn;
    (void)event;
    (void)error;
    (void)stream_error;
    (void)userdata;
}

/*
 * libstrophe 0.12.2 allocates a connection's stream-management state only in
 * xmpp_connect_client(), yet resets that state on every disconnect: a
 * component connection crashes (NULL dereference) the first time its stream
 * ends or a connection attempt fails.  Borrow the state from a client
 * connection whose socket is refused before anything is sent, and give it to
 * the component's connection.  With a libstrophe that allocates the state
 * itself, xmpp_conn_set_sm_state() refuses and nothing changes.
 */
static void component_sm_state_bootstrap(xmpp_ctx_t *ctx, xmpp_conn_t *conn)
{
    xmpp_conn_t *donor = xmpp_conn_new(ctx);
    xmpp_sm_state_t *state;

    if (!donor)
        return;
    xmpp_conn_set_jid(donor, "filerepo@localhost");
    xmpp_conn_set_sockopt_callback(donor, component_refuse_socket);
    xmpp_connect_client(donor, "127.0.0.1", 9, component_ignore_conn, NULL);
    state = xmpp_conn_get_sm_state(donor);
    if (state && xmpp_conn_set_sm_state(conn, state) != XMPP_EOK)
        xmpp_free_sm_state(state);
    xmpp_conn_release(donor);
}

int component_new(struct component **out, const struct config *config, struct service *service)
{
    struct component *component = calloc(1, sizeof(*component));

    *out = NULL;
    if (!component)
        return FR_ENOMEM;
    component->config = config;
    component->service = service;
    component->fd = -1;
    backoff_init(&component->backoff, config->xmpp_reconnect_max_seconds);
    component->state = COMPONENT_WAITING;
    component->ctx = xmpp_ctx_new(NULL, &component_logger);
    if (component->ctx)
        component->conn = xmpp_conn_new(component->ctx);
    if (!component->conn) {
        component_free(component);
        return FR_ENOMEM;
    }
    component_sm_state_bootstrap(component->ctx, component->conn);
    xmpp_conn_set_jid(component->conn, config->xmpp_component);
    xmpp_conn_set_pass(component->conn, config->xmpp_secret);
    xmpp_conn_set_sockopt_callback(component->conn, component_on_socket);
    *out = component;
    return 0;
}

void component_set_listener(struct component *component,
                            void (*fn)(void *data, xmpp_conn_t *conn), void *data)
{
    component->listener = fn;
    component->listener_data = data;
}

void component_free(struct component *component)
{
    if (!component)
        return;
    if (component_connecting == component)
        component_connecting = NULL;
    if (component->conn)
        xmpp_conn_release(component->conn);
    if (component->ctx)
        xmpp_ctx_free(component->ctx);
    free(component);
}


static void component_schedule_retry(struct component *component, uint64_t now)
{
    component->next_attempt_ms = now + backoff_next(&component->backoff);
    component_enter_state(component, COMPONENT_WAITING);
}

/* The defined condition of a stream error, as the server named it. */
static const char *component_stream_condition(const xmpp_stream_error_t *stream_error)
{
    xmpp_stanza_t *stanza = stream_error->stanza;

    for (xmpp_stanza_t *c = stanza ? xmpp_stanza_get_children(stanza) : NULL; c;
         c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "text") != 0)
            return xmpp_stanza_get_name(c);
    return "undefined-condition";
}

static void component_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                              xmpp_stream_error_t *stream_error, void *userdata)
{
    struct component *component = userdata;
    const struct config *config = component->config;
    uint64_t now = clock_now_ms();

    if (event == XMPP_CONN_CONNECT) {
        if (component->lost_at_ms)
            log_info("xmpp", "connected as %s to %s:%d in %llu ms, %llu ms after the loss",
                     config->xmpp_component, config->xmpp_host, config->xmpp_port,
                     (unsigned long long)(now - component->attempt_started_ms),
                     (unsigned long long)(now - component->lost_at_ms));
        else
            log_info("xmpp", "connected as %s to %s:%d in %llu ms", config->xmpp_component,
                     config->xmpp_host, config->xmpp_port,
                     (unsigned long long)(now - component->attempt_started_ms));
        component->attempts = 0;
        backoff_reset(&component->backoff);
        service_attach(component->service, conn);
        component_enter_state(component, COMPONENT_CONNECTED);
        if (component->listener)
            component->listener(component->listener_data, conn);
        return;
    }

    /* XMPP_CONN_DISCONNECT, XMPP_CONN_FAIL: the stream is gone. */
    component->fd = -1;
    if (component->listener &&
        (component->state == COMPONENT_CONNECTED || component->state == COMPONENT_STOPPING))
        component->listener(component->listener_data, NULL);
    if (component->state == COMPONENT_STOPPING) {
        log_info("xmpp", "disconnected");
        component_enter_state(component, COMPONENT_STOPPED);
        return;
    }
    bool was_connected = component->state == COMPONENT_CONNECTED;

    if (was_connected) {
        component->lost_at_ms = now;
        backoff_reset(&component->backoff);
    }
    component->attempts++;
    component_schedule_retry(component, now);

    unsigned delay = (unsigned)(component->next_attempt_ms - now);
    if (stream_error && stream_error->type == XMPP_SE_NOT_AUTHORIZED) {
        log_error("xmpp", "the server refused the component handshake for %s: check "
                  "xmpp.secret_file against the server's component password; retrying in %u ms",
                  config->xmpp_component, delay);
    } else if (stream_error) {
        const char *why = stream_error->text ? stream_error->text : "";

        log_warn("xmpp", "stream closed by %s:%d: %s%s%s%s; retrying in %u ms",
                 config->xmpp_host, config->xmpp_port, component_stream_condition(stream_error),
                 *why ? " (" : "", why, *why ? ")" : "", delay);
    } else if (was_connected) {
        log_warn("xmpp", "connection to %s:%d lost%s%s; retrying in %u ms", config->xmpp_host,
                 config->xmpp_port, error ? ": " : "", error ? strerror(error) : "", delay);
    } else {
        /* libstrophe does not pass on why a connect() failed. */
        log_warn("xmpp", "cannot connect to %s:%d: %s (attempt %u); retrying in %u ms",
                 config->xmpp_host, config->xmpp_port,
                 error ? strerror(error) : "refused or unreachable", component->attempts, delay);
    }
}

static void component_attempt(struct component *component, uint64_t now)
{
    const struct config *config = component->config;

    log_debug("xmpp", "connecting to %s:%d as %s", config->xmpp_host, config->xmpp_port,
              config->xmpp_component);
    component->attempt_started_ms = now;
    component_enter_state(component, COMPONENT_CONNECTING);
    component_connecting = component;
    if (xmpp_connect_component(component->conn, config->xmpp_host,
                               (unsigned short)config->xmpp_port, component_on_conn,
                               component) != XMPP_EOK) {
        component->attempts++;
        component_schedule_retry(component, now);
        log_warn("xmpp", "cannot connect to %s:%d: refused or unreachable (attempt %u); "
                 "retrying in %u ms", config->xmpp_host, config->xmpp_port,
                 component->attempts, (unsigned)(component->next_attempt_ms - now));
    }
}

int component_fd(const struct component *component, short *events)
{
    *events = POLLIN;
    if (component->fd >= 0 && xmpp_conn_send_queue_len(component->conn) > 0)
        *events |= POLLOUT;
    return component->fd;
}

int component_timeout_ms(const struct component *component, uint64_t now_ms)
{
    switch (component->state) {
    case COMPONENT_WAITING:
        return component->next_attempt_ms > now_ms
                   ? (int)(component->next_attempt_ms - now_ms)
                   : 0;
    case COMPONENT_CONNECTING:
    case COMPONENT_STOPPING:
        /* The handshake and libstrophe's own timers want frequent turns. */
        return 10;
    case COMPONENT_CONNECTED:
        /* With TLS, bytes may wait inside libstrophe while the socket is
         * quiet; a short ceiling keeps them and its timers moving. */
        return 200;
    case COMPONENT_STOPPED:
        break;
    }
    return -1;
}

void component_run(struct component *component, uint64_t now_ms)
{
    if (component->state == COMPONENT_WAITING && now_ms >= component->next_attempt_ms)
        component_attempt(component, now_ms);
    if (component->state == COMPONENT_WAITING || component->state == COMPONENT_STOPPED)
        return;
    xmpp_run_once(component->ctx, 0);
    /* libstrophe writes its send queue at the start of a pass: replies made
     * during this one would wait for the next wake-up.  Flush them now. */
    if (xmpp_conn_send_queue_len(component->conn) > 0)
        xmpp_run_once(component->ctx, 0);
}

bool component_is_connected(const struct component *component)
{
    return component->state == COMPONENT_CONNECTED;
}

void component_stop(struct component *component)
{
    switch (component->state) {
    case COMPONENT_CONNECTED:
    case COMPONENT_CONNECTING:
        component_enter_state(component, COMPONENT_STOPPING);
        xmpp_disconnect(component->conn);
        break;
    case COMPONENT_WAITING:
        component_enter_state(component, COMPONENT_STOPPED);
        break;
    case COMPONENT_STOPPING:
    case COMPONENT_STOPPED:
        break;
    }
}

bool component_is_stopped(const struct component *component)
{
    return component->state == COMPONENT_STOPPED;
}
