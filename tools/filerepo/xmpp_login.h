/*
 * xmpp_login.h - the XMPP client login that browse, subscribe and get
 * share: the account (--account, else $FILEREPO_XMPP_JID), its password
 * (the first line of --password-file or of the file named by
 * $FILEREPO_XMPP_PASSWORD_FILE, else $FILEREPO_XMPP_PASSWORD; never the
 * command line, where other users could read it), the server to connect
 * to (--server HOST[:PORT], else $FILEREPO_XMPP_SERVER, else the
 * account's domain), and the libstrophe connection that logs in with them.
 */
#ifndef FILEREPO_CLI_XMPP_LOGIN_H
#define FILEREPO_CLI_XMPP_LOGIN_H

#include <stdbool.h>
#include <strophe.h>

/** Who logs in where, once login_prepare() found it all. */
struct login {
    const char *cmd;        /* the command ("browse", …), for messages */
    const char *account;    /* the JID to log in as */
    const char *server;     /* HOST[:PORT] as given, or NULL */
    char *password;         /* owned: login_clear() wipes and frees it */
    char host[256];         /* where to connect; "": the account's domain */
    unsigned short port;    /* 0 with no host */
};

/** What login_prepare() found missing or wrong. */
enum login_problem {
    LOGIN_READY,            /* nothing */
    LOGIN_NO_ACCOUNT,       /* no JID */
    LOGIN_NO_PASSWORD,      /* none given, or its file unreadable or empty */
    LOGIN_BAD_SERVER,       /* not HOST or HOST:PORT */
};

/**
 * Fills l from the options given (NULL: not given), else the environment,
 * for command `cmd`; says on stderr what is missing or wrong.  l is to be
 * login_clear()ed whatever the outcome.
 */
enum login_problem login_prepare(struct login *l, const char *cmd, const char *account,
                                 const char *password_file, const char *server);

/**
 * Creates *ctx and *conn (the caller releases what is not NULL) and starts
 * logging in as l says, `handler` hearing how it goes; `sockopt` (NULL:
 * none) sees the socket.  Returns 0, or EX_OSERR / EX_UNAVAILABLE after
 * saying why on stderr.
 */
int login_connect(const struct login *l, xmpp_ctx_t **ctx, xmpp_conn_t **conn,
                  xmpp_sockopt_callback sockopt, xmpp_conn_handler handler, void *userdata);

/** Says on stderr that the login failed, with libstrophe's `error` (0: none known). */
void login_say_refused(const struct login *l, int error);

/**
 * Ends the session: sends the stream's closing tag (unless `closing`: it
 * was sent already) and writes out what is still queued, then returns.
 * The server's own closing tag is not waited for (RFC 6120 4.4 lets the
 * closing side stop waiting): ejabberd takes 100 ms or more to send it,
 * and nothing it could say then matters to a command that is done.  The
 * caller then releases conn, which closes the socket.
 */
void login_close(xmpp_ctx_t *ctx, xmpp_conn_t *conn, bool closing);

/** Wipes and frees the password. */
void login_clear(struct login *l);

#endif
