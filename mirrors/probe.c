/*
 * probe.c - one check of one revision on one mirror (see probe.h for the
 * stages).  Each stage is one transfer on the probe's easy handle, reset
 * between stages; the checker's multi handle runs them, so a probe never
 * blocks and a slow mirror costs only its own slot.  Bytes downloaded are
 * hashed or compared as they come and never kept.
 */
#include "probe.h"
#include "fr_error.h"
#include "log.h"
#include "secret.h"
#include "store.h"
#include "url.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_SAMPLE_BYTES 65536
#define PROBE_SAMPLES_MAX 3

enum probe_stage { PROBE_MKCOL, PROBE_PUT, PROBE_PROPPATCH, PROBE_HEAD, PROBE_GET, PROBE_DONE };

static const char *const probe_stage_names[] = {
    [PROBE_MKCOL] = "mkcol", [PROBE_PUT] = "put", [PROBE_PROPPATCH] = "proppatch",
    [PROBE_HEAD] = "head",   [PROBE_GET] = "get", [PROBE_DONE] = "done",
};

struct probe {
    struct probe_settings settings; /* copied; store borrowed */
    int64_t mirror_id, revision_id; /* what is checked */
    enum mirror_type type;          /* the mirror's type */
    bool http;                      /* spoken over HTTP (http, https, webdav) */
    bool whitelist;                 /* webdav: set the JID list */
    bool health_probe;              /* the random verified copy */
    bool verified_before;           /* the copy was verified */
    char *base;                     /* mirror base URL */
    char *path;                     /* the file's path in the repository */
    char *url;                      /* the file's URL on the mirror */
    char *stage_url;                /* MKCOL: the collection being made */
    char *username, *password;      /* credentials, NULL when none (password secret) */
    char *jids;                     /* whitelist JIDs, one a line */
    int64_t size;                   /* expected bytes */
    unsigned char sha256[32];       /* expected digest */
    enum probe_stage stage;         /* see probe.h */
    CURL *easy;                     /* the transfer handle, reset per stage */
    char errbuf[CURL_ERROR_SIZE];   /* curl's words on a failure */
    struct curl_slist *headers;     /* the stage's extra headers */
    char *body;                     /* PROPPATCH body */
    size_t mkcol_done;              /* MKCOL: bytes of path whose collections exist */
    int fd;                         /* PUT source / sampled reference (store object), -1 */
    EVP_MD_CTX *md;                 /* GET full: running SHA-256 */
    int64_t got;                    /* GET: bytes received in this transfer */
    bool overflow;                  /* GET: more bytes than the revision has */
    bool differs;                   /* GET sampled: a byte differed */
    bool ranges_ignored;            /* GET sampled: the server sent the whole file */
    bool full;                      /* GET: the whole file (else samples) */
    int sample, samples;            /* sampled: the range under way, how many */
    int64_t sample_off[PROBE_SAMPLES_MAX]; /* their offsets */
    int64_t sample_len[PROBE_SAMPLES_MAX]; /* their lengths */
    unsigned char *expect;          /* the reference bytes of the range under way */
    char state[16];                 /* outcome: verified, missing, mismatch, error */
    char reason[600];               /* why not verified */
    bool transient;                 /* the mirror failed, not the file */
};

static void probe_enter_stage(struct probe *p, enum probe_stage stage)
{
    log_debug("mirrors", "%s: %s -> %s", p->url, probe_stage_names[p->stage],
              probe_stage_names[stage]);
    p->stage = stage;
}

static void probe_finish(struct probe *p, const char *state, bool transient, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void probe_finish(struct probe *p, const char *state, bool transient, const char *fmt, ...)
{
    va_list ap;

    snprintf(p->state, sizeof(p->state), "%s", state);
    p->transient = transient;
    p->reason[0] = '\0';
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
        va_end(ap);
    }
    probe_enter_stage(p, PROBE_DONE);
}

static int probe_hex_to_bytes(unsigned char *out, size_t len, const char *hex)
{
    if (strlen(hex) != len * 2)
        return FR_EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return FR_EINVAL;
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* ------------------------------------------------------------ callbacks */

static size_t probe_discard(char *data, size_t size, size_t n, void *userdata)
{
    (void)data;
    (void)userdata;
    return size * n;
}

static size_t probe_write_full(char *data, size_t size, size_t n, void *userdata)
{
    struct probe *p = userdata;
    size_t len = size * n;

    if (p->got + (int64_t)len > p->size) {
        p->overflow = true;
        return 0; /* aborts the transfer: it cannot be the right file */
    }
    EVP_DigestUpdate(p->md, data, len);
    p->got += (int64_t)len;
    return len;
}

static size_t probe_write_sample(char *data, size_t size, size_t n, void *userdata)
{
    struct probe *p = userdata;
    size_t len = size * n;
    int64_t want = p->sample_len[p->sample];

    if (p->got == 0 && p->http) {
        long code = 0;

        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code != 206) {
            p->ranges_ignored = true;
            return 0;
        }
    }
    if (p->got + (int64_t)len > want) {
        p->overflow = true;
        return 0;
    }
    if (memcmp(p->expect + p->got, data, len) != 0) {
        p->differs = true;
        return 0;
    }
    p->got += (int64_t)len;
    return len;
}

static size_t probe_read_upload(char *buf, size_t size, size_t n, void *userdata)
{
    struct probe *p = userdata;
    ssize_t got = read(p->fd, buf, size * n);

    return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

/* Authentication may make curl send the body again (a 401 first). */
static int probe_seek_upload(void *userdata, curl_off_t offset, int origin)
{
    struct probe *p = userdata;

    return lseek(p->fd, (off_t)offset, origin) < 0 ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_OK;
}

/* ------------------------------------------------------------ stages */

/* The settings every stage's transfer has. */
static void probe_easy_reset(struct probe *p, const char *url)
{
    curl_easy_reset(p->easy);
    curl_slist_free_all(p->headers);
    p->headers = NULL;
    p->errbuf[0] = '\0';
    p->got = 0;
    curl_easy_setopt(p->easy, CURLOPT_URL, url);
    curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);
    curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->errbuf);
    curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https,ftp,sftp,smb");
    curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT, p->settings.connect_timeout_s);
    /* A mirror that accepts and then says nothing is given up on. */
    curl_easy_setopt(p->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(p->easy, CURLOPT_LOW_SPEED_TIME, p->settings.low_speed_time_s);
    curl_easy_setopt(p->easy, CURLOPT_USERAGENT, "filerepo-mirror-check");
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, probe_discard);
    curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
    if (p->username) {
        curl_easy_setopt(p->easy, CURLOPT_USERNAME, p->username);
        curl_easy_setopt(p->easy, CURLOPT_PASSWORD, p->password ? p->password : "");
        if (p->http)
            curl_easy_setopt(p->easy, CURLOPT_HTTPAUTH, CURLAUTH_ANY);
    }
}

static void probe_start_head(struct probe *p)
{
    probe_enter_stage(p, PROBE_HEAD);
    probe_easy_reset(p, p->url);
    curl_easy_setopt(p->easy, CURLOPT_NOBODY, 1L);
}

static void probe_start_get(struct probe *p);

static void probe_start_sample(struct probe *p)
{
    char range[64];
    ssize_t got;

    free(p->expect);
    p->expect = malloc((size_t)p->sample_len[p->sample] + 1);
    got = p->expect ? pread(p->fd, p->expect, (size_t)p->sample_len[p->sample],
                            (off_t)p->sample_off[p->sample])
                    : -1;
    if (got != (ssize_t)p->sample_len[p->sample]) {
        /* The reference went away: the digest still decides. */
        p->full = true;
        probe_start_get(p);
        return;
    }
    probe_easy_reset(p, p->url);
    snprintf(range, sizeof(range), "%" PRId64 "-%" PRId64, p->sample_off[p->sample],
             p->sample_off[p->sample] + p->sample_len[p->sample] - 1);
    curl_easy_setopt(p->easy, CURLOPT_RANGE, range);
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, probe_write_sample);
    p->overflow = p->differs = p->ranges_ignored = false;
}

static void probe_start_get(struct probe *p)
{
    probe_enter_stage(p, PROBE_GET);
    if (!p->full && p->fd < 0 && p->settings.store) {
        int fd = store_object_open(p->settings.store, p->sha256);

        p->fd = fd >= 0 ? fd : -1;
    }
    if (!p->full && p->fd >= 0 && p->size > 0) {
        int64_t len = p->size < PROBE_SAMPLE_BYTES ? p->size : PROBE_SAMPLE_BYTES;

        p->samples = 0;
        p->sample_off[p->samples] = 0;
        p->sample_len[p->samples++] = len;
        if (p->size > 3 * PROBE_SAMPLE_BYTES) {
            p->sample_off[p->samples] =
                PROBE_SAMPLE_BYTES + (int64_t)((uint64_t)random() %
                                               (uint64_t)(p->size - 3 * PROBE_SAMPLE_BYTES));
            p->sample_len[p->samples++] = PROBE_SAMPLE_BYTES;
        }
        if (p->size > PROBE_SAMPLE_BYTES) {
            p->sample_off[p->samples] = p->size - len;
            p->sample_len[p->samples++] = len;
        }
        p->sample = 0;
        probe_start_sample(p);
        return;
    }
    p->full = true;
    probe_easy_reset(p, p->url);
    if (!p->md)
        p->md = EVP_MD_CTX_new();
    if (!p->md || EVP_DigestInit_ex(p->md, EVP_sha256(), NULL) != 1) {
        probe_finish(p, "error", false, "out of memory");
        return;
    }
    p->overflow = false;
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, probe_write_full);
}

static void probe_start_put(struct probe *p)
{
    probe_enter_stage(p, PROBE_PUT);
    if (p->fd < 0) {
        int fd = p->settings.store ? store_object_open(p->settings.store, p->sha256)
                                   : FR_ENOTFOUND;

        if (fd < 0) {
            probe_finish(p, "error", false,
                         "no copy of this revision in the content store to upload");
            return;
        }
        p->fd = fd;
    }
    if (lseek(p->fd, 0, SEEK_SET) != 0) {
        probe_finish(p, "error", false, "content store: %s", strerror(errno));
        return;
    }
    probe_easy_reset(p, p->url);
    /* XEP-0129: never overwrite what is there; the check that follows
     * tells whether what is there is right. */
    p->headers = curl_slist_append(p->headers, "If-None-Match: *");
    p->headers = curl_slist_append(p->headers, "Expect:");
    curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(p->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(p->easy, CURLOPT_READFUNCTION, probe_read_upload);
    curl_easy_setopt(p->easy, CURLOPT_READDATA, p);
    curl_easy_setopt(p->easy, CURLOPT_SEEKFUNCTION, probe_seek_upload);
    curl_easy_setopt(p->easy, CURLOPT_SEEKDATA, p);
    curl_easy_setopt(p->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)p->size);
}

/* MKCOL of the next parent collection of the file, or the PUT when all are
 * there. */
static void probe_start_mkcol(struct probe *p)
{
    const char *slash = strchr(p->path + p->mkcol_done, '/');
    char *dir;
    size_t len;

    probe_enter_stage(p, PROBE_MKCOL);
    if (!slash) {
        probe_start_put(p);
        return;
    }
    len = (size_t)(slash - p->path) + 1;
    p->mkcol_done = len;
    dir = strndup(p->path, len);
    free(p->stage_url);
    p->stage_url = dir ? malloc(strlen(p->base) + 3 * len + 1) : NULL;
    if (!p->stage_url ||
        mirror_url_file(p->stage_url, strlen(p->base) + 3 * len + 1, p->base, dir) < 0) {
        free(dir);
        probe_finish(p, "error", false, "out of memory");
        return;
    }
    free(dir);
    probe_easy_reset(p, p->stage_url);
    curl_easy_setopt(p->easy, CURLOPT_CUSTOMREQUEST, "MKCOL");
}

static void probe_start_proppatch(struct probe *p)
{
    static const char head[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>"
        "<jidlist xmlns=\"http://www.xmpp.org/extensions/xep-0129.html#ns\">";
    static const char tail[] = "</jidlist></D:prop></D:set></D:propertyupdate>\n";
    size_t cap = sizeof(head) + sizeof(tail) + strlen(p->jids) * 6 + 64, len;
    const char *s = p->jids;

    probe_enter_stage(p, PROBE_PROPPATCH);
    free(p->body);
    if (!(p->body = malloc(cap))) {
        probe_finish(p, "error", false, "out of memory");
        return;
    }
    len = (size_t)snprintf(p->body, cap, "%s", head);
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);

        len += (size_t)snprintf(p->body + len, cap - len, "<jid>");
        for (size_t i = 0; i < n; i++) {
            const char *esc = s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;"
                              : s[i] == '>' ? "&gt;" : NULL;

            len += esc ? (size_t)snprintf(p->body + len, cap - len, "%s", esc)
                       : (size_t)snprintf(p->body + len, cap - len, "%c", s[i]);
        }
        len += (size_t)snprintf(p->body + len, cap - len, "</jid>");
        s += n + (e ? 1 : 0);
    }
    snprintf(p->body + len, cap - len, "%s", tail);
    probe_easy_reset(p, p->url);
    p->headers = curl_slist_append(p->headers, "Content-Type: application/xml; charset=utf-8");
    curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(p->easy, CURLOPT_CUSTOMREQUEST, "PROPPATCH");
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body);
}

/* ------------------------------------------------------------ outcomes */

/* Sorts a failed or refused transfer into an outcome; returns true when
 * the probe finished on it. */
static bool probe_failed(struct probe *p, CURLcode code, long status, const char *what)
{
    if (code == CURLE_OK) {
        if (!p->http || status < 300)
            return false;
        if (status < 400) {
            /* What is advertised is what was checked: redirects are not
             * followed, the admin gives the URL that serves the files. */
            probe_finish(p, "error", false, "%s: HTTP %ld (a redirect: give the mirror's final URL)",
                         what, status);
            return true;
        }
        if (status == 404 || status == 410)
            probe_finish(p, "missing", false, "%s: HTTP %ld (not on the mirror)", what, status);
        else
            probe_finish(p, "error", status >= 500, "%s: HTTP %ld", what, status);
        return true;
    }
    switch (code) {
    case CURLE_REMOTE_FILE_NOT_FOUND:
        probe_finish(p, "missing", false, "%s: not on the mirror", what);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* Not the mirror's fault, and no retry will change it. */
        probe_finish(p, "error", false, "%s: this libcurl cannot speak this protocol: %s", what,
                     *p->errbuf ? p->errbuf : curl_easy_strerror(code));
        break;
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_LOGIN_DENIED:
        probe_finish(p, "error", false, "%s: access denied: %s", what,
                     *p->errbuf ? p->errbuf : curl_easy_strerror(code));
        break;
    default:
        /* Unreachable, timed out, cut off: the mirror's fault. */
        probe_finish(p, "error", true, "%s: %s", what,
                     *p->errbuf ? p->errbuf : curl_easy_strerror(code));
        break;
    }
    return true;
}

void probe_transfer_done(struct probe *p, CURLcode code)
{
    long status = 0;
    curl_off_t length = -1;

    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
    switch (p->stage) {
    case PROBE_MKCOL:
        /* 405: the collection exists already. */
        if (code == CURLE_OK && status != 405 && probe_failed(p, code, status, "MKCOL"))
            return;
        if (code != CURLE_OK && probe_failed(p, code, status, "MKCOL"))
            return;
        probe_start_mkcol(p);
        return;
    case PROBE_PUT:
        /* 412: something is there already; the check says whether it is right. */
        if (!(code == CURLE_OK && status == 412) && probe_failed(p, code, status, "PUT"))
            return;
        if (status != 412)
            log_info("mirrors", "stored %s (%" PRId64 " bytes)", p->url, p->size);
        if (p->whitelist)
            probe_start_proppatch(p);
        else
            probe_start_head(p);
        return;
    case PROBE_PROPPATCH:
        if (probe_failed(p, code, status, "PROPPATCH of the JID list"))
            return;
        probe_start_head(p);
        return;
    case PROBE_HEAD:
        if (probe_failed(p, code, status, p->http ? "HEAD" : "SIZE"))
            return;
        curl_easy_getinfo(p->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        if (length >= 0 && length != p->size) {
            probe_finish(p, "mismatch", false, "size %" PRId64 ", expected %" PRId64,
                         (int64_t)length, p->size);
            return;
        }
        if (p->settings.policy == PROBE_POLICY_SIZE) {
            if (length < 0)
                probe_finish(p, "error", false, "the mirror does not tell the size");
            else
                probe_finish(p, "verified", false, NULL);
            return;
        }
        p->full = p->settings.policy == PROBE_POLICY_FULL;
        probe_start_get(p);
        return;
    case PROBE_GET:
        if (p->overflow) {
            probe_finish(p, "mismatch", false, "more than the %" PRId64 " bytes expected",
                         p->full ? p->size : p->sample_len[p->sample]);
            return;
        }
        if (p->differs) {
            probe_finish(p, "mismatch", false, "the bytes from offset %" PRId64 " differ",
                         p->sample_off[p->sample]);
            return;
        }
        if (!p->full && p->ranges_ignored) {
            p->full = true;
            probe_start_get(p);
            return;
        }
        if (probe_failed(p, code, status, "GET"))
            return;
        if (p->full) {
            unsigned char digest[32];
            unsigned len = 0;

            if (p->got != p->size) {
                probe_finish(p, "mismatch", false, "size %" PRId64 ", expected %" PRId64,
                             p->got, p->size);
                return;
            }
            EVP_DigestFinal_ex(p->md, digest, &len);
            if (len != 32 || memcmp(digest, p->sha256, 32) != 0)
                probe_finish(p, "mismatch", false, "same size, different bytes (sha-256 differs)");
            else
                probe_finish(p, "verified", false, NULL);
            return;
        }
        if (p->got != p->sample_len[p->sample]) {
            probe_finish(p, "mismatch", false, "the range from offset %" PRId64 " is short",
                         p->sample_off[p->sample]);
            return;
        }
        if (++p->sample < p->samples)
            probe_start_sample(p);
        else
            probe_finish(p, "verified", false, NULL);
        return;
    case PROBE_DONE:
        return;
    }
}

/* ------------------------------------------------------------ life */

int probe_new(struct probe **out, const struct catalog_mirror_check *check,
              const struct probe_settings *settings)
{
    struct probe *p = calloc(1, sizeof(*p));
    size_t url_len;

    *out = NULL;
    if (!p)
        return FR_ENOMEM;
    p->settings = *settings;
    p->fd = -1;
    p->mirror_id = check->mirror_id;
    p->revision_id = check->revision_id;
    p->whitelist = check->whitelist;
    p->health_probe = check->probe;
    p->verified_before = check->verified;
    p->size = check->size;
    if (mirror_type_parse(&p->type, check->type) != 0)
        p->type = MIRROR_HTTP;
    p->http = p->type == MIRROR_HTTP || p->type == MIRROR_HTTPS || p->type == MIRROR_WEBDAV;
    url_len = strlen(check->url) + 3 * strlen(check->path) + 1;
    p->base = strdup(check->url);
    p->path = strdup(check->path);
    p->jids = strdup(check->jids ? check->jids : "");
    p->url = malloc(url_len);
    p->username = check->username ? strdup(check->username) : NULL;
    p->easy = curl_easy_init();
    if (!p->base || !p->path || !p->jids || !p->url || !p->easy ||
        (check->username && !p->username)) {
        probe_free(p);
        return FR_ENOMEM;
    }
    mirror_url_file(p->url, url_len, check->url, check->path);
    *out = p;
    if (probe_hex_to_bytes(p->sha256, sizeof(p->sha256), check->sha256_hex) != 0) {
        probe_finish(p, "error", false, "the catalog holds no usable sha-256");
        return 0;
    }
    if (check->password_file && !(p->password = secret_read(check->password_file))) {
        probe_finish(p, "error", false, "cannot read the mirror's password file");
        return 0;
    }
    if (p->type == MIRROR_WEBDAV && !p->verified_before)
        probe_start_mkcol(p);
    else
        probe_start_head(p);
    return 0;
}

void probe_free(struct probe *p)
{
    if (!p)
        return;
    if (p->easy)
        curl_easy_cleanup(p->easy);
    curl_slist_free_all(p->headers);
    if (p->password) {
        explicit_bzero(p->password, strlen(p->password));
        free(p->password);
    }
    if (p->fd >= 0)
        close(p->fd);
    EVP_MD_CTX_free(p->md);
    free(p->expect);
    free(p->body);
    free(p->base);
    free(p->path);
    free(p->url);
    free(p->stage_url);
    free(p->username);
    free(p->jids);
    free(p);
}

CURL *probe_easy(struct probe *p)
{
    return p->stage == PROBE_DONE ? NULL : p->easy;
}

bool probe_finished(const struct probe *p)
{
    return p->stage == PROBE_DONE;
}

void probe_result(const struct probe *p, struct catalog_mirror_result *out)
{
    *out = (struct catalog_mirror_result){
        .mirror_id = p->mirror_id,
        .revision_id = p->revision_id,
        .state = p->state,
        .reason = strcmp(p->state, "verified") == 0 ? NULL : p->reason,
        .transient = p->transient,
        .probe = p->health_probe,
    };
}

int64_t probe_mirror_id(const struct probe *p)
{
    return p->mirror_id;
}

int64_t probe_revision_id(const struct probe *p)
{
    return p->revision_id;
}

const char *probe_url(const struct probe *p)
{
    return p->url;
}
