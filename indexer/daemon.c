/*
 * daemon.c - the poll loop and the catalog connection's upkeep.
 *
 * Each pass: poll the signalfd, the catalog's socket and the component's
 * socket with a timeout no longer than the nearest timer, then give every
 * part its turn.  The catalog connection is kept up by keeper.c and the XMPP
 * stream by component.c, each reconnecting with back-off on its own, so
 * either server may restart under a running daemon.
 */
#include "daemon.h"
#include "catalog.h"
#include "clock.h"
#include "component.h"
#include "fr_error.h"
#include "indexer.h"
#include "keeper.h"
#include "log.h"
#include "checker.h"
#include "publisher.h"
#include "service.h"
#include "transfers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAEMON_STOP_GRACE_MS 3000u

struct daemon {
    const struct config *config;   /* borrowed */
    struct catalog *catalog;       /* owned */
    struct keeper *keeper;         /* owned: keeps the catalog connected */
    struct service *service;       /* owned */
    struct component *component;   /* owned */
    struct indexer *indexer;       /* owned */
    struct publisher *publisher;   /* owned: the outbox to pubsub */
    struct transfers *transfers;   /* owned: files sent over Jingle */
    struct mirror_checker *mirrors; /* owned: the mirror checker's thread */
    int signal_fd;                 /* SIGTERM, SIGINT, SIGHUP, SIGUSR1 */
    int lock_fd;                   /* STATE_DIR/lock, flock()ed while running */
    bool stopping;                 /* a stop was asked for */
    uint64_t stop_deadline_ms;     /* give up on a clean XMPP close then */
};

static int daemon_signals_open(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
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
                transfers_stop(d->transfers, clock_now_ms());
                component_stop(d->component);
            }
            break;
        case SIGUSR1:
            log_info("daemon", "SIGUSR1: rescanning every repository");
            indexer_rescan_all(d->indexer, clock_now_ms());
            break;
        case SIGHUP:
            log_warn("daemon", "SIGHUP ignored: configuration is read at start-up; "
                     "restart filerepod to apply changes");
            break;
        }
    }
}

/*
 * Makes the state directory and takes its lock: one filerepod per state
 * directory.  Holding it is what lets the indexer treat lock files that git
 * left in the state repositories as a dead process's (see versioner.h).  The
 * kernel drops the lock when the process ends, however it ends.
 */
static int daemon_state_dir_prepare(struct daemon *d)
{
    const struct config *config = d->config;
    char path[PATH_MAX], pid[32] = "";
    struct stat st;
    ssize_t n;
    int len;

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
    len = snprintf(path, sizeof(path), "%s/lock", config->state_dir);
    if (len < 0 || (size_t)len >= sizeof(path)) {
        log_error("daemon", "state_dir %s: path too long", config->state_dir);
        return FR_ERROR;
    }
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (d->lock_fd < 0) {
        log_error("daemon", "%s: cannot open: %s", path, strerror(errno));
        return FR_ERROR;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;

        if (saved == EWOULDBLOCK) {
            n = pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            log_error("daemon", "state_dir %s is in use by another filerepod (pid %s); "
                      "one daemon per state directory", config->state_dir,
                      pid[0] ? pid : "unknown");
        } else {
            log_error("daemon", "%s: cannot lock: %s", path, strerror(saved));
        }
        return FR_ERROR;
    }
    len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, pid, (size_t)len, 0) != len)
        log_warn("daemon", "%s: cannot write the pid: %s", path, strerror(errno));
    return 0;
}

/* The stream came up or went down: both parts that speak on it are told. */
static void daemon_on_stream(void *data, xmpp_conn_t *conn)
{
    struct daemon *d = data;

    publisher_on_stream(d->publisher, conn);
    if (d->transfers)
        transfers_on_stream(d->transfers, conn);
}

/* The shortest of the parts' timeouts; a second when none needs a turn. */
static int daemon_timeout(struct daemon *d, uint64_t now)
{
    int t[] = { component_timeout_ms(d->component, now), keeper_timeout_ms(d->keeper, now),
                indexer_timeout_ms(d->indexer, now), publisher_timeout_ms(d->publisher, now),
                transfers_timeout_ms(d->transfers, now) };
    int a = -1;

    for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++)
        if (t[i] >= 0 && (a < 0 || t[i] < a))
            a = t[i];
    return a < 0 ? 1000 : a;
}

int daemon_run(const struct config *config)
{
    struct daemon d = { .config = config, .signal_fd = -1, .lock_fd = -1 };
    /* The XEP-0214 repository list names the service the publisher uses. */
    const struct service_settings service_settings = {
        .name = config->xmpp_name, .pubsub = config->xmpp_pubsub,
        .page_max = config->query_page_max, .verbose_max = config->query_verbose_max,
        .rate_per_second = config->query_rate_per_second,
        .rate_burst = config->query_rate_burst,
    };
    struct pollfd *fds = NULL;
    size_t fds_max = 0;
    int error = FR_ERROR;

    if (daemon_state_dir_prepare(&d) != 0)
        goto done;
    d.signal_fd = daemon_signals_open();
    if (d.signal_fd < 0) {
        log_error("daemon", "cannot set up signal handling: %s", strerror(errno));
        goto done;
    }
    if (catalog_new(&d.catalog, config->db_conninfo, config->db_password) != 0 ||
        keeper_new(&d.keeper, d.catalog, config->db_reconnect_max_seconds) != 0 ||
        service_new(&d.service, &service_settings) != 0 ||
        component_new(&d.component, config, d.service) != 0 ||
        publisher_new(&d.publisher, config) != 0) {
        log_error("daemon", "out of memory");
        goto done;
    }
    component_set_listener(d.component, daemon_on_stream, &d);
    if (indexer_new(&d.indexer, config) != 0)
        goto done;
    /* Listings read the loop's own connection: single prepared statements,
     * answered between the loop's other turns. */
    service_set_catalog(d.service, d.catalog);
    if (transfers_new(&d.transfers, config, indexer_store(d.indexer)) != 0) {
        log_error("daemon", "out of memory");
        goto done;
    }
    service_set_transfers(d.service, d.transfers);
    /* Mirrors: a thread with its own catalog connection; it speaks to the
     * loop only through the catalog (outbox rows and NOTIFY). */
    if (mirror_checker_start_config(&d.mirrors, config, indexer_store(d.indexer)) != 0) {
        log_error("daemon", "cannot start the mirror checker");
        goto done;
    }
    fds_max = 8 + transfers_pollfds_max(d.transfers);
    fds = calloc(fds_max, sizeof(*fds));
    if (!fds) {
        log_error("daemon", "out of memory");
        goto done;
    }
    log_info("daemon", "started, component=%s server=%s:%d state_dir=%s",
             config->xmpp_component, config->xmpp_host, config->xmpp_port, config->state_dir);

    /* The catalog and the XMPP stream come up independently: either may be
     * down at start, and disco#info needs no catalog. */
    while (!keeper_is_fatal(d.keeper)) {
        uint64_t now = clock_now_ms();
        short cat_events = 0, xmpp_events = 0, pub_events = 0;
        int cat_fd = keeper_fd(d.keeper, &cat_events);
        int xmpp_fd = component_fd(d.component, &xmpp_events);
        int pub_fd = publisher_fd(d.publisher, &pub_events);
        int cat_slot = -1, pub_slot = -1;
        nfds_t n = 0, ix_first, xfer_first;

        if (d.stopping && (component_is_stopped(d.component) || now >= d.stop_deadline_ms))
            break;

        fds[n++] = (struct pollfd){ .fd = d.signal_fd, .events = POLLIN };
        if (cat_fd >= 0) {
            cat_slot = (int)n;
            fds[n++] = (struct pollfd){ .fd = cat_fd, .events = cat_events };
        }
        if (xmpp_fd >= 0)
            fds[n++] = (struct pollfd){ .fd = xmpp_fd, .events = xmpp_events };
        if (pub_fd >= 0) {
            pub_slot = (int)n;
            fds[n++] = (struct pollfd){ .fd = pub_fd, .events = pub_events };
        }
        xfer_first = n;
        n += transfers_pollfds(d.transfers, fds + n, fds_max - n);
        ix_first = n;
        n += indexer_pollfds(d.indexer, fds + n, fds_max - n);

        if (poll(fds, n, daemon_timeout(&d, now)) < 0 && errno != EINTR) {
            log_error("daemon", "poll: %s", strerror(errno));
            goto done;
        }
        now = clock_now_ms();
        if (fds[0].revents)
            daemon_on_signal(&d);
        if (!d.stopping) {
            keeper_run(d.keeper, cat_slot >= 0 ? fds[cat_slot].revents : 0, now);
            if (keeper_take_connected(d.keeper))
                indexer_start(d.indexer, d.catalog);
            indexer_run(d.indexer, fds + ix_first, n - ix_first, now);
            publisher_run(d.publisher, pub_slot >= 0 ? fds[pub_slot].revents : 0, now);
            transfers_run(d.transfers, fds + xfer_first, ix_first - xfer_first, now);
        }
        if (!keeper_is_fatal(d.keeper))
            component_run(d.component, now);
    }
    if (keeper_is_fatal(d.keeper)) {
        log_error("daemon", "cannot go on; stopping");
        goto done;
    }
    publisher_flush(d.publisher);
    log_info("daemon", "stopped");
    error = 0;

done:
    /* The transfers and the mirror checker read from the indexer's store:
     * they go first. */
    mirror_checker_stop(d.mirrors);
    service_set_transfers(d.service, NULL);
    transfers_free(d.transfers);
    d.transfers = NULL;
    indexer_free(d.indexer);
    component_free(d.component);
    publisher_free(d.publisher);
    service_free(d.service);
    keeper_free(d.keeper);
    catalog_free(d.catalog);
    if (d.signal_fd >= 0)
        close(d.signal_fd);
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    free(fds);
    return error;
}
