/*
 * checker.c - the mirror checker's thread: one loop over a curl multi
 * handle whose poll also watches the checker's catalog connection (NOTIFY)
 * and is woken by curl_multi_wakeup() to stop.
 *
 * Each pass: (re)connect the catalog if needed; when notified or when the
 * next look is due, fetch the checks due (catalog_mirror_due) up to the
 * free slots, skipping those under way; run the transfers; record each
 * finished probe (catalog_mirror_record) and log what changed.  Hosts get
 * at most `per_host` connections at once (CURLMOPT_MAX_HOST_CONNECTIONS),
 * all of them at most `max_checks`.
 */
#include "checker.h"
#include "backoff.h"
#include "catalog.h"
#include "clock.h"
#include "config.h"
#include "fr_error.h"
#include "log.h"
#include "mirror.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* How often the catalog is asked for rounds that came due: at least every
 * CHECKER_LOOK_MAX_MS, at most every CHECKER_LOOK_MIN_MS. */
#define CHECKER_LOOK_MAX_MS 30000u
#define CHECKER_LOOK_MIN_MS 500u
/* How often a checker standing by tries to take over. */
#define CHECKER_STANDBY_MS 30000u

struct mirror_checker {
    struct mirror_checker_settings settings; /* strings owned */
    struct probe_settings probe_settings; /* for every probe */
    struct catalog *catalog;       /* owned: the thread's connection */
    CURLM *multi;                  /* owned */
    pthread_t thread;              /* the loop */
    atomic_bool stop;              /* set by mirror_checker_stop */
    struct probe **probes;         /* under way, max_checks of room */
    size_t probes_count;           /* how many */
    bool dirty;                    /* notified: look for work now */
    bool more;                     /* the last look filled every slot: look again */
    int64_t *busy_mirrors;         /* max_checks: the pairs under way, for the look */
    int64_t *busy_revisions;       /* pairwise with busy_mirrors */
    uint64_t next_look_ms;         /* when to look for due rounds */
    uint64_t last_look_ms;         /* when the last look was */
    struct backoff backoff;        /* catalog reconnects */
    uint64_t reconnect_at_ms;      /* when to try the catalog again (0: now) */
    bool standby;                  /* another filerepod holds the checker's lock */
};

static bool checker_running(const struct mirror_checker *c, int64_t mirror_id,
                            int64_t revision_id)
{
    for (size_t i = 0; i < c->probes_count; i++)
        if (probe_mirror_id(c->probes[i]) == mirror_id &&
            probe_revision_id(c->probes[i]) == revision_id)
            return true;
    return false;
}

/* Records a finished probe and logs what it changed. */
static void checker_record(struct mirror_checker *c, struct probe *p)
{
    struct catalog_mirror_result result;
    struct catalog_mirror_change change;
    int error;

    probe_result(p, &result);
    error = catalog_mirror_record(c->catalog, &result, c->settings.failures_max, &change);
    if (error != 0) {
        /* Not recorded: the copy stays due and is checked again. */
        log_warn("mirrors", "%s: cannot record the check: %s", probe_url(p),
                 catalog_last_error(c->catalog));
        return;
    }
    /* A copy is logged when its state changes or the mirror failed; the
     * same finding again at the next round only at debug. */
    if (strcmp(change.copy_before, change.copy_after) == 0 && !result.transient &&
        !(result.probe && strcmp(result.state, "verified") != 0))
        log_debug("mirrors", "%s: %s again", probe_url(p), result.state);
    else if (strcmp(result.state, "verified") == 0)
        log_info("mirrors", "%s: verified", probe_url(p));
    else
        log_info("mirrors", "%s: %s%s: %s", probe_url(p), result.transient ? "failed" : result.state,
                 result.probe ? " (health probe)" : "", result.reason ? result.reason : "");
    if (*change.new_state && strcmp(change.old_state, change.new_state) != 0)
        log_info("mirrors", "mirror %s: state %s -> %s: %s (failures in a row: %d; "
                 "items to republish: %" PRId64 ")",
                 change.url, change.old_state, change.new_state, change.reason, change.failures,
                 change.republished);
}

static int checker_start_one(const struct catalog_mirror_check *check, void *data)
{
    struct mirror_checker *c = data;
    struct probe *p;
    CURL *easy;

    if ((size_t)c->settings.max_checks <= c->probes_count ||
        checker_running(c, check->mirror_id, check->revision_id))
        return 0; /* the catalog leaves busy pairs out; this is a second guard */
    if (probe_new(&p, check, &c->probe_settings) != 0)
        return FR_ENOMEM;
    easy = probe_easy(p);
    if (!easy) {
        /* Decided before any transfer (an unreadable password file). */
        checker_record(c, p);
        probe_free(p);
        return 0;
    }
    if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
        probe_free(p);
        return FR_ENOMEM;
    }
    c->probes[c->probes_count++] = p;
    return 0;
}

static void checker_remove(struct mirror_checker *c, struct probe *p)
{
    for (size_t i = 0; i < c->probes_count; i++)
        if (c->probes[i] == p) {
            c->probes[i] = c->probes[--c->probes_count];
            break;
        }
}

/* Finished transfers: the next stage, or the outcome. */
static void checker_take_done(struct mirror_checker *c)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct probe *p = NULL;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&p);
        curl_multi_remove_handle(c->multi, easy);
        if (!p)
            continue;
        probe_transfer_done(p, code);
        if (!probe_finished(p) && curl_multi_add_handle(c->multi, probe_easy(p)) == CURLM_OK)
            continue;
        if (probe_finished(p))
            checker_record(c, p);
        checker_remove(c, p);
        probe_free(p);
    }
}

static bool checker_catalog_up(struct mirror_checker *c, uint64_t now)
{
    int version = 0;
    bool held = false;

    if (catalog_is_connected(c->catalog))
        return true;
    if (now < c->reconnect_at_ms)
        return false;
    if (catalog_connect(c->catalog) != 0) {
        log_warn("mirrors", "catalog: %s", catalog_last_error(c->catalog));
        c->reconnect_at_ms = now + backoff_next(&c->backoff);
        return false;
    }
    /* The daemon's loop applies the migrations; until it has, the tables
     * this thread reads may not be there yet. */
    if (catalog_schema_version(c->catalog, &version) != 0 ||
        version < catalog_schema_version_known()) {
        log_debug("mirrors", "waiting for the catalog's schema (version %d)", version);
        catalog_disconnect(c->catalog);
        c->reconnect_at_ms = now + backoff_next(&c->backoff);
        return false;
    }
    if (catalog_mirror_checker_lock(c->catalog, &held) == 0 && !held) {
        if (!c->standby)
            log_info("mirrors", "another filerepod checks this catalog's mirrors; standing by");
        c->standby = true;
        catalog_disconnect(c->catalog);
        c->reconnect_at_ms = now + CHECKER_STANDBY_MS;
        return false;
    }
    if (!held || catalog_mirror_listen(c->catalog) != 0) {
        log_warn("mirrors", "catalog: %s", catalog_last_error(c->catalog));
        catalog_disconnect(c->catalog);
        c->reconnect_at_ms = now + backoff_next(&c->backoff);
        return false;
    }
    backoff_reset(&c->backoff);
    if (c->standby)
        log_info("mirrors", "checking this catalog's mirrors now");
    c->standby = false;
    c->dirty = true;
    return true;
}

/* Starts the checks that are due, as many as there are free slots. */
static void checker_look(struct mirror_checker *c, uint64_t now)
{
    const struct catalog_mirror_busy busy = { c->busy_mirrors, c->busy_revisions,
                                              c->probes_count };
    int free_slots = c->settings.max_checks - (int)c->probes_count, rows = 0;
    bool new_pairs = c->dirty;

    c->next_look_ms = now + ((unsigned)c->settings.interval_seconds * 1000u < CHECKER_LOOK_MAX_MS
                                 ? (unsigned)c->settings.interval_seconds * 1000u
                                 : CHECKER_LOOK_MAX_MS);
    if (free_slots <= 0) {
        c->more = true;
        return;
    }
    c->last_look_ms = now;
    c->dirty = c->more = false;
    for (size_t i = 0; i < c->probes_count; i++) {
        c->busy_mirrors[i] = probe_mirror_id(c->probes[i]);
        c->busy_revisions[i] = probe_revision_id(c->probes[i]);
    }
    if (catalog_mirror_due(c->catalog, c->settings.interval_seconds, free_slots, new_pairs,
                           &busy, checker_start_one, c, &rows) != 0) {
        log_warn("mirrors", "catalog: %s", catalog_last_error(c->catalog));
        c->dirty = new_pairs; /* looked for nothing: again */
        return;
    }
    /* Every slot filled: there may be more waiting. */
    c->more = rows >= free_slots;
}

static void *checker_main(void *data)
{
    struct mirror_checker *c = data;

    while (!atomic_load(&c->stop)) {
        uint64_t now = clock_now_ms();
        struct curl_waitfd extra = { .fd = -1 };
        unsigned extra_count = 0;
        long timeout_ms = 1000;
        int running;

        if (checker_catalog_up(c, now)) {
            /* Notifications come in bursts while a tree is indexed, and a
             * look that filled every slot leaves more to do: one look per
             * CHECKER_LOOK_MIN_MS at most. */
            if (((c->dirty || c->more) && now >= c->last_look_ms + CHECKER_LOOK_MIN_MS) ||
                now >= c->next_look_ms)
                checker_look(c, now);
            if (catalog_is_connected(c->catalog)) {
                extra.fd = catalog_socket(c->catalog);
                extra.events = CURL_WAIT_POLLIN;
                extra_count = 1;
            }
            if (c->next_look_ms > now && c->next_look_ms - now < (uint64_t)timeout_ms)
                timeout_ms = (long)(c->next_look_ms - now);
            if ((c->dirty || (c->more && c->probes_count < (size_t)c->settings.max_checks)) &&
                c->last_look_ms + CHECKER_LOOK_MIN_MS > now &&
                c->last_look_ms + CHECKER_LOOK_MIN_MS - now < (uint64_t)timeout_ms)
                timeout_ms = (long)(c->last_look_ms + CHECKER_LOOK_MIN_MS - now);
        }
        curl_multi_perform(c->multi, &running);
        checker_take_done(c);
        if (curl_multi_poll(c->multi, extra_count ? &extra : NULL, extra_count,
                            (int)timeout_ms, NULL) != CURLM_OK)
            continue;
        if (extra_count && extra.revents && catalog_consume(c->catalog) != 0)
            log_warn("mirrors", "catalog: %s", catalog_last_error(c->catalog));
        /* Asked every turn, not only when the socket was readable: a NOTIFY
         * that arrived with the answer to one of this thread's own queries
         * (a look, a record) waits in libpq, and the socket stays quiet. */
        if (catalog_is_connected(c->catalog) && catalog_take_notified(c->catalog))
            c->dirty = true;
    }
    return NULL;
}

static void checker_free(struct mirror_checker *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->probes_count; i++) {
        curl_multi_remove_handle(c->multi, probe_easy(c->probes[i]));
        probe_free(c->probes[i]);
    }
    free(c->probes);
    free(c->busy_mirrors);
    free(c->busy_revisions);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    catalog_free(c->catalog);
    free((char *)c->settings.conninfo);
    free(c);
}

int mirror_checker_start(struct mirror_checker **out,
                         const struct mirror_checker_settings *settings)
{
    struct mirror_checker *c = calloc(1, sizeof(*c));
    sigset_t all, old;
    int error;

    *out = NULL;
    if (!c)
        return FR_ENOMEM;
    /* Before any thread: libcurl's global set-up is not thread-safe. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c->settings = *settings;
    c->settings.password = NULL; /* the catalog keeps its own copy */
    c->settings.conninfo = strdup(settings->conninfo);
    c->probe_settings = (struct probe_settings){
        .policy = settings->policy,
        .connect_timeout_s = settings->connect_timeout_seconds,
        .low_speed_time_s = settings->low_speed_seconds,
        .store = settings->store,
    };
    backoff_init(&c->backoff, settings->reconnect_max_seconds);
    c->probes = calloc((size_t)settings->max_checks, sizeof(*c->probes));
    c->busy_mirrors = calloc((size_t)settings->max_checks, sizeof(*c->busy_mirrors));
    c->busy_revisions = calloc((size_t)settings->max_checks, sizeof(*c->busy_revisions));
    c->multi = curl_multi_init();
    if (!c->settings.conninfo || !c->probes || !c->busy_mirrors || !c->busy_revisions ||
        !c->multi ||
        catalog_new(&c->catalog, settings->conninfo, settings->password) != 0) {
        checker_free(c);
        return FR_ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)settings->per_host);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)settings->max_checks);
    /* Signals belong to the daemon's loop thread (its signalfd). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    error = pthread_create(&c->thread, NULL, checker_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (error != 0) {
        checker_free(c);
        return FR_ERROR;
    }
    *out = c;
    return 0;
}

void mirror_checker_stop(struct mirror_checker *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, true);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);
    checker_free(c);
}

int mirror_checker_start_config(struct mirror_checker **out, const struct config *config,
                                struct store *store)
{
    const struct mirror_checker_settings settings = {
        .conninfo = config->db_conninfo,
        .password = config->db_password,
        .reconnect_max_seconds = config->db_reconnect_max_seconds,
        .policy = (enum probe_policy)config->mirrors_verify,
        .interval_seconds = config->mirrors_interval_seconds,
        .failures_max = config->mirrors_failures_max,
        .connect_timeout_seconds = config->mirrors_connect_timeout_seconds,
        .low_speed_seconds = config->mirrors_low_speed_seconds,
        .per_host = config->mirrors_per_host,
        .max_checks = config->mirrors_max_checks,
        .store = store,
    };

    return mirror_checker_start(out, &settings);
}
