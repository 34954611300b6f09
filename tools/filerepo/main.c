/*
 * filerepo - the command-line tool of filerepo.
 *
 * Administration verbs work on the catalog named by the daemon's
 * configuration file (-c FILE, or $FILEREPO_CONFIG, or
 * /etc/filerepo/filerepod.json).  Client verbs (browse) speak XMPP as a
 * user account and need no configuration file.  Options may come before or
 * after the verb.
 */
#include "browse.h"
#include "catalog.h"
#include "commands.h"
#include "config.h"
#include "get.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#define FILEREPO_DEFAULT_CONFIG "/etc/filerepo/filerepod.json"

static const struct {
    const char *name;   /* the verb */
    int (*run)(struct catalog *, int, char **, bool); /* its implementation */
    const char *usage;  /* its arguments */
    const char *help;   /* one line */
    bool no_catalog;    /* speaks XMPP only: the catalog is not opened */
} verbs[] = {
    { "status", cmd_status, "",
      "repositories, files, last change, publishing backlog and parked rows, indexing", false },
    { "repo", cmd_repo, "list", "the repositories", false },
    { "ls", cmd_ls, "REPO[/PATH]", "a directory's entries, or one file", false },
    { "log", cmd_log, "REPO/PATH", "a file's revisions, newest first", false },
    { "acl", cmd_acl, "grant|revoke REPO JID ROLE | list REPO",
      "who may do what (roles: owner, publisher, member)", false },
    { "revision", cmd_revision, "withdraw REPO/PATH N", "retract a published revision", false },
    { "republish", cmd_republish, "REPO", "publish a repository's nodes and items again", false },
    { "mirror", cmd_mirror,
      "add REPO URL | list [REPO] | check REPO [MIRROR] | disable|enable|remove REPO MIRROR",
      "mirrors (MIRROR: its id or URL); add takes --type, --description, --user, "
      "--password-file, --public-credentials", false },
    { "metalink", cmd_metalink, "REPO/PATH [--rev N]",
      "a revision's Metalink 4 (RFC 5854): size, hashes, verified mirror URLs", false },
    { "subscribe", cmd_subscribe, "SERVICE NODE",
      "follow a pubsub node as a user: one line per new item", true },
    { "migrate", cmd_migrate, "",
      "apply the catalog schema migrations this filerepo carries", false },
    { "schema", cmd_schema, "", "the catalog's schema version and this filerepo's", false },
    /* Over XMPP, as a user: no catalog. */
    { "browse", NULL, "JID [PATH]",
      "a listing of the service at JID, over XMPP, page by page", true },
    { "get", NULL, "JID PATH|--hash H",
      "download a file from the service at JID (Jingle: SOCKS5, else IBB)", true },
};

static void usage(FILE *out)
{
    fprintf(out, "usage: filerepo [-c FILE] [--json] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(*verbs); i++)
        fprintf(out, "  %-7s %-12s %s\n", verbs[i].name, verbs[i].usage, verbs[i].help);
    fprintf(out,
            "\n"
            "  -c, --config FILE  filerepod's configuration (default $FILEREPO_CONFIG,\n"
            "                     then %s)\n"
            "      --json         print JSON\n"
            "\n"
            "subscribe, browse and get (an XMPP client login):\n"
            "      --account JID          log in as JID (default $FILEREPO_XMPP_JID)\n"
            "      --password-file FILE   its password (default $FILEREPO_XMPP_PASSWORD_FILE,\n"
            "                             then $FILEREPO_XMPP_PASSWORD)\n"
            "      --server HOST[:PORT]   connect there (default $FILEREPO_XMPP_SERVER, then\n"
            "                             the account's domain)\n"
            "      --count N              subscribe: stop after N notifications\n"
            "      --page-size N          browse: entries per request (default 100)\n"
            "\n"
            "get JID PATH|--hash H [--rev N] [-o FILE]:\n"
            "  -o, --output FILE          where (default: the last part of PATH); a partial\n"
            "                             FILE is resumed and the whole file verified\n"
            "      --hash H               the content wanted (sha-256, hex or base64)\n"
            "      --rev N                revision N of PATH (read from the pubsub item N)\n"
            "      --pubsub JID           where --rev looks (default pubsub.<parent of JID>)\n"
            "      --ibb                  in-band bytes only (no SOCKS5; candidates are\n"
            "                             tried when their host is an IP address)\n"
            "      --no-direct            offer no SOCKS5 candidate of our own\n"
            "      --timeout S            give up after S seconds without progress (60)\n"
            "\n"
            "mirror add REPO URL, metalink REPO/PATH:\n"
            "      --type T               http, https, ftp, sftp, smb (default: the URL's\n"
            "                             scheme) or webdav (filled by filerepod)\n"
            "      --description TEXT     shown in the items\n"
            "      --user U               the mirror's user; --password-file FILE its password\n"
            "      --public-credentials   publish user and password in the items\n"
            "      --rev N                metalink: revision N (default: the current one)\n",
            FILEREPO_DEFAULT_CONFIG);
}

static int open_catalog(struct catalog **out, const char *config_path)
{
    struct config *config = NULL;
    char *errors = NULL;
    int status = EX_CONFIG;

    *out = NULL;
    if (config_load(&config, &errors, config_path, CONFIG_FOR_CLI) != 0) {
        fputs(errors, stderr);
        free(errors);
        return EX_CONFIG;
    }
    if (catalog_new(out, config->db_conninfo, config->db_password) != 0) {
        fprintf(stderr, "filerepo: out of memory\n");
        status = EX_OSERR;
        goto done;
    }
    if (catalog_connect(*out) != 0) {
        fprintf(stderr, "filerepo: cannot reach the catalog: %s\n", catalog_last_error(*out));
        catalog_free(*out);
        *out = NULL;
        status = EX_UNAVAILABLE;
        goto done;
    }
    status = 0;
done:
    config_free(config);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { "account", required_argument, NULL, 'a' },
        { "password-file", required_argument, NULL, 'p' },
        { "server", required_argument, NULL, 's' },
        { "page-size", required_argument, NULL, 'n' },
        { "count", required_argument, NULL, 'N' },
        { "output", required_argument, NULL, 'o' },
        { "hash", required_argument, NULL, 'H' },
        { "rev", required_argument, NULL, 'R' },
        { "pubsub", required_argument, NULL, 'P' },
        { "ibb", no_argument, NULL, 'I' },
        { "no-direct", no_argument, NULL, 'D' },
        { "timeout", required_argument, NULL, 'T' },
        /* mirror add (--rev also serves metalink) */
        { "type", required_argument, NULL, 'y' },
        { "description", required_argument, NULL, 'd' },
        { "user", required_argument, NULL, 'U' },
        { "public-credentials", no_argument, NULL, 'C' },
        { NULL, 0, NULL, 0 },
    };
    struct get_options get = { 0 };
    struct browse_options browse = { .page_size = 100 };
    char *end;
    const char *config_path = getenv("FILEREPO_CONFIG");
    struct catalog *catalog = NULL;
    char *args[16];
    int nargs = 0, opt, status;
    size_t verb = 0;
    bool json = false, public_credentials = false;
    const char *mirror_type = NULL, *mirror_description = NULL, *mirror_user = NULL;
    long count = 0, number;

    log_set_program("filerepo");
    if (!config_path || !*config_path)
        config_path = FILEREPO_DEFAULT_CONFIG;
    /* Options anywhere; the rest is the verb and its arguments. */
    while (optind < argc) {
        opt = getopt_long(argc, argv, "+c:ho:", options, NULL);
        if (opt == -1) {
            if (nargs == (int)(sizeof(args) / sizeof(*args))) {
                usage(stderr);
                return EX_USAGE;
            }
            args[nargs++] = argv[optind++];
            continue;
        }
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'a':
            browse.account = optarg;
            break;
        case 'p':
            browse.password_file = optarg;
            break;
        case 's':
            browse.server = optarg;
            break;
        case 'n':
            errno = 0;
            browse.page_size = (int)strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || browse.page_size < 1 ||
                browse.page_size > 10000) {
                fprintf(stderr, "filerepo: --page-size must be a number from 1 to 10000\n");
                return EX_USAGE;
            }
            break;
        case 'N':
            errno = 0;
            count = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || count < 1) {
                fprintf(stderr, "filerepo: --count wants a positive number\n");
                return EX_USAGE;
            }
            break;
        case 'o':
            get.output = optarg;
            break;
        case 'y':
            mirror_type = optarg;
            break;
        case 'd':
            mirror_description = optarg;
            break;
        case 'U':
            mirror_user = optarg;
            break;
        case 'C':
            public_credentials = true;
            break;
        case 'H':
            get.hash = optarg;
            break;
        case 'P':
            get.pubsub = optarg;
            break;
        case 'I':
            get.ibb_only = true;
            break;
        case 'D':
            get.no_direct = true;
            break;
        case 'R':
        case 'T':
            errno = 0;
            number = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || number < 1) {
                fprintf(stderr, "filerepo: --%s wants a positive number\n",
                        opt == 'R' ? "rev" : "timeout");
                return EX_USAGE;
            }
            if (opt == 'R')
                get.rev = number;
            else
                get.timeout_s = number;
            break;
        case 'V':
            printf("filerepo %s\n", FILEREPO_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (nargs == 0) {
        usage(stderr);
        return EX_USAGE;
    }
    for (verb = 0; verb < sizeof(verbs) / sizeof(*verbs); verb++)
        if (strcmp(verbs[verb].name, args[0]) == 0)
            break;
    if (verb == sizeof(verbs) / sizeof(*verbs)) {
        fprintf(stderr, "filerepo: unknown command \"%s\"\n", args[0]);
        usage(stderr);
        return EX_USAGE;
    }

    if (strcmp(verbs[verb].name, "get") == 0) {
        get.account = browse.account;
        get.password_file = browse.password_file;
        get.server = browse.server;
        status = cmd_get(&get, nargs - 1, args + 1, json);
        if (status == EX_USAGE)
            fprintf(stderr, "usage: filerepo get [--json] JID PATH|--hash H [--rev N] "
                            "[-o FILE] [--ibb] [--no-direct] [--timeout S]\n");
        return status;
    }
    if (!verbs[verb].run) {
        status = cmd_browse(&browse, nargs - 1, args + 1, json);
        if (status == EX_USAGE)
            fprintf(stderr, "usage: filerepo browse [--json] JID [PATH] [--page-size N]\n");
        return status;
    }
    subscribe_set_options(browse.account, browse.password_file, browse.server, count);
    mirror_set_options(mirror_type, mirror_description, mirror_user, browse.password_file,
                       public_credentials, get.rev > 2147483647 ? 0 : (int)get.rev);
    if (!verbs[verb].no_catalog) {
        status = open_catalog(&catalog, config_path);
        if (status != 0)
            return status;
    }
    status = verbs[verb].run(catalog, nargs - 1, args + 1, json);
    if (status == EX_USAGE)
        fprintf(stderr, "usage: filerepo %s %s\n", verbs[verb].name, verbs[verb].usage);
    catalog_free(catalog);
    return status;
}
