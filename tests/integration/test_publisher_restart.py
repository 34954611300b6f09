"""Nothing lost, nothing duplicated: ejabberd restarted three times while
500 files are published, then filerepod killed with -9 while 200 more are;
afterwards every node and item is on the service exactly once and matches
the catalog, and a subscriber of the root has seen every item.

The subscriber's session dies with each ejabberd restart; on reconnecting
it catches up from the repository's change feed, as a real one would.  The
note at the end counts items seen by notification, items caught up, and
repeated notifications of one item.

NOTE: restarts the run's ejabberd (runs alone)."""

import collections
import hashlib
import os
import signal
import sys
import tempfile
import threading
import time
import uuid

import harness
from harness import Daemon, check, load_services_env, psql, services
from xmppclient import NS, Client, XmppError, error_condition, find

EVENT = NS["pubsub_event"]
ENTRY_NS = "http://jabber.org/protocol/fileshare#item_metadata"
CHANGE_NS = "urn:x-filerepo:change:0"


def wait_for(what, fn, timeout=120, step=0.1):
    """harness.wait_for, with the patience a restart needs."""
    return harness.wait_for(what, fn, timeout=timeout, step=step)


class Subscriber:
    """alice, subscribed to the root: notifications counted per (node, item);
    after a lost session, a new one catches up from the change feed."""

    def __init__(self, env, service, repo):
        self.env, self.service, self.repo = env, service, repo
        self.notified = collections.Counter()
        self.caught_up = set()
        self.client = None

    def connect(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client = Client(self.env["XMPP_USER_ALICE"], self.env["XMPP_PASS_ALICE"],
                                     self.env["XMPP_HOST"], self.env["XMPP_C2S_PORT"]).connect()
                r = self.client.iq(f"<iq type='set' to='{self.service}'><pubsub xmlns="
                                   f"'{NS['pubsub']}'><subscribe node='{self.repo}' "
                                   f"jid='{self.env['XMPP_USER_ALICE']}'/></pubsub></iq>")
                check(r.get("type") == "result", f"subscribe: {error_condition(r)}")
                return
            except (XmppError, OSError):
                if self.client:
                    self.client.close()
                self.client = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def harvest(self):
        for m in self.client.messages() if self.client else []:
            event = m.find(f"{{{EVENT}}}event")
            for items in event.findall(f"{{{EVENT}}}items") if event is not None else []:
                for item in items.findall(f"{{{EVENT}}}item"):
                    if item.find(f"{{{ENTRY_NS}}}entry") is not None:
                        self.notified[(items.get("node"), item.get("id"))] += 1
        if self.client:
            # Taken: messages() copies, so drop them by waiting for none.
            with self.client._lock:
                self.client._messages.clear()

    def reconnect(self):
        self.harvest()
        if self.client:
            self.client.close()
        self.connect()
        self.catch_up()

    def catch_up(self):
        feed = f"{self.repo}#changes"
        r = self.client.iq(f"<iq type='get' to='{self.service}'><pubsub xmlns='{NS['pubsub']}'>"
                           f"<items node='{feed}'/></pubsub></iq>", timeout=30)
        if r.get("type") != "result":
            return
        for item in find(r, "pubsub:pubsub/pubsub:items").findall(f"{{{NS['pubsub']}}}item"):
            c = item.find(f"{{{CHANGE_NS}}}change")
            if c is not None:
                self.caught_up.add((c.get("node"), c.get("revision")))


def write_files(root, names, tag):
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".part"
        with open(tmp, "wb") as f:
            f.write(f"{tag} {name}\n".encode() * 3)
        os.rename(tmp, path)


def restart_xmpp():
    check(services("restart-xmpp").returncode == 0, "services.sh restart-xmpp")


def verify(env, daemon, sub, repo, service, expected):
    """Once the catalog has `expected` revisions, every live file's node
    holds exactly the catalog's revisions with their sha-256; the feed holds
    every revision once."""
    sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
    wait_for(f"{expected} revisions recorded", lambda: int(sql(
        "SELECT count(*) FROM revision")[0]) >= expected, timeout=180, step=0.2)
    wait_for("the outbox drained", lambda: not sql(
        "SELECT 1 FROM outbox WHERE state = 'pending'"), timeout=180, step=0.3)
    parked = sql("SELECT action || ' ' || node || ': ' || last_error FROM outbox"
                 " WHERE state = 'parked'")
    check(parked == [], f"nothing parked: {parked}")
    want = collections.defaultdict(dict)
    for row in sql("SELECT e.path, v.number, encode(v.sha256, 'hex') FROM entry e"
                   " JOIN revision v ON v.entry_id = e.id"
                   " WHERE e.deleted_at IS NULL AND e.kind = 'file' ORDER BY e.path"):
        path, number, sha = row.split("|")
        want[f"{repo}/{path}"][number] = sha
    c = Client(env["XMPP_USER_BOB"], env["XMPP_PASS_BOB"], env["XMPP_HOST"],
               env["XMPP_C2S_PORT"]).connect()
    try:
        for node, revs in want.items():
            r = c.iq(f"<iq type='get' to='{service}'><pubsub xmlns='{NS['pubsub']}'>"
                     f"<items node='{node}'/></pubsub></iq>", timeout=30)
            check(r.get("type") == "result", f"items of {node}: {error_condition(r)}")
            got = {}
            for item in find(r, "pubsub:pubsub/pubsub:items").findall(f"{{{NS['pubsub']}}}item"):
                check(item.get("id") not in got, f"{node}: item {item.get('id')} twice")
                sums = {s.get("type"): s.text
                        for s in item.iter(f"{{{ENTRY_NS}}}checksum")}
                got[item.get("id")] = sums.get("sha256")
            check(got == revs, f"{node}: items {got} != catalog {revs}")
        r = c.iq(f"<iq type='get' to='{service}'><pubsub xmlns='{NS['pubsub']}'>"
                 f"<items node='{repo}#changes'/></pubsub></iq>", timeout=30)
        feed = [(ch.get("node"), ch.get("revision"))
                for ch in r.iter(f"{{{CHANGE_NS}}}change")]
        check(len(feed) == len(set(feed)) == sum(len(v) for v in want.values()),
              f"the feed has each revision once ({len(feed)} items)")
    finally:
        c.close()
    # The subscriber: every revision seen, by notification or catch-up.
    sub.harvest()
    sub.catch_up()
    every = {(node, number) for node, revs in want.items() for number in revs}
    seen = set(sub.notified) | sub.caught_up
    missing = every - seen
    check(not missing, f"the subscriber missed {len(missing)}: {sorted(missing)[:5]}")
    repeated = {k: n for k, n in sub.notified.items() if n > 1}
    print(f"note: {len(every)} revisions; {len(set(sub.notified) & every)} seen by notification, "
          f"{len(every - set(sub.notified))} only by catching up from the feed; "
          f"{len(repeated)} items notified more than once "
          f"({sum(repeated.values()) - len(repeated)} repeats)")
    return len(every)


def main():
    env = load_services_env()
    service = env["XMPP_PUBSUB_JID"]
    repo = "rs" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="filerepo-pubrs-") as root:
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 100, "content_store": "none"}}
        with Daemon(env, extra=extra, pubsub=service) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            wait_for("the root collection", lambda: sql(
                "SELECT 1 FROM repository WHERE pubsub_node IS NOT NULL"))
            sub = Subscriber(env, service, repo)
            sub.connect()

            # 500 files in five waves; ejabberd restarted three times while
            # they are being published.
            names = [f"d{i % 7}/s{i % 3}/f{i:04d}.txt" for i in range(500)]
            waves = [names[i:i + 100] for i in range(0, 500, 100)]
            for n, wave in enumerate(waves):
                write_files(root, wave, "one")
                if n < 3:
                    # Wait until publishing is under way, then pull the plug.
                    wait_for("publishing under way", lambda: int(sql(
                        "SELECT count(*) FROM outbox WHERE state = 'done'"
                        " AND revision_id IS NOT NULL")[0]) > 100 * n, step=0.01)
                    restart_xmpp()
                    sub.reconnect()
            total = verify(env, daemon, sub, repo, service, 500)
            check(total == 500, f"500 revisions published ({total})")
            print("ok   three ejabberd restarts during a 500-file publish: nothing lost or doubled")

            # filerepod killed with -9 in the middle of publishing.
            more = [f"k/f{i:04d}.txt" for i in range(200)]
            write_files(root, more, "two")
            wait_for("some of them published", lambda: sql(
                "SELECT 1 FROM outbox WHERE state = 'done' AND node LIKE '%/k/%'"
                " AND revision_id IS NOT NULL"), timeout=120, step=0.01)
            daemon.stop(signal.SIGKILL)
            pending = sql("SELECT count(*) FROM outbox WHERE state = 'pending'")[0]
            print(f"killed with {pending} outbox rows pending")
            mark = len(daemon.log())
            daemon.start()
            daemon.wait_log(r"publish: publishing to ", after=mark)
            total = verify(env, daemon, sub, repo, service, 700)
            check(total == 700, f"700 revisions published ({total})")
            print("ok   filerepod killed with -9 during a publish: nothing lost or doubled")
            sub.client.close()
            check(daemon.stop() == 0, "clean stop")
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
