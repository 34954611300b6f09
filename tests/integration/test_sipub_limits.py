"""sipub (XEP-0137) limits and failures end to end, against a real daemon:
transfer.max_sessions and transfer.per_requester_max count sipub and Jingle
sessions together (resource-constraint, type wait); and every way out of an
SI transfer but success ends cleanly, closes the bytestream where there is
one, and is recorded in the transfer table (see failures())."""

import hashlib
import os
import sys
import tempfile
import uuid

from harness import Daemon, check, client, load_services_env, psql, wait_for
from sipub_client import (JINGLE, S5B, SIFT, Requester, accept, decline, fetch, indexed,
                          revision_id, sipub_rows, start, started)
from test_socks5 import sha1hex, socks5_connect
from xmppclient import error_condition


def limits(env):
    """transfer.max_sessions (2) and transfer.per_requester_max (1) count
    sipub and Jingle sessions together: while alice's sipub offer is
    pending, her second <start/> and her Jingle request are refused with
    resource-constraint (type wait); bob's start is served; carol's is
    refused, the daemon being full; once the offers are declined, a start
    is served again."""
    repo = "sl" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="filerepo-sl-") as root:
        with open(os.path.join(root, "f.bin"), "wb") as f:
            f.write(os.urandom(5000))
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "transfer": {"max_sessions": 2, "per_requester_max": 1}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            indexed(sql, 1)
            sipub_id = f"rev-{revision_id(sql, repo, 'f.bin', 1)}"
            alice, bob, carol = client(env, "alice"), client(env, "bob"), client(env, "carol")
            rq, brq = Requester(alice), Requester(bob)

            def refused(r, what):
                check(error_condition(r) == "resource-constraint" and
                      r.find("{jabber:client}error").get("type") == "wait",
                      f"{what}: {error_condition(r)}")

            sid = started(alice, to, sipub_id)
            rq.offer(sid)
            refused(start(alice, to, sipub_id), "alice's second start")
            refused(alice.iq(
                f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}' action='session-initiate'"
                f" initiator='{alice.jid}' sid='j1'><content creator='initiator' name='c'"
                " senders='responder'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>"
                f"<file><name>{repo}/f.bin</name></file></description>"
                "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096'"
                " sid='i1'/></content></jingle></iq>"), "alice's Jingle request")
            bob_sid = started(bob, to, sipub_id)
            brq.offer(bob_sid)
            refused(start(carol, to, sipub_id), "carol's start, the daemon full")
            decline(alice, rq.offer(sid))
            decline(bob, brq.offer(bob_sid))
            wait_for("the declines recorded", lambda: sorted(
                r[1] for r in sipub_rows(sql) if r[1] == "decline") == ["decline"] * 2)
            data, si = fetch(rq, to, sipub_id)
            check(len(data) == 5000, "a start once there is room")
            check(si.find(f"{{{SIFT}}}file").get("hash") is None,
                  "no MD5 recorded (indexer.digests): no hash in the offer")
            rows = [(r[5], r[1]) for r in sipub_rows(sql)]
            check(rows == [("alice", "decline"), ("alice", "refused"), ("bob", "decline"),
                           ("carol", "refused"), ("alice", "success")], f"rows: {rows}")
            for c in (alice, bob, carol):
                c.close()
            check(daemon.stop() == 0, "filerepod stops cleanly")
    print("ok: limits in total and per requester, counted with Jingle")


def failures(env):
    """Every way out but success is recorded, and the bytestream closed: an
    offer never answered and a bytestream stalled (timeout, with a 3 s idle
    timeout), a block refused (failed-transport), a method never offered
    (failed-application), SOCKS5 streamhosts none of which worked
    (failed-transport), a SOCKS5 socket closed by the requester mid-stream
    (cancel; a bandwidth cap keeps the bytes coming slowly), the bytes gone
    from the content store (refused at the start), the daemon stopping
    (cancel)."""
    repo = "sf" + uuid.uuid4().hex[:8]
    # Over 64 KiB, gone.bin is a file of its own in the store (not packed).
    body, gone = os.urandom(200000), os.urandom(70000)
    with tempfile.TemporaryDirectory(prefix="filerepo-sf-") as root:
        for name, data in (("f.bin", body), ("gone.bin", gone)):
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "transfer": {"idle_timeout_seconds": 3, "ibb_window": 1,
                              "bandwidth_kib_per_second": 64}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            indexed(sql, 2)
            f_id = f"rev-{revision_id(sql, repo, 'f.bin', 1)}"
            bob = client(env, "bob")
            rq = Requester(bob)

            def last_outcome(outcome):
                return lambda: sipub_rows(sql) and sipub_rows(sql)[-1][1] == outcome

            # An offer never answered.
            sid = started(bob, to, f_id)
            rq.offer(sid)
            wait_for("the unanswered offer times out", last_outcome("timeout"))
            # A bytestream stalled: the daemon closes it.
            rq.ack_data = False
            sid = started(bob, to, f_id)
            accept(bob, rq.offer(sid))
            rq.wait("the stalled bytestream closed", lambda: sid in rq.closed)
            wait_for("the stall recorded", last_outcome("timeout"))
            rq.held.clear()
            rq.ack_data = True
            # A block refused: failed-transport, the bytestream closed.
            rq.refuse_data = True
            sid = started(bob, to, f_id)
            accept(bob, rq.offer(sid))
            rq.wait("the refused bytestream closed", lambda: sid in rq.closed)
            wait_for("the refusal recorded", last_outcome("failed-transport"))
            rq.refuse_data = False
            # An answer choosing a method never offered.
            sid = started(bob, to, f_id)
            accept(bob, rq.offer(sid), method="urn:xmpp:nothing:0")
            wait_for("a method never offered", last_outcome("failed-application"))
            check(sid not in rq.opens, "no bytestream for it")
            # SOCKS5: none of the streamhosts worked for the requester.
            sid = started(bob, to, f_id)
            accept(bob, rq.offer(sid), method=S5B)
            iq, _ = rq.hosts(sid)
            bob.send(f"<iq type='error' id='{iq.get('id')}' to='{iq.get('from')}'>"
                     "<error type='cancel'><item-not-found "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
            wait_for("no streamhost worked", last_outcome("failed-transport"))
            # SOCKS5: the requester closes the socket mid-stream.
            sid = started(bob, to, f_id)
            offer = rq.offer(sid)
            accept(bob, offer, method=S5B)
            iq, hosts = rq.hosts(sid)
            sock = socks5_connect(*hosts[to], sha1hex(sid, to, offer.get("to")))
            bob.send(f"<iq type='result' id='{iq.get('id')}' to='{iq.get('from')}'>"
                     f"<query xmlns='{S5B}' sid='{sid}'><streamhost-used jid='{to}'/></query></iq>")
            check(len(sock.recv(1000)) > 0, "a first chunk over SOCKS5")
            sock.close()
            wait_for("the closed socket recorded", last_outcome("cancel"), timeout=120)
            # Blocks too large for the requester (XEP-0047 §2.1): smaller ones.
            rq.max_block = 4096
            data, si = fetch(rq, to, f_id)
            check(data == body, "the file, in smaller blocks after resource-constraint")
            check(rq.opens[si.get("id")].get("block-size") == "4096" and
                  all(len(b) <= 4096 for _, b in rq.blocks[si.get("id")]),
                  f"blocks of 4096 bytes: {rq.opens[si.get('id')].attrib}")
            rq.max_block = None
            # The bytes gone from the content store.
            hexsum = hashlib.sha256(gone).hexdigest()
            os.unlink(os.path.join(daemon.state, "store", "objects", hexsum[:2], hexsum[2:]))
            r = start(bob, to, f"rev-{revision_id(sql, repo, 'gone.bin', 1)}")
            check(error_condition(r) == "item-not-found", f"bytes gone: {error_condition(r)}")
            # The daemon stopping mid-stream closes the bytestream.
            rq.ack_data = False
            sid = started(bob, to, f_id)
            accept(bob, rq.offer(sid))
            rq.wait("a first block", lambda: rq.blocks.get(sid))
            check(daemon.stop() == 0, "filerepod stops cleanly")
            rq.wait("a stopping daemon closes its bytestreams", lambda: sid in rq.closed)
            outcomes = [r[1] for r in sipub_rows(sql)]
            check(outcomes == ["timeout", "timeout", "failed-transport", "failed-application",
                               "failed-transport", "cancel", "success", "failed-application",
                               "cancel"], f"outcomes: {outcomes}")
            methods = [r[0] for r in sipub_rows(sql)]
            check(methods[4:6] == ["", "s5b-direct"], f"methods: {methods}")
            bob.close()
    print("ok: timeout, failed-transport, failed-application, cancel")


def main():
    env = load_services_env()
    limits(env)
    failures(env)
    print("test_sipub_limits: all passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
