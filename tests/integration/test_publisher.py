"""The publisher end to end: files dropped into a repository reach a
subscriber of its root collection on the private ejabberd as XEP-0214
revision items with the right size and digests; directories become
collections under the right parent; deletion deletes the node; an admin's
withdrawal retracts; the change feed carries every revision with its path;
acl grants become affiliations; whitelist nodes refuse strangers; an error
the service will not get over is parked, shown by `filerepo status`, and
blocks nothing else."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import uuid

from harness import Daemon, binary, check, client, load_services_env, psql, wait_for
from xmppclient import NS, error_condition, find

ENTRY_NS = "http://jabber.org/protocol/fileshare#item_metadata"
SIPUB_NS = "http://jabber.org/protocol/sipub"
SI_FILE_NS = "http://jabber.org/protocol/si/profile/file-transfer"
HASHES_NS = "urn:xmpp:hashes:2"
CHANGE_NS = "urn:x-filerepo:change:0"
EVENT = NS["pubsub_event"]


def event_items(msg):
    """[(node, item id, item Element)] of a pubsub event message."""
    out = []
    event = msg.find(f"{{{EVENT}}}event")
    for items in event.findall(f"{{{EVENT}}}items") if event is not None else []:
        for item in items.findall(f"{{{EVENT}}}item"):
            out.append((items.get("node"), item.get("id"), item))
    return out


def wait_item(sub, node, item_id, timeout=30):
    """The <item/> of the first notification of (node, item_id)."""
    msg = sub.wait_message(lambda m: any(n == node and i == item_id
                                         for n, i, _ in event_items(m)), timeout)
    return next(it for n, i, it in event_items(msg) if n == node and i == item_id)


def wait_event(sub, tag, node, timeout=30):
    def match(m):
        event = m.find(f"{{{EVENT}}}event")
        if event is None:
            return False
        return any(e.get("node") == node for e in event.findall(f"{{{EVENT}}}{tag}"))
    return sub.wait_message(match, timeout)


def check_entry(item, data, name, component):
    """The XEP-0214 payload of a revision of `data`."""
    entry = item.find(f"{{{ENTRY_NS}}}entry")
    check(entry is not None, f"item has an entry payload: {item}")
    size = entry.find(f"{{{ENTRY_NS}}}size").text
    check(size == str(len(data)), f"size {size} == {len(data)}")
    sums = {c.get("type"): c.text for c in entry.findall(f"{{{ENTRY_NS}}}checksum")}
    check(sums.get("sha256") == hashlib.sha256(data).hexdigest()
          and sums.get("sha1") == hashlib.sha1(data).hexdigest(), f"checksums {sums}")
    modified = entry.find(f"{{{ENTRY_NS}}}modified").text
    check(len(modified) == 20 and modified.endswith("Z") and modified[10] == "T",
          f"XEP-0082 modified: {modified}")
    check(entry.find(f"{{{ENTRY_NS}}}mime").text, "mime present")
    hashes = {h.get("algo"): h.text for h in entry.findall(f"{{{HASHES_NS}}}hash")}
    check(hashes.get("sha-256") == base64.b64encode(hashlib.sha256(data).digest()).decode(),
          f"XEP-0300 sha-256: {hashes}")
    mirror = entry.find(f"{{{ENTRY_NS}}}mirrors/{{{ENTRY_NS}}}mirror")
    check(mirror is not None and mirror.get("type") == "sipub", "a sipub mirror")
    sipub = mirror.find(f"{{{SIPUB_NS}}}sipub")
    check(sipub is not None and sipub.get("from") == component
          and sipub.get("profile") == SI_FILE_NS, f"sipub at the daemon: {sipub.attrib}")
    f = sipub.find(f"{{{SI_FILE_NS}}}file")
    check(f is not None and f.get("name") == name and f.get("size") == str(len(data)),
          f"si file element {f.attrib if f is not None else None}")


def iq(c, service, body, type_="get"):
    return c.iq(f"<iq type='{type_}' to='{service}'>{body}</iq>")


def items_of(c, service, node):
    reply = iq(c, service, f"<pubsub xmlns='{NS['pubsub']}'><items node='{node}'/></pubsub>")
    if reply.get("type") != "result":
        return None, error_condition(reply)
    items = find(reply, "pubsub:pubsub/pubsub:items")
    return [i for i in items.findall(f"{{{NS['pubsub']}}}item")], None


def subscribe(c, service, node):
    return iq(c, service, f"<pubsub xmlns='{NS['pubsub']}'><subscribe node='{node}' "
              f"jid='{c.jid}'/></pubsub>", "set")


def cli(daemon, *args):
    out = subprocess.run([binary("filerepo"), "-c", daemon.config, *args],
                         capture_output=True, text=True)
    return out.returncode, out.stdout, out.stderr


def write(path, data):
    tmp = os.path.join(os.path.dirname(path), ".upload.part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def wrong_service(env):
    """A pubsub service that is not there (ejabberd, without s2s, answers
    forbidden): the rows are parked with the server's words, shown in
    `filerepo status`; once the daemon is pointed at the right service,
    `filerepo republish` brings the repository out whole."""
    repo = "ws" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="filerepo-ws-") as root:
        with open(os.path.join(root, "x.txt"), "wb") as f:
            f.write(b"waiting for a service\n")
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "none"}}
        with Daemon(env, extra=extra, pubsub="files-nobody." + env["XMPP_DOMAIN"]) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            wait_for("the rows parked", lambda: sql(
                "SELECT 1 FROM outbox WHERE state = 'parked' AND action = 'create_leaf'"))
            rc, out, _ = cli(daemon, "status", "--json")
            status = json.loads(out)
            check(rc == 0 and [p["node"] for p in status["parked"]]
                  == [repo, f"{repo}/x.txt"]
                  and all("files-nobody" in p["error"] for p in status["parked"])
                  and status["retrying"] == [], f"status with a missing service: {status}")
            check(daemon.stop() == 0, "clean stop")
            with open(daemon.config) as f:
                text = f.read()
            with open(daemon.config, "w") as f:
                f.write(text.replace("files-nobody.", "pubsub."))
            daemon.start()
            rc, out, err = cli(daemon, "republish", repo)
            check(rc == 0, f"republish: {err}")
            wait_for("everything published", lambda: not sql(
                "SELECT 1 FROM outbox WHERE state <> 'done'"), timeout=120)
            alice = client(env, "alice")
            items, _ = items_of(alice, env["XMPP_PUBSUB_JID"], f"{repo}/x.txt")
            check([i.get("id") for i in items] == ["1"], "published after republish")
            alice.close()
            check(daemon.stop() == 0, "clean stop")
    print("ok   a missing pubsub service: rows parked and shown; republish recovers")


def withdrawn_before_published(env):
    """A new file's revision withdrawn while the daemon is away from XMPP:
    its leaf is created all the same, with no item; the other new file
    gets its node and item 1; nothing is parked."""
    repo = "wb" + uuid.uuid4().hex[:8]
    service = env["XMPP_PUBSUB_JID"]
    with tempfile.TemporaryDirectory(prefix="filerepo-wb-") as root:
        for name in ("gone.txt", "kept.txt"):
            with open(os.path.join(root, name), "wb") as f:
                f.write(name.encode() + b" before publishing\n")
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "none"}}
        # Port 1: nothing listens there, so the rows wait.
        with Daemon(env, extra=extra, pubsub=service, port=1) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            wait_for("both files indexed", lambda: sql(
                "SELECT count(*) FROM outbox WHERE action = 'create_leaf' AND state = 'pending'"
                " AND revision_id IS NOT NULL") == ["2"])
            rc, out, err = cli(daemon, "revision", "withdraw", f"{repo}/gone.txt", "1")
            check(rc == 0, f"revision withdraw: {rc} {out} {err}")
            check(daemon.stop() == 0, "clean stop")
            with open(daemon.config) as f:
                text = f.read()
            with open(daemon.config, "w") as f:
                f.write(text.replace('"port": 1,', f'"port": {env["XMPP_COMPONENT_PORT"]},'))
            daemon.start()
            wait_for("everything published", lambda: not sql(
                "SELECT 1 FROM outbox WHERE state <> 'done'"), timeout=60)
            alice = client(env, "alice")
            items, error = items_of(alice, service, f"{repo}/gone.txt")
            check(error is None and items == [], f"gone.txt: a node, no item ({error})")
            items, error = items_of(alice, service, f"{repo}/kept.txt")
            check(error is None and [i.get("id") for i in items] == ["1"],
                  f"kept.txt: item 1 ({error})")
            # Never announced: the change feed has kept.txt only.
            items, error = items_of(alice, service, f"{repo}#changes")
            paths = [c.get("path") for i in items or []
                     for c in i.findall(f"{{{CHANGE_NS}}}change")]
            check(error is None and paths == ["kept.txt"], f"feed: {paths} ({error})")
            alice.close()
            check(daemon.stop() == 0, "clean stop")
    print("ok   a new file's revision withdrawn before publishing: its node, and no item")


def no_feed(env):
    """xmpp.change_feed off: the file's node gets its item, no feed node."""
    repo = "nf" + uuid.uuid4().hex[:8]
    service = env["XMPP_PUBSUB_JID"]
    with tempfile.TemporaryDirectory(prefix="filerepo-nf-") as root:
        with open(os.path.join(root, "y.txt"), "wb") as f:
            f.write(b"no feed\n")
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "none"}}
        with Daemon(env, extra=extra, change_feed="off") as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            wait_for("published", lambda: sql("SELECT 1 FROM outbox WHERE state = 'done'"
                                              " AND revision_id IS NOT NULL"))
            check(not sql("SELECT 1 FROM outbox WHERE state <> 'done'"), "all done")
            alice = client(env, "alice")
            items, _ = items_of(alice, service, f"{repo}/y.txt")
            check([i.get("id") for i in items] == ["1"], "the item is there")
            r = iq(alice, service, f"<query xmlns='{NS['disco_info']}' node='{repo}#changes'/>")
            check(error_condition(r) == "item-not-found", "no feed node")
            alice.close()
            check(daemon.stop() == 0, "clean stop")
    print("ok   xmpp.change_feed off: no feed node")


def main():
    env = load_services_env()
    service = env["XMPP_PUBSUB_JID"]
    repo = "pub" + uuid.uuid4().hex[:8]
    closed = "wl" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="filerepo-pub-") as root, \
            tempfile.TemporaryDirectory(prefix="filerepo-wl-") as wl_root:
        with open(os.path.join(wl_root, "secret.txt"), "wb") as f:
            f.write(b"for members only")
        extra = {"repositories": [
                     {"name": repo, "path": root, "title": "Test releases",
                      "description": "published by test_publisher"},
                     {"name": closed, "path": wl_root, "access": "whitelist",
                      "members": [env["XMPP_USER_CAROL"]]}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"}}
        with Daemon(env, extra=extra, pubsub=service) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            wait_for("the root collection", lambda: sql(
                f"SELECT pubsub_node FROM repository WHERE name = '{repo}'"
                " AND pubsub_node IS NOT NULL"))
            alice = client(env, "alice")
            r = subscribe(alice, service, repo)
            check(r.get("type") == "result", f"alice subscribes to {repo}: {error_condition(r)}")

            # `filerepo subscribe` as bob, next to alice's independent client.
            sub_env = dict(os.environ, FILEREPO_XMPP_JID=env["XMPP_USER_BOB"],
                           FILEREPO_XMPP_PASSWORD=env["XMPP_PASS_BOB"])
            follower = subprocess.Popen(
                [binary("filerepo"), "subscribe", "--json", "--count", "3",
                 "--server", f"{env['XMPP_HOST']}:{env['XMPP_C2S_PORT']}", service, repo],
                env=sub_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            said = follower.stderr.readline()
            check("subscribed to" in said, f"filerepo subscribe: {said}")

            # A file added: item 1 on repo/a.txt, seen through the root.
            first = b"release one\n"
            write(os.path.join(root, "a.txt"), first)
            item = wait_item(alice, f"{repo}/a.txt", "1")
            check_entry(item, first, "a.txt", daemon.component)
            print("ok   a new file: item 1 with size, checksums, hashes and the sipub mirror")

            # Modified: item 2 on the same node.
            second = b"release one, fixed\n" * 100
            write(os.path.join(root, "a.txt"), second)
            check_entry(wait_item(alice, f"{repo}/a.txt", "2"), second, "a.txt",
                        daemon.component)
            print("ok   modified: item 2 on the same node")

            # A file in a new subdirectory: a collection under the root.
            os.makedirs(os.path.join(root, "sub", "deeper"))
            third = os.urandom(5000)
            write(os.path.join(root, "sub", "deeper", "b.bin"), third)
            check_entry(wait_item(alice, f"{repo}/sub/deeper/b.bin", "1"), third, "b.bin",
                        daemon.component)
            r = iq(alice, service, f"<query xmlns='{NS['disco_items']}' node='{repo}'/>")
            children = [i.get("node") for i in r.iter(f"{{{NS['disco_items']}}}item")]
            check(f"{repo}/sub" in children and f"{repo}/a.txt" in children,
                  f"disco#items of the root: {children}")
            r = iq(alice, service, f"<query xmlns='{NS['disco_items']}' node='{repo}/sub'/>")
            children = [i.get("node") for i in r.iter(f"{{{NS['disco_items']}}}item")]
            check(children == [f"{repo}/sub/deeper"], f"disco#items of sub: {children}")
            r = iq(alice, service, f"<query xmlns='{NS['disco_info']}' node='{repo}/sub/deeper'/>")
            fields = {f.get("var"): [v.text for v in f.findall(f"{{{NS['data']}}}value")]
                      for f in r.iter(f"{{{NS['data']}}}field")}
            check(fields.get("pubsub#type") is not None or r.get("type") == "result",
                  "disco#info of a directory node")
            print("ok   a new subdirectory: collections under the right parent")

            out, err = follower.communicate(timeout=30)
            lines = [json.loads(line) for line in out.splitlines()]
            seen = [(n["node"], n["item"], n["size"], n["sha256"]) for n in lines]
            check(follower.returncode == 0 and seen == [
                (f"{repo}/a.txt", "1", len(first), hashlib.sha256(first).hexdigest()),
                (f"{repo}/a.txt", "2", len(second), hashlib.sha256(second).hexdigest()),
                (f"{repo}/sub/deeper/b.bin", "1", len(third), hashlib.sha256(third).hexdigest())],
                f"filerepo subscribe printed {seen} ({follower.returncode}: {err})")
            check(all(n["mirrors"] == [f"xmpp:{daemon.component}"] for n in lines),
                  f"mirrors: {lines}")
            print("ok   filerepo subscribe prints node, item, size, sha-256 and mirrors")

            # The catalog records the node ids; nothing is left to do.
            nodes = sql("SELECT path || '=' || pubsub_node FROM entry WHERE deleted_at IS NULL"
                        f" AND repository_id = (SELECT id FROM repository WHERE name = '{repo}')"
                        " ORDER BY path")
            check(nodes == [f"={repo}", f"a.txt={repo}/a.txt", f"sub={repo}/sub",
                            f"sub/deeper={repo}/sub/deeper",
                            f"sub/deeper/b.bin={repo}/sub/deeper/b.bin"],
                  f"entry.pubsub_node: {nodes}")

            # The change feed: one item per revision, with the path.
            feed = f"{repo}#changes"
            items = wait_for("three feed items", lambda: (lambda got: got if got and len(got) >= 3
                                                          else None)(items_of(alice, service,
                                                                              feed)[0]))
            paths = sorted((c.get("path"), c.get("revision")) for i in items
                           for c in i.findall(f"{{{CHANGE_NS}}}change"))
            check(paths == [("a.txt", "1"), ("a.txt", "2"), ("sub/deeper/b.bin", "1")],
                  f"feed items: {paths}")
            print("ok   the change feed has every revision with its path")

            # Withdrawn by an admin: retracted.
            rc, out, err = cli(daemon, "revision", "withdraw", f"{repo}/a.txt", "1")
            check(rc == 0, f"revision withdraw: {rc} {out} {err}")
            wait_event(alice, "items", f"{repo}/a.txt")  # the retract notification
            items, _ = items_of(alice, service, f"{repo}/a.txt")
            wait_for("item 1 retracted", lambda: [i.get("id") for i in
                                                  items_of(alice, service, f"{repo}/a.txt")[0]]
                     == ["2"])
            rc, out, err = cli(daemon, "revision", "withdraw", f"{repo}/a.txt", "9")
            check(rc == 66, f"withdrawing a revision that does not exist: {rc} {err}")
            print("ok   revision withdraw retracts the item")

            # Deleted from disk: the node is deleted.
            os.unlink(os.path.join(root, "a.txt"))
            wait_event(alice, "delete", f"{repo}/a.txt")
            r = iq(alice, service, f"<query xmlns='{NS['disco_info']}' node='{repo}/a.txt'/>")
            check(error_condition(r) == "item-not-found", "the deleted file's node is gone")
            print("ok   a deleted file deletes its node")

            # acl grant: an affiliation on every node of the repository.
            bob = client(env, "bob")
            aff = (f"<pubsub xmlns='{NS['pubsub_owner']}'>"
                   f"<affiliations node='{repo}/sub/deeper/b.bin'/></pubsub>")
            check(iq(bob, service, aff).get("type") == "error", "bob is no owner yet")
            rc, out, err = cli(daemon, "acl", "grant", repo, env["XMPP_USER_BOB"], "owner")
            check(rc == 0, f"acl grant: {rc} {out} {err}")

            def bob_owner(node):
                r = iq(bob, service, f"<pubsub xmlns='{NS['pubsub_owner']}'>"
                       f"<affiliations node='{node}'/></pubsub>")
                return r.get("type") == "result" and any(
                    a.get("jid") == env["XMPP_USER_BOB"] and a.get("affiliation") == "owner"
                    for a in r.iter(f"{{{NS['pubsub_owner']}}}affiliation"))
            for node in (repo, f"{repo}/sub", f"{repo}/sub/deeper/b.bin", feed):
                wait_for(f"bob owner of {node}", lambda: bob_owner(node))
            rc, out, _ = cli(daemon, "acl", "list", repo)
            check(rc == 0 and "owner" in out and env["XMPP_USER_BOB"] in out, f"acl list: {out}")
            rc, out, err = cli(daemon, "acl", "revoke", repo, env["XMPP_USER_BOB"], "owner")
            check(rc == 0, f"acl revoke: {rc} {err}")
            wait_for("bob no longer owner", lambda: not bob_owner(f"{repo}/sub/deeper/b.bin"))
            rc, out, err = cli(daemon, "acl", "grant", repo, "bob", "king")
            check(rc == 65, f"a bad role is refused: {rc} {err}")
            print("ok   acl grant and revoke become affiliations on every node")

            # Whitelist: a stranger may neither subscribe nor read; a member may.
            wl_node = f"{closed}/secret.txt"
            carol = client(env, "carol")
            wait_for("the whitelist repository published",
                     lambda: items_of(carol, service, wl_node)[0])
            r = subscribe(bob, service, wl_node)
            check(r.get("type") == "error", f"bob may not subscribe: {r.get('type')}")
            items, why = items_of(bob, service, wl_node)
            check(items is None, "bob may not read the items")
            r = subscribe(bob, service, closed)
            check(r.get("type") == "error", "bob may not subscribe to the root either")
            r = subscribe(carol, service, wl_node)
            check(r.get("type") == "result", f"carol may subscribe: {error_condition(r)}")
            items, _ = items_of(carol, service, wl_node)
            check([i.get("id") for i in items] == ["1"], "carol reads the items")
            print("ok   whitelist nodes refuse strangers and serve members")

            # An error retrying cannot fix is parked, shown, and blocks nothing.
            sql(f"INSERT INTO outbox (repository_id, node, action, payload)"
                f" SELECT id, name || '/nowhere', 'configure_node',"
                f" '{{\"path\": \"nowhere\", \"expanded\": true}}' FROM repository"
                f" WHERE name = '{repo}'; NOTIFY filerepo_outbox")
            fourth = b"after the parked row\n"
            write(os.path.join(root, "c.txt"), fourth)
            check_entry(wait_item(alice, f"{repo}/c.txt", "1"), fourth, "c.txt",
                        daemon.component)
            wait_for("the row parked", lambda: sql("SELECT 1 FROM outbox WHERE state = 'parked'"
                                                   " AND node LIKE '%/nowhere'"))
            rc, out, _ = cli(daemon, "status")
            check(rc == 0 and "1 parked" in out and "item-not-found" in out
                  and f"{repo}/nowhere" in out, f"status shows the parked row:\n{out}")
            rc, out, _ = cli(daemon, "status", "--json")
            parked = json.loads(out)["parked"]
            check(len(parked) == 1 and "item-not-found" in parked[0]["error"], f"json: {parked}")
            print("ok   a parked row shows in filerepo status and blocks nothing")

            # Nothing else left behind.
            left = sql("SELECT state || ' ' || action || ' ' || node FROM outbox"
                       " WHERE state <> 'done' AND node NOT LIKE '%/nowhere'")
            check(left == [], f"outbox rows not done: {left}")

            # republish rebuilds the nodes and items from the catalog.
            rc, out, err = cli(daemon, "republish", repo)
            check(rc == 0 and "queued" in out, f"republish: {rc} {out} {err}")
            wait_for("republished", lambda: not sql("SELECT 1 FROM outbox WHERE state <> 'done'"))
            items, _ = items_of(alice, service, f"{repo}/sub/deeper/b.bin")
            check([i.get("id") for i in items] == ["1"], "the item is there after republish")
            rc, out, _ = cli(daemon, "status")
            check("0 parked" in out, f"republish clears the parked rows: {out}")
            print("ok   republish")

            # A configuration change reaches the existing nodes.
            check(daemon.stop() == 0, "clean stop")
            with open(daemon.config) as f:
                text = f.read()
            with open(daemon.config, "w") as f:
                f.write(text.replace("Test releases", "Renamed releases"))
            mark = len(daemon.log())
            daemon.start()
            daemon.wait_log(r"publish: publishing to ", after=mark)

            def title():
                r = iq(alice, service, f"<query xmlns='{NS['disco_info']}' node='{repo}'/>")
                return [v.text for f in r.iter(f"{{{NS['data']}}}field")
                        if f.get("var") == "pubsub#title"
                        for v in f.findall(f"{{{NS['data']}}}value")]
            wait_for("the new title", lambda: title() == ["Renamed releases"])
            print("ok   a changed title reconfigures the root node")

            for c in (alice, bob, carol):
                c.close()
            check(daemon.stop() == 0, "clean stop")
    wrong_service(env)
    withdrawn_before_published(env)
    no_feed(env)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
