/*
 * get.c - `filerepo get`: log in as a user, name the file, prepare the
 * output, run the Jingle session (get_session.c), check what arrived.
 *
 * The output file is written in place: bytes already in it are taken as
 * the beginning of the file and only the rest is asked for, with a
 * <range offset=…/>; the sha-256 compared at the end is the whole file's,
 * the partial beginning included, so a resume onto the wrong bytes is
 * caught.  A mismatch leaves the file as it is and exits 1.
 *
 * --rev N asks the daemon's pubsub service (where every revision of a file
 * is item N of the file's node, with its sha-256) for that item, then
 * requests the file by path and that sha-256, the XEP-0234 way of naming
 * one revision.  Everything goes over XMPP: no catalog is needed here.
 */
#include "get_internal.h"
#include "log.h"
#include "xmpp/jingle.h"
#include "xmpp/pubsub.h"
#include "xmpp/stanza.h"
#include "xmpp_login.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define GET_LOGIN_MS 30000

volatile sig_atomic_t get_interrupted;
int get_xmpp_fd = -1;

uint64_t get_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void get_on_signal(int sig)
{
    (void)sig;
    get_interrupted = 1;
}

/* libstrophe's socket, to poll it with ours (one connection per process). */
static int get_on_socket(xmpp_conn_t *conn, void *sock)
{
    (void)conn;
    get_xmpp_fd = *(int *)sock;
    return 0;
}

static void get_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                        xmpp_stream_error_t *stream_error, void *userdata)
{
    struct get *g = userdata;

    (void)conn;
    (void)stream_error;
    if (event == XMPP_CONN_CONNECT) {
        g->connected = true;
    } else {
        g->connected = false;
        g->lost = true;
        g->conn_error = error;
    }
}

/* ------------------------------------------------------------ the bytes */

/* After `len` bytes went to the sink (error: -errno, 0: written). */
static bool get_written(struct get *g, size_t len, int error)
{
    if (error != 0) {
        g->write_errno = -error;
        return false;
    }
    g->received += (int64_t)len;
    g->last_progress_ms = get_now_ms();
    get_progress(g, false);
    return true;
}

bool get_write(struct get *g, const unsigned char *buf, size_t len)
{
    return get_written(g, len, get_sink_write(g->sink, buf, len));
}

unsigned char *get_buffer(struct get *g)
{
    return get_sink_buffer(g->sink);
}

bool get_commit(struct get *g, size_t len)
{
    return get_written(g, len, get_sink_commit(g->sink, len));
}

static void get_human(char *out, size_t len, double bytes)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;

    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

void get_progress(struct get *g, bool force)
{
    uint64_t now = get_now_ms();
    double seconds = (double)(now - g->started_ms) / 1000.0, rate;
    int64_t have = g->offset + g->received;
    char got[32], total[32], speed[32], eta[32] = "--:--";

    if (!g->progress || (!force && now - g->drawn_ms < 200))
        return;
    g->drawn_ms = now;
    rate = seconds > 0 ? (double)g->received / seconds : 0;
    get_human(got, sizeof(got), (double)have);
    get_human(total, sizeof(total), g->size >= 0 ? (double)g->size : 0);
    get_human(speed, sizeof(speed), rate);
    if (rate > 0 && g->size >= have) {
        long left = (long)((double)(g->size - have) / rate);

        snprintf(eta, sizeof(eta), "%ld:%02ld", left / 60, left % 60);
    }
    fprintf(stderr, "\r%s / %s  %3d%%  %s/s  ETA %s   ", got, g->size >= 0 ? total : "?",
            g->size > 0 ? (int)(100 * have / g->size) : 0, speed, eta);
    if (force)
        fputc('\n', stderr);
}

/* ------------------------------------------------------------ requests */

static bool get_has_reply(struct get *g)
{
    return g->reply != NULL;
}

static bool get_is_connected(struct get *g)
{
    return g->connected;
}

static bool get_wait(struct get *g, bool (*done)(struct get *g), uint64_t ms)
{
    uint64_t deadline = get_now_ms() + ms;

    while (!done(g) && !g->lost && get_now_ms() < deadline && !get_interrupted)
        xmpp_run_once(g->ctx, 50);
    return done(g);
}

static int get_on_reply(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct get *g = userdata;

    (void)conn;
    g->reply = xmpp_stanza_clone(stanza);
    return 0;
}

/* pubsub.example.org for files.example.org (the daemon's default). */
static void get_default_pubsub(char *out, size_t len, const char *peer)
{
    const char *dot = strchr(peer, '.');

    snprintf(out, len, "pubsub.%s", dot && dot[1] ? dot + 1 : peer);
}

static bool get_hex_sha256(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", hex[2 * i + 1]))
            return false;
        out[i] = (unsigned char)v;
    }
    return true;
}

static void get_hex(char out[65], const unsigned char sha[32])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

/* Revision N of PATH: its sha-256 from item N of the file's pubsub node. */
struct get_rev {
    const char *item;     /* the item wanted */
    bool found;           /* an item with a sha-256 came */
    unsigned char sha256[32];
};

static void get_rev_item(const struct pubsub_notice *n, void *data)
{
    struct get_rev *r = data;

    if (strcmp(n->item, r->item) == 0 && n->sha256_hex && get_hex_sha256(n->sha256_hex, r->sha256))
        r->found = true;
}

static int get_resolve_rev(struct get *g)
{
    char pubsub[1024], node[4096], item[24];
    const char *slash = strchr(g->path, '/');
    struct get_rev r = { .item = item };
    xmpp_stanza_t *iq, *ps, *items, *it;
    char repo[128];
    int status = 0;

    snprintf(item, sizeof(item), "%ld", g->options->rev);
    if (g->options->pubsub)
        snprintf(pubsub, sizeof(pubsub), "%s", g->options->pubsub);
    else
        get_default_pubsub(pubsub, sizeof(pubsub), g->peer);
    if (!slash || (size_t)(slash - g->path) >= sizeof(repo)) {
        fprintf(stderr, "filerepo: get: --rev needs REPO/PATH\n");
        return EX_USAGE;
    }
    memcpy(repo, g->path, (size_t)(slash - g->path));
    repo[slash - g->path] = '\0';
    if (pubsub_node_id(node, sizeof(node), repo, slash + 1, NULL) < 0) {
        fprintf(stderr, "filerepo: get: %s: path too long\n", g->path);
        return EX_USAGE;
    }
    iq = xmpp_iq_new(g->ctx, "get", "get-rev");
    if (!iq || xmpp_stanza_set_to(iq, pubsub) != XMPP_EOK ||
        !(ps = stanza_add_element(iq, "pubsub", "http://jabber.org/protocol/pubsub")) ||
        !(items = stanza_add_element(ps, "items", NULL)) ||
        xmpp_stanza_set_attribute(items, "node", node) != XMPP_EOK ||
        !(it = stanza_add_element(items, "item", NULL)) ||
        xmpp_stanza_set_attribute(it, "id", item) != XMPP_EOK) {
        get_stanza_free(iq);
        return EX_OSERR;
    }
    xmpp_id_handler_add(g->conn, get_on_reply, "get-rev", g);
    xmpp_send(g->conn, iq);
    get_stanza_free(iq);
    if (!get_wait(g, get_has_reply, GET_LOGIN_MS)) {
        xmpp_id_handler_delete(g->conn, get_on_reply, "get-rev");
        fprintf(stderr, "filerepo: get: %s did not answer for revision %s of %s\n", pubsub,
                item, g->path);
        return EX_UNAVAILABLE;
    }
    if (strcmp(xmpp_stanza_get_type(g->reply) ? xmpp_stanza_get_type(g->reply) : "",
               "result") == 0)
        pubsub_event_items(g->reply, get_rev_item, &r);
    if (!r.found) {
        const char *condition = stanza_error_condition(g->reply);

        fprintf(stderr, "filerepo: get: %s: no revision %s (%s at %s)\n", g->path, item,
                condition ? condition : "no such item", pubsub);
        status = EX_NOINPUT;
    } else {
        char hex[65];

        get_hex(hex, r.sha256);
        log_debug("get", "revision %s of %s is %s", item, g->path, hex);
        memcpy(g->sha256, r.sha256, 32);
        g->has_sha256 = true;
    }
    xmpp_stanza_release(g->reply);
    g->reply = NULL;
    return status;
}

/* ------------------------------------------------------------ the command */

/* Logs in; returns 0 or the exit status after saying why not. */
static int get_login(struct get *g, const struct get_options *o)
{
    struct login l;
    struct sockaddr_storage addr;
    socklen_t alen = sizeof(addr);
    int status = login_prepare(&l, "get", o->account, o->password_file, o->server) ==
                         LOGIN_READY
                     ? 0
                     : EX_CONFIG;

    if (status == 0)
        status = login_connect(&l, &g->ctx, &g->conn, get_on_socket, get_on_conn, g);
    if (status == 0 && !get_wait(g, get_is_connected, GET_LOGIN_MS)) {
        login_say_refused(&l, g->conn_error);
        status = EX_UNAVAILABLE;
    }
    login_clear(&l);
    if (status != 0)
        return status;
    snprintf(g->jid, sizeof(g->jid), "%s", xmpp_conn_get_bound_jid(g->conn));
    snprintf(g->local_host, sizeof(g->local_host), "127.0.0.1");
    if (get_xmpp_fd >= 0 && getsockname(get_xmpp_fd, (struct sockaddr *)&addr, &alen) == 0)
        getnameinfo((struct sockaddr *)&addr, alen, g->local_host, sizeof(g->local_host), NULL,
                    0, NI_NUMERICHOST);
    return 0;
}

/* Opens the output and hashes what it holds already. */
static int get_open_output(struct get *g, const char *file)
{
    unsigned char *buf = malloc(1 << 20);
    int64_t have = 0;
    struct stat st;

    g->fd = open(file, O_RDWR | O_CLOEXEC);
    if (g->fd < 0 && errno == ENOENT) {
        g->fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        g->created = g->fd >= 0;
    }
    if (!buf || g->fd < 0 || fstat(g->fd, &st) != 0) {
        fprintf(stderr, "filerepo: get: cannot open %s: %s\n", file, strerror(errno));
        free(buf);
        return EX_CANTCREAT;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "filerepo: get: %s is a directory\n", file);
        free(buf);
        return EX_CANTCREAT;
    }
    g->regular = S_ISREG(st.st_mode);
    if (!g->regular) { /* /dev/null, a pipe: nothing to resume */
        free(buf);
        g->offset = 0;
        return get_sink_new(&g->sink, g->fd, g->sha, 0) == 0 ? 0 : EX_OSERR;
    }
    while (have < st.st_size) {
        ssize_t n = read(g->fd, buf, 1 << 20);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "filerepo: get: reading %s: %s\n", file,
                    n < 0 ? strerror(errno) : "it shrank");
            free(buf);
            return EX_IOERR;
        }
        EVP_DigestUpdate(g->sha, buf, (size_t)n);
        have += n;
    }
    free(buf);
    g->offset = have;
    if (lseek(g->fd, have, SEEK_SET) != have) {
        fprintf(stderr, "filerepo: get: %s: %s\n", file, strerror(errno));
        return EX_IOERR;
    }
    return get_sink_new(&g->sink, g->fd, g->sha, have) == 0 ? 0 : EX_OSERR;
}

/* Checks the whole file's sha-256 and size; prints the outcome. */
static int get_check_and_report(struct get *g, const char *file)
{
    unsigned char sha[32];
    unsigned int len = 0;
    const unsigned char *want = g->has_checksum ? g->checksum
                                : g->has_accept_hash ? g->accept_hash : NULL;
    char hex[65], whex[65] = "";
    bool size_ok = g->offset + g->received == g->size, sum_ok;
    double seconds = (double)(get_now_ms() - g->started_ms) / 1000.0;

    EVP_DigestFinal_ex(g->sha, sha, &len);
    get_hex(hex, sha);
    if (want)
        get_hex(whex, want);
    sum_ok = want && memcmp(want, sha, 32) == 0 &&
             (!g->has_sha256 || memcmp(g->sha256, sha, 32) == 0);
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        char *text;

        cJSON_AddStringToObject(o, "path", g->path ? g->path : "");
        cJSON_AddStringToObject(o, "file", file);
        cJSON_AddNumberToObject(o, "size", (double)(g->offset + g->received));
        cJSON_AddStringToObject(o, "sha256", hex);
        cJSON_AddNumberToObject(o, "offset", (double)g->offset);
        cJSON_AddNumberToObject(o, "bytes_received", (double)g->received);
        cJSON_AddStringToObject(o, "method", g->method ? g->method : "none");
        cJSON_AddNumberToObject(o, "seconds", seconds);
        cJSON_AddBoolToObject(o, "verified", sum_ok && size_ok);
        text = cJSON_PrintUnformatted(o);
        printf("%s\n", text ? text : "null");
        free(text);
        cJSON_Delete(o);
    }
    if (!want) {
        fprintf(stderr, "filerepo: get: %s: the daemon sent no sha-256: cannot verify\n", file);
        return 1;
    }
    if (!size_ok || !sum_ok) {
        fprintf(stderr, "filerepo: get: %s: checksum mismatch: %" PRId64 " bytes with sha-256 %s, "
                "the daemon's file has %" PRId64 " bytes and sha-256 %s%s; the file is left as "
                "it is (remove it to download it again)\n", file, g->offset + g->received, hex,
                g->size, whex, g->offset ? " (the partial file resumed may not have been the "
                "beginning of this one)" : "");
        return 1;
    }
    if (!g->json)
        fprintf(stderr, "filerepo: get: %s: %" PRId64 " bytes (%" PRId64 " received, %s), "
                "sha-256 %s verified\n", file, g->size, g->received,
                g->method ? g->method : "nothing to transfer", hex);
    return 0;
}

int cmd_get(const struct get_options *options, int argc, char **argv, bool json)
{
    struct get g = { .options = options, .json = json, .fd = -1, .listen_fd = -1,
                     .data_fd = -1 };
    const char *file = options->output;
    struct sigaction sa = { .sa_handler = get_on_signal };
    int status;

    if (argc < 1 || argc > 2 || (argc == 1 && !options->hash) ||
        (options->rev && argc < 2))
        return EX_USAGE;
    g.peer = argv[0];
    g.path = argc == 2 ? argv[1] : NULL;
    if (options->hash) {
        unsigned char *bin = NULL;
        size_t len = 0;
        xmpp_ctx_t *ctx;

        if (!(g.has_sha256 = get_hex_sha256(options->hash, g.sha256))) {
            ctx = xmpp_ctx_new(NULL, NULL);
            if (ctx)
                xmpp_base64_decode_bin(ctx, options->hash, strlen(options->hash), &bin, &len);
            if (bin && len == 32) {
                memcpy(g.sha256, bin, 32);
                g.has_sha256 = true;
            }
            if (ctx) {
                xmpp_free(ctx, bin);
                xmpp_ctx_free(ctx);
            }
        }
        if (!g.has_sha256) {
            fprintf(stderr, "filerepo: get: --hash wants a sha-256 in hex (64 digits) or "
                            "base64\n");
            return EX_USAGE;
        }
        if (options->rev) {
            fprintf(stderr, "filerepo: get: --hash and --rev both name a revision: give one\n");
            return EX_USAGE;
        }
    }
    if (!file) {
        const char *base = g.path ? strrchr(g.path, '/') : NULL;

        file = base ? base + 1 : g.path;
        if (!file || !*file) {
            fprintf(stderr, "filerepo: get: name the output with -o FILE\n");
            return EX_USAGE;
        }
    }
    g.progress = isatty(STDERR_FILENO);
    if (!(g.sha = EVP_MD_CTX_new()) || EVP_DigestInit_ex(g.sha, EVP_sha256(), NULL) != 1)
        return EX_OSERR;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    xmpp_initialize();
    status = get_login(&g, options);
    if (status == 0 && options->rev)
        status = get_resolve_rev(&g);
    if (status == 0)
        status = get_open_output(&g, file);
    if (status == 0) {
        status = get_session_run(&g);
        get_sink_free(g.sink); /* every byte hashed */
        g.sink = NULL;
        if (status == 0)
            status = get_check_and_report(&g, file);
        else
            fprintf(stderr, "filerepo: get: %s: %s%s\n", g.path ? g.path : file, g.message,
                    g.received + g.offset > 0 && status != EX_NOINPUT
                        ? " (the partial file is kept: run the same command to resume)" : "");
    }
    if (g.fd >= 0)
        close(g.fd);
    /* Nothing came into a file made for it: no empty file is left behind. */
    if (status != 0 && g.created && g.offset + g.received == 0)
        unlink(file);
    if (g.conn && g.connected && !g.lost)
        login_close(g.ctx, g.conn, false);
    if (g.conn)
        xmpp_conn_release(g.conn);
    if (g.ctx)
        xmpp_ctx_free(g.ctx);
    xmpp_shutdown();
    get_sink_free(g.sink);
    EVP_MD_CTX_free(g.sha);
    return status;
}
