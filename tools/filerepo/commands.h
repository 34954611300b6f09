/*
 * commands.h - the filerepo CLI's verbs over the catalog.
 *
 * Each verb takes the connected catalog, its arguments (after the verb) and
 * whether --json was given, writes to standard output, and returns the
 * process exit status (sysexits.h).
 */
#ifndef FILEREPO_CLI_COMMANDS_H
#define FILEREPO_CLI_COMMANDS_H

#include <stdbool.h>

#include "catalog.h"

int cmd_migrate(struct catalog *catalog, int argc, char **argv, bool json);
int cmd_schema(struct catalog *catalog, int argc, char **argv, bool json);
int cmd_repo(struct catalog *catalog, int argc, char **argv, bool json);
int cmd_ls(struct catalog *catalog, int argc, char **argv, bool json);
int cmd_log(struct catalog *catalog, int argc, char **argv, bool json);
int cmd_status(struct catalog *catalog, int argc, char **argv, bool json);
int cmd_acl(struct catalog *catalog, int argc, char **argv, bool json);
int cmd_revision(struct catalog *catalog, int argc, char **argv, bool json);
int cmd_republish(struct catalog *catalog, int argc, char **argv, bool json);

/** `subscribe`: speaks XMPP as a user; the catalog is NULL. */
int cmd_subscribe(struct catalog *catalog, int argc, char **argv, bool json);

/** The subscribe verb's options (NULL / 0: not given). */
void subscribe_set_options(const char *jid, const char *password_file, const char *server,
                           long count);

#endif
