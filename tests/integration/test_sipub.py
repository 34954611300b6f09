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

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET

from harness import Daemon, binary, check, client, load_services_env, psql, wait_for
from test_socks5 import receive, sha1hex, socks5_connect
from xmppclient import error_condition

SIPUB = "http://jabber.org/protocol/sipub"
SI = "http://jabber.org/protocol/si"
SIFT = "http://jabber.org/protocol/si/profile/file-transfer"
FNEG = "http://jabber.org/protocol/feature-neg"
XDATA = "jabber:x:data"
IBB = "http://jabber.org/protocol/ibb"
S5B = "http://jabber.org/protocol/bytestreams"
PUBSUB = "http://jabber.org/protocol/pubsub"
JINGLE = "urn:xmpp:jingle:1"


class Requester:
    """The requester's side of one client: keeps the daemon's SI offers
    (answered by the test), answers the daemon's IBB <open/>, <data/> and
    <close/>, and keeps the blocks per sid."""

    def __init__(self, cl):
        self.cl = cl
        self.cond = threading.Condition()
        self.offers = {}          # SI id -> (iq Element)
        self.streamhosts = {}     # sid -> the daemon's bytestreams <iq/>
        self.opens = {}           # sid -> <open/> Element
        self.blocks = {}          # sid -> [(seq, bytes)]
        self.closed = set()       # sids closed by the daemon
        self.ack_data = True      # acknowledge data blocks at once
        self.refuse_data = False  # answer data blocks with an error
        self.held = []            # results not sent while ack_data is off
        self.max_block = None     # refuse an <open/> with a larger block-size
        cl.serve(self._serve)

    def _serve(self, iq):
        result = "<iq type='result' id='%s' to='%s'/>" % (iq.get("id"), iq.get("from"))
        with self.cond:
            si = iq.find(f"{{{SI}}}si")
            opening = iq.find(f"{{{IBB}}}open")
            data = iq.find(f"{{{IBB}}}data")
            close = iq.find(f"{{{IBB}}}close")
            query = iq.find(f"{{{S5B}}}query")
            try:
                if query is not None:
                    self.streamhosts[query.get("sid")] = iq
                    return None
                if si is not None:
                    self.offers[si.get("id")] = iq
                    return None
                if opening is not None:
                    if self.max_block and int(opening.get("block-size")) > self.max_block:
                        return ("<iq type='error' id='%s' to='%s'><error type='modify'>"
                                "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"
                                "/></error></iq>" % (iq.get("id"), iq.get("from")))
                    self.opens[opening.get("sid")] = opening
                    return result
                if data is not None:
                    self.blocks.setdefault(data.get("sid"), []).append(
                        (int(data.get("seq")), base64.b64decode(data.text or "")))
                    if self.refuse_data:
                        return ("<iq type='error' id='%s' to='%s'><error type='cancel'>"
                                "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                                "</error></iq>" % (iq.get("id"), iq.get("from")))
                    if not self.ack_data:
                        self.held.append(result)
                        return None
                    return result
                if close is not None:
                    self.closed.add(close.get("sid"))
                    return result
                return None
            finally:
                self.cond.notify_all()

    def wait(self, what, fn, timeout=120):
        with self.cond:
            ok = self.cond.wait_for(fn, timeout)
        check(ok, what)

    def offer(self, sid):
        self.wait(f"the SI offer {sid}", lambda: sid in self.offers)
        with self.cond:
            return self.offers[sid]

    def hosts(self, sid):
        """The daemon's streamhosts for `sid`: (iq, {jid: (host, port)})."""
        self.wait(f"the streamhosts of {sid}", lambda: sid in self.streamhosts)
        with self.cond:
            iq = self.streamhosts[sid]
        q = iq.find(f"{{{S5B}}}query")
        check(q.get("mode") in (None, "tcp"), f"mode tcp: {q.attrib}")
        return iq, {h.get("jid"): (h.get("host"), int(h.get("port")))
                    for h in q.findall(f"{{{S5B}}}streamhost")}

    def release(self):
        """Acknowledges the held blocks and the next ones."""
        with self.cond:
            held, self.held, self.ack_data = self.held, [], True
        for r in held:
            self.cl.send(r)

    def data(self, sid):
        with self.cond:
            blocks = self.blocks.get(sid, [])
            seqs = [s for s, _ in blocks]
            check(seqs == [i % 65536 for i in range(len(seqs))], f"seq in order: {seqs[:10]}")
            return b"".join(b for _, b in blocks)


def start(cl, to, sipub_id, type_="get"):
    return cl.iq(f"<iq type='{type_}' to='{to}'><start xmlns='{SIPUB}' id='{sipub_id}'/></iq>")


def started(cl, to, sipub_id):
    """<start/> answered with <starting sid/>: returns the sid."""
    r = start(cl, to, sipub_id)
    check(r.get("type") == "result", f"start {sipub_id}: {error_condition(r)}")
    starting = r.find(f"{{{SIPUB}}}starting")
    check(starting is not None and starting.get("sid"), f"<starting sid/>: {ET.tostring(r)}")
    return starting.get("sid")


def accept(cl, offer, method=IBB, rng=None):
    file = ""
    if rng is not None:
        attrs = " ".join(f"{k}='{v}'" for k, v in rng.items())
        file = f"<file xmlns='{SIFT}'><range {attrs}/></file>"
    cl.send(f"<iq type='result' id='{offer.get('id')}' to='{offer.get('from')}'>"
            f"<si xmlns='{SI}'>{file}<feature xmlns='{FNEG}'><x xmlns='{XDATA}' type='submit'>"
            f"<field var='stream-method'><value>{method}</value></field></x></feature></si></iq>")


def decline(cl, offer):
    cl.send(f"<iq type='error' id='{offer.get('id')}' to='{offer.get('from')}'>"
            "<error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Offer Declined</text>"
            "</error></iq>")


def fetch(rq, to, sipub_id, rng=None):
    """The whole sipub way for `sipub_id`; returns (bytes, the offer's <si/>)."""
    sid = started(rq.cl, to, sipub_id)
    offer = rq.offer(sid)
    accept(rq.cl, offer, rng=rng)
    rq.wait(f"the daemon closes {sid}", lambda: sid in rq.closed)
    check(sid in rq.opens, "the daemon opened the bytestream")
    return rq.data(sid), offer.find(f"{{{SI}}}si")


def fetch_s5b(rq, to, sipub_id, use, size):
    """The sipub way with SOCKS5: connects to the streamhost whose JID is
    `use` and says so; returns (bytes received, sha-256 of them)."""
    sid = started(rq.cl, to, sipub_id)
    offer = rq.offer(sid)
    me = offer.get("to")
    accept(rq.cl, offer, method=S5B)
    iq, hosts = rq.hosts(sid)
    # ejabberd's proxy65 has a resource of its own: its bare JID names it.
    use = next((j for j in hosts if j == use or j.split("/")[0] == use), None)
    check(use is not None, f"a streamhost {use} among {list(hosts)}")
    sock = socks5_connect(*hosts[use], sha1hex(sid, to, me))
    rq.cl.send(f"<iq type='result' id='{iq.get('id')}' to='{iq.get('from')}'>"
               f"<query xmlns='{S5B}' sid='{sid}'><streamhost-used jid='{use}'/></query></iq>")
    got, digest, data, rest = receive(sock, size)
    check(got == size and rest == b"", f"{got} of {size} bytes, then the end of the stream")
    return data, digest


def sipub_mirror(cl, pubsub, node, item_id="1"):
    """The <sipub/> of item `item_id` at `node`, once published."""
    def look():
        r = cl.iq(f"<iq type='get' to='{pubsub}'><pubsub xmlns='{PUBSUB}'>"
                  f"<items node='{node}'/></pubsub></iq>")
        if r.get("type") != "result":
            return None
        for item in r.iter(f"{{{PUBSUB}}}item"):
            if item.get("id") == item_id:
                return next(item.iter(f"{{{SIPUB}}}sipub"), None)
        return None
    return wait_for(f"item {item_id} of {node}", look, timeout=120, step=0.2)


def revision_id(sql, repo, path, number):
    rows = sql("SELECT v.id FROM revision v JOIN entry e ON e.id = v.entry_id"
               " JOIN repository r ON r.id = e.repository_id"
               f" WHERE r.name = '{repo}' AND e.path = '{path}' AND v.number = {number}")
    check(len(rows) == 1, f"revision {number} of {repo}/{path}: {rows}")
    return int(rows[0])


def sipub_rows(sql):
    return [r.split("|") for r in sql(
        "SELECT coalesce(method, ''), coalesce(outcome, ''), bytes_sent, range_offset,"
        " coalesce(range_length::text, ''), split_part(requester, '@', 1)"
        " FROM transfer WHERE protocol = 'sipub' ORDER BY id")]


def indexed(sql, count):
    wait_for("the files indexed", lambda: sql(
        "SELECT count(*) FROM entry WHERE kind = 'file'"
        " AND current_revision_id IS NOT NULL") == [str(count)])


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
    limits(env)
    failures(env)
    independent(env)
    print("test_sipub: all passed")


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
    body, gone = os.urandom(200000), os.urandom(5000)
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


async def slixmpp_fetch(env, pubsub, node, method, size):
    """An independent client: slixmpp's own plugins for SI (XEP-0095), SI
    file transfer (XEP-0096), IBB (XEP-0047) and SOCKS5 (XEP-0065).  Reads
    the item's sipub mirror, sends <start/>, accepts the daemon's offer with
    slixmpp's SI code (which picks `method`: the other one is unregistered),
    and collects what slixmpp's bytestream receives.  Returns (bytes, the
    offer's file element as slixmpp read it)."""
    import slixmpp
    x = slixmpp.ClientXMPP(env["XMPP_USER_BOB"] + "/independent", env["XMPP_PASS_BOB"])
    x.whitespace_keepalive = False
    for plugin in ("xep_0030", "xep_0020", "xep_0047", "xep_0065", "xep_0095", "xep_0096",
                   "xep_0060"):
        x.register_plugin(plugin)
    # slixmpp 1.8.3 registers its (async) SI request handler as a plain
    # Callback, so the coroutine is never awaited and no si_request event
    # ever fires; the same handler of the plugin, registered as a
    # CoroutineCallback, runs as meant.
    from slixmpp.xmlstream.handler import CoroutineCallback
    from slixmpp.xmlstream.matcher import StanzaPath
    x.remove_handler("SI Request")
    x.register_handler(CoroutineCallback("SI Request", StanzaPath("iq@type=set/si"),
                                         x["xep_0095"]._handle_request))
    x["xep_0095"].unregister_method(IBB if method == S5B else S5B)
    loop = asyncio.get_running_loop()
    session = loop.create_future()
    offered, ended = loop.create_future(), loop.create_future()
    received = bytearray()
    x.add_event_handler("session_start", lambda _: session.done() or session.set_result(1))
    x.add_event_handler("si_request",
                        lambda iq: offered.done() or offered.set_result(iq))

    def on_data(stream):
        while not stream.recv_queue.empty():
            received.extend(stream.recv_queue.get_nowait())

    def on_end(stream):
        on_data(stream)
        if not ended.done():
            ended.set_result(stream)
    def on_socks5_data(data):
        received.extend(data)

    def on_socks5_closed(_):
        if len(received) >= size and not ended.done():
            ended.set_result(None)
    x.add_event_handler("ibb_stream_data", on_data)
    x.add_event_handler("ibb_stream_end", on_end)
    x.add_event_handler("socks5_data", on_socks5_data)
    x.add_event_handler("socks5_closed", on_socks5_closed)
    x.connect((env["XMPP_HOST"], int(env["XMPP_C2S_PORT"])), force_starttls=False,
              disable_starttls=True)
    try:
        await asyncio.wait_for(session, 30)
        x.send_presence()
        items = await x["xep_0060"].get_items(pubsub, node, timeout=30)
        mirror = next(items.xml.iter(f"{{{SIPUB}}}sipub"))
        iq = x.Iq()
        iq["type"], iq["to"], iq["id"] = "get", mirror.get("from"), x.new_id()
        iq.append(ET.fromstring(f"<start xmlns='{SIPUB}' id='{mirror.get('id')}'/>"))
        reply = await iq.send(timeout=30)
        sid = reply.xml.find(f"{{{SIPUB}}}starting").get("sid")
        offer = await asyncio.wait_for(offered, 30)
        check(offer["si"]["id"] == sid, "slixmpp's offer carries the starting sid")
        file = dict(name=offer["si"]["file"]["name"], size=offer["si"]["file"]["size"],
                    hash=offer["si"]["file"]["hash"])
        await x["xep_0095"].accept(offer["from"], sid)
        await asyncio.wait_for(ended, 300)
        return bytes(received), file
    finally:
        x.disconnect()


def independent(env):
    """slixmpp as the requester, with its own SI and IBB code.  (slixmpp
    takes back its pre-authorization of the sid at the first <open/>, even
    one it refuses for its block-size: the daemon's block-size stays within
    slixmpp's 8192 here.)"""
    repo = "si" + uuid.uuid4().hex[:8]
    payload = os.urandom(3 * 1024 * 1024 + 4321)
    with tempfile.TemporaryDirectory(prefix="filerepo-si-") as root:
        with open(os.path.join(root, "rel.tar.xz"), "wb") as f:
            f.write(payload)
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy",
                             "digests": ["sha-256", "md5"]},
                 "transfer": {"ibb_block_size": 8192, "ibb_window": 4}}
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            indexed(sql, 1)
            watcher = client(env, "alice")
            sipub_mirror(watcher, env["XMPP_PUBSUB_JID"], f"{repo}/rel.tar.xz")
            watcher.close()
            for method in (IBB, S5B):
                data, file = asyncio.run(slixmpp_fetch(env, env["XMPP_PUBSUB_JID"],
                                                       f"{repo}/rel.tar.xz", method,
                                                       len(payload)))
                check(file["name"] == "rel.tar.xz" and int(file["size"]) == len(payload)
                      and file["hash"] == hashlib.md5(payload).hexdigest(),
                      f"slixmpp read the offer: {file}")
                check(len(data) == len(payload) and
                      hashlib.sha256(data).digest() == hashlib.sha256(payload).digest(),
                      f"slixmpp received the file identical over {method}"
                      f" ({len(data)} of {len(payload)} bytes)")
                wait_for("the row", lambda: sipub_rows(sql) and
                         sipub_rows(sql)[-1][1] == "success")
            check(sipub_rows(sql) == [["ibb", "success", str(len(payload)), "0", "", "bob"],
                                      ["s5b-direct", "success", str(len(payload)), "0", "",
                                       "bob"]],
                  f"rows: {sipub_rows(sql)}")
            check(daemon.stop() == 0, "filerepod stops cleanly")
    print("ok: an independent client (slixmpp's SI, IBB and SOCKS5) receives the file")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
