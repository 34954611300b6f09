"""filerepod rides out server restarts: ejabberd restarted under the running
daemon, PostgreSQL restarted and stopped for a while.  Prints how long the
daemon took to answer again, measured from the moment the server was back."""

import re
import sys
import time

from harness import (DISCO_INFO, Daemon, check, load_services_env, psql, schema_version,
                     services)
from xmppclient import Client




def timed(verb):
    """Runs tools/services.sh VERB on this run's services; returns seconds."""
    started = time.monotonic()
    check(services(verb).returncode == 0, f"services.sh {verb}")
    return time.monotonic() - started


def alice(env):
    c = Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"], env["XMPP_HOST"],
               env["XMPP_C2S_PORT"])
    c.connect()
    return c


def answers(client, component):
    try:
        reply = client.iq(DISCO_INFO.format(to=component), timeout=2)
    except Exception:
        return False
    return reply.get("type") == "result"


def wait_answer(env, component, deadline_s):
    """Connects a client and polls disco#info until the daemon answers.
    Returns the seconds it took."""
    started = time.monotonic()
    client = None
    while time.monotonic() - started < deadline_s:
        try:
            client = client or alice(env)
            if answers(client, component):
                client.close()
                return time.monotonic() - started
        except Exception:
            if client:
                client.close()
            client = None
        time.sleep(0.1)
    raise AssertionError(f"the daemon did not answer within {deadline_s} s")


def main():
    env = load_services_env()
    with Daemon(env) as daemon:
        component = daemon.component
        daemon.wait_log(r"xmpp: connected as ")
        c = alice(env)
        check(answers(c, component), "answers before the restart")
        c.close()

        # ejabberd restarted under the running daemon.
        _, mark = daemon.wait_log(r"xmpp: connected as ")
        took = timed("restart-xmpp")
        back = wait_answer(env, component, 30)
        m, _ = daemon.wait_log(r"xmpp: connected as .* (\d+) ms after the loss", after=mark)
        # Closed with a stream error (system-shutdown) or just dropped.
        check(re.search(r"xmpp: (connection to \S+ lost|stream closed by \S+: )", daemon.log()),
              "the loss is logged")
        print(f"ejabberd restart took {took:.1f} s; filerepod answered again "
              f"{back:.2f} s after ejabberd was back ({m.group(1)} ms after the loss)")

        # Twice in a row, to be sure the reconnect path is repeatable.
        _, mark = daemon.wait_log(r"xmpp: connected as ")
        timed("restart-xmpp")
        back = wait_answer(env, component, 30)
        print(f"second restart: answered again after {back:.2f} s")

        # PostgreSQL restarted: the loss is noticed at once, the catalog
        # reconnects, and the XMPP side never stops answering.
        _, mark = daemon.wait_log(r".*", after=len(daemon.log()))
        timed("restart-pg")
        m, mark = daemon.wait_log(r"catalog: connection lost", after=mark)
        m, mark = daemon.wait_log(r"catalog: connected, schema version \d+, (\d+) ms after the loss",
                                  after=mark)
        print(f"catalog reconnected {m.group(1)} ms after the loss")

        # PostgreSQL away for a while: retried with back-off, XMPP unaffected.
        timed("stop-pg")
        m, mark = daemon.wait_log(r"catalog: connection lost", after=mark)
        daemon.wait_log(r"catalog: unavailable: .*retrying in \d+ ms", after=mark)
        c = alice(env)
        check(answers(c, component), "disco#info answered while the catalog is down")
        c.close()
        timed("start-pg")
        daemon.wait_log(r"catalog: connected, schema version", after=mark)
        check(psql(env, daemon.db, "SELECT count(*) FROM schema_migration")
              == [str(schema_version())],
              "catalog intact after the restarts")

        check(daemon.stop() == 0, "clean stop after all that")

    # A daemon started while ejabberd is down waits, then connects.
    timed("stop-xmpp")
    try:
        with Daemon(env) as daemon:
            daemon.wait_log(r"xmpp: cannot connect to .*retrying in \d+ ms")
            daemon.wait_log(r"catalog: connected")
            timed("start-xmpp")
            back = wait_answer(env, daemon.component, 30)
            print(f"started without ejabberd: answered {back:.2f} s after ejabberd came up")
            check(daemon.stop() == 0, "clean stop")
    finally:
        timed("start-xmpp")
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
