/*
 * main.c - filerepod's command line.
 *
 *   filerepod [-c FILE]           run with FILE (default /etc/filerepo/filerepod.json)
 *   filerepod --check-config FILE validate FILE, print what is wrong, exit
 *   filerepod --help-config       describe every configuration key
 */
#include "config.h"
#include "daemon.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <strophe.h>
#include <sysexits.h>

#define FILEREPOD_DEFAULT_CONFIG "/etc/filerepo/filerepod.json"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: filerepod [-c FILE] [--log-level LEVEL]\n"
            "       filerepod --check-config FILE\n"
            "       filerepod --help-config | --version | --help\n"
            "\n"
            "Publishes directories of files as an XMPP file repository.\n"
            "  -c, --config FILE    configuration (default %s)\n"
            "      --log-level L    debug, info, warn or error (overrides log.level)\n"
            "      --check-config F validate F and exit: 0 when valid, %d when not\n"
            "      --help-config    list every configuration key\n",
            FILEREPOD_DEFAULT_CONFIG, EX_CONFIG);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", required_argument, NULL, 'C' },
        { "help-config", no_argument, NULL, 'K' },
        { "log-level", required_argument, NULL, 'l' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = FILEREPOD_DEFAULT_CONFIG;
    const char *check_path = NULL;
    const char *level_name = NULL;
    struct config *config = NULL;
    char *errors = NULL;
    int opt, status;

    log_set_program("filerepod");
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'C':
            check_path = optarg;
            break;
        case 'K':
            config_print_reference();
            return 0;
        case 'l':
            level_name = optarg;
            break;
        case 'V':
            printf("filerepod %s\n", FILEREPO_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return EX_USAGE;
    }

    if (check_path) {
        if (config_load(&config, &errors, check_path, CONFIG_FOR_DAEMON) != 0) {
            fputs(errors, stderr);
            free(errors);
            return EX_CONFIG;
        }
        printf("%s: valid\n", check_path);
        config_free(config);
        return 0;
    }

    if (config_load(&config, &errors, config_path, CONFIG_FOR_DAEMON) != 0) {
        fputs(errors, stderr);
        free(errors);
        return EX_CONFIG;
    }
    log_set_level(config->log_level);
    if (level_name) {
        enum log_level level;

        if (log_level_parse(&level, level_name) != 0) {
            fprintf(stderr, "filerepod: --log-level: expected debug, info, warn or error\n");
            config_free(config);
            return EX_USAGE;
        }
        log_set_level(level);
    }

    xmpp_initialize();
    status = daemon_run(config) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    xmpp_shutdown();
    config_free(config);
    return status;
}
