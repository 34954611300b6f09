"""filerepod on the network: disco#info from an independent client (slixmpp),
the errors it owes, the catalog it migrated, and a clean stop."""

import re
import signal
import subprocess
import sys
import tempfile
import time

from harness import DISCO_INFO, Daemon, binary, check, load_services_env, psql, schema_version
from xmppclient import Client, NS, error_condition, find




def disco_identity_and_features(reply):
    query = find(reply, "disco_info:query")
    check(query is not None, f"no disco#info query in {reply!r}")
    identities = [(i.get("category"), i.get("type"), i.get("name"))
                  for i in query.findall(f"{{{NS['disco_info']}}}identity")]
    features = [f.get("var") for f in query.findall(f"{{{NS['disco_info']}}}feature")]
    return identities, features


def refused(env, secret_file):
    """A wrong component secret: the refusal is explained, retried with
    back-off, and the daemon stays up and stoppable."""
    with Daemon(env, secret_file=secret_file) as daemon:
        daemon.wait_log(r"xmpp: the server refused the component handshake for "
                        + re.escape(daemon.component) + r": check xmpp.secret_file")
        _, mark = daemon.wait_log(r"retrying in (\d+) ms")
        daemon.wait_log(r"retrying in (\d+) ms", after=mark)
        check("not-the-secret" not in daemon.log(), "the secret reached the log")
        check("xmpp: connected" not in daemon.log(), "connected with a wrong secret")
        check(daemon.stop() == 0, "clean stop while refused")


def main():
    env = load_services_env()
    with Daemon(env, name="Test releases") as daemon:
        component = daemon.component
        known = schema_version()
        daemon.wait_log(rf"catalog: connected, schema version {known} \({known} migrations? "
                        r"applied\)")
        daemon.wait_log(r"xmpp: connected as " + component)

        # The migrated catalog.
        check(psql(env, daemon.db, "SELECT version || ':' || name FROM schema_migration"
                                   " ORDER BY version")[0] == "1:catalog"
              and len(psql(env, daemon.db, "SELECT version FROM schema_migration")) == known,
              "schema_migration after start")

        with Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"], env["XMPP_HOST"],
                    env["XMPP_C2S_PORT"]) as alice:
            # disco#info on the component's domain: identity and exactly the
            # features served (the listings are tested in test_query.py).
            reply = alice.iq(DISCO_INFO.format(to=component))
            check(reply.get("type") == "result", f"disco#info: {error_condition(reply)}")
            identities, features = disco_identity_and_features(reply)
            check(identities == [("component", "generic", "Test releases")],
                  f"identities {identities}")
            check(features == ["http://jabber.org/protocol/disco#info",
                               "http://jabber.org/protocol/disco#items", "urn:xmpp:ping",
                               "urn:xmpp:fis:0", "http://jabber.org/protocol/rsm",
                               "http://jabber.org/protocol/si/profile/fileshare",
                               "urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:file-transfer:5",
                               "urn:xmpp:jingle:transports:ibb:1",
                               "urn:xmpp:jingle:transports:s5b:1", "urn:xmpp:hashes:2",
                               "urn:xmpp:hash-function-text-names:sha-256",
                               "http://jabber.org/protocol/ibb",
                               "http://jabber.org/protocol/sipub",
                               "http://jabber.org/protocol/si",
                               "http://jabber.org/protocol/si/profile/file-transfer",
                               "http://jabber.org/protocol/bytestreams"],
                  f"features {features}")

            # The same from a JID under the component (XEP-0214 sends its
            # repository list query to a bare JID such as this).
            reply = alice.iq(DISCO_INFO.format(to="releases@" + component))
            check(reply.get("type") == "result" and reply.get("from") == "releases@" + component,
                  f"disco#info on a user JID: {reply.get('type')} {error_condition(reply)}")

            # A node that is no path in the catalog.
            reply = alice.iq(f"<iq type='get' to='{component}'><query xmlns='"
                             f"http://jabber.org/protocol/disco#info' node='nope'/></iq>")
            check(error_condition(reply) == "item-not-found", f"unknown node: {reply!r}")

            # A namespace nobody serves.
            reply = alice.iq(f"<iq type='get' to='{component}'>"
                             f"<query xmlns='urn:xmpp:nothing-here:0'/></iq>")
            check(reply.get("type") == "error" and error_condition(reply) == "service-unavailable",
                  f"unserved namespace: {error_condition(reply)}")

            # XEP-0199 ping.
            reply = alice.iq(f"<iq type='get' to='{component}'><ping xmlns='urn:xmpp:ping'/></iq>")
            check(reply.get("type") == "result", f"ping: {error_condition(reply)}")

            # Clean stop on SIGTERM; the component is then gone from the server.
            started = time.monotonic()
            status = daemon.stop(signal.SIGTERM)
            took = time.monotonic() - started
            check(status == 0, f"exit status {status} after SIGTERM")
            daemon.wait_log(r"daemon: stopped")
            print(f"filerepod stopped on SIGTERM in {took:.2f} s")
            reply = alice.iq(DISCO_INFO.format(to=component))
            check(reply.get("type") == "error", "the component still answers after stopping")

    with tempfile.NamedTemporaryFile("w", suffix=".secret") as wrong:
        wrong.write("not-the-secret\n")
        wrong.flush()
        refused(env, wrong.name)

    # SIGINT stops it as cleanly.
    with Daemon(env) as daemon:
        daemon.wait_log(r"xmpp: connected as ")
        # One daemon per state directory: a second on the same one is refused
        # and says which process holds it; the first runs on undisturbed.
        second = subprocess.run([binary("filerepod"), "-c", daemon.config],
                                capture_output=True, text=True, timeout=30)
        said = second.stdout + second.stderr
        check(second.returncode != 0, f"a second daemon on the same state_dir ran: {said}")
        check(f"state_dir {daemon.state} is in use by another filerepod "
              f"(pid {daemon.proc.pid})" in said, f"second daemon's refusal: {said}")
        check(daemon.proc.poll() is None, "the first daemon stopped")
        check(daemon.stop(signal.SIGINT) == 0, "exit status after SIGINT")
        daemon.wait_log(r"daemon: stopping on Interrupt")
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
