"""The requester's side of sipub (XEP-0137) and SI file transfer (XEP-0095,
XEP-0096) for the test_sipub* integration tests: a Requester that keeps the
daemon's SI offers and answers its IBB and SOCKS5 stanzas, and the steps of
the sipub way as functions (start, accept, decline, fetch over IBB or
SOCKS5), plus what the tests read back (the published sipub mirror, the
transfer table's 'sipub' rows)."""

import base64
import threading
import xml.etree.ElementTree as ET

from harness import check, wait_for
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
