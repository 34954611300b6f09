"""Publisher benchmark: filerepod publishing revision items against a raw
publishing loop over the same ejabberd in the same run, and the latency from
close() of a small file to the notification at a subscriber (settle 0).
Prints medians and percentiles; asserts nothing.

    tools/bench.sh publisher            (starts the services, runs this)

Sizes (environment): BENCH_ITEMS=5000 revision items, BENCH_WINDOW=32 IQs in
flight for the raw loop (filerepod's own window), BENCH_SAMPLES=200
latency samples, BENCH_RUNS=3.  The raw loops: items into one node (as
many items, and as many IQs), and the daemon's own publishes done by a
bare client (each revision's leaf, and a change feed keeping
xmpp.change_feed_max_items), on the same tree of collections and
leaves, with the very payloads the daemon published.

Throughput (with the change feed, and with xmpp.change_feed off): 5,000
files are indexed and published once (nodes created);
then, with the daemon away from XMPP, each is changed, so the outbox holds
one publish_item row per file; the clock runs from the daemon's
"publishing to" line to the last row's done_at (polled twice a second:
each poll is a psql, whose CPU the daemon would lose).  Each such row is
two IQs (the item on the file's node and the change-feed item), so the raw
loop is timed both for as many items and for as many IQs.

Every timed step, the daemon's and the raw clients', starts on a machine
that has been idle (under 10% CPU) for a second, so that none pays for
what the step before left ejabberd or PostgreSQL doing.
"""

import datetime
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Daemon, load_services_env, psql  # noqa: E402
from xmppclient import NS, Client  # noqa: E402
from idle import quiet  # noqa: E402

ITEMS = int(os.environ.get("BENCH_ITEMS", "5000"))
WINDOW = int(os.environ.get("BENCH_WINDOW", "32"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "200"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
FEED_MAX = 1000  # xmpp.change_feed_max_items, the daemon's default
EVENT = NS["pubsub_event"]
ENTRY = ("<entry xmlns='http://jabber.org/protocol/fileshare#item_metadata'><size>42</size>"
         "<modified>2026-01-01T00:00:00Z</modified><checksum type='sha256'>"
         + "ab" * 32 + "</checksum><checksum type='sha1'>" + "cd" * 20 + "</checksum>"
         "<mime>text/plain</mime><mirrors/></entry>")


def client(env, who="alice"):
    up = who.upper()
    return Client(env["XMPP_USER_" + up], env["XMPP_PASS_" + up], env["XMPP_HOST"],
                  env["XMPP_C2S_PORT"]).connect()


def pipelined(c, stanzas, window):
    """Sends the IQs keeping `window` unanswered; returns seconds."""
    started = time.monotonic()
    pending = []
    for i, text in enumerate(stanzas):
        iq_id = f"b{uuid.uuid4().hex[:6]}{i}"
        with c._lock:
            c._replies[iq_id] = None
        c.send(text.replace("<iq ", f"<iq id='{iq_id}' ", 1))
        pending.append(iq_id)
        if len(pending) >= window:
            wait_reply(c, pending.pop(0))
    for iq_id in pending:
        wait_reply(c, iq_id)
    return time.monotonic() - started


def wait_reply(c, iq_id):
    with c._lock:
        c._lock.wait_for(lambda: c._replies[iq_id] is not None, 60)
        reply = c._replies.pop(iq_id)
    if reply is None or reply.get("type") != "result":
        raise RuntimeError(f"raw publish failed: {reply}")


def raw_loop(env, count):
    """Items per second of a client publishing `count` items to one leaf."""
    service = env["XMPP_PUBSUB_JID"]
    node = "bench-" + uuid.uuid4().hex[:8]
    c = client(env)
    try:
        c.iq(f"<iq type='set' to='{service}'><pubsub xmlns='{NS['pubsub']}'>"
             f"<create node='{node}'/></pubsub></iq>")
        stanzas = [f"<iq type='set' to='{service}'><pubsub xmlns='{NS['pubsub']}'>"
                   f"<publish node='{node}'><item id='{i}'>{ENTRY}</item></publish>"
                   f"</pubsub></iq>" for i in range(count)]
        quiet()
        took = pipelined(c, stanzas, WINDOW)
        c.iq(f"<iq type='set' to='{service}'><pubsub xmlns='{NS['pubsub_owner']}'>"
             f"<delete node='{node}'/></pubsub></iq>")
    finally:
        c.close()
    return count / took


def node_form(node_type="leaf", parent=None, max_items="max"):
    fields = [("FORM_TYPE", "http://jabber.org/protocol/pubsub#node_config"),
              ("pubsub#node_type", node_type), ("pubsub#max_items", max_items)]
    if parent:
        fields.append(("pubsub#collection", parent))
    return ("<configure><x xmlns='jabber:x:data' type='submit'>"
            + "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields)
            + "</x></configure>")


def raw_same_work(env, count, feed_max, payloads):
    """Revisions per second of a client doing filerepod's publishing work
    and nothing else: the same tree (a repository collection, 50 directory
    collections, one leaf per file, created beforehand as in the daemon's
    measured pass), and per revision the daemon's own two items - the
    revision on its leaf and the change on a feed keeping `feed_max` items -
    with the payloads the daemon published."""
    service = env["XMPP_PUBSUB_JID"]
    item_payload, change_payload = payloads
    root = "bench" + uuid.uuid4().hex[:8]
    feed = root + "#changes"
    dirs = [f"{root}/d{d:02d}" for d in range(50)]
    leaves = [f"{dirs[i % 50]}/f{i:05d}" for i in range(count)]
    pub = f"<iq type='set' to='{service}'><pubsub xmlns='{NS['pubsub']}'>"
    c = client(env)
    try:
        pipelined(c, [f"{pub}<create node='{root}'/>{node_form('collection')}</pubsub></iq>"]
                  + [f"{pub}<create node='{feed}'/>{node_form(max_items=feed_max)}</pubsub></iq>"],
                  1)
        pipelined(c, [f"{pub}<create node='{d}'/>{node_form('collection', root)}</pubsub></iq>"
                      for d in dirs], WINDOW)
        pipelined(c, [f"{pub}<create node='{n}'/>{node_form(parent=n.rsplit('/', 1)[0])}"
                      f"</pubsub></iq>" for n in leaves], WINDOW)
        stanzas = []
        for i, n in enumerate(leaves):
            stanzas.append(f"{pub}<publish node='{n}'><item id='2'>{item_payload}</item>"
                           "</publish></pubsub></iq>")
            stanzas.append(f"{pub}<publish node='{feed}'><item id='c{i}'>{change_payload}</item>"
                           "</publish></pubsub></iq>")
        quiet()
        took = pipelined(c, stanzas, WINDOW)
        pipelined(c, [f"<iq type='set' to='{service}'><pubsub xmlns='{NS['pubsub_owner']}'>"
                      f"<delete node='{n}'/></pubsub></iq>" for n in leaves + dirs + [feed, root]],
                  WINDOW)
    finally:
        c.close()
    return count / took


def published_payloads(env, repo):
    """The payloads filerepod published for its last file: the revision item
    and the change-feed item, as XML text."""
    import xml.etree.ElementTree as ET
    service = env["XMPP_PUBSUB_JID"]
    c = client(env)
    try:
        texts = []
        for node in (f"{repo}/d{(ITEMS - 1) % 50:02d}/f{ITEMS - 1:05d}", repo + "#changes"):
            r = c.iq(f"<iq type='get' to='{service}'><pubsub xmlns='{NS['pubsub']}'>"
                     f"<items node='{node}' max_items='1'/></pubsub></iq>")
            item = r.find(f"{{{NS['pubsub']}}}pubsub/{{{NS['pubsub']}}}items/{{{NS['pubsub']}}}item")
            texts.append(ET.tostring(list(item)[0], encoding="unicode"))
        return texts
    finally:
        c.close()


def wait_drained(env, db, timeout=1800):
    """Waits until no outbox row is pending; returns when the last one was
    marked done (the catalog's clock, seconds since the epoch).  Polled
    slowly: each poll starts a psql, whose CPU the daemon would lose."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psql(env, db, "SELECT 1 FROM outbox WHERE state = 'pending' LIMIT 1"):
            return float(psql(env, db, "SELECT extract(epoch FROM max(done_at)) FROM outbox")[0])
        time.sleep(0.5)
    raise RuntimeError("the outbox did not drain")


def logged_at(daemon, pattern, after):
    """When the daemon logged a line matching pattern (its own timestamp,
    seconds since the epoch)."""
    m, _ = daemon.wait_log(r"(?m)^(\S+Z) .*" + pattern, after=after, timeout=60)
    stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


def restart(daemon, env, xmpp_port):
    """Stops the daemon and starts it again with the component port given."""
    daemon.stop()
    with open(daemon.config) as f:
        text = f.read()
    text = re.sub(r'"port": \d+', f'"port": {xmpp_port}', text)
    with open(daemon.config, "w") as f:
        f.write(text)
    mark = len(daemon.log())
    daemon.start()
    return mark


def daemon_throughput(env, feed=True):
    """Revision items per second drained by filerepod (with or without its
    change feed)."""
    repo = "bench" + uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="filerepo-bench-pub-") as root:
        for d in range(50):
            os.makedirs(os.path.join(root, f"d{d:02d}"))
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 200, "content_store": "none"},
                 "log": {"level": "info"}}
        with Daemon(env, extra=extra, change_feed="on" if feed else "off") as daemon:
            daemon.wait_log(r"publish: publishing to ")
            for i in range(ITEMS):
                with open(os.path.join(root, f"d{i % 50:02d}", f"f{i:05d}"), "w") as f:
                    f.write(f"one {i}\n")
            while int(psql(env, daemon.db, "SELECT count(*) FROM revision")[0]) < ITEMS:
                time.sleep(0.2)
            wait_drained(env, daemon.db)
            # Away from XMPP (a port nobody listens on), change every file.
            restart(daemon, env, 9)
            daemon.wait_log(r"catalog: connected")
            for i in range(ITEMS):
                with open(os.path.join(root, f"d{i % 50:02d}", f"f{i:05d}"), "w") as f:
                    f.write(f"two {i}\n")
            while int(psql(env, daemon.db, "SELECT count(*) FROM revision")[0]) < 2 * ITEMS:
                time.sleep(0.2)
            quiet()
            mark = restart(daemon, env, int(env["XMPP_COMPONENT_PORT"]))
            # From the daemon's "publishing to" to the last row marked done.
            started = logged_at(daemon, r"publish: publishing to ", mark)
            ended = wait_drained(env, daemon.db)
            # Every revision's row, the first pass's (create_leaf with the
            # revision) and the measured one's (publish_item).
            done = int(psql(env, daemon.db, "SELECT count(*) FROM outbox WHERE state = 'done'"
                                            " AND revision_id IS NOT NULL")[0])
            check_rows = psql(env, daemon.db, "SELECT count(*) FROM outbox WHERE state <> 'done'")
            payloads = published_payloads(env, repo) if feed else None
            # A slow run says why, when the daemon knows (timeouts, retries).
            warnings = [line for line in daemon.log()[mark:].splitlines() if " warn " in line]
            if warnings:
                print(f"filerepod warned {len(warnings)} times while publishing, e.g.:\n  "
                      + "\n  ".join(w[:200] for w in warnings[:3]), flush=True)
            daemon.stop()
    if done != 2 * ITEMS or check_rows != ["0"]:
        print(f"warning: {done} rows with a revision done, {check_rows} not done")
    return ITEMS / (ended - started), payloads


def latency(env):
    """Milliseconds from close() to the notification, SAMPLES times."""
    repo = "lat" + uuid.uuid4().hex[:6]
    samples = []
    with tempfile.TemporaryDirectory(prefix="filerepo-bench-lat-") as root:
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "none"}}
        with Daemon(env, extra=extra) as daemon:
            daemon.wait_log(r"publish: publishing to ")
            while not psql(env, daemon.db, "SELECT 1 FROM repository WHERE pubsub_node"
                                           " IS NOT NULL"):
                time.sleep(0.05)
            c = client(env, "bob")
            arrived = {}
            cond = threading.Condition()
            service = env["XMPP_PUBSUB_JID"]
            c.iq(f"<iq type='set' to='{service}'><pubsub xmlns='{NS['pubsub']}'><subscribe "
                 f"node='{repo}' jid='{env['XMPP_USER_BOB']}'/></pubsub></iq>")

            def on_message(stanza):
                now = time.monotonic()
                for items in stanza.xml.iter(f"{{{EVENT}}}items"):
                    with cond:
                        arrived[items.get("node")] = now
                        cond.notify_all()
            from slixmpp.xmlstream.handler import Callback
            from slixmpp.xmlstream.matcher.xpath import MatchXPath
            c._call(lambda: c._xmpp.register_handler(Callback(
                "bench events", MatchXPath(f"{{jabber:client}}message/{{{EVENT}}}event"),
                on_message)))
            for i in range(SAMPLES + 5):
                node = f"{repo}/s{i:04d}"
                path = os.path.join(root, f"s{i:04d}")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, f"sample {i}\n".encode())
                os.close(fd)
                closed = time.monotonic()
                with cond:
                    if not cond.wait_for(lambda: node in arrived, 10):
                        raise RuntimeError(f"no notification for {node}")
                if i >= 5:  # the first few warm the caches
                    samples.append((arrived[node] - closed) * 1000)
                time.sleep(0.05)
            c.close()
            daemon.stop()
    return samples


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    env = load_services_env()
    raw_items, raw_iqs, raw_same, ours, bare = [], [], [], [], []
    for run in range(RUNS):
        raw_items.append(raw_loop(env, ITEMS))
        raw_iqs.append(raw_loop(env, 2 * ITEMS))
        rate, payloads = daemon_throughput(env)
        ours.append(rate)
        raw_same.append(raw_same_work(env, ITEMS, FEED_MAX, payloads))
        bare.append(daemon_throughput(env, feed=False)[0])
        print(f"run {run + 1}: raw loop {raw_items[-1]:.0f} items/s ({raw_iqs[-1]:.0f} items/s "
              f"over {2 * ITEMS}; {raw_same[-1]:.0f} revisions/s doing the daemon's work), "
              f"filerepod {ours[-1]:.0f} revision items/s ({2 * ours[-1]:.0f} IQs/s), "
              f"without the change feed {bare[-1]:.0f}/s", flush=True)
    r, o = statistics.median(raw_items), statistics.median(ours)
    ri, b = statistics.median(raw_iqs), statistics.median(bare)
    rs = statistics.median(raw_same)
    print(f"throughput (median of {RUNS}): raw loop {r:.0f} items/s into one node; "
          f"filerepod {o:.0f} revision items/s = {100 * o / r:.0f}% of it; "
          f"counting IQs (item + feed item per revision) {2 * o:.0f} IQs/s = "
          f"{100 * 2 * o / ri:.0f}% of the raw loop's {ri:.0f} IQs/s; "
          f"against a raw loop doing the same publishes (each revision's leaf and a feed "
          f"keeping {FEED_MAX}) {rs:.0f} revisions/s: {100 * o / rs:.0f}% (run by run: "
          f"{', '.join(f'{100 * a / b:.0f}%' for a, b in zip(ours, raw_same))}; median "
          f"{100 * statistics.median(a / b for a, b in zip(ours, raw_same)):.0f}%); "
          f"with xmpp.change_feed off {b:.0f} revision items/s = {100 * b / r:.0f}%")
    samples = latency(env)
    print(f"latency close() -> notification, settle 0, {len(samples)} samples: "
          f"p50 {pct(samples, 50):.1f} ms, p90 {pct(samples, 90):.1f} ms, "
          f"p99 {pct(samples, 99):.1f} ms, max {max(samples):.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
