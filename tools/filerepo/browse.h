/*
 * browse.h - `filerepo browse`: a subscriber's view of a repository, read
 * over XMPP (XEP-0329 with XEP-0059 paging) as a client account.
 */
#ifndef FILEREPO_CLI_BROWSE_H
#define FILEREPO_CLI_BROWSE_H

#include <stdbool.h>

/** Where and as whom to connect, and how big a page to ask for. */
struct browse_options {
    const char *account;       /* --account, else $FILEREPO_XMPP_JID */
    const char *password_file; /* --password-file, else $FILEREPO_XMPP_PASSWORD_FILE */
    const char *server;        /* --server HOST[:PORT], else $FILEREPO_XMPP_SERVER,
                                  else the account's domain */
    int page_size;             /* --page-size, entries asked for per request */
};

/**
 * Runs `filerepo browse JID [PATH]`: prints the listing of PATH (none: the
 * repositories) of the service at JID, page by page, or one file's
 * details.  Returns the exit status (sysexits.h): 0, EX_USAGE,
 * EX_CONFIG (no account or password), EX_NOINPUT (no such path, or not
 * visible to this account), EX_DATAERR (refused as malformed),
 * EX_UNAVAILABLE (server or service unreachable, login refused).
 */
int cmd_browse(const struct browse_options *options, int argc, char **argv, bool json);

#endif
