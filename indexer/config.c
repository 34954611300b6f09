/*
 * config.c - the configuration table and its validator.
 *
 * config_keys[] is the whole schema: adding a key is one line there and one
 * field in struct config.  Loading goes in three steps: parse (JSON with
 * comments, errors with line and column), walk every member of the document
 * and refuse what the table does not know, then read each key of the table
 * (or its default) into the struct, checking its type and range.  Problems are
 * collected, not stopped at, so one run of --check-config shows them all.
 * How each type of value is checked and stored is in config_value.c; the
 * repositories array in config_repo.c.
 */
#include "config.h"
#include "config_internal.h"
#include "jsonc.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX_FILE_SIZE (1024 * 1024)


#define FIELD(f) offsetof(struct config, f)

/* In the order of enum config_store_mode and enum config_digest's bits. */
static const char *const config_store_modes[] = { "reflink", "copy", "hardlink", "none", NULL };
/* Index 1 ("on") is true. */
static const char *const config_off_on[] = { "off", "on", NULL };
static const char *const config_digest_names[] = { "sha-256", "sha-1", "md5", "sha-512", "crc32",
                                                   NULL };

static const struct config_key config_keys[] = {
    { .name = "database.conninfo", .type = CONFIG_CONNINFO,
      .default_value = "dbname=filerepo", .offset = FIELD(db_conninfo),
      .help = "libpq connection string of the catalog (no password in it)" },
    { .name = "database.password_file", .type = CONFIG_SECRET_FILE,
      .offset = FIELD(db_password), .env = CONFIG_ENV_DB_PASSWORD,
      .help = "file holding the database password, if the server asks for one" },
    { .name = "database.reconnect_max_seconds", .type = CONFIG_INT,
      .default_value = "10", .min = 1, .max = 3600,
      .offset = FIELD(db_reconnect_max_seconds),
      .help = "longest wait between two attempts to reach PostgreSQL" },
    { .name = "xmpp.host", .type = CONFIG_HOST, .default_value = "127.0.0.1",
      .offset = FIELD(xmpp_host),
      .help = "address of the XMPP server's component (XEP-0114) listener" },
    { .name = "xmpp.port", .type = CONFIG_INT, .default_value = "5347",
      .min = 1, .max = 65535, .offset = FIELD(xmpp_port),
      .help = "port of that listener" },
    { .name = "xmpp.component", .type = CONFIG_DOMAIN, .required = true,
      .offset = FIELD(xmpp_component),
      .help = "the daemon's JID, a domain the server routes to it (files.example.org)" },
    { .name = "xmpp.secret_file", .type = CONFIG_SECRET_FILE, .required = true,
      .offset = FIELD(xmpp_secret), .env = CONFIG_ENV_COMPONENT_SECRET,
      .help = "file holding the component secret shared with the server" },
    { .name = "xmpp.name", .type = CONFIG_STRING, .default_value = "filerepo",
      .offset = FIELD(xmpp_name),
      .help = "name shown in the daemon's disco#info identity" },
    { .name = "xmpp.pubsub", .type = CONFIG_DOMAIN, .offset = FIELD(xmpp_pubsub),
      .help = "the pubsub service the repositories are published to; default: pubsub. "
              "followed by the component's parent domain (pubsub.example.org)" },
    { .name = "xmpp.change_feed", .type = CONFIG_CHOICE, .default_value = "on",
      .choices = config_off_on, .offset = FIELD(xmpp_change_feed),
      .help = "whether each repository gets a change-feed node REPO#changes: on or off" },
    { .name = "xmpp.change_feed_max_items", .type = CONFIG_INT, .default_value = "1000",
      .min = 1, .max = 1000000, .offset = FIELD(xmpp_change_feed_max_items),
      .help = "items a change-feed node keeps (pubsub#max_items); the catalog keeps all" },
    { .name = "xmpp.reconnect_max_seconds", .type = CONFIG_INT,
      .default_value = "10", .min = 1, .max = 3600,
      .offset = FIELD(xmpp_reconnect_max_seconds),
      .help = "longest wait between two attempts to reach the XMPP server" },
    { .name = "transfer.idle_timeout_seconds", .type = CONFIG_INT, .default_value = "60",
      .min = 1, .max = 3600, .offset = FIELD(transfer_idle_timeout_seconds),
      .help = "a transfer that hears nothing from its requester this long ends (timeout)" },
    { .name = "transfer.ibb_block_size", .type = CONFIG_INT, .default_value = "8192",
      .min = 512, .max = 65535, .offset = FIELD(transfer_ibb_block_size),
      .help = "largest in-band bytestream block-size granted; requests for less get theirs" },
    { .name = "transfer.ibb_window", .type = CONFIG_INT, .default_value = "1",
      .min = 1, .max = 64, .offset = FIELD(transfer_ibb_window),
      .help = "in-band blocks sent before the first is acknowledged (XEP-0047 recommends 1)" },
    { .name = "transfer.max_sessions", .type = CONFIG_INT, .default_value = "64",
      .min = 1, .max = 10000, .offset = FIELD(transfer_max_sessions),
      .help = "transfers under way at once; more are refused with resource-constraint" },
    { .name = "transfer.per_requester_max", .type = CONFIG_INT, .default_value = "8",
      .min = 1, .max = 10000, .offset = FIELD(transfer_per_requester_max),
      .help = "transfers under way at once for one requester (bare JID); more are refused" },
    { .name = "transfer.bandwidth_kib_per_second", .type = CONFIG_INT, .default_value = "0",
      .min = 0, .max = 1 << 30, .offset = FIELD(transfer_bandwidth_kib),
      .help = "cap on the bytes sent by all transfers together, in KiB/s; 0: no cap" },
    { .name = "transfer.socks5", .type = CONFIG_CHOICE, .default_value = "on",
      .choices = config_off_on, .offset = FIELD(transfer_socks5),
      .help = "whether SOCKS5 bytestreams (XEP-0260) are offered: on or off (in-band only)" },
    { .name = "transfer.socks5_bind", .type = CONFIG_HOST, .default_value = "127.0.0.1",
      .offset = FIELD(transfer_socks5_bind),
      .help = "IP address the daemon's own SOCKS5 listener binds to" },
    { .name = "transfer.socks5_port", .type = CONFIG_INT, .default_value = "0",
      .min = 0, .max = 65535, .offset = FIELD(transfer_socks5_port),
      .help = "TCP port of the SOCKS5 listener; 0: any free port" },
    { .name = "transfer.socks5_host", .type = CONFIG_HOST, .offset = FIELD(transfer_socks5_host),
      .help = "IP address offered to requesters as the direct candidate; "
              "default: transfer.socks5_bind" },
    { .name = "transfer.socks5_proxy", .type = CONFIG_STRING, .default_value = "auto",
      .offset = FIELD(transfer_socks5_proxy),
      .help = "SOCKS5 proxy (XEP-0065) offered as a candidate: auto (found by disco on the "
              "server), off, or the proxy's JID" },
    { .name = "state_dir", .type = CONFIG_ABS_PATH,
      .default_value = "/var/lib/filerepo", .offset = FIELD(state_dir),
      .help = "directory for the git repositories and the content store" },
    { .name = "log.level", .type = CONFIG_LOG_LEVEL, .default_value = "info",
      .offset = FIELD(log_level),
      .help = "lowest level logged: debug, info, warn or error" },
    { .name = "repositories", .type = CONFIG_REPOSITORIES,
      .help = "the published directories: [{name, path, title, description, access, members}]" },
    { .name = "indexer.settle_ms", .type = CONFIG_INT, .default_value = "1000",
      .min = 0, .max = 600000, .offset = FIELD(settle_ms),
      .help = "quiet time after a file was written or renamed before it is indexed" },
    { .name = "indexer.ignore", .type = CONFIG_STRING_LIST, .default_value = ".*,*.part,*.tmp,*~",
      .offset = FIELD(ignore),
      .help = "file name patterns (fnmatch) never indexed: uploads in progress" },
    { .name = "indexer.rescan_interval_seconds", .type = CONFIG_INT, .default_value = "3600",
      .min = 60, .max = 604800, .offset = FIELD(rescan_seconds),
      .help = "period of the full rescan that catches what inotify missed" },
    { .name = "indexer.digests", .type = CONFIG_FLAGS, .default_value = "sha-256,sha-1",
      .choices = config_digest_names, .offset = FIELD(digests),
      .help = "digests recorded and published: sha-256, sha-1, md5, sha-512, crc32" },
    { .name = "indexer.content_store", .type = CONFIG_CHOICE, .default_value = "reflink",
      .choices = config_store_modes, .offset = FIELD(store_mode),
      .help = "how old revisions are kept: reflink, copy, hardlink or none" },
    { .name = "query.page_max", .type = CONFIG_INT, .default_value = "250",
      .min = 1, .max = 10000, .offset = FIELD(query_page_max),
      .help = "most entries in one listing reply: a larger RSM <max/> is refused, "
              "a listing asked for without <set/> is cut there (and says so)" },
    { .name = "query.verbose_max", .type = CONFIG_INT, .default_value = "50",
      .min = 0, .max = 10000, .offset = FIELD(query_verbose_max),
      .help = "pages of up to this many entries show files' size, date, type and hashes; "
              "larger ones only names" },
    { .name = "query.rate_per_second", .type = CONFIG_INT, .default_value = "20",
      .min = 1, .max = 100000, .offset = FIELD(query_rate_per_second),
      .help = "requests a second one requester (bare JID) may make on average" },
    { .name = "query.rate_burst", .type = CONFIG_INT, .default_value = "50",
      .min = 1, .max = 100000, .offset = FIELD(query_rate_burst),
      .help = "requests one requester may make at once before the rate applies" },
};

#define CONFIG_KEYS_COUNT (sizeof(config_keys) / sizeof(*config_keys))

/* Objects that group keys; their members are checked against the table. */
static const char *const config_sections[] = { "database", "xmpp", "log", "indexer", "query",
                                                "transfer" };

/* Keys people try first for secrets, answered with where the secret goes. */
static const struct {
    const char *name;  /* the refused inline key */
    const char *instead; /* the key to use */
    const char *env;   /* or this environment variable */
} config_inline_secrets[] = {
    { "database.password", "database.password_file", CONFIG_ENV_DB_PASSWORD },
    { "xmpp.secret", "xmpp.secret_file", CONFIG_ENV_COMPONENT_SECRET },
    { "xmpp.password", "xmpp.secret_file", CONFIG_ENV_COMPONENT_SECRET },
};


void config_error(struct config_errors *errs, const char *key, const char *fmt, ...)
{
    char msg[1024];
    int head, body;
    va_list ap;
    char *grown;

    head = key ? snprintf(msg, sizeof(msg), "%s: key \"%s\": ", errs->path, key)
               : snprintf(msg, sizeof(msg), "%s: ", errs->path);
    if (head < 0 || (size_t)head >= sizeof(msg))
        head = 0;
    va_start(ap, fmt);
    body = vsnprintf(msg + head, sizeof(msg) - (size_t)head, fmt, ap);
    va_end(ap);
    if (body < 0)
        body = 0;

    size_t add = strnlen(msg, sizeof(msg));
    /* One problem, one line, even when libpq's text has several. */
    while (add > 0 && (msg[add - 1] == '\n' || msg[add - 1] == ' '))
        add--;
    for (size_t i = 0; i < add; i++)
        if (msg[i] == '\n' || msg[i] == '\r')
            msg[i] = ' ';
    grown = realloc(errs->text, errs->len + add + 2);
    if (!grown)
        return;
    errs->text = grown;
    memcpy(errs->text + errs->len, msg, add);
    errs->len += add;
    errs->text[errs->len++] = '\n';
    errs->text[errs->len] = '\0';
    errs->count++;
}

static const struct config_key *config_key_find(const char *name)
{
    for (size_t i = 0; i < CONFIG_KEYS_COUNT; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

static bool config_is_section(const char *name)
{
    for (size_t i = 0; i < sizeof(config_sections) / sizeof(*config_sections); i++)
        if (strcmp(config_sections[i], name) == 0)
            return true;
    return false;
}

const char *config_type_name(const cJSON *item)
{
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "something else";
}

/* Refuses members the table does not know, duplicates, and inline secrets. */
static void config_check_members(struct config_errors *errs, const cJSON *object,
                                 const char *prefix)
{
    for (const cJSON *m = object->child; m; m = m->next) {
        char path[256];

        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", m->string);
        for (const cJSON *p = object->child; p != m; p = p->next) {
            if (strcmp(p->string, m->string) == 0) {
                config_error(errs, path, "given more than once");
                break;
            }
        }

        bool inline_secret = false;
        for (size_t i = 0; i < sizeof(config_inline_secrets) / sizeof(*config_inline_secrets); i++) {
            if (strcmp(config_inline_secrets[i].name, path) == 0) {
                config_error(errs, path,
                             "secrets are not accepted in the configuration file; "
                             "put it in a file named by \"%s\" or in the environment "
                             "variable %s",
                             config_inline_secrets[i].instead, config_inline_secrets[i].env);
                inline_secret = true;
            }
        }
        if (inline_secret)
            continue;

        if (config_is_section(path)) {
            if (!cJSON_IsObject(m))
                config_error(errs, path, "expected an object, got %s", config_type_name(m));
            else
                config_check_members(errs, m, path);
        } else if (!config_key_find(path)) {
            config_error(errs, path, "unknown key (see filerepod --help-config)");
        }
    }
}

static const cJSON *config_lookup(const cJSON *root, const char *name)
{
    char buf[256];
    char *save = NULL;
    const cJSON *node = root;

    snprintf(buf, sizeof(buf), "%s", name);
    for (char *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        if (!cJSON_IsObject(node))
            return NULL;
        node = cJSON_GetObjectItemCaseSensitive(node, part);
        if (!node)
            return NULL;
    }
    return node;
}

/* Reads the whole file, refusing absurd sizes. */
static char *config_read_file(struct config_errors *errs, const char *path, size_t *len)
{
    char *text = NULL;
    struct stat st;
    FILE *f = fopen(path, "r");

    if (!f) {
        config_error(errs, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        config_error(errs, NULL, "not a regular file");
        goto done;
    }
    if (st.st_size > CONFIG_MAX_FILE_SIZE) {
        config_error(errs, NULL, "larger than %d bytes", CONFIG_MAX_FILE_SIZE);
        goto done;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text)
        goto done;
    *len = fread(text, 1, (size_t)st.st_size, f);
    text[*len] = '\0';
done:
    fclose(f);
    return text;
}

int config_load(struct config **out, char **errors, const char *path,
                enum config_purpose purpose)
{
    struct config_errors errs = { .path = path };
    size_t len = 0;
    char *text = config_read_file(&errs, path, &len);
    int error;

    if (!text) {
        *out = NULL;
        *errors = errs.text ? errs.text : strdup("out of memory\n");
        return -1;
    }
    error = config_parse(out, errors, path, text, len, purpose);
    free(text);
    return error;
}

/* files.example.org -> pubsub.example.org; a one-label domain gets
 * "pubsub." in front. */
static int config_pubsub_derive(struct config *config)
{
    const char *dot = strchr(config->xmpp_component, '.');
    const char *parent = dot ? dot + 1 : config->xmpp_component;

    if (asprintf(&config->xmpp_pubsub, "pubsub.%s", parent) < 0) {
        config->xmpp_pubsub = NULL;
        return -1;
    }
    return 0;
}

int config_parse(struct config **out, char **errors, const char *name, const char *data,
                 size_t len, enum config_purpose purpose)
{
    struct config_errors errs = { .path = name };
    struct config *config = NULL;
    cJSON *root = NULL;
    char *text = NULL;
    size_t bad = 0;
    const char *end = NULL;
    int error = -1;

    *out = NULL;
    *errors = NULL;

    config = calloc(1, sizeof(*config));
    text = malloc(len + 1);
    if (!config || !text || !(config->path = strdup(name))) {
        config_error(&errs, NULL, "out of memory");
        goto done;
    }
    memcpy(text, data, len);
    text[len] = '\0';
    if (strlen(text) != len) {
        config_error(&errs, NULL, "holds a NUL byte; not a text file");
        goto done;
    }
    if (jsonc_blank_comments(text, len, &bad) != 0) {
        unsigned line, col;

        jsonc_position(text, bad, &line, &col);
        config_error(&errs, NULL, "line %u, column %u: comment is never closed", line, col);
        goto done;
    }
    /* cJSON counts the terminating NUL in the length when it is asked to
     * refuse trailing garbage. */
    root = cJSON_ParseWithLengthOpts(text, len + 1, &end, true);
    if (!root) {
        unsigned line, col;
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;

        if (!end || end < text || end > text + len) {
            const char *ptr = cJSON_GetErrorPtr();
            at = ptr && ptr >= text && ptr <= text + len ? (size_t)(ptr - text) : 0;
        }
        jsonc_position(text, at, &line, &col);
        config_error(&errs, NULL, "line %u, column %u: not valid JSON here", line, col);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        config_error(&errs, NULL, "expected a JSON object at the top, got %s",
                     config_type_name(root));
        goto done;
    }

    config_check_members(&errs, root, "");
    for (size_t i = 0; i < CONFIG_KEYS_COUNT; i++) {
        const struct config_key *key = &config_keys[i];
        const cJSON *item = config_lookup(root, key->name);

        if (key->type == CONFIG_SECRET_FILE) {
            /* The CLI only speaks to the catalog: the component secret may
             * well be readable by the daemon's user alone. */
            if (purpose == CONFIG_FOR_CLI && key->offset == FIELD(xmpp_secret))
                continue;
            config_apply_secret(config, &errs, key, item);
        }
        else if (!item && key->required)
            config_error(&errs, key->name, "required, and missing");
        else if (!item && key->offset == FIELD(xmpp_pubsub))
            continue; /* derived from xmpp.component below */
        else if (!item && !key->default_value)
            continue; /* optional, and unset: NULL */
        else
            config_apply(config, &errs, key, item);
    }
    if (errs.count == 0 && !config->xmpp_pubsub && config_pubsub_derive(config) != 0)
        config_error(&errs, "xmpp.pubsub", "out of memory");
    if (errs.count == 0)
        error = 0;

done:
    cJSON_Delete(root);
    free(text);
    if (error == 0) {
        *out = config;
    } else {
        config_free(config);
        *errors = errs.text ? errs.text : strdup("out of memory\n");
        errs.text = NULL;
    }
    free(errs.text);
    return error;
}

static void config_wipe_free(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}

void config_free(struct config *config)
{
    if (!config)
        return;
    free(config->path);
    free(config->db_conninfo);
    config_wipe_free(config->db_password);
    free(config->xmpp_host);
    free(config->xmpp_component);
    config_wipe_free(config->xmpp_secret);
    free(config->xmpp_name);
    free(config->xmpp_pubsub);
    free(config->transfer_socks5_bind);
    free(config->transfer_socks5_host);
    free(config->transfer_socks5_proxy);
    free(config->state_dir);
    config_repositories_free(config);
    config_strings_clear(&config->ignore);
    free(config);
}

void config_print_reference(void)
{
    for (size_t i = 0; i < CONFIG_KEYS_COUNT; i++) {
        const struct config_key *key = &config_keys[i];

        printf("%-32s %s", key->name, key->help);
        if (key->type == CONFIG_INT)
            printf(" (%d to %d)", key->min, key->max);
        if (key->default_value)
            printf("; default %s", key->default_value);
        else if (key->type == CONFIG_REPOSITORIES)
            printf("; default none");
        else if (key->required)
            printf("; required");
        if (key->env)
            printf("; or environment %s", key->env);
        printf("\n");
    }
}
