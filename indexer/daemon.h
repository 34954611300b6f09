/*
 * daemon.h - filerepod's main loop.
 *
 * One thread owns the poll loop: signals (signalfd), the catalog's socket,
 * and the XMPP component's socket.  Servers that go away are tried again
 * with back-off; SIGTERM and SIGINT end the loop cleanly.
 */
#ifndef FILEREPO_DAEMON_H
#define FILEREPO_DAEMON_H

#include "config.h"

/**
 * Runs the daemon with `config` until it is told to stop.
 * Returns 0 after a clean stop, or a negative FR_E* code when it could not
 * run (the reason is logged).
 */
int daemon_run(const struct config *config);

#endif
