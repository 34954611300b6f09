"""Transfers end to end over IBB: a real daemon indexes real files; test
accounts ask its component JID for them with a Jingle session-initiate
(XEP-0234 "Requesting a File", XEP-0261 transport), open the in-band
bytestream as the initiator, acknowledge every block, and check what
arrives: a multi-MB file byte-identical with the matching session-info
checksum and a session-terminate with <success/>; a <range/> gets exactly
those bytes (none, at the very end; none, for an empty file); an old revision
(named by path and its sha-256) after the file
changed on disk; an unknown file and a whitelist repository asked by a
stranger are item-not-found, while a member gets the file; the requester's
own session-terminate ends a session mid-stream; every transfer is a row of
the catalog's transfer table."""

import base64
import hashlib
import os
import sys
import tempfile
import threading
import uuid

from harness import Daemon, check, client, load_services_env, psql, wait_for
from xmppclient import error_condition

JINGLE = "urn:xmpp:jingle:1"
FT = "urn:xmpp:jingle:apps:file-transfer:5"
JIBB = "urn:xmpp:jingle:transports:ibb:1"
IBB = "http://jabber.org/protocol/ibb"
HASHES = "urn:xmpp:hashes:2"


class Receiver:
    """The requester's side of one client: answers the daemon's IQs and
    keeps what they carried, per Jingle sid and IBB sid."""

    def __init__(self, cl):
        self.cl = cl
        self.cond = threading.Condition()
        self.jingle = []          # (action, <jingle/> Element), in arrival order
        self.blocks = {}          # IBB sid -> [(seq, bytes)]
        self.closed = set()       # IBB sids closed by the daemon
        self.ack_data = True      # acknowledge data blocks
        self.refuse_data = False  # answer data blocks with an error
        cl.serve(self._serve)

    def _serve(self, iq):
        result = "<iq type='result' id='%s' to='%s'/>" % (iq.get("id"), iq.get("from"))
        with self.cond:
            j = iq.find(f"{{{JINGLE}}}jingle")
            data = iq.find(f"{{{IBB}}}data")
            close = iq.find(f"{{{IBB}}}close")
            if j is not None:
                self.jingle.append((j.get("action"), j))
            elif data is not None:
                self.blocks.setdefault(data.get("sid"), []).append(
                    (int(data.get("seq")), base64.b64decode(data.text or "")))
                if self.refuse_data:
                    self.cond.notify_all()
                    return ("<iq type='error' id='%s' to='%s'><error type='cancel'>"
                            "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                            "</error></iq>" % (iq.get("id"), iq.get("from")))
                if not self.ack_data:
                    self.cond.notify_all()
                    return None
            elif close is not None:
                self.closed.add(close.get("sid"))
            else:
                return None
            self.cond.notify_all()
        return result

    def wait_jingle(self, sid, action, timeout=60):
        with self.cond:
            ok = self.cond.wait_for(lambda: any(a == action and j.get("sid") == sid
                                                for a, j in self.jingle), timeout)
            check(ok, f"a {action} for sid {sid} (got {[a for a, _ in self.jingle]})")
            return next(j for a, j in self.jingle if a == action and j.get("sid") == sid)

    def data(self, ibb_sid):
        with self.cond:
            blocks = self.blocks.get(ibb_sid, [])
            seqs = [s for s, _ in blocks]
            check(seqs == [i % 65536 for i in range(len(seqs))], f"seq in order: {seqs[:10]}")
            return b"".join(b for _, b in blocks)


def file_xml(name=None, sha256=None, rng=None):
    inner = ""
    if name is not None:
        inner += f"<name>{name}</name>"
    if sha256 is not None:
        inner += (f"<hash xmlns='{HASHES}' algo='sha-256'>"
                  f"{base64.b64encode(sha256).decode()}</hash>")
    if rng is not None:
        inner += "<range offset='%d' length='%d'/>" % rng
    return f"<file>{inner}</file>"


def initiate(cl, to, sid, ibb_sid, file, block_size=4096):
    return cl.iq(
        f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}' action='session-initiate'"
        f" initiator='{cl.jid}' sid='{sid}'>"
        f"<content creator='initiator' name='a-file-request' senders='responder'>"
        f"<description xmlns='{FT}'>{file}</description>"
        f"<transport xmlns='{JIBB}' block-size='{block_size}' sid='{ibb_sid}'/>"
        f"</content></jingle></iq>")


def fetch(rx, to, file, block_size=4096):
    """Requests `file`, runs the session to its end; returns (bytes,
    checksum sha-256 or None, terminate reason)."""
    sid, ibb_sid = "s" + uuid.uuid4().hex[:10], "i" + uuid.uuid4().hex[:10]
    r = initiate(rx.cl, to, sid, ibb_sid, file, block_size)
    check(r.get("type") == "result", f"session-initiate: {error_condition(r)}")
    accept = rx.wait_jingle(sid, "session-accept")
    transport = accept.find(f"{{{JINGLE}}}content/{{{JIBB}}}transport")
    check(transport is not None and transport.get("sid") == ibb_sid, "accept's transport")
    size = transport.get("block-size")
    r = rx.cl.iq(f"<iq type='set' to='{to}'><open xmlns='{IBB}' block-size='{size}'"
                 f" sid='{ibb_sid}' stanza='iq'/></iq>")
    check(r.get("type") == "result", f"IBB open: {error_condition(r)}")
    term = rx.wait_jingle(sid, "session-terminate", timeout=120)
    reason = [c.tag.split("}")[1] for c in term.find(f"{{{JINGLE}}}reason")]
    checksum = None
    for a, j in rx.jingle:
        h = j.find(f"{{{FT}}}checksum/{{{FT}}}file/{{{HASHES}}}hash")
        if a == "session-info" and j.get("sid") == sid and h is not None:
            check(h.get("algo") == "sha-256", "checksum algo")
            checksum = base64.b64decode(h.text)
    check(ibb_sid in rx.closed, "the daemon closed the bytestream")
    return rx.data(ibb_sid), checksum, reason[0] if reason else None


def reason_of(term):
    return [c.tag.split("}")[1] for c in term.find(f"{{{JINGLE}}}reason")]


def open_ibb(cl, to, ibb_sid, size=4096):
    r = cl.iq(f"<iq type='set' to='{to}'><open xmlns='{IBB}' block-size='{size}'"
              f" sid='{ibb_sid}' stanza='iq'/></iq>")
    check(r.get("type") == "result", f"IBB open: {error_condition(r)}")


def failures(env):
    """Every way out but success ends with session-terminate and its reason:
    a requester that never opens the bytestream (timeout, with a 3 s idle
    timeout), one that answers a block with an error (failed-transport), one
    that closes the bytestream mid-stream (cancel), a revision whose bytes
    are gone from the content store (failed-application), the daemon
    stopping mid-stream (cancel)."""
    repo = "xg" + uuid.uuid4().hex[:8]
    body = os.urandom(200000)
    # Over 64 KiB, gone.bin is a file of its own in the store (not packed).
    gone = os.urandom(70000)
    with tempfile.TemporaryDirectory(prefix="filerepo-xg-") as root:
        for name, data in (("f.bin", body), ("gone.bin", gone)):
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "transfer": {"idle_timeout_seconds": 3, "ibb_window": 1}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            wait_for("the files indexed", lambda: sql(
                "SELECT count(*) FROM entry WHERE kind = 'file'"
                " AND current_revision_id IS NOT NULL") == ["2"])
            bob = client(env, "bob")
            rx = Receiver(bob)

            def start(name):
                sid, ibb_sid = "s" + uuid.uuid4().hex[:10], "i" + uuid.uuid4().hex[:10]
                r = initiate(bob, to, sid, ibb_sid, file_xml(f"{repo}/{name}"))
                check(r.get("type") == "result", f"initiate: {error_condition(r)}")
                rx.wait_jingle(sid, "session-accept")
                return sid, ibb_sid

            # Never opened: the idle timeout ends it.
            sid, _ = start("f.bin")
            check(reason_of(rx.wait_jingle(sid, "session-terminate")) == ["timeout"],
                  "an unopened bytestream times out")
            # A block refused: failed-transport.
            rx.refuse_data = True
            sid, ibb_sid = start("f.bin")
            open_ibb(bob, to, ibb_sid)
            check(reason_of(rx.wait_jingle(sid, "session-terminate")) == ["failed-transport"],
                  "a refused block fails the transport")
            rx.refuse_data = False
            # Closed under the daemon: cancel.
            rx.ack_data = False
            sid, ibb_sid = start("f.bin")
            open_ibb(bob, to, ibb_sid)
            with rx.cond:
                check(rx.cond.wait_for(lambda: rx.blocks.get(ibb_sid), 30), "a first block")
            r = bob.iq(f"<iq type='set' to='{to}'><close xmlns='{IBB}' sid='{ibb_sid}'/></iq>")
            check(r.get("type") == "result", f"our close: {error_condition(r)}")
            check(reason_of(rx.wait_jingle(sid, "session-terminate")) == ["cancel"],
                  "a bytestream closed by the requester cancels")
            rx.ack_data = True
            # The bytes gone from the content store: failed-application.
            hexsum = hashlib.sha256(gone).hexdigest()
            os.unlink(os.path.join(daemon.state, "store", "objects", hexsum[:2], hexsum[2:]))
            sid, ibb_sid = "s" + uuid.uuid4().hex[:10], "i" + uuid.uuid4().hex[:10]
            r = initiate(bob, to, sid, ibb_sid, file_xml(f"{repo}/gone.bin"))
            check(r.get("type") == "result", f"initiate: {error_condition(r)}")
            check(reason_of(rx.wait_jingle(sid, "session-terminate")) == ["failed-application"],
                  "missing bytes fail the application")
            # After a terminate, the session is unknown.
            r = bob.iq(f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}'"
                       f" action='session-info' sid='{sid}'/></iq>")
            check(error_condition(r) == "item-not-found", "an ended session is unknown")

            # The daemon stopping mid-stream: terminate cancel, recorded.
            rx.ack_data = False
            sid, ibb_sid = start("f.bin")
            open_ibb(bob, to, ibb_sid)
            with rx.cond:
                check(rx.cond.wait_for(lambda: rx.blocks.get(ibb_sid), 30), "a first block")
            check(daemon.stop() == 0, "filerepod stops cleanly")
            check(reason_of(rx.wait_jingle(sid, "session-terminate")) == ["cancel"],
                  "a stopping daemon cancels its sessions")

            rows = sql("SELECT coalesce(outcome, '') FROM transfer ORDER BY id")
            check(rows == ["timeout", "failed-transport", "cancel", "failed-application",
                           "cancel"], f"outcomes recorded: {rows}")
            bob.close()
    print("ok: timeout, failed-transport, cancel, failed-application")


def main():
    env = load_services_env()
    repo = "xf" + uuid.uuid4().hex[:8]
    closed = "wl" + uuid.uuid4().hex[:8]
    big = os.urandom(3 * 1024 * 1024 + 12345)
    first = os.urandom(100000)
    second = os.urandom(70000)
    secret = b"for members only\n"
    with tempfile.TemporaryDirectory(prefix="filerepo-xf-") as root, \
            tempfile.TemporaryDirectory(prefix="filerepo-wl-") as wl_root:
        os.mkdir(os.path.join(root, "dir"))
        with open(os.path.join(root, "dir", "big.bin"), "wb") as f:
            f.write(big)
        with open(os.path.join(root, "changing.bin"), "wb") as f:
            f.write(first)
        with open(os.path.join(wl_root, "secret.txt"), "wb") as f:
            f.write(secret)
        open(os.path.join(root, "empty.bin"), "wb").close()
        extra = {"repositories": [
                     {"name": repo, "path": root},
                     {"name": closed, "path": wl_root, "access": "whitelist",
                      "members": [env["XMPP_USER_CAROL"],
                                  env["XMPP_USER_BOB"] + "/another-resource"]}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "transfer": {"ibb_window": 4}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            wait_for("the files indexed", lambda: sql(
                "SELECT count(*) FROM entry WHERE kind = 'file'"
                " AND current_revision_id IS NOT NULL") == ["4"])
            alice, carol = client(env, "alice"), client(env, "carol")
            rx, crx = Receiver(alice), Receiver(carol)

            info = alice.iq(f"<iq type='get' to='{to}'>"
                            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
            feats = {f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")}
            for ns in (JINGLE, FT, JIBB, IBB, HASHES):
                check(ns in feats, f"disco#info lists {ns}")

            # The whole multi-MB file, by path.
            data, checksum, reason = fetch(rx, to, file_xml(f"{repo}/dir/big.bin"))
            check(reason == "success", f"terminate reason {reason}")
            check(len(data) == len(big) and data == big,
                  f"big.bin arrives byte-identical ({len(data)} of {len(big)} bytes)")
            check(checksum == hashlib.sha256(big).digest(), "checksum is big.bin's sha-256")
            print(f"ok: {len(big)} bytes by path, checksum matches")

            # A range, by hash alone.
            data, checksum, reason = fetch(
                rx, to, file_xml(sha256=hashlib.sha256(big).digest(), rng=(1000001, 54321)))
            check(reason == "success" and data == big[1000001:1000001 + 54321],
                  f"the range arrives exactly ({len(data)} bytes, {reason})")
            check(checksum == hashlib.sha256(big).digest(), "a range's checksum: whole file")
            # A range to the end, with a block-size above the daemon's cap.
            data, _, reason = fetch(rx, to, file_xml(f"{repo}/dir/big.bin",
                                                     rng=(len(big) - 777, 10 ** 9)),
                                    block_size=65535)
            check(reason == "success" and data == big[-777:], "the tail of the file")
            # Nothing at all: a range at the very end, and an empty file.
            data, _, reason = fetch(rx, to, file_xml(f"{repo}/dir/big.bin",
                                                     rng=(len(big), 5)))
            check(reason == "success" and data == b"", f"a range at the end: {len(data)}")
            data, checksum, reason = fetch(rx, to, file_xml(f"{repo}/empty.bin"))
            check(reason == "success" and data == b"" and
                  checksum == hashlib.sha256(b"").digest(), "an empty file")
            print("ok: ranges")

            # An old revision, after the file changed on disk.
            with open(os.path.join(root, "changing.bin.tmp"), "wb") as f:
                f.write(second)
            os.rename(os.path.join(root, "changing.bin.tmp"), os.path.join(root, "changing.bin"))
            wait_for("revision 2", lambda: sql(
                "SELECT count(*) FROM revision v JOIN entry e ON e.id = v.entry_id"
                " WHERE e.path = 'changing.bin'") == ["2"])
            data, checksum, reason = fetch(rx, to, file_xml(
                f"{repo}/changing.bin", sha256=hashlib.sha256(first).digest()))
            check(reason == "success" and data == first, "the old revision is served")
            check(checksum == hashlib.sha256(first).digest(), "its checksum")
            data, _, reason = fetch(rx, to, file_xml(f"{repo}/changing.bin"))
            check(reason == "success" and data == second, "the path alone: the current one")
            print("ok: old revision by path and hash")

            # Unknown files: item-not-found, no session.
            for f in (file_xml(f"{repo}/nope.bin"), file_xml("nope/x"),
                      file_xml(f"{repo}/changing.bin", sha256=b"\0" * 32),
                      file_xml(sha256=hashlib.sha256(b"never indexed").digest()),
                      file_xml(f"{repo}/dir")):
                r = initiate(alice, to, "u" + uuid.uuid4().hex[:8], "i" + uuid.uuid4().hex[:8], f)
                check(error_condition(r) == "item-not-found", f"{f}: {error_condition(r)}")
            # Malformed: bad-request, and the daemon lives on.
            r = alice.iq(f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}'"
                         " action='session-initiate' sid='m1'/></iq>")
            check(error_condition(r) == "bad-request", f"no content: {error_condition(r)}")
            r = alice.iq(f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}'"
                         " action='session-terminate' sid='nosuch'/></iq>")
            check(error_condition(r) == "item-not-found", "terminate of an unknown session")
            r = alice.iq(f"<iq type='set' to='{to}'><open xmlns='{IBB}' block-size='4096'"
                         " sid='nosuch'/></iq>")
            check(error_condition(r) == "item-not-found", "IBB open of an unknown sid")
            print("ok: unknown and malformed requests")

            # Whitelist: a stranger is refused as if nothing were there; a member gets it.
            # (bob is on the acl with another resource only: a stranger too.)
            bob = client(env, "bob")
            for who in (alice, bob):
                for f in (file_xml(f"{closed}/secret.txt"),
                          file_xml(sha256=hashlib.sha256(secret).digest())):
                    r = initiate(who, to, "w" + uuid.uuid4().hex[:8],
                                 "i" + uuid.uuid4().hex[:8], f)
                    check(error_condition(r) == "item-not-found",
                          f"stranger {who.jid}: {error_condition(r)}")
            bob.close()
            data, checksum, reason = fetch(crx, to, file_xml(f"{closed}/secret.txt"))
            check(reason == "success" and data == secret, "a member gets the file")
            print("ok: whitelist")

            # The requester ends a session mid-stream.
            rx.ack_data = False
            sid, ibb_sid = "c" + uuid.uuid4().hex[:8], "i" + uuid.uuid4().hex[:8]
            r = initiate(alice, to, sid, ibb_sid, file_xml(f"{repo}/dir/big.bin"))
            check(r.get("type") == "result", "initiate")
            rx.wait_jingle(sid, "session-accept")
            r = alice.iq(f"<iq type='set' to='{to}'><open xmlns='{IBB}' block-size='4096'"
                         f" sid='{ibb_sid}' stanza='iq'/></iq>")
            check(r.get("type") == "result", "open")
            with rx.cond:
                check(rx.cond.wait_for(lambda: rx.blocks.get(ibb_sid), 30), "a first block")
            r = alice.iq(f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}'"
                         f" action='session-terminate' sid='{sid}'><reason><cancel/></reason>"
                         "</jingle></iq>")
            check(r.get("type") == "result", f"our terminate: {error_condition(r)}")
            rx.ack_data = True
            print("ok: the requester's session-terminate")

            # The catalog's record.
            # Every outcome is written before the session's last stanza goes.
            rows = sql("SELECT t.requester, t.method, coalesce(t.outcome, ''), t.bytes_sent,"
                       " t.range_offset, coalesce(t.range_length::text, ''),"
                       " t.revision_id IS NOT NULL, t.finished_at IS NOT NULL"
                       " FROM transfer t WHERE t.outcome IS DISTINCT FROM 'refused' ORDER BY t.id")
            # The 5 unknown files and the 4 whitelist refusals, by who asked.
            refused = sql("SELECT split_part(requester, '@', 1), count(*) FROM transfer"
                          " WHERE outcome = 'refused' AND revision_id IS NULL"
                          " AND finished_at IS NOT NULL GROUP BY 1 ORDER BY 1")
            check(refused == ["alice|7", "bob|2"], f"refused requests recorded: {refused}")
            check(len(rows) == 9, f"9 transfer rows: {rows}")
            parsed = [r.split("|") for r in rows]
            check(parsed[0][0] == env["XMPP_USER_ALICE"] + "/" + alice._xmpp.boundjid.resource
                  or parsed[0][0].startswith(env["XMPP_USER_ALICE"] + "/"),
                  f"the requester's full JID: {parsed[0][0]}")
            check(all(p[1] == "ibb" and p[6] == "t" and p[7] == "t" for p in parsed),
                  f"method, revision and end recorded: {rows}")
            check([p[2] for p in parsed] == ["success"] * 8 + ["cancel"], f"outcomes: {rows}")
            check(parsed[0][3] == str(len(big)), f"bytes of the whole file: {parsed[0]}")
            check(parsed[1][3:6] == ["54321", "1000001", "54321"], f"the range: {parsed[1]}")
            check(parsed[2][3:6] == ["777", str(len(big) - 777), "777"], f"the tail: {parsed[2]}")
            check(parsed[3][3:6] == ["0", str(len(big)), "0"] and parsed[4][3] == "0",
                  f"nothing sent: {parsed[3:5]}")
            check(parsed[5][3] == str(len(first)) and parsed[6][3] == str(len(second)),
                  "the old and the current revision")
            check(parsed[7][0].startswith(env["XMPP_USER_CAROL"] + "/"), "carol's row")
            check(int(parsed[8][3]) < len(big), f"the cancelled one: {parsed[8]}")
            print("ok: the transfer table")

            alice.close()
            carol.close()
            check(daemon.stop() == 0, "filerepod stops cleanly")
    failures(env)
    print("test_transfers: all passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
