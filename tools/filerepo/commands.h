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

/** `mirror add|list|check|disable|enable|remove` (tools/filerepo/mirror.c). */
int cmd_mirror(struct catalog *catalog, int argc, char **argv, bool json);

/** `metalink REPO/PATH`: a revision's Metalink 4 document. */
int cmd_metalink(struct catalog *catalog, int argc, char **argv, bool json);

/** The mirror verbs' options (NULL / false / 0: not given). */
void mirror_set_options(const char *type, const char *description, const char *user,
                        const char *password_file, bool public_credentials, int rev);

/** `subscribe`: speaks XMPP as a user; the catalog is NULL. */
int cmd_subscribe(struct catalog *catalog, int argc, char **argv, bool json);

/** The subscribe verb's options (NULL / 0: not given). */
void subscribe_set_options(const char *jid, const char *password_file, const char *server,
                           long count);

#endif
