"""The query service end to end: a published tree indexed by the real daemon,
read back by an independent client (slixmpp) through the real ejabberd as
XEP-0329 listings with XEP-0059 paging, the XEP-0214 repository list and
disco; whitelist repositories hidden from strangers; every bad request
answered with its error."""

import base64
import hashlib
import json
import os
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

from harness import Daemon, binary, check, load_services_env, psql
from xmppclient import Client, NS, error_condition, find

BIG = 10000            # entries of the directory walked with RSM
FT = "urn:xmpp:jingle:apps:file-transfer:5"
HASHES = "urn:xmpp:hashes:2"
FILESHARE = "http://jabber.org/protocol/si/profile/fileshare"


def fis(client, to, node=None, rsm=""):
    """Sends an XEP-0329 query (rsm: the <set/> children); returns the reply."""
    attr = f" node={quoteattr(node)}" if node is not None else ""
    body = f"<set xmlns='{NS['rsm']}'>{rsm}</set>" if rsm is not None and rsm != "" else ""
    return client.iq(f"<iq type='get' to='{to}'><query xmlns='{NS['fis']}'{attr}>"
                     f"{body}</query></iq>")


def listing(reply):
    """(entries, rsm) of a listing: entries [('d'|'f', name, element)], rsm a
    dict with first, index, last, count (None when absent)."""
    check(reply.get("type") == "result", f"listing refused: {error_condition(reply)} "
                                         f"{ET.tostring(reply)[:400]!r}")
    query = find(reply, "fis:query")
    check(query is not None, "no fis query in the reply")
    entries = []
    for el in query:
        if el.tag == f"{{{NS['fis']}}}directory":
            entries.append(("d", el.get("name"), el))
        elif el.tag == f"{{{FT}}}file":
            entries.append(("f", el.find(f"{{{FT}}}name").text, el))
    s = query.find(f"{{{NS['rsm']}}}set")
    rsm = None
    if s is not None:
        first = s.find(f"{{{NS['rsm']}}}first")
        last = s.find(f"{{{NS['rsm']}}}last")
        count = s.find(f"{{{NS['rsm']}}}count")
        rsm = {"first": first.text if first is not None else None,
               "index": int(first.get("index")) if first is not None else None,
               "last": last.text if last is not None else None,
               "count": int(count.text) if count is not None else None}
    return entries, rsm


def names(entries):
    return [(k, n) for k, n, _ in entries]


def expect_error(reply, condition, what):
    check(reply.get("type") == "error" and error_condition(reply) == condition,
          f"{what}: wanted {condition}, got {reply.get('type')} {error_condition(reply)}")
    if condition == "bad-request":
        text = reply.find(f"{{jabber:client}}error/{{{NS['stanzas']}}}text")
        check(text is not None and text.text, f"{what}: bad-request without a text")


def wait_catalog(env, db, sql, want, timeout=240):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = psql(env, db, sql)
        if got == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"catalog: {sql} gave {got[:5] if got else got}, wanted {want}")


def make_tree(root):
    """The published tree; returns {relative path: bytes} of its files."""
    files = {
        "README.txt": b"read me\n",
        "proj/proj-1.0.tar.xz": os.urandom(3000),
        "proj/proj-1.1.tar.xz": os.urandom(5000),
        "proj/old.txt": b"going away\n",
        "proj/docs/guide.txt": b"guide\n",
        "proj/alpha/a.txt": b"a\n",
    }
    for rel, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    big = os.path.join(root, "big")
    os.makedirs(big)
    for i in range(BIG):
        open(os.path.join(big, f"f{i:05d}.dat"), "wb").close()
    for i in range(3):
        os.makedirs(os.path.join(big, f"sub{i}"))
        with open(os.path.join(big, f"sub{i}", "x"), "wb") as f:
            f.write(b"x")
    return files


def check_root_and_dirs(alice, to, files):
    # No node: the repositories, as directories only, with RSM.
    entries, rsm = listing(fis(alice, to))
    check(names(entries) == [("d", "releases")], f"root for alice: {names(entries)}")
    check(rsm and rsm["count"] == 1 and rsm["index"] == 0, f"root rsm {rsm}")

    # A repository: directories first, then files, by name.
    entries, rsm = listing(fis(alice, to, "releases"))
    check(names(entries) == [("d", "big"), ("d", "proj"), ("f", "README.txt")],
          f"releases: {names(entries)}")
    check(rsm["count"] == 3 and rsm["index"] == 0, f"releases rsm {rsm}")

    # A directory (old.txt was deleted: never listed), verbose: small page.
    entries, rsm = listing(fis(alice, to, "releases/proj"))
    check(names(entries) == [("d", "alpha"), ("d", "docs"), ("f", "proj-1.0.tar.xz"),
                             ("f", "proj-1.1.tar.xz")], f"proj: {names(entries)}")
    check(rsm["count"] == 4, f"proj rsm {rsm}")
    el = entries[2][2]
    data = files["proj/proj-1.0.tar.xz"]
    check(el.find(f"{{{FT}}}size").text == str(len(data)), "size of proj-1.0.tar.xz")
    check(el.find(f"{{{FT}}}media-type").text == "application/x-xz",
          f"media-type {el.find(f'{{{FT}}}media-type').text}")
    check(el.find(f"{{{FT}}}date").text.endswith("Z"), "date in UTC (XEP-0082)")
    hashes = {h.get("algo"): h.text for h in el.findall(f"{{{HASHES}}}hash")}
    check(hashes.get("sha-256") == base64.b64encode(hashlib.sha256(data).digest()).decode(),
          f"sha-256 of proj-1.0.tar.xz: {hashes}")
    check(hashes.get("sha-1") == base64.b64encode(hashlib.sha1(data).digest()).decode(),
          f"sha-1 of proj-1.0.tar.xz: {hashes}")

    # One file by its path: its details.
    entries, _ = listing(fis(alice, to, "releases/proj/proj-1.1.tar.xz"))
    check(names(entries) == [("f", "proj-1.1.tar.xz")], f"file details: {names(entries)}")
    check(entries[0][2].find(f"{{{FT}}}size").text == "5000", "file details: size")

    # Without <set/> a listing is capped at query.page_max and says so.
    entries, rsm = listing(fis(alice, to, "releases/big"))
    check(len(entries) == 500 and rsm["count"] == BIG + 3 and rsm["index"] == 0,
          f"unpaged big: {len(entries)} entries, rsm {rsm}")
    # A large page: names only.
    check(entries[3][2].find(f"{{{FT}}}size") is None, "large pages carry names only")


def walk(alice, to, node, page, forward=True, total=BIG + 3):
    """Pages through a listing; returns the names in listing order."""
    seen, uid = [], None
    while True:
        if forward:
            rsm = f"<max>{page}</max>" + (f"<after>{uid}</after>" if uid else "")
        else:
            rsm = f"<max>{page}</max>" + (f"<before>{uid}</before>" if uid else "<before/>")
        entries, r = listing(fis(alice, to, node, rsm))
        if not entries:
            check(r["first"] is None and r["last"] is None, f"empty page with ids {r}")
            break
        check(r["count"] == total, f"count {r['count']}")
        got = names(entries)
        if forward:
            check(r["index"] == len(seen), f"first index {r['index']} after {len(seen)}")
            seen += got
            uid = r["last"]
        else:
            check(r["index"] == total - len(seen) - len(got),
                  f"first index {r['index']} before {len(seen)} from the end")
            seen = got + seen
            uid = r["first"]
        if len(got) < page:
            break
    return seen


def check_paging(alice, to):
    expect = [("d", f"sub{i}") for i in range(3)] + [("f", f"f{i:05d}.dat")
                                                     for i in range(BIG)]
    forward = walk(alice, to, "releases/big", 487)
    check(forward == expect, f"forward walk: {len(forward)} entries, "
                             f"{len(set(forward))} distinct, in order: {forward == sorted(forward)}")
    backward = walk(alice, to, "releases/big", 333, forward=False)
    check(backward == expect, f"backward walk: {len(backward)} entries")

    # Index jumps land where they say.
    for index in (0, 1, 2, 3, 4567, BIG + 2):
        entries, r = listing(fis(alice, to, "releases/big", f"<max>10</max><index>{index}</index>"))
        check(names(entries) == expect[index:index + 10] and r["index"] == index,
              f"index {index}: {names(entries)[:2]} rsm {r}")
    entries, r = listing(fis(alice, to, "releases/big", f"<max>10</max><index>{BIG + 50}</index>"))
    check(entries == [] and r["count"] == BIG + 3, f"index past the end: {r}")
    # max=0: the count alone.
    entries, r = listing(fis(alice, to, "releases/big", "<max>0</max>"))
    check(entries == [] and r["count"] == BIG + 3, f"max 0: {r}")
    # The last page with an empty <before/>.
    entries, r = listing(fis(alice, to, "releases/big", "<max>5</max><before/>"))
    check(names(entries) == expect[-5:] and r["index"] == BIG - 2, f"last page: {r}")


def check_changes(env, db, alice, to, public):
    """Positions stay right when the directory changes between pages."""
    # Warm the service's memory of the directory at its current version.
    listing(fis(alice, to, "releases/big", "<max>10</max><index>9000</index>"))
    for i in (5, 2048, 7000):
        os.unlink(os.path.join(public, "big", f"f{i:05d}.dat"))
    open(os.path.join(public, "big", "f10000.dat"), "wb").close()
    wait_catalog(env, db, "SELECT count(*) FROM entry WHERE path = 'big/f07000.dat'"
                 " AND deleted_at IS NOT NULL", ["1"])
    wait_catalog(env, db, "SELECT count(*) FROM entry WHERE path = 'big/f10000.dat'"
                 " AND deleted_at IS NULL AND current_revision_id IS NOT NULL", ["1"])
    expect = [("d", f"sub{i}") for i in range(3)] + [
        ("f", f"f{i:05d}.dat") for i in range(BIG + 1) if i not in (5, 2048, 7000)]
    for index in (0, 4, 2047, 5000, 9000, len(expect) - 1):
        entries, r = listing(fis(alice, to, "releases/big", f"<max>10</max><index>{index}</index>"))
        check(names(entries) == expect[index:index + 10] and r["index"] == index
              and r["count"] == len(expect), f"index {index} after changes: rsm {r}")
    forward = walk(alice, to, "releases/big", 499, total=len(expect))
    check(forward == expect, f"forward walk after changes: {len(forward)} entries")
    # The triggers' counts agree with the entries, for every directory.
    wrong = psql(env, db, "SELECT d.path FROM entry d LEFT JOIN entry_listing_stats s"
                          " ON s.parent_id = d.id WHERE d.kind = 'directory' AND"
                          " coalesce(s.live, 0) <> (SELECT count(*) FROM entry c"
                          " WHERE c.parent_id = d.id AND c.deleted_at IS NULL)")
    check(wrong == [], f"entry_listing_stats wrong for {wrong}")


def check_access(env, to, clients):
    alice, bob, carol_desk, carol_phone = clients
    # bob is on the list by bare JID, carol only as carol@localhost/desk.
    for who, sees in ((alice, False), (bob, True), (carol_desk, True), (carol_phone, False)):
        entries, _ = listing(fis(who, to))
        visible = ("d", "private") in names(entries)
        check(visible == sees, f"{who.jid}: private listed: {visible}")
        reply = fis(who, to, "private")
        if sees:
            entries, _ = listing(reply)
            check(names(entries) == [("f", "secret.txt")], f"{who.jid}: {names(entries)}")
        else:
            expect_error(reply, "item-not-found", f"{who.jid} on private")
            expect_error(fis(who, to, "private/secret.txt"), "item-not-found",
                         f"{who.jid} on private/secret.txt")
        # The XEP-0214 list, to the bare JID under the component too.
        reply = who.iq(f"<iq type='get' to='releases@{to}'><fileshare xmlns='{FILESHARE}'>"
                       f"<list/></fileshare></iq>")
        check(reply.get("type") == "result", f"fileshare list: {error_condition(reply)}")
        repos = [(r.get("address"), r.get("node"), r.get("description"))
                 for r in reply.findall(f"{{{FILESHARE}}}fileshare/{{{FILESHARE}}}list/"
                                        f"{{{FILESHARE}}}repo")]
        want = [("pubsub." + env["XMPP_DOMAIN"], "private", "Team only")] if sees else []
        want += [("pubsub." + env["XMPP_DOMAIN"], "releases", "Public releases")]
        check(sorted(repos) == sorted(want), f"{who.jid}: fileshare list {repos}")
        # disco#items: the repositories as nodes.
        reply = who.iq(f"<iq type='get' to='{to}'><query xmlns='{NS['disco_items']}'/></iq>")
        items = [(i.get("jid"), i.get("node")) for i in
                 reply.findall(f"{{{NS['disco_items']}}}query/{{{NS['disco_items']}}}item")]
        want = [(to, "private")] if sees else []
        check(items == want + [(to, "releases")], f"{who.jid}: disco#items {items}")
        # disco#info on a node follows the same rule.
        reply = who.iq(f"<iq type='get' to='{to}'><query xmlns='{NS['disco_info']}' "
                       f"node='private'/></iq>")
        check((reply.get("type") == "result") == sees, f"{who.jid}: disco#info private")


def check_errors(alice, to):
    cases = [
        ("releases/nope", "", "item-not-found"),
        ("nope", "", "item-not-found"),
        ("releases/proj/../proj", "", "bad-request"),
        ("releases//proj", "", "bad-request"),
        ("releases/proj/", "", "bad-request"),
        ("/releases", "", "bad-request"),
        ("", "", "bad-request"),
        ("releases/" + "x" * 300, "", "bad-request"),
        ("../../etc/passwd", "", "bad-request"),
        ("releases/big", "<index>-1</index>", "bad-request"),
        ("releases/big", "<max>501</max>", "bad-request"),
        ("releases/big", "<max>-3</max>", "bad-request"),
        ("releases/big", "<after>garbage!</after>", "bad-request"),
        ("releases/big", "<after>f6e6f7065</after>", "item-not-found"),
        ("releases/big", "<after>a</after><before>b</before>", "bad-request"),
        (None, "<after>zz</after>", "bad-request"),
    ]
    for node, rsm, condition in cases:
        expect_error(fis(alice, to, node, rsm), condition, f"node {node!r} rsm {rsm!r}")
    reply = alice.iq(f"<iq type='get' to='{to}'><fileshare xmlns='{FILESHARE}'/></iq>")
    expect_error(reply, "bad-request", "fileshare without <list/>")


def check_disco_info(alice, to):
    reply = alice.iq(f"<iq type='get' to='{to}'><query xmlns='{NS['disco_info']}'/></iq>")
    features = [f.get("var") for f in
                reply.findall(f"{{{NS['disco_info']}}}query/{{{NS['disco_info']}}}feature")]
    check(features[:6] == [NS["disco_info"], NS["disco_items"], "urn:xmpp:ping", NS["fis"],
                           NS["rsm"], FILESHARE], f"features {features}")
    reply = alice.iq(f"<iq type='get' to='{to}'><query xmlns='{NS['disco_info']}' "
                     f"node='releases/proj'/></iq>")
    features = [f.get("var") for f in
                reply.findall(f"{{{NS['disco_info']}}}query/{{{NS['disco_info']}}}feature")]
    check(NS["fis"] in features, f"node features {features}")
    reply = alice.iq(f"<iq type='get' to='{to}'><query xmlns='{NS['disco_info']}' "
                     f"node='releases/nope'/></iq>")
    expect_error(reply, "item-not-found", "disco#info on an unknown node")


def check_cli(env, to, top):
    """filerepo browse: a user's client, paging with RSM."""
    secret = os.path.join(top, "alice.password")
    with open(secret, "w") as f:
        f.write(env["XMPP_PASS_ALICE"] + "\n")
    cli_env = dict(os.environ, FILEREPO_XMPP_JID=env["XMPP_USER_ALICE"],
                   FILEREPO_XMPP_PASSWORD_FILE=secret,
                   FILEREPO_XMPP_SERVER=f"{env['XMPP_HOST']}:{env['XMPP_C2S_PORT']}")

    def browse(*args, environ=cli_env):
        return subprocess.run([binary("filerepo"), "browse", *args], env=environ,
                              capture_output=True, text=True, timeout=120)

    out = browse("--json", to, "releases/big", "--page-size", "499")
    check(out.returncode == 0, f"browse --json: {out.returncode} {out.stderr}")
    doc = json.loads(out.stdout)
    expect = [f"sub{i}" for i in range(3)] + [f"f{i:05d}.dat" for i in range(BIG)]
    check([e["name"] for e in doc["entries"]] == expect and doc["count"] == BIG + 3,
          f"browse --json: {len(doc['entries'])} entries, count {doc.get('count')}")
    check([e["type"] for e in doc["entries"][:4]] == ["directory"] * 3 + ["file"],
          "browse --json: entry types")

    out = browse(to, "releases/proj")
    check(out.returncode == 0 and out.stdout.splitlines()[:2] == ["alpha/", "docs/"]
          and out.stdout.splitlines()[2].startswith("proj-1.0.tar.xz\t3000\t"),
          f"browse releases/proj: {out.returncode} {out.stdout!r} {out.stderr}")
    out = browse(to)
    check(out.returncode == 0 and out.stdout == "releases/\n", f"browse root: {out.stdout!r}")
    out = browse(to, "private")
    check(out.returncode == 66 and "item-not-found" in out.stderr,
          f"browse private as alice: {out.returncode} {out.stderr}")
    out = browse(to, "releases/../x")
    check(out.returncode == 65 and "bad-request" in out.stderr,
          f"browse a bad path: {out.returncode} {out.stderr}")
    out = browse(to, environ={k: v for k, v in cli_env.items() if k != "FILEREPO_XMPP_JID"})
    check(out.returncode == 78 and "--account" in out.stderr,
          f"browse without an account: {out.returncode} {out.stderr}")
    wrong = os.path.join(top, "wrong.password")
    with open(wrong, "w") as f:
        f.write("not-the-password\n")
    out = browse("--password-file", wrong, to)
    check(out.returncode == 69, f"browse with a wrong password: {out.returncode} {out.stderr}")


def check_rate_limit(env):
    with Daemon(env, extra={"query": {"rate_per_second": 1, "rate_burst": 3}}) as daemon:
        daemon.wait_log(r"xmpp: connected as ")
        daemon.wait_log(r"catalog: connected")
        with Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"], env["XMPP_HOST"],
                    env["XMPP_C2S_PORT"]) as alice:
            replies = [fis(alice, daemon.component) for _ in range(20)]
            limited = [r for r in replies if error_condition(r) == "resource-constraint"]
            check(limited, "20 requests in a row with a burst of 3 and 1/s: none refused")
            check(all(r.get("type") == "result" or r in limited for r in replies),
                  "other errors than resource-constraint")


def main():
    env = load_services_env()
    top = tempfile.mkdtemp(prefix="filerepo-query-")
    public, private = os.path.join(top, "releases"), os.path.join(top, "private")
    os.makedirs(private)
    files = make_tree(public)
    with open(os.path.join(private, "secret.txt"), "wb") as f:
        f.write(b"secret\n")
    extra = {
        "repositories": [
            {"name": "releases", "path": public, "description": "Public releases"},
            {"name": "private", "path": private, "description": "Team only",
             "access": "whitelist",
             # Written as people do: the bare part's case does not matter.
             "members": [env["XMPP_USER_BOB"].upper(), env["XMPP_USER_CAROL"] + "/desk"]},
        ],
        "indexer": {"settle_ms": 0},
        "query": {"page_max": 500, "verbose_max": 20, "rate_per_second": 100000,
                  "rate_burst": 100000},
    }
    with Daemon(env, extra=extra) as daemon:
        daemon.wait_log(r"xmpp: connected as ")
        # The schema is there once the catalog says so; the XMPP side may
        # come up first.
        daemon.wait_log(r"catalog: connected")
        to = daemon.component
        live = ("SELECT count(*) FROM entry e JOIN entry p ON p.id = e.parent_id"
                " WHERE p.path = 'big' AND e.deleted_at IS NULL AND"
                " (e.kind = 'directory' OR e.current_revision_id IS NOT NULL)")
        wait_catalog(env, daemon.db, live, [str(BIG + 3)])
        wait_catalog(env, daemon.db, "SELECT count(*) FROM entry WHERE path = 'proj/old.txt'"
                     " AND current_revision_id IS NOT NULL", ["1"])
        os.unlink(os.path.join(public, "proj", "old.txt"))
        wait_catalog(env, daemon.db, "SELECT count(*) FROM entry WHERE path = 'proj/old.txt'"
                     " AND deleted_at IS NOT NULL", ["1"])
        wait_catalog(env, daemon.db, "SELECT count(*) FROM entry WHERE path = 'secret.txt'"
                     " AND current_revision_id IS NOT NULL", ["1"])

        host, port = env["XMPP_HOST"], env["XMPP_C2S_PORT"]
        with Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"], host, port) as alice, \
                Client(env["XMPP_USER_BOB"], env["XMPP_PASS_BOB"], host, port) as bob, \
                Client(env["XMPP_USER_CAROL"] + "/desk", env["XMPP_PASS_CAROL"], host,
                       port) as carol_desk, \
                Client(env["XMPP_USER_CAROL"] + "/phone", env["XMPP_PASS_CAROL"], host,
                       port) as carol_phone:
            check_disco_info(alice, to)
            check_root_and_dirs(alice, to, files)
            check_paging(alice, to)
            check_access(env, to, (alice, bob, carol_desk, carol_phone))
            check_errors(alice, to)
        check_cli(env, to, top)
        with Client(env["XMPP_USER_ALICE"], env["XMPP_PASS_ALICE"], env["XMPP_HOST"],
                    env["XMPP_C2S_PORT"]) as alice:
            check_changes(env, daemon.db, alice, to, public)
        check(daemon.stop() == 0, "clean stop")
    check_rate_limit(env)
    print("ok")


if __name__ == "__main__":
    main()
