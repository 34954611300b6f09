"""sipub (XEP-0137) and SI file transfer (XEP-0095, XEP-0096) end to end: a
real daemon indexes and publishes real files; a test account reads the
sipub mirror of a published item, sends <start/> to the daemon, gets
<starting sid/>, then the daemon's SI offer (XEP-0096 <file/> with size, MD5
hash, date, <range/>; SOCKS5 and IBB in the XEP-0020 stream-method form) and
chooses a method.  IBB: the daemon opens the bytestream, sends the blocks and
closes it.  SOCKS5: the daemon offers its own streamhost and ejabberd's
proxy65; the requester connects to one and names it, the daemon (through
the proxy: after activating it) writes the bytes on the socket.

Checked: a 20 MB file arrives identical to the file on disk (sha-256) over
IBB, SOCKS5 direct and SOCKS5 through proxy65; a <range/> gets exactly those
bytes; an old revision after the file changed; unknown, malformed, withdrawn
ids and a whitelist repository asked by a stranger are refused; garbage IBB
stanzas from the requester get an error and the transfer goes on; a declined
offer, a bytestream closed by the requester, an unanswered offer, a stalled
bytestream, a refused block, a method never offered, streamhosts that did
not work, a SOCKS5 socket closed mid-stream and the daemon stopping all end
cleanly and are recorded; transfer.max_sessions and per_requester_max count
sipub and Jingle sessions together; every transfer is a 'sipub' row of the
transfer table.  Last, an independent client - slixmpp's own
XEP-0095/0096/0047/0065 plugins - accepts the daemon's offer and receives a
file byte-identical over IBB and over SOCKS5."""

import hashlib
import os
import subprocess
import sys
import tempfile
import uuid

from harness import Daemon, binary, check, client, load_services_env, psql, wait_for
from sipub_client import (IBB, S5B, SI, SIFT, SIPUB, XDATA, Requester, accept, decline,
                          fetch, fetch_s5b, indexed, revision_id, sipub_mirror, sipub_rows,
                          start, started)
from xmppclient import error_condition


def main():
    env = load_services_env()
    pubsub = env["XMPP_PUBSUB_JID"]
    repo = "sp" + uuid.uuid4().hex[:8]
    closed = "wl" + uuid.uuid4().hex[:8]
    first, second = os.urandom(100000), os.urandom(70000)
    with tempfile.TemporaryDirectory(prefix="filerepo-sp-") as root, \
            tempfile.TemporaryDirectory(prefix="filerepo-wl-") as wl_root:
        big_path = os.path.join(root, "big.bin")
        with open(big_path, "wb") as f:
            for _ in range(20):
                f.write(os.urandom(1024 * 1024))
        with open(os.path.join(root, "changing.bin"), "wb") as f:
            f.write(first)
        with open(os.path.join(wl_root, "secret.txt"), "wb") as f:
            f.write(b"for members only\n")
        extra = {"repositories": [
                     {"name": repo, "path": root},
                     {"name": closed, "path": wl_root, "access": "whitelist",
                      "members": [env["XMPP_USER_CAROL"],
                                  env["XMPP_USER_BOB"] + "/another-resource"]}],
                 "indexer": {"settle_ms": 0, "content_store": "copy",
                             "digests": ["sha-256", "md5"]},
                 "transfer": {"ibb_window": 8}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            indexed(sql, 3)
            alice, carol = client(env, "alice"), client(env, "carol")
            rq, crq = Requester(alice), Requester(carol)

            info = alice.iq(f"<iq type='get' to='{to}'>"
                            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
            feats = {f.get("var") for f in
                     info.iter("{http://jabber.org/protocol/disco#info}feature")}
            for ns in (SIPUB, SI, SIFT, IBB, S5B):
                check(ns in feats, f"disco#info lists {ns}")

            # The 20 MB file, by the sipub mirror of its published item.
            mirror = sipub_mirror(alice, pubsub, f"{repo}/big.bin")
            check(mirror.get("from") == to, f"the sipub mirror is the daemon: {mirror.attrib}")
            with open(big_path, "rb") as f:
                on_disk = f.read()
            data, si = fetch(rq, mirror.get("from"), mirror.get("id"))
            check(hashlib.sha256(data).digest() == hashlib.sha256(on_disk).digest()
                  and len(data) == len(on_disk),
                  f"big.bin arrives identical to the file on disk ({len(data)} bytes)")
            check(si.get("profile") == SIFT and si.get("mime-type"), f"the offer: {si.attrib}")
            file = si.find(f"{{{SIFT}}}file")
            check(file.get("name") == "big.bin" and file.get("size") == str(len(on_disk)),
                  f"the offer's file: {file.attrib}")
            check(file.get("hash") == hashlib.md5(on_disk).hexdigest(), "the MD5 hash")
            check(file.get("date") and file.get("date").endswith("Z"), "the date")
            check(file.find(f"{{{SIFT}}}range") is not None, "ranges are offered")
            methods = [v.text for v in si.iter(f"{{{XDATA}}}value")]
            check(methods == [S5B, IBB], f"stream methods offered: {methods}")
            opening = rq.opens[next(iter(rq.opens))]
            check(opening.get("stanza") == "iq" and int(opening.get("block-size")) <= 65535,
                  f"the daemon's <open/>: {opening.attrib}")
            print(f"ok: {len(data)} bytes over sipub and IBB, identical to the file on disk")

            # SOCKS5: the daemon's own streamhost, then the server's proxy65.
            digest_on_disk = hashlib.sha256(on_disk).digest()
            _, digest = fetch_s5b(rq, to, mirror.get("id"), to, len(on_disk))
            check(digest == digest_on_disk, "20 MB over SOCKS5 from the daemon's streamhost")
            daemon.wait_log(r"SOCKS5 proxy " + env["XMPP_PROXY65_JID"].replace(".", r"\."))
            _, digest = fetch_s5b(rq, to, mirror.get("id"), env["XMPP_PROXY65_JID"],
                                  len(on_disk))
            check(digest == digest_on_disk, "20 MB over SOCKS5 through proxy65")
            print("ok: 20 MB over SOCKS5, direct and through proxy65")

            # A range.
            data, _ = fetch(rq, to, mirror.get("id"), rng={"offset": 1000001, "length": 54321})
            check(data == on_disk[1000001:1000001 + 54321], f"the range: {len(data)} bytes")
            data, _ = fetch(rq, to, mirror.get("id"), rng={"offset": len(on_disk) - 777})
            check(data == on_disk[-777:], f"the tail: {len(data)} bytes")
            print("ok: ranges")

            # An old revision after the file changed on disk; then withdrawn.
            old = revision_id(sql, repo, "changing.bin", 1)
            with open(os.path.join(root, "changing.bin.tmp"), "wb") as f:
                f.write(second)
            os.rename(os.path.join(root, "changing.bin.tmp"), os.path.join(root, "changing.bin"))
            wait_for("revision 2", lambda: sql(
                "SELECT count(*) FROM revision v JOIN entry e ON e.id = v.entry_id"
                " WHERE e.path = 'changing.bin'") == ["2"])
            data, _ = fetch(rq, to, f"rev-{old}")
            check(data == first, "the old revision is served")
            data, _ = fetch(rq, to, f"rev-{revision_id(sql, repo, 'changing.bin', 2)}")
            check(data == second, "and the current one")
            out = subprocess.run([binary("filerepo"), "-c", daemon.config, "revision",
                                  "withdraw", f"{repo}/changing.bin", "1"],
                                 capture_output=True, text=True)
            check(out.returncode == 0, f"filerepo revision withdraw: {out.stderr}")
            r = start(alice, to, f"rev-{old}")
            check(error_condition(r) == "item-not-found", f"withdrawn: {error_condition(r)}")
            print("ok: an old revision, a withdrawn one")

            # Unknown ids: item-not-found; malformed requests: bad-request.
            for sipub_id in ("rev-999999999", "publish-0123", "rev-0", "rev-01",
                             f"rev-{old}x", "rev-99999999999999999999"):
                r = start(alice, to, sipub_id)
                check(error_condition(r) == "item-not-found", f"{sipub_id}: {error_condition(r)}")
            r = start(alice, to, "rev-999999999", type_="set")
            check(error_condition(r) == "item-not-found", f"a set: {error_condition(r)}")
            for body in (f"<start xmlns='{SIPUB}'/>", f"<start xmlns='{SIPUB}' id=''/>"):
                r = alice.iq(f"<iq type='get' to='{to}'>{body}</iq>")
                check(error_condition(r) == "bad-request", f"{body}: {error_condition(r)}")
            print("ok: unknown and malformed ids")

            # Whitelist: strangers are refused as if nothing were there; a member gets it.
            secret = f"rev-{revision_id(sql, closed, 'secret.txt', 1)}"
            bob = client(env, "bob")
            for who in (alice, bob):
                r = start(who, to, secret)
                check(error_condition(r) == "item-not-found",
                      f"stranger {who.jid}: {error_condition(r)}")
            bob.close()
            data, _ = fetch(crq, to, secret)
            check(data == b"for members only\n", "a member gets the file")
            print("ok: whitelist")

            # A declined offer.
            sid = started(alice, to, mirror.get("id"))
            decline(alice, rq.offer(sid))
            wait_for("the decline recorded", lambda: sipub_rows(sql)[-1][1] == "decline")

            # Garbage IBB stanzas from the requester: errors, and the transfer goes on.
            rq.ack_data = False
            sid = started(alice, to, mirror.get("id"))
            accept(alice, rq.offer(sid))
            rq.wait("a first block", lambda: rq.blocks.get(sid))
            for body, condition in (
                    (f"<data xmlns='{IBB}' seq='zz' sid='{sid}'>AAAA</data>", "not-acceptable"),
                    (f"<data xmlns='{IBB}' seq='0' sid='{sid}'>!!not base64</data>",
                     "not-acceptable"),
                    (f"<open xmlns='{IBB}' block-size='4096' sid='{sid}'/>", "not-acceptable"),
                    (f"<data xmlns='{IBB}' seq='0' sid='nosuch'>AAAA</data>", "item-not-found"),
                    (f"<data xmlns='{IBB}' seq='0'>AAAA</data>", "item-not-found"),
                    (f"<close xmlns='{IBB}' sid='nosuch'/>", "item-not-found"),
                    (f"<close xmlns='{IBB}'/>", "item-not-found")):
                r = alice.iq(f"<iq type='set' to='{to}'>{body}</iq>")
                check(error_condition(r) == condition, f"{body}: {error_condition(r)}")
            rq.release()
            rq.wait(f"the daemon closes {sid}", lambda: sid in rq.closed)
            check(rq.data(sid) == on_disk, "the transfer went on, identical")
            r = alice.iq(f"<iq type='get' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>")
            check(r.get("type") == "result", "the daemon keeps working")
            print("ok: garbage IBB stanzas get errors; the transfer goes on")

            # The requester closes the bytestream mid-stream.
            rq.ack_data = False
            sid = started(alice, to, mirror.get("id"))
            accept(alice, rq.offer(sid))
            rq.wait("a first block", lambda: rq.blocks.get(sid))
            r = alice.iq(f"<iq type='set' to='{to}'><close xmlns='{IBB}' sid='{sid}'/></iq>")
            check(r.get("type") == "result", f"our close: {error_condition(r)}")
            rq.release()
            wait_for("the cancel recorded", lambda: sipub_rows(sql)[-1][1] == "cancel")
            r = alice.iq(f"<iq type='set' to='{to}'><close xmlns='{IBB}' sid='{sid}'/></iq>")
            check(error_condition(r) == "item-not-found", "a closed bytestream is unknown")
            print("ok: a declined offer, a bytestream closed by the requester")

            # The catalog's record.
            rows = sipub_rows(sql)
            size = str(len(on_disk))
            expect = [
                ["ibb", "success", size, "0", "", "alice"],
                ["s5b-direct", "success", size, "0", "", "alice"],
                ["s5b-proxy", "success", size, "0", "", "alice"],
                ["ibb", "success", "54321", "1000001", "54321", "alice"],
                ["ibb", "success", "777", str(len(on_disk) - 777), "", "alice"],
                ["ibb", "success", str(len(first)), "0", "", "alice"],
                ["ibb", "success", str(len(second)), "0", "", "alice"],
                ["", "refused", "0", "0", "", "alice"],       # withdrawn
            ] + [["", "refused", "0", "0", "", "alice"]] * 7 + [  # unknown ids
                ["", "refused", "0", "0", "", "alice"],       # whitelist: alice
                ["", "refused", "0", "0", "", "bob"],         # whitelist: bob
                ["ibb", "success", "17", "0", "", "carol"],
                ["", "decline", "0", "0", "", "alice"],
                ["ibb", "success", size, "0", "", "alice"],
            ]
            check(rows[:len(expect)] == expect, f"sipub rows: {rows}")
            check(len(rows) == len(expect) + 1 and rows[-1][:2] == ["ibb", "cancel"]
                  and int(rows[-1][2]) < len(on_disk), f"the cancelled one: {rows[-1]}")
            check(sql("SELECT count(*) FROM transfer WHERE protocol = 'sipub'"
                      " AND outcome <> 'refused' AND (revision_id IS NULL"
                      " OR finished_at IS NULL)") == ["0"], "revision and end recorded")
            print("ok: the transfer table")
            alice.close()
            carol.close()
            check(daemon.stop() == 0, "filerepod stops cleanly")
    print("test_sipub: all passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
