/*
 * get.h - `filerepo get`: a file of the daemon's repositories fetched over
 * Jingle (XEP-0166, XEP-0234 "Requesting a File") as a user account, over
 * SOCKS5 (XEP-0260) when it can, in-band (XEP-0261) when it must, resumed
 * from a partial file and checked against the daemon's sha-256.
 */
#ifndef FILEREPO_CLI_GET_H
#define FILEREPO_CLI_GET_H

#include <stdbool.h>

/** What `filerepo get` was told besides its arguments (NULL / 0: not given). */
struct get_options {
    const char *account;       /* --account, else $FILEREPO_XMPP_JID */
    const char *password_file; /* --password-file, else $FILEREPO_XMPP_PASSWORD_FILE */
    const char *server;        /* --server HOST[:PORT], else $FILEREPO_XMPP_SERVER */
    const char *output;        /* -o FILE, else the basename of PATH */
    const char *hash;          /* --hash: sha-256 in hex or base64 */
    long rev;                  /* --rev N: that revision of PATH (0: the current one) */
    const char *pubsub;        /* --pubsub JID: where --rev looks (default pubsub.<parent>) */
    bool ibb_only;             /* --ibb: in-band only */
    bool no_direct;            /* --no-direct: offer no candidate of our own */
    long timeout_s;            /* --timeout: seconds without progress before giving up */
};

/**
 * Runs `filerepo get JID [PATH] [--hash H] [--rev N] [-o FILE]`.  Returns
 * the exit status: 0 (the file is complete and its sha-256 and size match
 * the daemon's), 1 (the bytes arrived but do not match: the file is left
 * as it is), EX_USAGE, EX_CONFIG (no account or password), EX_NOINPUT (no
 * such file, or not readable by this account), EX_TEMPFAIL (the daemon is
 * busy), EX_CANTCREAT / EX_IOERR (the output file), EX_PROTOCOL (a reply
 * that makes no sense), EX_UNAVAILABLE (server unreachable, login refused,
 * the transfer failed or timed out: a partial file is kept for a resume).
 */
int cmd_get(const struct get_options *options, int argc, char **argv, bool json);

#endif
