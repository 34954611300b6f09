/*
 * xmpp_login.c - the account, password and server of an XMPP client
 * command, and its connection (see xmpp_login.h).
 */
#include "xmpp_login.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

/* The first line of the file at `path`, without its line end. */
static char *login_read_password(const struct login *l, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (!f) {
        fprintf(stderr, "filerepo: %s: cannot read the password file %s: %s\n", l->cmd, path,
                strerror(errno));
        return NULL;
    }
    n = getline(&line, &cap, f);
    fclose(f);
    if (n < 0) {
        free(line);
        fprintf(stderr, "filerepo: %s: the password file %s is empty\n", l->cmd, path);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

enum login_problem login_prepare(struct login *l, const char *cmd, const char *account,
                                 const char *password_file, const char *server)
{
    memset(l, 0, sizeof(*l));
    l->cmd = cmd;
    l->account = account ? account : getenv("FILEREPO_XMPP_JID");
    l->server = server ? server : getenv("FILEREPO_XMPP_SERVER");
    if (!password_file)
        password_file = getenv("FILEREPO_XMPP_PASSWORD_FILE");
    if (!l->account || !*l->account) {
        fprintf(stderr, "filerepo: %s: no account: give --account JID or set "
                        "FILEREPO_XMPP_JID\n", cmd);
        return LOGIN_NO_ACCOUNT;
    }
    if (password_file && *password_file) {
        if (!(l->password = login_read_password(l, password_file)))
            return LOGIN_NO_PASSWORD;
    } else if (getenv("FILEREPO_XMPP_PASSWORD")) {
        l->password = strdup(getenv("FILEREPO_XMPP_PASSWORD"));
    }
    if (!l->password) {
        fprintf(stderr, "filerepo: %s: no password: give --password-file FILE or set "
                        "FILEREPO_XMPP_PASSWORD_FILE or FILEREPO_XMPP_PASSWORD\n", cmd);
        return LOGIN_NO_PASSWORD;
    }
    if (l->server && *l->server) {
        const char *colon = strrchr(l->server, ':');
        size_t len = colon ? (size_t)(colon - l->server) : strlen(l->server);
        char *end = NULL;
        long p = colon ? strtol(colon + 1, &end, 10) : 5222;

        if (len == 0 || len >= sizeof(l->host) || p < 1 || p > 65535 || (colon && *end)) {
            fprintf(stderr, "filerepo: %s: the server must be HOST or HOST:PORT: %s\n", cmd,
                    l->server);
            return LOGIN_BAD_SERVER;
        }
        memcpy(l->host, l->server, len);
        l->host[len] = '\0';
        l->port = (unsigned short)p;
    }
    return LOGIN_READY;
}

int login_connect(const struct login *l, xmpp_ctx_t **ctx, xmpp_conn_t **conn,
                  xmpp_sockopt_callback sockopt, xmpp_conn_handler handler, void *userdata)
{
    *ctx = xmpp_ctx_new(NULL, NULL);
    *conn = *ctx ? xmpp_conn_new(*ctx) : NULL;
    if (!*conn) {
        fprintf(stderr, "filerepo: %s: out of memory\n", l->cmd);
        return EX_OSERR;
    }
    if (sockopt)
        xmpp_conn_set_sockopt_callback(*conn, sockopt);
    xmpp_conn_set_jid(*conn, l->account);
    xmpp_conn_set_pass(*conn, l->password);
    if (xmpp_connect_client(*conn, *l->host ? l->host : NULL, l->port, handler, userdata) !=
        XMPP_EOK) {
        login_say_refused(l, 0);
        return EX_UNAVAILABLE;
    }
    return 0;
}

void login_say_refused(const struct login *l, int error)
{
    fprintf(stderr, "filerepo: %s: cannot log in as %s%s%s: %s\n", l->cmd, l->account,
            *l->host ? " via " : "", *l->host ? l->server : "",
            error ? strerror(error) : "refused or timed out");
}

void login_clear(struct login *l)
{
    if (l->password) {
        explicit_bzero(l->password, strlen(l->password));
        free(l->password);
    }
    l->password = NULL;
}

void login_close(xmpp_ctx_t *ctx, xmpp_conn_t *conn, bool closing)
{
    if (!xmpp_conn_is_connected(conn))
        return;
    if (!closing)
        xmpp_disconnect(conn);
    /* A round writes what the socket takes: on a healthy connection the
     * first writes it all.  Stanzas still queued after it (a server slow
     * to read) get half a second more. */
    xmpp_run_once(ctx, 0);
    for (int i = 0; i < 50 && xmpp_conn_is_connected(conn) && xmpp_conn_send_queue_len(conn) > 0;
         i++)
        xmpp_run_once(ctx, 10);
    if (xmpp_conn_is_connected(conn))
        xmpp_run_once(ctx, 0);
}
