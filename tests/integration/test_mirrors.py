"""Mirrors end to end, against real servers on loopback (tools/mirrors.sh:
nginx for http, vsftpd for ftp, Apache mod_dav for WebDAV): a copy is
advertised in the item a subscriber receives only once the checker has
verified it; a file the mirror lacks, or serves with other bytes of the same
size, is never advertised for that file; a mirror that goes down is marked
failing after N failed checks, withdrawn from the items and restored when it
answers again, with the reason in `filerepo mirror list`; a WebDAV mirror is
filled by the daemon (the bytes come back by GET) and an existing different
file is never overwritten; bad URLs and unknown types are refused by the CLI
with nothing stored; a mirror that accepts and never answers blocks neither
indexing nor publishing nor stopping the daemon."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid

from harness import Daemon, binary, check, client, load_services_env, psql, wait_for
from xmppclient import NS, error_condition

ENTRY_NS = "http://jabber.org/protocol/fileshare#item_metadata"
EVENT = NS["pubsub_event"]


def mirrors_script():
    return os.path.join(os.environ["FILEREPO_SOURCE_DIR"], "tools", "mirrors.sh")


def mirrors(verb, root, only=None):
    subprocess.run([mirrors_script(), verb, root] + ([only] if only else []), check=True,
                   stdout=sys.stdout, stderr=sys.stderr)


def mirrors_env(root):
    out = {}
    with open(os.path.join(root, "mirrors.env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            out[k] = v
    return out


def cli(daemon, *args):
    out = subprocess.run([binary("filerepo"), "-c", daemon.config, *args],
                         capture_output=True, text=True)
    return out.returncode, out.stdout, out.stderr


def mirror_list(daemon, repo=None):
    rc, out, err = cli(daemon, "mirror", "list", "--json", *([repo] if repo else []))
    check(rc == 0, f"mirror list: {err}")
    return json.loads(out)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), ".upload.part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def put_file(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)


def item_mirrors(item):
    """[(type, address, port, ref)] of the non-sipub mirrors of an <item/>."""
    entry = item.find(f"{{{ENTRY_NS}}}entry")
    if entry is None:
        return None
    return [(m.get("type"), m.get("address"), m.get("port"), m.get("ref"))
            for m in entry.findall(f"{{{ENTRY_NS}}}mirrors/{{{ENTRY_NS}}}mirror")
            if m.get("type") != "sipub"]


def notified_items(msg):
    event = msg.find(f"{{{EVENT}}}event")
    out = []
    for items in event.findall(f"{{{EVENT}}}items") if event is not None else []:
        for item in items.findall(f"{{{EVENT}}}item"):
            out.append((items.get("node"), item.get("id"), item))
    return out


def wait_notice(sub, node, want, timeout=60):
    """The mirrors of the first notification of `node` whose mirror list
    satisfies want(list)."""
    def match(m):
        return any(n == node and item_mirrors(it) is not None and want(item_mirrors(it))
                   for n, _, it in notified_items(m))
    msg = sub.wait_message(match, timeout)
    return next(item_mirrors(it) for n, _, it in notified_items(msg) if n == node)


def drain(sub):
    """Drops the notifications received so far, so the next wait sees only
    what comes after."""
    while True:
        try:
            sub.wait_message(lambda m: True, 0)
        except Exception:
            return


def items_of(c, service, node):
    reply = c.iq(f"<iq type='get' to='{service}'><pubsub xmlns='{NS['pubsub']}'>"
                 f"<items node='{node}'/></pubsub></iq>")
    check(reply.get("type") == "result", f"items of {node}: {error_condition(reply)}")
    return reply.findall(f".//{{{NS['pubsub']}}}item")


def copy_state(sql, mirror_id, path):
    rows = sql("SELECT c.state || '|' || coalesce(c.reason, '') FROM mirror_copy c"
               " JOIN revision v ON v.id = c.revision_id JOIN entry e ON e.id = v.entry_id"
               f" WHERE c.mirror_id = {mirror_id} AND e.path = '{path}'"
               " AND v.id = e.current_revision_id")
    return rows[0] if rows else None


def cli_validation(env):
    """Bad input is refused by the CLI and nothing is stored; a password is
    taken from a file and never shown."""
    repo = "mv" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="filerepo-mv-") as root:
        extra = {"repositories": [{"name": repo, "path": root}]}
        with Daemon(env, extra=extra) as daemon:
            daemon.wait_log(r"catalog: connected")
            wait_for("the repository row", lambda: psql(
                env, daemon.db, f"SELECT 1 FROM repository WHERE name = '{repo}'"))
            for args, says in [
                    (["not a url"], "blanks"),
                    (["mirror.example.org/pub/"], "is not a URL"),
                    (["gopher://mirror.example.org/"], "scheme \"gopher\""),
                    (["https://mirror.example.org/", "--type", "rsync"],
                     "unknown mirror type \"rsync\""),
                    (["https://mirror.example.org/", "--type", "ftp"], "needs"),
                    (["https://u:p@mirror.example.org/"], "no credentials in the URL"),
                    (["https://mirror.example.org/?q"], "no query"),
                    (["https://mirror.example.org/", "--password-file", "/nonexistent"],
                     "goes with --user")]:
                rc, out, err = cli(daemon, "mirror", "add", repo, *args)
                check(rc != 0 and says in err, f"mirror add {args}: rc {rc}, {err!r}")
            rc, _, err = cli(daemon, "mirror", "add", "nosuchrepo", "https://m.example.org/")
            check(rc != 0 and "no such repository" in err, f"unknown repository: {err!r}")
            check(mirror_list(daemon) == [], "nothing stored after refusals")
            check(psql(env, daemon.db, "SELECT count(*) FROM mirror") == ["0"], "no rows")

            secret = "s3cret-" + uuid.uuid4().hex
            pw = os.path.join(daemon.dir, "mirror-password")
            with open(pw, "w") as f:
                f.write(secret + "\n")
            rc, out, err = cli(daemon, "mirror", "add", repo, "https://M.example.org/pub",
                               "--user", "bot", "--password-file", pw,
                               "--description", "Boston")
            check(rc == 0 and "https://m.example.org/pub/" in out, f"add: {rc} {out} {err}")
            rc, _, err = cli(daemon, "mirror", "add", repo, "https://m.example.org/pub/")
            check(rc != 0 and "already a mirror" in err, f"duplicate: {err!r}")
            rows = mirror_list(daemon, repo)
            check(len(rows) == 1 and rows[0]["url"] == "https://m.example.org/pub/"
                  and rows[0]["user"] == "bot" and rows[0]["description"] == "Boston",
                  f"listed: {rows}")
            rc, out, _ = cli(daemon, "mirror", "list", repo)
            check(secret not in out + json.dumps(rows), "the password is never shown")
            check(psql(env, daemon.db, f"SELECT count(*) FROM mirror WHERE password_file = '{pw}'")
                  == ["1"], "the catalog keeps the file's name, not the secret")
            mid = str(rows[0]["id"])
            rc, out, _ = cli(daemon, "mirror", "check", repo)
            check(rc == 0 and "1 mirror to be checked now" in out, f"check: {out}")
            rc, out, _ = cli(daemon, "mirror", "disable", repo, mid)
            check(rc == 0 and mirror_list(daemon)[0]["state"] == "disabled", f"disable: {out}")
            rc, out, _ = cli(daemon, "mirror", "enable", repo, "https://m.example.org/pub/")
            check(rc == 0 and mirror_list(daemon)[0]["state"] == "new", f"enable: {out}")
            rc, out, _ = cli(daemon, "mirror", "remove", repo, mid)
            check(rc == 0 and mirror_list(daemon) == [], f"remove: {out}")
            rc, _, err = cli(daemon, "mirror", "remove", repo, mid)
            check(rc != 0 and "no such" in err, f"remove again: {err!r}")
            check(secret not in daemon.log(), "no secret in the daemon's log")
            check(daemon.stop() == 0, "clean stop")
    print("ok   the CLI refuses bad URLs and types, stores nothing, keeps passwords in files")


def http_and_ftp(env, mroot):
    """Verified copies are advertised; a missing or different file is not;
    a mirror that goes down is withdrawn after N failures and comes back."""
    m = mirrors_env(mroot)
    repo = "mh" + uuid.uuid4().hex[:8]
    service = env["XMPP_PUBSUB_JID"]
    good = b"the right bytes\n" * 1000
    other = b"the wrong bytes\n" * 1000
    check(len(good) == len(other), "same size")
    with tempfile.TemporaryDirectory(prefix="filerepo-mh-") as root:
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "mirrors": {"verify": "full", "check_interval_seconds": 1,
                             "failures_before_failing": 2}}
        with Daemon(env, extra=extra, pubsub=service) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            wait_for("the root collection", lambda: sql(
                f"SELECT 1 FROM repository WHERE name = '{repo}' AND pubsub_node IS NOT NULL"))
            alice = client(env, "alice")
            r = alice.iq(f"<iq type='set' to='{service}'><pubsub xmlns='{NS['pubsub']}'>"
                         f"<subscribe node='{repo}' jid='{alice.jid}'/></pubsub></iq>")
            check(r.get("type") == "result", "alice subscribes")

            # The mirror holds good.txt and a same-size impostor; not missing.txt.
            put_file(m["MIRROR_HTTP_ROOT"], f"{repo}/rel/good.txt", good)
            put_file(m["MIRROR_HTTP_ROOT"], f"{repo}/rel/same-size.bin", other)
            put_file(m["MIRROR_FTP_ROOT"], f"{repo}/rel/good.txt", good)
            write(os.path.join(root, "rel", "good.txt"), good)
            write(os.path.join(root, "rel", "same-size.bin"), good)
            write(os.path.join(root, "rel", "missing.txt"), b"only here\n")
            for f in ("good.txt", "same-size.bin", "missing.txt"):
                wait_for(f"{f} indexed", lambda f=f: sql(
                    f"SELECT 1 FROM entry WHERE path = 'rel/{f}' AND current_revision_id"
                    " IS NOT NULL"))

            http_url = f"http://127.0.0.1:{m['MIRROR_HTTP_PORT']}/{repo}/"
            rc, out, err = cli(daemon, "mirror", "add", repo, http_url, "--description", "web")
            check(rc == 0, f"mirror add http: {err}")
            hid = mirror_list(daemon)[0]["id"]
            port = m["MIRROR_HTTP_PORT"]
            http_mirror = ("http", "127.0.0.1", port, f"{repo}/rel/good.txt")
            got = wait_notice(alice, f"{repo}/rel/good.txt", lambda ms: http_mirror in ms)
            check(got == [http_mirror], f"the item advertises the verified http copy: {got}")
            print("ok   a verified copy is advertised in the item the subscriber receives")

            wait_for("the other copies checked", lambda: all(
                (copy_state(sql, hid, f"rel/{f}") or "pending").split("|")[0] != "pending"
                for f in ("missing.txt", "same-size.bin")))
            missing = copy_state(sql, hid, "rel/missing.txt")
            impostor = copy_state(sql, hid, "rel/same-size.bin")
            check(missing.startswith("missing|") and "404" in missing, f"missing: {missing}")
            check(impostor.startswith("mismatch|") and "sha-256" in impostor,
                  f"same size, other bytes: {impostor}")
            for f in ("missing.txt", "same-size.bin"):
                for it in items_of(alice, service, f"{repo}/rel/{f}"):
                    check(item_mirrors(it) == [], f"{f} is not advertised: {item_mirrors(it)}")
            listed = mirror_list(daemon)[0]
            check(listed["state"] == "ok" and listed["verified"] == 1 and listed["failed"] == 2,
                  f"mirror list: {listed}")
            print("ok   a missing file and same-size different bytes are never advertised")

            # Metalink: the verified URL and the hashes; none for the missing file.
            rc, out, err = cli(daemon, "metalink", f"{repo}/rel/good.txt")
            check(rc == 0 and f"<url priority=\"1\">{http_url}rel/good.txt</url>" in out
                  and hashlib.sha256(good).hexdigest() in out
                  and f"<size>{len(good)}</size>" in out, f"metalink: {out} {err}")
            rc, out, _ = cli(daemon, "metalink", f"{repo}/rel/missing.txt", "--rev", "1")
            check(rc == 0 and "<url" not in out, f"metalink without mirrors: {out}")
            rc, _, err = cli(daemon, "metalink", f"{repo}/rel/missing.txt", "--rev", "9")
            check(rc != 0 and "no such" in err, f"metalink of no revision: {err}")
            print("ok   filerepo metalink: size, hashes and verified mirror URLs")

            # An ftp mirror too.
            ftp_url = f"ftp://127.0.0.1:{m['MIRROR_FTP_PORT']}/{repo}/"
            rc, _, err = cli(daemon, "mirror", "add", repo, ftp_url)
            check(rc == 0, f"mirror add ftp: {err}")
            ftp_mirror = ("ftp", "127.0.0.1", m["MIRROR_FTP_PORT"], f"{repo}/rel/good.txt")
            got = wait_notice(alice, f"{repo}/rel/good.txt",
                              lambda ms: http_mirror in ms and ftp_mirror in ms)
            fid = [r["id"] for r in mirror_list(daemon) if r["type"] == "ftp"][0]
            wait_for("ftp: missing.txt checked", lambda: (copy_state(
                sql, fid, "rel/missing.txt") or "").startswith("missing|"))
            print("ok   an ftp mirror: SIZE and download, advertised once verified")

            # The http mirror goes down: failing after 2 failures, withdrawn.
            drain(alice)
            mirrors("stop", mroot, "http")
            got = wait_notice(alice, f"{repo}/rel/good.txt",
                              lambda ms: http_mirror not in ms and ftp_mirror in ms)
            row = [r for r in mirror_list(daemon) if r["id"] == hid][0]
            check(row["state"] == "failing" and row["consecutive_failures"] >= 2
                  and row["state_reason"] and row["last_error"], f"failing: {row}")
            rc, out, _ = cli(daemon, "mirror", "list", repo)
            check("failing" in out and row["state_reason"] in out, f"mirror list says why: {out}")
            daemon.wait_log(r"mirror " + http_url + r": state ok -> failing")
            print("ok   a mirror that goes down is failing after N failures and withdrawn: "
                  + row["state_reason"])

            drain(alice)
            mirrors("start", mroot, "http")
            got = wait_notice(alice, f"{repo}/rel/good.txt",
                              lambda ms: http_mirror in ms and ftp_mirror in ms)
            row = [r for r in mirror_list(daemon) if r["id"] == hid][0]
            check(row["state"] == "ok" and row["consecutive_failures"] == 0, f"back: {row}")
            daemon.wait_log(r"mirror " + http_url + r": state failing -> ok")
            print("ok   and restored when it answers again")

            # Disabled: withdrawn at once.
            drain(alice)
            rc, _, err = cli(daemon, "mirror", "disable", repo, str(hid))
            check(rc == 0, f"disable: {err}")
            wait_notice(alice, f"{repo}/rel/good.txt",
                        lambda ms: http_mirror not in ms and ftp_mirror in ms)
            print("ok   a disabled mirror is withdrawn from the items")
            alice.close()
            check(daemon.stop() == 0, "clean stop")


def dav_get(m, rel):
    with urllib.request.urlopen(f"http://127.0.0.1:{m['MIRROR_DAV_PORT']}/{rel}") as r:
        return r.read()


def dav_propfind(m, rel):
    with open(m["MIRROR_DAV_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    out = subprocess.run(
        ["curl", "-sS", "-u", f"{m['MIRROR_DAV_USER']}:{password}", "-X", "PROPFIND",
         "-H", "Depth: 0", f"http://127.0.0.1:{m['MIRROR_DAV_PORT']}/{rel}"],
        capture_output=True, text=True, check=True)
    return out.stdout


def webdav(env, mroot):
    """The daemon fills a WebDAV mirror (PUT with If-None-Match: *, then the
    JID list of a whitelist repository), never overwrites a different file,
    and advertises the pushed copy once verified."""
    m = mirrors_env(mroot)
    repo = "md" + uuid.uuid4().hex[:8]
    new = os.urandom(300000)
    theirs = b"already on the mirror, different\n"
    with tempfile.TemporaryDirectory(prefix="filerepo-md-") as root:
        extra = {"repositories": [{"name": repo, "path": root, "access": "whitelist",
                                   "members": [env["XMPP_USER_CAROL"]]}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "mirrors": {"verify": "sampled", "check_interval_seconds": 1}}
        put_file(m["MIRROR_DAV_ROOT"], f"{repo}/taken.txt", theirs)
        subprocess.run(["chown", "-R", "www-data:www-data", m["MIRROR_DAV_ROOT"]], check=True)
        with Daemon(env, extra=extra) as daemon:
            sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
            daemon.wait_log(r"catalog: connected")
            write(os.path.join(root, "dir", "new.bin"), new)
            write(os.path.join(root, "taken.txt"), b"ours, not theirs\n")
            for f in ("dir/new.bin", "taken.txt"):
                wait_for(f"{f} indexed", lambda f=f: sql(
                    f"SELECT 1 FROM entry WHERE path = '{f}' AND current_revision_id IS NOT NULL"))
            dav_url = f"http://127.0.0.1:{m['MIRROR_DAV_PORT']}/{repo}/"
            rc, _, err = cli(daemon, "mirror", "add", repo, dav_url, "--type", "webdav",
                             "--user", m["MIRROR_DAV_USER"],
                             "--password-file", m["MIRROR_DAV_PASSWORD_FILE"])
            check(rc == 0, f"mirror add webdav: {err}")
            mid = mirror_list(daemon)[0]["id"]
            wait_for("both copies checked", lambda: all(
                (copy_state(sql, mid, f) or "pending|").split("|")[0] not in ("pending", "error")
                for f in ("dir/new.bin", "taken.txt")), timeout=90)
            check(copy_state(sql, mid, "dir/new.bin") == "verified|",
                  f"pushed and verified: {copy_state(sql, mid, 'dir/new.bin')}")
            check(dav_get(m, f"{repo}/dir/new.bin") == new, "GET returns the pushed bytes")
            check(copy_state(sql, mid, "taken.txt").startswith("mismatch|"),
                  f"an existing different file: {copy_state(sql, mid, 'taken.txt')}")
            check(dav_get(m, f"{repo}/taken.txt") == theirs, "and it was not overwritten")
            props = dav_propfind(m, f"{repo}/dir/new.bin")
            check(env["XMPP_USER_CAROL"] in props and "jidlist" in props,
                  f"the JID list was set: {props}")
            rc, out, _ = cli(daemon, "metalink", f"{repo}/dir/new.bin")
            check(f"<url priority=\"1\">{dav_url}dir/new.bin</url>" in out, f"metalink: {out}")
            rc, out, _ = cli(daemon, "metalink", f"{repo}/taken.txt")
            check("<url" not in out, f"no URL for the different file: {out}")
            wait_for("the item published again, with the mirror", lambda: int(sql(
                "SELECT count(*) FROM outbox WHERE revision_id IS NOT NULL AND state = 'done'"
                " AND payload->>'path' = 'dir/new.bin'")[0]) >= 2)
            check(daemon.log().count("stored " + dav_url + "dir/new.bin") == 1, "pushed once")
            check(daemon.stop() == 0, "clean stop")
    print("ok   WebDAV: pushed (GET returns it), JID list set, an existing different file kept")


def hanging_mirror(env):
    """A mirror that accepts connections and never answers: the check waits,
    while another file is indexed and published, and the daemon still stops
    at once."""
    repo = "mg" + uuid.uuid4().hex[:8]
    service = env["XMPP_PUBSUB_JID"]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the backlog; nothing is ever said
    port = silent.getsockname()[1]
    try:
        with tempfile.TemporaryDirectory(prefix="filerepo-mg-") as root:
            extra = {"repositories": [{"name": repo, "path": root}],
                     "indexer": {"settle_ms": 0, "content_store": "copy"},
                     "mirrors": {"low_speed_seconds": 3600, "check_interval_seconds": 1}}
            with Daemon(env, extra=extra, pubsub=service) as daemon:
                sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
                daemon.wait_log(r"catalog: connected")
                write(os.path.join(root, "first.txt"), b"first\n")
                wait_for("first.txt indexed", lambda: sql(
                    "SELECT 1 FROM entry WHERE path = 'first.txt' AND current_revision_id"
                    " IS NOT NULL"))
                rc, _, err = cli(daemon, "mirror", "add", repo, f"http://127.0.0.1:{port}/")
                check(rc == 0, f"mirror add: {err}")
                wait_for("the check under way", lambda: sql(
                    "SELECT 1 FROM mirror_copy WHERE state = 'pending'"))
                write(os.path.join(root, "second.txt"), b"second\n")
                wait_for("second.txt published", lambda: sql(
                    "SELECT 1 FROM outbox WHERE revision_id IS NOT NULL AND state = 'done'"
                    " AND payload->>'path' = 'second.txt'"))
                alice = client(env, "alice")
                check([i.get("id") for i in items_of(alice, service, f"{repo}/second.txt")]
                      == ["1"], "second.txt's item is there")
                alice.close()
                check(sql("SELECT state FROM mirror_copy c JOIN revision v ON v.id ="
                          " c.revision_id JOIN entry e ON e.id = v.entry_id"
                          " WHERE e.path = 'first.txt'") == ["pending"],
                      "the hanging check has not finished")
                check(daemon.stop() == 0, "the daemon stops while a check hangs")
    finally:
        silent.close()
    print("ok   a mirror that never answers blocks neither indexing, publishing nor stopping")


def main():
    env = load_services_env()
    mroot = tempfile.mkdtemp(prefix="filerepo-mirrors-")
    os.chmod(mroot, 0o755)
    try:
        mirrors("start", mroot)
        cli_validation(env)
        http_and_ftp(env, mroot)
        webdav(env, mroot)
        hanging_mirror(env)
    finally:
        mirrors("stop", mroot)
        shutil.rmtree(mroot, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
