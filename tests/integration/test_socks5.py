"""Transfers end to end over SOCKS5 (XEP-0260 / XEP-0065), with the
fallback to IBB: a real daemon, real ejabberd with its proxy65, and a test
requester that speaks SOCKS5 with plain sockets.

- the daemon's direct candidate: a 20 MB file arrives byte-identical,
  with the session-info checksum and <success/>; the row says s5b-direct;
- the requester's own direct candidate (the daemon connects to it);
- the daemon's proxy65 candidate: the daemon connects, activates the
  proxy, says <activated/>; 20 MB byte-identical; the row says s5b-proxy;
- a range over SOCKS5;
- no candidate works: the daemon sends transport-replace with IBB, the
  requester accepts and receives in-band; a requester's own
  transport-replace is accepted too;
- a wrong DST.ADDR at the daemon's listener is refused and the daemon
  goes on;
- the requester ends a session mid-stream: a clean end, recorded cancel;
- the per-requester limit refuses one transfer too many with
  resource-constraint; a bandwidth cap still delivers every byte."""

import base64
import hashlib
import os
import socket
import sys
import tempfile
import threading
import time
import uuid

from harness import Daemon, check, client, load_services_env, psql, wait_for
from test_transfers import FT, HASHES, IBB, JIBB, JINGLE, Receiver, file_xml, reason_of
from xmppclient import error_condition

S5B = "urn:xmpp:jingle:transports:s5b:1"
BIG = 20 * 1024 * 1024


def sha1hex(*parts):
    return hashlib.sha1("".join(parts).encode()).hexdigest()


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def socks5_connect(host, port, dst, timeout=10):
    """The connecting end of a SOCKS5 handshake; returns the socket, or
    raises with the server's reply code."""
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    check(recv_exact(s, 2) == b"\x05\x00", "SOCKS5 method: no authentication")
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(dst)]) + dst.encode() + b"\x00\x00")
    head = recv_exact(s, 5)
    if head[1] != 0:
        s.close()
        raise ConnectionRefusedError(f"SOCKS5 reply {head[1]}")
    recv_exact(s, head[4] + 2 if head[3] == 3 else (3 + 2 if head[3] == 1 else 15 + 2))
    return s


class Socks5Server:
    """The requester's own direct candidate: accepts one SOCKS5 stream."""

    def __init__(self, dst):
        self.dst = dst
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.conn = None
        self.asked = None
        self.ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            c, _ = self.listener.accept()
            c.settimeout(30)
            head = recv_exact(c, 2)
            recv_exact(c, head[1])
            c.sendall(b"\x05\x00")
            req = recv_exact(c, 5)
            self.asked = recv_exact(c, req[4]).decode()
            recv_exact(c, 2)
            code = 0 if self.asked == self.dst else 4
            c.sendall(bytes([5, code, 0, 3, len(self.asked)]) + self.asked.encode() + b"\0\0")
            if code == 0:
                self.conn = c
            self.ready.set()
        except OSError:
            self.ready.set()

    def close(self):
        self.listener.close()
        if self.conn:
            self.conn.close()


def full_jid(cl):
    return str(cl._xmpp.boundjid)


def initiate(cl, to, sid, tsid, file, candidates=""):
    return cl.iq(
        f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}' action='session-initiate'"
        f" initiator='{full_jid(cl)}' sid='{sid}'>"
        f"<content creator='initiator' name='a-file-request' senders='responder'>"
        f"<description xmlns='{FT}'>{file}</description>"
        f"<transport xmlns='{S5B}' sid='{tsid}' mode='tcp'>{candidates}</transport>"
        f"</content></jingle></iq>")


def transport_info(cl, to, sid, tsid, payload):
    return cl.iq(
        f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}' action='transport-info'"
        f" sid='{sid}'><content creator='initiator' name='a-file-request'>"
        f"<transport xmlns='{S5B}' sid='{tsid}'>{payload}</transport></content></jingle></iq>")


def candidates_of(accept):
    t = accept.find(f"{{{JINGLE}}}content/{{{S5B}}}transport")
    check(t is not None, "the session-accept has an s5b transport")
    return {c.get("type"): c for c in t.findall(f"{{{S5B}}}candidate")}, t


def transport_infos(rx, sid):
    with rx.cond:
        return [j for a, j in rx.jingle if a == "transport-info" and j.get("sid") == sid]


def wait_info(rx, sid, what, timeout=30):
    def found():
        for j in transport_infos(rx, sid):
            el = j.find(f"{{{JINGLE}}}content/{{{S5B}}}transport/{{{S5B}}}{what}")
            if el is not None:
                return el
        return None
    with rx.cond:
        rx.cond.wait_for(lambda: found() is not None, timeout)
    el = found()
    check(el is not None, f"a transport-info <{what}/> for {sid}")
    return el


def checksum_of(rx, sid):
    with rx.cond:
        for a, j in rx.jingle:
            h = j.find(f"{{{FT}}}checksum/{{{FT}}}file/{{{HASHES}}}hash")
            if a == "session-info" and j.get("sid") == sid and h is not None:
                return base64.b64decode(h.text)
    return None


def receive(sock, n):
    """Reads exactly n bytes and then the end of the stream, hashing as it goes."""
    h, got = hashlib.sha256(), 0
    data = bytearray() if n <= 4 << 20 else None
    sock.settimeout(60)
    while got < n:
        chunk = sock.recv(min(1 << 20, n - got))
        if not chunk:
            break
        got += len(chunk)
        h.update(chunk)
        if data is not None:
            data += chunk
    rest = sock.recv(1)
    sock.close()
    return got, h.digest(), bytes(data) if data is not None else None, rest


def via_daemon_candidate(rx, to, jid, file, kind, proxy_env=None):
    """Initiates offering nothing; connects to the daemon's `kind`
    candidate; returns (sid, socket)."""
    sid, tsid = "s" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:10]
    r = initiate(rx.cl, to, sid, tsid, file)
    check(r.get("type") == "result", f"session-initiate: {error_condition(r)}")
    cands, transport = candidates_of(rx.wait_jingle(sid, "session-accept"))
    check(kind in cands, f"the daemon offers a {kind} candidate: {list(cands)}")
    c = cands[kind]
    dst = sha1hex(tsid, to, jid)
    check(transport.get("dstaddr") == dst, "dstaddr: SHA1(sid + responder + initiator)")
    if kind == "proxy":
        check(c.get("jid").split("/")[0] == proxy_env["XMPP_PROXY65_JID"],
              f"the proxy's JID: {c.get('jid')}")
    sock = socks5_connect(c.get("host"), c.get("port"), dst)
    r = transport_info(rx.cl, to, sid, tsid, f"<candidate-used cid='{c.get('cid')}'/>")
    check(r.get("type") == "result", f"candidate-used: {error_condition(r)}")
    wait_info(rx, sid, "candidate-error")  # the daemon reached none of ours (none offered)
    if kind == "proxy":
        act = wait_info(rx, sid, "activated")
        check(act.get("cid") == c.get("cid"), "activated names the proxy candidate")
    return sid, sock


def main():
    env = load_services_env()
    repo = "s5" + uuid.uuid4().hex[:8]
    big = os.urandom(BIG)
    big_sha = hashlib.sha256(big).digest()
    small = os.urandom(300000)
    with tempfile.TemporaryDirectory(prefix="filerepo-s5-") as root:
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(big)
        with open(os.path.join(root, "small.bin"), "wb") as f:
            f.write(small)
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "transfer": {"ibb_window": 8, "ibb_block_size": 65535,
                              "per_requester_max": 3}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            daemon.wait_log(r"SOCKS5 proxy " + env["XMPP_PROXY65_JID"].replace(".", r"\."))
            wait_for("the files indexed", lambda: sql(
                "SELECT count(*) FROM entry WHERE kind = 'file'"
                " AND current_revision_id IS NOT NULL") == ["2"])
            alice = client(env, "alice")
            rx = Receiver(alice)
            me = full_jid(alice)

            # The daemon's direct candidate: 20 MB.
            sid, sock = via_daemon_candidate(rx, to, me, file_xml(f"{repo}/big.bin"), "direct")
            got, digest, _, rest = receive(sock, BIG)
            check(got == BIG and digest == big_sha and rest == b"",
                  f"20 MB over the daemon's direct candidate ({got} bytes)")
            term = rx.wait_jingle(sid, "session-terminate")
            check(reason_of(term) == ["success"], f"terminate: {reason_of(term)}")
            check(checksum_of(rx, sid) == big_sha, "the checksum is the file's sha-256")
            print("ok: SOCKS5 direct (the daemon's candidate), 20 MB")

            # The requester's own direct candidate, and a range.
            sid, tsid = "s" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:10]
            server = Socks5Server(sha1hex(tsid, me, to))
            cand = (f"<candidate cid='mine' host='127.0.0.1' jid='{me}' port='{server.port}'"
                    f" priority='{(126 << 16) + 5}' type='direct'/>")
            r = initiate(alice, to, sid, tsid, file_xml(f"{repo}/big.bin",
                                                        rng=(1234567, 2000000)), cand)
            check(r.get("type") == "result", f"initiate: {error_condition(r)}")
            rx.wait_jingle(sid, "session-accept")
            used = wait_info(rx, sid, "candidate-used")
            check(used.get("cid") == "mine", "the daemon used our candidate")
            check(server.ready.wait(10) and server.conn is not None,
                  f"the daemon asked our listener for SHA1(sid + initiator + responder): "
                  f"{server.asked}")
            r = transport_info(alice, to, sid, tsid, "<candidate-error/>")
            check(r.get("type") == "result", "candidate-error")
            got, digest, data, _ = receive(server.conn, 2000000)
            check(got == 2000000 and data == big[1234567:1234567 + 2000000],
                  "the range over our own candidate")
            check(reason_of(rx.wait_jingle(sid, "session-terminate")) == ["success"], "success")
            server.close()
            print("ok: SOCKS5 direct (the requester's candidate), a range")

            # The daemon's proxy65 candidate: 20 MB.
            sid, sock = via_daemon_candidate(rx, to, me, file_xml(f"{repo}/big.bin"), "proxy",
                                             env)
            got, digest, _, _ = receive(sock, BIG)
            check(got == BIG and digest == big_sha, f"20 MB through proxy65 ({got} bytes)")
            check(reason_of(rx.wait_jingle(sid, "session-terminate")) == ["success"], "success")
            print("ok: SOCKS5 via proxy65, 20 MB")

            # No candidate works: the daemon replaces the transport with IBB.
            sid, tsid = "s" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:10]
            dead = socket.socket()
            dead.bind(("127.0.0.1", 0))
            dead_port = dead.getsockname()[1]
            dead.close()  # nobody listens there
            cand = (f"<candidate cid='dead' host='127.0.0.1' jid='{me}' port='{dead_port}'"
                    f" priority='{(126 << 16)}' type='direct'/>")
            r = initiate(alice, to, sid, tsid, file_xml(f"{repo}/big.bin"), cand)
            check(r.get("type") == "result", "initiate")
            rx.wait_jingle(sid, "session-accept")
            r = transport_info(alice, to, sid, tsid, "<candidate-error/>")
            check(r.get("type") == "result", "candidate-error")
            replace = rx.wait_jingle(sid, "transport-replace")
            jt = replace.find(f"{{{JINGLE}}}content/{{{JIBB}}}transport")
            check(jt is not None, "transport-replace offers IBB")
            ibb_sid, size = jt.get("sid"), jt.get("block-size")
            r = alice.iq(f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}'"
                         f" action='transport-accept' sid='{sid}'>"
                         f"<content creator='initiator' name='a-file-request'>"
                         f"<transport xmlns='{JIBB}' sid='{ibb_sid}' block-size='{size}'/>"
                         f"</content></jingle></iq>")
            check(r.get("type") == "result", f"transport-accept: {error_condition(r)}")
            r = alice.iq(f"<iq type='set' to='{to}'><open xmlns='{IBB}' block-size='{size}'"
                         f" sid='{ibb_sid}' stanza='iq'/></iq>")
            check(r.get("type") == "result", f"IBB open: {error_condition(r)}")
            term = rx.wait_jingle(sid, "session-terminate", timeout=300)
            check(reason_of(term) == ["success"], f"terminate {reason_of(term)}")
            data = rx.data(ibb_sid)
            check(len(data) == BIG and hashlib.sha256(data).digest() == big_sha,
                  f"20 MB in-band after the fall back ({len(data)} bytes)")
            print("ok: no candidate works -> transport-replace -> IBB, 20 MB")

            # The requester replaces the transport itself.
            sid, tsid = "s" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:10]
            r = initiate(alice, to, sid, tsid, file_xml(f"{repo}/small.bin"))
            check(r.get("type") == "result", "initiate")
            rx.wait_jingle(sid, "session-accept")
            ibb_sid = "i" + uuid.uuid4().hex[:8]
            r = alice.iq(f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}'"
                         f" action='transport-replace' sid='{sid}'>"
                         f"<content creator='initiator' name='a-file-request'>"
                         f"<transport xmlns='{JIBB}' sid='{ibb_sid}' block-size='4096'/>"
                         f"</content></jingle></iq>")
            check(r.get("type") == "result", f"transport-replace: {error_condition(r)}")
            acc = rx.wait_jingle(sid, "transport-accept")
            check(acc.find(f"{{{JINGLE}}}content/{{{JIBB}}}transport").get("sid") == ibb_sid,
                  "transport-accept of our IBB transport")
            r = alice.iq(f"<iq type='set' to='{to}'><open xmlns='{IBB}' block-size='4096'"
                         f" sid='{ibb_sid}' stanza='iq'/></iq>")
            check(r.get("type") == "result", f"IBB open: {error_condition(r)}")
            check(reason_of(rx.wait_jingle(sid, "session-terminate")) == ["success"], "success")
            check(rx.data(ibb_sid) == small, "the file in-band after our transport-replace")
            print("ok: the requester's transport-replace")

            # A wrong DST.ADDR at the daemon's listener: refused, and the daemon goes on.
            sid, tsid = "s" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:10]
            r = initiate(alice, to, sid, tsid, file_xml(f"{repo}/small.bin"))
            cands, _ = candidates_of(rx.wait_jingle(sid, "session-accept"))
            direct = cands["direct"]
            try:
                socks5_connect(direct.get("host"), direct.get("port"), sha1hex(tsid, me, to))
                check(False, "a stream with the initiator's DST.ADDR is refused")
            except ConnectionRefusedError as e:
                check("reply 4" in str(e), f"refused: {e}")
            sock = socks5_connect(direct.get("host"), direct.get("port"), sha1hex(tsid, to, me))
            transport_info(alice, to, sid, tsid, f"<candidate-used cid='{direct.get('cid')}'/>")
            got, _, data, _ = receive(sock, len(small))
            check(data == small, "then the right DST.ADDR gets the file")
            rx.wait_jingle(sid, "session-terminate")
            print("ok: a wrong DST.ADDR is refused")

            # Garbage transport-info: errors, not crashes.
            r = transport_info(alice, to, sid, tsid, "<candidate-used cid='x'/>")
            check(error_condition(r) == "item-not-found", f"ended session: {error_condition(r)}")
            sid, tsid = "s" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:10]
            initiate(alice, to, sid, tsid, file_xml(f"{repo}/small.bin"))
            rx.wait_jingle(sid, "session-accept")
            r = transport_info(alice, to, sid, tsid, "<candidate-used cid='no-such'/>")
            check(error_condition(r) == "item-not-found", f"unknown cid: {error_condition(r)}")
            r = transport_info(alice, to, sid, "other", "<candidate-error/>")
            check(error_condition(r) == "bad-request", f"wrong transport sid: {error_condition(r)}")

            # The per-requester limit (3): this session and two more, then a refusal.
            held = [sid]
            for _ in range(2):
                s2 = "s" + uuid.uuid4().hex[:10]
                r = initiate(alice, to, s2, "t" + uuid.uuid4().hex[:8],
                             file_xml(f"{repo}/small.bin"))
                check(r.get("type") == "result", f"within the limit: {error_condition(r)}")
                held.append(s2)
            r = initiate(alice, to, "s" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:8],
                         file_xml(f"{repo}/small.bin"))
            check(error_condition(r) == "resource-constraint",
                  f"one too many: {error_condition(r)}")
            for s2 in held:
                r = alice.iq(f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}'"
                             f" action='session-terminate' sid='{s2}'><reason><decline/>"
                             "</reason></jingle></iq>")
                check(r.get("type") == "result", "our terminate")
            print("ok: garbage transport-info, the per-requester limit")

            # The requester ends a session mid-stream.
            sid, sock = via_daemon_candidate(rx, to, me, file_xml(f"{repo}/big.bin"), "direct")
            recv_exact(sock, 100000)
            r = alice.iq(f"<iq type='set' to='{to}'><jingle xmlns='{JINGLE}'"
                         f" action='session-terminate' sid='{sid}'><reason><cancel/></reason>"
                         "</jingle></iq>")
            check(r.get("type") == "result", "our terminate mid-stream")
            sock.close()

            rows = sql("SELECT method, outcome, bytes_sent FROM transfer"
                       " WHERE outcome IS DISTINCT FROM 'refused' ORDER BY id")
            parsed = [r.split("|") for r in rows]
            check(parsed[0] == ["s5b-direct", "success", str(BIG)], f"row 1: {parsed[0]}")
            check(parsed[1] == ["s5b-direct", "success", "2000000"], f"row 2: {parsed[1]}")
            check(parsed[2] == ["s5b-proxy", "success", str(BIG)], f"row 3: {parsed[2]}")
            check(parsed[3] == ["ibb", "success", str(BIG)], f"row 4: {parsed[3]}")
            check(parsed[4] == ["ibb", "success", str(len(small))], f"row 5: {parsed[4]}")
            check(parsed[-1][1] == "cancel" and int(parsed[-1][2]) < BIG,
                  f"the cancelled one: {parsed[-1]}")
            check(sql("SELECT count(*) FROM transfer WHERE outcome = 'refused'") == ["1"],
                  "the refusal over the limit is recorded")
            print("ok: the transfer table")
            alice.close()
            check(daemon.stop() == 0, "filerepod stops cleanly")

        # A bandwidth cap: every byte still arrives, no faster than the cap.
        extra["transfer"] = {"bandwidth_kib_per_second": 1024}
        with Daemon(env, extra=extra) as daemon:
            to = daemon.component
            daemon.wait_log(r"catalog: connected")
            wait_for("the files indexed", lambda: psql(env, daemon.db,
                     "SELECT count(*) FROM entry WHERE current_revision_id IS NOT NULL")
                     == ["2"])
            alice = client(env, "alice")
            rx = Receiver(alice)
            started = time.monotonic()
            sid, sock = via_daemon_candidate(rx, to, full_jid(alice), file_xml(f"{repo}/small.bin"),
                                             "direct")
            got, _, data, _ = receive(sock, len(small))
            check(data == small, "the file arrives whole under the cap")
            # 300 kB at 1 MiB/s with a 64 KiB burst: at least about a fifth of a second.
            check(time.monotonic() - started >= 0.15, "the cap holds the rate back")
            rx.wait_jingle(sid, "session-terminate")
            alice.close()
            check(daemon.stop() == 0, "filerepod stops cleanly")
    print("test_socks5: all passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
