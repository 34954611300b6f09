/*
 * daemon.c - the poll loop and the catalog connection's upkeep.
 *
 * Each pass: poll the signalfd, the catalog's socket and the component's
 * socket with a timeout no longer than the nearest timer, then give every
 * part its turn.  The catalog is connected (and migrated) before anything
 * uses it and reconnected with back-off after a loss; the XMPP side does the
 * same on its own (component.c), so either server may restart under a
 * running daemon.
 */
#include "daemon.h"
#include "catalog.h"
#include "clock.h"
#include "component.h"
#include "fr_error.h"
#include "log.h"
#include "service.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAEMON_BACKOFF_MIN_MS 250u
#define DAEMON_STOP_GRACE_MS 3000u

struct daemon {
    const struct config *config;   /* borrowed */
    struct catalog *catalog;       /* owned */
    struct service *service;       /* owned */
    struct component *component;   /* owned */
    int signal_fd;                 /* SIGTERM, SIGINT, SIGHUP */
    bool stopping;                 /* a stop was asked for */
    bool fatal;                    /* stopping because it cannot go on */
    uint64_t stop_deadline_ms;     /* give up on a clean XMPP close then */
    uint64_t catalog_next_ms;      /* when to try the catalog again */
    unsigned catalog_backoff_ms;   /* delay after the next failure */
    uint64_t catalog_lost_at_ms;   /* when the catalog was lost, 0: never */
};

static int daemon_signals_open(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void daemon_on_signal(struct daemon *d)
{
    struct signalfd_siginfo si;

    while (read(d->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            if (!d->stopping) {
                log_info("daemon", "stopping on %s", strsignal((int)si.ssi_signo));
                d->stopping = true;
                d->stop_deadline_ms = clock_now_ms() + DAEMON_STOP_GRACE_MS;
                component_stop(d->component);
            }
            break;
        case SIGHUP:
            log_warn("daemon", "SIGHUP ignored: configuration is read at start-up; "
                     "restart filerepod to apply changes");
            break;
        }
    }
}

/* Connects and migrates; on failure schedules the next try. */
static void daemon_catalog_connect(struct daemon *d, uint64_t now)
{
    unsigned cap = (unsigned)d->config->db_reconnect_max_seconds * 1000u;
    int applied = 0, version = 0;
    int error;

    error = catalog_connect(d->catalog);
    if (error == 0)
        error = catalog_migrate(d->catalog, &applied, &version);
    if (error == 0) {
        if (d->catalog_lost_at_ms)
            log_info("catalog", "connected, schema version %d, %llu ms after the loss",
                     version, (unsigned long long)(clock_now_ms() - d->catalog_lost_at_ms));
        else
            log_info("catalog", "connected, schema version %d (%d migration%s applied)",
                     version, applied, applied == 1 ? "" : "s");
        d->catalog_backoff_ms = DAEMON_BACKOFF_MIN_MS;
        return;
    }
    if (error == FR_ESCHEMA) {
        log_error("catalog", "%s", catalog_last_error(d->catalog));
        d->fatal = true;
        return;
    }
    catalog_disconnect(d->catalog);
    log_warn("catalog", "unavailable: %s; retrying in %u ms", catalog_last_error(d->catalog),
             d->catalog_backoff_ms);
    d->catalog_next_ms = now + d->catalog_backoff_ms;
    d->catalog_backoff_ms = d->catalog_backoff_ms * 2 > cap ? cap : d->catalog_backoff_ms * 2;
}

static void daemon_on_catalog(struct daemon *d, uint64_t now)
{
    if (catalog_consume(d->catalog) == 0)
        return;
    log_warn("catalog", "connection lost: %s; reconnecting", catalog_last_error(d->catalog));
    d->catalog_lost_at_ms = now;
    d->catalog_backoff_ms = DAEMON_BACKOFF_MIN_MS;
    d->catalog_next_ms = now;
}

static int daemon_state_dir_prepare(const struct config *config)
{
    struct stat st;

    if (mkdir(config->state_dir, 0750) != 0 && errno != EEXIST) {
        log_error("daemon", "state_dir %s: cannot create: %s", config->state_dir,
                  strerror(errno));
        return FR_ERROR;
    }
    if (stat(config->state_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
        access(config->state_dir, W_OK | X_OK) != 0) {
        log_error("daemon", "state_dir %s: not a writable directory", config->state_dir);
        return FR_ERROR;
    }
    return 0;
}

static int daemon_timeout(struct daemon *d, uint64_t now)
{
    int timeout = component_timeout_ms(d->component, now);

    if (!catalog_is_connected(d->catalog)) {
        int t = d->catalog_next_ms > now ? (int)(d->catalog_next_ms - now) : 0;

        if (timeout < 0 || t < timeout)
            timeout = t;
    }
    return timeout < 0 ? 1000 : timeout;
}

int daemon_run(const struct config *config)
{
    struct daemon d = { .config = config, .signal_fd = -1,
                        .catalog_backoff_ms = DAEMON_BACKOFF_MIN_MS };
    int error = FR_ERROR;

    if (daemon_state_dir_prepare(config) != 0)
        goto done;
    d.signal_fd = daemon_signals_open();
    if (d.signal_fd < 0) {
        log_error("daemon", "cannot set up signal handling: %s", strerror(errno));
        goto done;
    }
    if (catalog_new(&d.catalog, config->db_conninfo, config->db_password) != 0 ||
        service_new(&d.service, config->xmpp_name) != 0 ||
        component_new(&d.component, config, d.service) != 0) {
        log_error("daemon", "out of memory");
        goto done;
    }
    log_info("daemon", "started, component=%s server=%s:%d state_dir=%s",
             config->xmpp_component, config->xmpp_host, config->xmpp_port, config->state_dir);

    daemon_catalog_connect(&d, clock_now_ms());
    while (!d.fatal) {
        uint64_t now = clock_now_ms();
        struct pollfd fds[3];
        nfds_t n = 0;
        int cat_fd = catalog_socket(d.catalog);
        int xmpp_fd = component_fd(d.component);

        if (d.stopping && (component_is_stopped(d.component) || now >= d.stop_deadline_ms))
            break;

        fds[n++] = (struct pollfd){ .fd = d.signal_fd, .events = POLLIN };
        if (cat_fd >= 0)
            fds[n++] = (struct pollfd){ .fd = cat_fd, .events = POLLIN };
        if (xmpp_fd >= 0)
            fds[n++] = (struct pollfd){ .fd = xmpp_fd, .events = POLLIN };

        if (poll(fds, n, daemon_timeout(&d, now)) < 0 && errno != EINTR) {
            log_error("daemon", "poll: %s", strerror(errno));
            goto done;
        }
        now = clock_now_ms();
        if (fds[0].revents)
            daemon_on_signal(&d);
        if (cat_fd >= 0 && fds[1].revents)
            daemon_on_catalog(&d, now);
        if (!d.stopping && !catalog_is_connected(d.catalog) && now >= d.catalog_next_ms)
            daemon_catalog_connect(&d, now);
        component_run(d.component, now);
    }
    if (d.fatal) {
        log_error("daemon", "cannot go on; stopping");
        goto done;
    }
    log_info("daemon", "stopped");
    error = 0;

done:
    component_free(d.component);
    service_free(d.service);
    catalog_free(d.catalog);
    if (d.signal_fd >= 0)
        close(d.signal_fd);
    return error;
}
