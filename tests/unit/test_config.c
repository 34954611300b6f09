/*
 * test_config.c - configuration loading: defaults, every kind of bad key,
 * secrets from files and the environment, and that secrets never reach the
 * error text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[] = "/tmp/filerepo-test-config-XXXXXX";
static char secret_path[256];

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Writes a config whose text is `fmt` with the secret path in place of %s. */
static const char *write_config(const char *fmt)
{
    char text[4096];

    snprintf(text, sizeof(text), fmt, secret_path);
    return write_file("filerepod.json", text);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(secret_path, sizeof(secret_path), "%s/component.secret", dir);
    write_file("component.secret", "s3cr3t-component\n");
    unsetenv(CONFIG_ENV_COMPONENT_SECRET);
    unsetenv(CONFIG_ENV_DB_PASSWORD);
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

/* Loads `path` and expects failure; returns the error text (caller frees). */
static char *load_fails(const char *path, enum config_purpose purpose)
{
    struct config *config = (struct config *)1;
    char *errors = NULL;

    assert_int_equal(config_load(&config, &errors, path, purpose), -1);
    assert_null(config);
    assert_non_null(errors);
    /* Every line names the file. */
    for (const char *line = errors; *line; line = strchr(line, '\n') + 1) {
        assert_memory_equal(line, path, strlen(path));
        assert_non_null(strchr(line, '\n'));
    }
    return errors;
}

static struct config *load_ok(const char *path, enum config_purpose purpose)
{
    struct config *config = NULL;
    char *errors = NULL;

    if (config_load(&config, &errors, path, purpose) != 0)
        fail_msg("unexpected errors:\n%s", errors);
    assert_null(errors);
    assert_non_null(config);
    return config;
}

static void assert_mentions(const char *errors, const char *needle)
{
    if (!strstr(errors, needle))
        fail_msg("expected \"%s\" in:\n%s", needle, errors);
}

static void test_config__minimal_gets_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok(write_config(
        "{\"xmpp\": {\"component\": \"files.example.org\", \"secret_file\": \"%s\"}}"),
        CONFIG_FOR_DAEMON);

    assert_string_equal(c->xmpp_component, "files.example.org");
    assert_string_equal(c->xmpp_secret, "s3cr3t-component");
    assert_string_equal(c->xmpp_host, "127.0.0.1");
    assert_int_equal(c->xmpp_port, 5347);
    assert_string_equal(c->xmpp_name, "filerepo");
    /* The pubsub service sits beside the component by default. */
    assert_string_equal(c->xmpp_pubsub, "pubsub.example.org");
    assert_int_equal(c->xmpp_change_feed, 1);
    assert_string_equal(c->db_conninfo, "dbname=filerepo");
    assert_null(c->db_password);
    assert_string_equal(c->state_dir, "/var/lib/filerepo");
    assert_int_equal(c->log_level, LOG_LEVEL_INFO);
    assert_int_equal(c->xmpp_reconnect_max_seconds, 10);
    config_free(c);
}

static void test_config__full_with_comments(void **state)
{
    (void)state;
    struct config *c = load_ok(write_config(
        "// filerepod test configuration\n"
        "{\n"
        "  /* the catalog */\n"
        "  \"database\": {\"conninfo\": \"host=/run/pg dbname=cat\", // trailing\n"
        "               \"reconnect_max_seconds\": 3},\n"
        "  \"xmpp\": {\"host\": \"::1\", \"port\": 5348, \"component\": \"f.example\",\n"
        "           \"secret_file\": \"%s\", \"name\": \"Releases // not a comment\",\n"
        "           \"pubsub\": \"ps.example.net\", \"change_feed\": \"off\"},\n"
        "  \"state_dir\": \"/srv/filerepo\",\n"
        "  \"log\": {\"level\": \"debug\"}\n"
        "}\n"), CONFIG_FOR_DAEMON);

    assert_string_equal(c->db_conninfo, "host=/run/pg dbname=cat");
    assert_int_equal(c->db_reconnect_max_seconds, 3);
    assert_string_equal(c->xmpp_host, "::1");
    assert_int_equal(c->xmpp_port, 5348);
    assert_string_equal(c->xmpp_name, "Releases // not a comment");
    assert_string_equal(c->xmpp_pubsub, "ps.example.net");
    assert_int_equal(c->xmpp_change_feed, 0);
    assert_string_equal(c->state_dir, "/srv/filerepo");
    assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
    config_free(c);
}

static void test_config__secrets_from_environment(void **state)
{
    (void)state;
    setenv(CONFIG_ENV_COMPONENT_SECRET, "from-env", 1);
    setenv(CONFIG_ENV_DB_PASSWORD, "db-from-env", 1);
    struct config *c = load_ok(write_config("{\"xmpp\": {\"component\": \"f.example\"}}"),
                               CONFIG_FOR_DAEMON);

    assert_string_equal(c->xmpp_secret, "from-env");
    assert_string_equal(c->db_password, "db-from-env");
    config_free(c);
    unsetenv(CONFIG_ENV_COMPONENT_SECRET);
    unsetenv(CONFIG_ENV_DB_PASSWORD);
}

static void test_config__secret_file_wins_over_environment(void **state)
{
    (void)state;
    setenv(CONFIG_ENV_COMPONENT_SECRET, "from-env", 1);
    struct config *c = load_ok(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\"}}"),
        CONFIG_FOR_DAEMON);

    assert_string_equal(c->xmpp_secret, "s3cr3t-component");
    config_free(c);
    unsetenv(CONFIG_ENV_COMPONENT_SECRET);
}

static void test_config__missing_component(void **state)
{
    (void)state;
    char *e = load_fails(write_config("{\"xmpp\": {\"secret_file\": \"%s\"}}"), CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.component\": required");
    free(e);
}

static void test_config__missing_secret(void **state)
{
    (void)state;
    char *e = load_fails(write_config("{\"xmpp\": {\"component\": \"f.example\"}}"),
                         CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.secret_file\": required");
    assert_mentions(e, CONFIG_ENV_COMPONENT_SECRET);
    free(e);
}

static void test_config__cli_needs_no_component_secret(void **state)
{
    (void)state;
    struct config *c = load_ok(write_config("{\"xmpp\": {\"component\": \"f.example\"}}"),
                               CONFIG_FOR_CLI);

    assert_null(c->xmpp_secret);
    config_free(c);
}

static void test_config__port_not_a_number(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\", \"port\": \"abc\"}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.port\": expected an integer from 1 to 65535, got a string");
    free(e);
}

static void test_config__port_out_of_range(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\", \"port\": 70000}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.port\": expected an integer from 1 to 65535, got 70000");
    free(e);
    e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\", \"port\": 53.5}}"),
        CONFIG_FOR_DAEMON);
    assert_mentions(e, "key \"xmpp.port\"");
    free(e);
    /* Far beyond any integer type (found by fuzz_config). */
    e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\", \"port\": 1e300}}"),
        CONFIG_FOR_DAEMON);
    assert_mentions(e, "key \"xmpp.port\": expected an integer from 1 to 65535, got 1e+300");
    free(e);
    e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\", \"port\": -1e999}}"),
        CONFIG_FOR_DAEMON);
    assert_mentions(e, "key \"xmpp.port\": expected an integer from 1 to 65535, got -inf");
    free(e);
}

static void test_config__unknown_keys(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\", \"prot\": 1},"
        " \"databse\": {}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.prot\": unknown key");
    assert_mentions(e, "key \"databse\": unknown key");
    free(e);
}

static void test_config__section_must_be_object(void **state)
{
    (void)state;
    char *e = load_fails(write_config("{\"xmpp\": \"files.example.org\"}"), CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp\": expected an object, got a string");
    free(e);
}

static void test_config__inline_secret_refused_and_not_echoed(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret\": \"hunter2-inline\"},"
        " \"database\": {\"password\": \"pg-inline-pw\"}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.secret\": secrets are not accepted");
    assert_mentions(e, "xmpp.secret_file");
    assert_mentions(e, "key \"database.password\": secrets are not accepted");
    assert_null(strstr(e, "hunter2-inline"));
    assert_null(strstr(e, "pg-inline-pw"));
    free(e);
}

static void test_config__conninfo_with_password_refused(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\"},"
        " \"database\": {\"conninfo\": \"host=db user=fr password=pw-in-conninfo\"}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"database.conninfo\": must not carry a password");
    assert_null(strstr(e, "pw-in-conninfo"));
    free(e);
}

static void test_config__conninfo_malformed(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\"},"
        " \"database\": {\"conninfo\": \"host=db nosuchoption=1\"}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"database.conninfo\": expected a libpq connection string");
    free(e);
}

static void test_config__json_syntax_error_has_position(void **state)
{
    (void)state;
    char *e = load_fails(write_file("bad.json", "{\n  \"xmpp\": {\n    \"port\": 5347,,\n  }\n}\n"),
                         CONFIG_FOR_DAEMON);

    assert_mentions(e, "line 3, column");
    assert_mentions(e, "not valid JSON");
    free(e);
}

static void test_config__trailing_garbage(void **state)
{
    (void)state;
    char *e = load_fails(write_file("bad.json", "{}\n{}\n"), CONFIG_FOR_DAEMON);

    assert_mentions(e, "line 2, column 1: not valid JSON");
    free(e);
}

static void test_config__unclosed_comment(void **state)
{
    (void)state;
    char *e = load_fails(write_file("bad.json", "{\n /* forgot\n}\n"), CONFIG_FOR_DAEMON);

    assert_mentions(e, "line 2, column 2: comment is never closed");
    free(e);
}

static void test_config__not_an_object(void **state)
{
    (void)state;
    char *e = load_fails(write_file("bad.json", "[1, 2]"), CONFIG_FOR_DAEMON);

    assert_mentions(e, "expected a JSON object at the top, got an array");
    free(e);
}

static void test_config__missing_file(void **state)
{
    (void)state;
    char path[300];

    snprintf(path, sizeof(path), "%s/nope.json", dir);
    char *e = load_fails(path, CONFIG_FOR_DAEMON);

    assert_mentions(e, "cannot open: No such file or directory");
    free(e);
}

static void test_config__secret_file_problems(void **state)
{
    (void)state;
    char *e = load_fails(write_file("c.json",
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"/nonexistent/secret\"}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.secret_file\": cannot read secret file /nonexistent/secret");
    free(e);

    write_file("empty.secret", "\n");
    char text[600];
    snprintf(text, sizeof(text),
             "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s/empty.secret\"}}", dir);
    e = load_fails(write_file("c.json", text), CONFIG_FOR_DAEMON);
    assert_mentions(e, "key \"xmpp.secret_file\": secret file");
    assert_mentions(e, "is empty");
    free(e);

    e = load_fails(write_file("c.json",
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"relative/secret\"}}"),
        CONFIG_FOR_DAEMON);
    assert_mentions(e, "key \"xmpp.secret_file\": expected an absolute path");
    free(e);
}

static void test_config__duplicate_key(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\", \"port\": 1,"
        " \"port\": 2}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.port\": given more than once");
    free(e);
}

static void test_config__bad_values_of_each_type(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{\"xmpp\": {\"component\": \"not a domain\", \"secret_file\": \"%s\", \"host\": \"a b\","
        " \"name\": \"\"}, \"state_dir\": \"var/lib\", \"log\": {\"level\": \"loud\"}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"xmpp.component\": expected a domain JID");
    assert_mentions(e, "key \"xmpp.host\": expected a host name or IP address");
    assert_mentions(e, "key \"xmpp.name\": expected a non-empty string");
    assert_mentions(e, "key \"state_dir\": expected an absolute path");
    assert_mentions(e, "key \"log.level\": expected one of debug, info, warn, error");
    /* All five at once, one line each. */
    int lines = 0;
    for (const char *p = e; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 5);
    free(e);
}

static void test_config__parse_from_memory(void **state)
{
    (void)state;
    static const char text[] = "{\"xmpp\": {\"component\": \"m.example\"}}";
    struct config *c = NULL;
    char *errors = NULL;

    assert_int_equal(config_parse(&c, &errors, "memory", text, sizeof(text) - 1, CONFIG_FOR_CLI), 0);
    assert_string_equal(c->xmpp_component, "m.example");
    assert_string_equal(c->path, "memory");
    config_free(c);

    /* Not NUL-terminated: only len bytes count. */
    assert_int_equal(config_parse(&c, &errors, "memory", "{}garbage", 2, CONFIG_FOR_CLI), -1);
    assert_non_null(strstr(errors, "memory: key \"xmpp.component\": required"));
    free(errors);

    assert_int_equal(config_parse(&c, &errors, "memory", "{\0}", 3, CONFIG_FOR_CLI), -1);
    assert_non_null(strstr(errors, "memory: holds a NUL byte"));
    free(errors);
}

#define XMPP_OK "\"xmpp\": {\"component\": \"f.example\", \"secret_file\": \"%s\"}"

static void test_config__indexer_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok(write_config("{" XMPP_OK "}"), CONFIG_FOR_DAEMON);

    assert_int_equal(c->repositories_count, 0);
    assert_int_equal(c->settle_ms, 1000);
    assert_int_equal(c->rescan_seconds, 3600);
    assert_int_equal(c->digests, CONFIG_DIGEST_SHA256 | CONFIG_DIGEST_SHA1);
    assert_int_equal(c->store_mode, CONFIG_STORE_REFLINK);
    assert_int_equal(c->ignore.count, 4);
    assert_string_equal(c->ignore.items[0], ".*");
    assert_string_equal(c->ignore.items[1], "*.part");
    assert_string_equal(c->ignore.items[2], "*.tmp");
    assert_string_equal(c->ignore.items[3], "*~");
    config_free(c);
}

static void test_config__indexer_settings(void **state)
{
    (void)state;
    struct config *c = load_ok(write_config(
        "{" XMPP_OK ", \"indexer\": {\"settle_ms\": 0, \"ignore\": [\"*.crdownload\"],"
        " \"digests\": [\"md5\", \"crc32\", \"sha-512\"], \"content_store\": \"hardlink\","
        " \"rescan_interval_seconds\": 600}}"), CONFIG_FOR_DAEMON);

    assert_int_equal(c->settle_ms, 0);
    assert_int_equal(c->ignore.count, 1);
    assert_string_equal(c->ignore.items[0], "*.crdownload");
    /* sha-256 is always there: the content store is keyed by it. */
    assert_int_equal(c->digests, CONFIG_DIGEST_SHA256 | CONFIG_DIGEST_MD5 |
                                 CONFIG_DIGEST_CRC32 | CONFIG_DIGEST_SHA512);
    assert_int_equal(c->store_mode, CONFIG_STORE_HARDLINK);
    assert_int_equal(c->rescan_seconds, 600);
    config_free(c);
}

static void test_config__indexer_bad_values(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{" XMPP_OK ", \"indexer\": {\"settle_ms\": -1, \"ignore\": \"*.part\","
        " \"digests\": [\"sha-3\"], \"content_store\": \"zfs\", \"workers\": 2}}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"indexer.settle_ms\": expected an integer from 0 to 600000");
    assert_mentions(e, "key \"indexer.ignore\": expected an array of strings, got a string");
    assert_mentions(e, "key \"indexer.digests\": \"sha-3\" is not one of sha-256, sha-1, md5, "
                       "sha-512 or crc32");
    assert_mentions(e, "key \"indexer.content_store\": expected one of reflink, copy, hardlink "
                       "or none; got \"zfs\"");
    assert_mentions(e, "key \"indexer.workers\": unknown key");
    free(e);
    e = load_fails(write_config("{" XMPP_OK ", \"indexer\": {\"ignore\": [\"a\", \"\", 3]}}"),
                   CONFIG_FOR_DAEMON);
    assert_mentions(e, "key \"indexer.ignore\": item 1: expected a non-empty string, got an "
                       "empty string");
    free(e);
}

static void test_config__repositories(void **state)
{
    (void)state;
    struct config *c = load_ok(write_config(
        "{" XMPP_OK ", \"repositories\": ["
        " {\"name\": \"releases\", \"path\": \"/srv/releases/\"},"
        " {\"name\": \"nightly.builds\", \"path\": \"/srv/nightly\", \"title\": \"Nightly\","
        "  \"description\": \"Every night\", \"access\": \"whitelist\","
        "  \"members\": [\"ci@example.org\", \"alice@example.org/build\", \"example.net\"]}]}"),
        CONFIG_FOR_DAEMON);

    assert_int_equal(c->repositories_count, 2);
    assert_string_equal(c->repositories[0].name, "releases");
    assert_string_equal(c->repositories[0].path, "/srv/releases");
    assert_string_equal(c->repositories[0].title, "releases");
    assert_string_equal(c->repositories[0].description, "");
    assert_int_equal(c->repositories[0].access, CONFIG_ACCESS_OPEN);
    assert_int_equal(c->repositories[0].members.count, 0);
    assert_string_equal(c->repositories[1].name, "nightly.builds");
    assert_string_equal(c->repositories[1].title, "Nightly");
    assert_string_equal(c->repositories[1].description, "Every night");
    assert_int_equal(c->repositories[1].access, CONFIG_ACCESS_WHITELIST);
    assert_int_equal(c->repositories[1].members.count, 3);
    assert_string_equal(c->repositories[1].members.items[1], "alice@example.org/build");
    config_free(c);
}

static void test_config__repositories_bad(void **state)
{
    (void)state;
    char *e = load_fails(write_config(
        "{" XMPP_OK ", \"repositories\": ["
        " {\"name\": \"../etc\", \"path\": \"srv\"},"
        " {\"path\": \"/srv/a/../b\", \"acces\": \"open\"},"
        " {\"name\": \"ok\", \"path\": \"/srv/ok\", \"access\": \"secret\"},"
        " {\"name\": \"ok\", \"path\": \"/srv/ok/inner\", \"members\": [\"@x\"]},"
        " {\"name\": \"w\", \"path\": \"/srv/w\", \"access\": \"whitelist\","
        "  \"members\": [\"a@\", \"b@c/\", \"good@example.org\"]},"
        " \"just a string\"]}"),
        CONFIG_FOR_DAEMON);

    assert_mentions(e, "key \"repositories[0].name\": expected 1 to 64 letters");
    assert_mentions(e, "key \"repositories[0].path\": expected an absolute path");
    assert_mentions(e, "key \"repositories[1].name\": required, and missing");
    assert_mentions(e, "key \"repositories[1].path\": expected an absolute path without");
    assert_mentions(e, "key \"repositories[1].acces\": unknown key");
    assert_mentions(e, "key \"repositories[2].access\": expected \"open\" or \"whitelist\"");
    assert_mentions(e, "key \"repositories[3].members\": members apply only to");
    assert_mentions(e, "key \"repositories[3].members\": \"@x\" is not a JID");
    assert_mentions(e, "key \"repositories[4].members\": \"a@\" is not a JID");
    assert_mentions(e, "key \"repositories[4].members\": \"b@c/\" is not a JID");
    assert_null(strstr(e, "good@example.org"));
    assert_mentions(e, "key \"repositories[5]\": expected an object, got a string");
    free(e);

    e = load_fails(write_config(
        "{" XMPP_OK ", \"repositories\": ["
        " {\"name\": \"a\", \"path\": \"/srv/pub\"},"
        " {\"name\": \"b\", \"path\": \"/srv/pub/sub\"},"
        " {\"name\": \"a\", \"path\": \"/srv/other\"},"
        " {\"name\": \"c\", \"path\": \"/srv/publish\"}]}"),
        CONFIG_FOR_DAEMON);
    assert_mentions(e, "key \"repositories[1]\": path /srv/pub/sub overlaps repositories[0]'s "
                       "/srv/pub");
    assert_mentions(e, "key \"repositories[2]\": name \"a\" is also the name of "
                       "repositories[0]");
    /* /srv/publish is beside /srv/pub, not inside it. */
    assert_null(strstr(e, "repositories[3]"));
    free(e);

    e = load_fails(write_config("{" XMPP_OK ", \"repositories\": {\"name\": \"a\"}}"),
                   CONFIG_FOR_DAEMON);
    assert_mentions(e, "key \"repositories\": expected an array of repositories, got an object");
    free(e);
}

static void test_config__shipped_example_is_valid(void **state)
{
    (void)state;
    char path[512];
    FILE *f;
    char text[16384];
    size_t n;

    assert_non_null(getenv("FILEREPO_SOURCE_DIR"));
    snprintf(path, sizeof(path), "%s/tools/filerepod.example.json", getenv("FILEREPO_SOURCE_DIR"));
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';

    /* The example names /etc/filerepo/component.secret: point it at ours. */
    char *at = strstr(text, "/etc/filerepo/component.secret");
    assert_non_null(at);
    char fixed[17000];
    snprintf(fixed, sizeof(fixed), "%.*s%s%s", (int)(at - text), text, secret_path,
             at + strlen("/etc/filerepo/component.secret"));
    struct config *c = load_ok(write_file("example.json", fixed), CONFIG_FOR_DAEMON);

    assert_string_equal(c->xmpp_secret, "s3cr3t-component");
    assert_int_equal(c->repositories_count, 2);
    assert_string_equal(c->repositories[1].members.items[0], "ci@example.org");
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config__minimal_gets_defaults),
        cmocka_unit_test(test_config__full_with_comments),
        cmocka_unit_test(test_config__secrets_from_environment),
        cmocka_unit_test(test_config__secret_file_wins_over_environment),
        cmocka_unit_test(test_config__missing_component),
        cmocka_unit_test(test_config__missing_secret),
        cmocka_unit_test(test_config__cli_needs_no_component_secret),
        cmocka_unit_test(test_config__port_not_a_number),
        cmocka_unit_test(test_config__port_out_of_range),
        cmocka_unit_test(test_config__unknown_keys),
        cmocka_unit_test(test_config__section_must_be_object),
        cmocka_unit_test(test_config__inline_secret_refused_and_not_echoed),
        cmocka_unit_test(test_config__conninfo_with_password_refused),
        cmocka_unit_test(test_config__conninfo_malformed),
        cmocka_unit_test(test_config__json_syntax_error_has_position),
        cmocka_unit_test(test_config__trailing_garbage),
        cmocka_unit_test(test_config__unclosed_comment),
        cmocka_unit_test(test_config__not_an_object),
        cmocka_unit_test(test_config__missing_file),
        cmocka_unit_test(test_config__secret_file_problems),
        cmocka_unit_test(test_config__duplicate_key),
        cmocka_unit_test(test_config__bad_values_of_each_type),
        cmocka_unit_test(test_config__parse_from_memory),
        cmocka_unit_test(test_config__indexer_defaults),
        cmocka_unit_test(test_config__indexer_settings),
        cmocka_unit_test(test_config__indexer_bad_values),
        cmocka_unit_test(test_config__repositories),
        cmocka_unit_test(test_config__repositories_bad),
        cmocka_unit_test(test_config__shipped_example_is_valid),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
