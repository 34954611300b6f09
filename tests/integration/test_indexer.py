"""The indexer end to end: real files in a published directory, the real
daemon, the real catalog and git.  What a release manager does (upload
slowly, upload under a temporary name and rename, replace, delete, link)
and what must follow: one revision per finished upload with the right
digest, the old bytes kept, the history in git, nothing outside the tree."""

import hashlib
import os
import subprocess
import sys
import time

from harness import Daemon, binary, check, load_services_env, psql, store_object

SETTLE_MS = 300


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Repo:
    """A published directory with its daemon."""

    def __init__(self, env, daemon, root):
        self.env, self.daemon, self.root = env, daemon, root

    def sql(self, query):
        return psql(self.env, self.daemon.db, query)

    def revisions(self, path):
        """[(number, sha256 hex, size)] of a file, oldest first."""
        rows = self.sql(f"SELECT r.number, encode(r.sha256, 'hex'), r.size FROM revision r"
                        f" JOIN entry e ON e.id = r.entry_id WHERE e.path = '{path}'"
                        f" ORDER BY r.number")
        return [tuple(int(x) if i != 1 else x for i, x in enumerate(r.split("|")))
                for r in rows]

    def wait_revisions(self, path, count, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            revs = self.revisions(path)
            if len(revs) >= count:
                return revs
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.revisions(path))} revisions, wanted {count};"
                             f" log:\n{self.daemon.log()}")

    def wait_idle(self, timeout=30):
        """Waits until no batch is in flight and nothing waits (by the log)."""
        time.sleep(SETTLE_MS / 1000 + 0.5)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            n = len(self.daemon.log())
            if n == last:
                return
            last = n
            time.sleep(1)

    def git(self, *args):
        return subprocess.run(["git", "--git-dir", os.path.join(self.daemon.state, "git",
                                                                  "releases.git")] + list(args),
                              check=True, capture_output=True, text=True).stdout

    def path(self, rel):
        return os.path.join(self.root, rel)


def test_slow_writer(repo):
    """10 MB over 3 s: nothing is recorded before the upload finished, then
    exactly one revision with the right sha-256."""
    path = repo.path("slow-1.0.tar.xz")
    data = os.urandom(10 * 1024 * 1024)
    with open(path, "wb") as f:
        for i in range(30):
            f.write(data[i * len(data) // 30:(i + 1) * len(data) // 30])
            f.flush()
            time.sleep(0.1)
            check(repo.revisions("slow-1.0.tar.xz") == [], "recorded before the upload finished")
    revs = repo.wait_revisions("slow-1.0.tar.xz", 1)
    check(revs == [(1, hashlib.sha256(data).hexdigest(), len(data))], f"slow writer: {revs}")
    repo.wait_idle()
    check(len(repo.revisions("slow-1.0.tar.xz")) == 1, "more than one revision")


def test_rename_into_place(repo):
    """Write under a temporary name, rename: one revision of the final name,
    nothing of the temporary one."""
    part = repo.path("proj-1.4.0.tar.xz.part")
    with open(part, "wb") as f:
        f.write(b"release bytes " * 1000)
    time.sleep(SETTLE_MS / 1000 + 0.5)
    os.rename(part, repo.path("proj-1.4.0.tar.xz"))
    revs = repo.wait_revisions("proj-1.4.0.tar.xz", 1)
    check(revs[0][1] == sha256_of(repo.path("proj-1.4.0.tar.xz")), "digest after rename")
    repo.wait_idle()
    check(repo.sql("SELECT count(*) FROM entry WHERE path LIKE '%.part'") == ["0"],
          "the temporary name reached the catalog")
    check(repo.sql("SELECT mime FROM revision r JOIN entry e ON e.id = r.entry_id"
                   " WHERE e.path = 'proj-1.4.0.tar.xz'") == ["application/x-xz"], "mime")


def test_modify_keeps_old_bytes(repo):
    """A replaced file gets revision 2; revision 1's bytes stay in the store."""
    path = repo.path("latest.txt")
    with open(path, "w") as f:
        f.write("version one\n")
    first = repo.wait_revisions("latest.txt", 1)[0]
    time.sleep(0.1)
    with open(path, "w") as f:
        f.write("version two, longer\n")
    revs = repo.wait_revisions("latest.txt", 2)
    check([r[0] for r in revs] == [1, 2], f"numbers {revs}")
    check(revs[1][1] == sha256_of(path), "revision 2 digest")
    # Small: packed (indexer/store_pack.h), read here independently.
    old = store_object(repo.daemon.state, first[1])
    check(old is not None, "revision 1's bytes are not in the store")
    check(old == b"version one\n", f"revision 1's bytes in the store differ: {old!r}")


def test_delete_keeps_history(repo):
    path = repo.path("doomed.txt")
    with open(path, "w") as f:
        f.write("short-lived\n")
    repo.wait_revisions("doomed.txt", 1)
    os.unlink(path)
    deadline = time.monotonic() + 20
    while repo.sql("SELECT deleted_at IS NOT NULL FROM entry WHERE path = 'doomed.txt'") != ["t"]:
        check(time.monotonic() < deadline, "deletion not recorded")
        time.sleep(0.05)
    check(len(repo.revisions("doomed.txt")) == 1, "history lost on deletion")


def test_directories_and_symlinks(repo, outside):
    os.makedirs(repo.path("old/1.0"))
    with open(repo.path("old/1.0/a.tar.gz"), "wb") as f:
        f.write(b"a" * 100)
    secret = os.path.join(outside, "secret.txt")
    with open(secret, "w") as f:
        f.write("not for publishing\n")
    os.symlink(secret, repo.path("escape.txt"))
    os.symlink("old/1.0/a.tar.gz", repo.path("current.tar.gz"))
    repo.wait_revisions("old/1.0/a.tar.gz", 1)
    repo.wait_revisions("current.tar.gz", 1)
    repo.wait_idle()
    check(repo.sql("SELECT count(*) FROM entry WHERE path = 'escape.txt'") == ["0"],
          "a symlink leading outside was followed")
    check("escape.txt: symbolic link leads outside the repository" in repo.daemon.log(),
          "the refused symlink is not logged")
    check(repo.sql("SELECT kind FROM entry WHERE path IN ('old', 'old/1.0') ORDER BY path")
          == ["directory", "directory"], "directories")


def test_unreadable(repo):
    """A file nobody may read (mode 000) is logged and picked up once it
    becomes readable.  (The daemon runs without CAP_DAC_OVERRIDE here, as
    a root daemon would otherwise read it anyway.)"""
    path = repo.path("private.tar.xz")
    with open(path, "wb") as f:
        f.write(b"not yet")
    os.chmod(path, 0)
    repo.daemon.wait_log(r"path=private.tar.xz: cannot read: Permission denied; will retry")
    check(repo.revisions("private.tar.xz") == [], "recorded without reading")
    os.chmod(path, 0o644)
    revs = repo.wait_revisions("private.tar.xz", 1, timeout=30)
    check(revs[0][1] == hashlib.sha256(b"not yet").hexdigest(), "digest once readable")


def test_root_moved_away_and_back(repo):
    """The published directory itself renamed away and back: the loss is
    logged, the directory is opened and watched again, and what was added
    meanwhile is recorded."""
    away = repo.root + ".away"
    _, mark = repo.daemon.wait_log(r".*", after=len(repo.daemon.log()))
    os.rename(repo.root, away)
    repo.daemon.wait_log(r"the repository directory itself was moved or deleted", after=mark)
    with open(os.path.join(away, "while-away.txt"), "w") as f:
        f.write("added while the directory was elsewhere\n")
    os.rename(away, repo.root)
    repo.wait_revisions("while-away.txt", 1, timeout=40)
    # Watched again: a new file is seen through inotify.
    with open(repo.path("after-return.txt"), "w") as f:
        f.write("back\n")
    repo.wait_revisions("after-return.txt", 1, timeout=20)


def test_rescan_on_sigusr1(repo):
    """A change inotify cannot see (bytes written through a shared mapping
    raise no event) is picked up by the rescan an admin asks for with
    SIGUSR1."""
    import mmap
    import signal
    path = repo.path("mapped.bin")
    with open(path, "wb") as f:
        f.write(b"a" * 4096)
    repo.wait_revisions("mapped.bin", 1)
    fd = os.open(path, os.O_RDWR)
    mapping = mmap.mmap(fd, 4096)
    os.close(fd)  # the last event of this file: nothing has changed yet
    time.sleep(SETTLE_MS / 1000 + 1)
    mapping[:5] = b"hello"
    mapping.flush()
    # Still mapped: unmapping would be the file's close-after-write.
    time.sleep(SETTLE_MS / 1000 + 1)
    check(len(repo.revisions("mapped.bin")) == 1,
          "a write through a mapping was seen without a rescan")
    mark = len(repo.daemon.log())
    repo.daemon.proc.send_signal(signal.SIGUSR1)
    repo.daemon.wait_log(r"SIGUSR1: rescanning every repository", after=mark)
    revs = repo.wait_revisions("mapped.bin", 2)
    check(revs[1][1] == sha256_of(path), "revision 2 after the rescan has the mapped bytes")
    mapping.close()


def test_git_history(repo):
    """One commit per batch; the tree holds a pointer per live file."""
    commits = repo.sql("SELECT count(DISTINCT commit_id) FROM revision")[0]
    log = repo.git("log", "--format=%H %s")
    check(int(commits) <= len(log.splitlines()), f"catalog commits {commits} vs git:\n{log}")
    files = repo.sql("SELECT path FROM entry WHERE kind = 'file' AND deleted_at IS NULL"
                     " ORDER BY path")
    tree = sorted(repo.git("ls-tree", "-r", "--name-only", "HEAD").splitlines())
    check(tree == sorted(files), f"git tree {tree} vs catalog {files}")
    sha = repo.revisions("latest.txt")[-1][1]
    pointer = repo.git("show", "HEAD:latest.txt")
    check(pointer == f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\n"
                     f"size {os.path.getsize(repo.path('latest.txt'))}\n", f"pointer {pointer!r}")
    # Every revision names a commit git has.
    for commit in repo.sql("SELECT DISTINCT commit_id FROM revision"):
        repo.git("cat-file", "-e", commit + "^{commit}")
    print(log)


def test_cli(repo):
    """What an admin sees with the filerepo CLI."""
    import json

    def cli(*args):
        r = subprocess.run([binary("filerepo"), "-c", repo.daemon.config] + list(args),
                           capture_output=True, text=True)
        return r.returncode, r.stdout, r.stderr

    rc, out, err = cli("repo", "list", "--json")
    repos = json.loads(out)
    files = int(repo.sql("SELECT count(*) FROM entry WHERE kind = 'file'"
                         " AND deleted_at IS NULL")[0])
    check(rc == 0 and [r["name"] for r in repos] == ["releases"] and repos[0]["files"] == files
          and repos[0]["path"] == repo.root, f"repo list: {out} {err}")
    rc, out, _ = cli("repo", "list")
    check(rc == 0 and "releases" in out and repo.root in out, f"repo list: {out}")

    rc, out, _ = cli("ls", "--json", "releases")
    listing = json.loads(out)
    names = [e["name"] for e in listing]
    check(names == sorted(names) and "latest.txt" in names and "old" in names
          and "doomed.txt" not in names, f"ls: {names}")
    latest = next(e for e in listing if e["name"] == "latest.txt")
    check(latest["revision"] == 2 and latest["sha256"] == sha256_of(repo.path("latest.txt"))
          and latest["size"] == os.path.getsize(repo.path("latest.txt")), f"ls entry {latest}")
    rc, out, _ = cli("ls", "releases/old/1.0")
    check(rc == 0 and "a.tar.gz" in out and "r1" in out, f"ls dir: {out}")
    rc, out, err = cli("ls", "releases/nope")
    check(rc == 66 and "no such repository or path: releases/nope" in err, f"ls missing: {err}")

    rc, out, _ = cli("log", "--json", "releases/latest.txt")
    log = json.loads(out)
    check([r["revision"] for r in log] == [2, 1] and log[0]["current"] and not log[1]["current"],
          f"log: {log}")
    rc, out, _ = cli("log", "releases/doomed.txt")
    check(rc == 0 and "revision 1" in out, f"log of a deleted file: {out}")

    rc, out, _ = cli("status", "--json")
    status = json.loads(out)["repositories"][0]
    check(rc == 0 and status["files"] == files and len(status["last_commit"]) == 40
          and status["indexing"] is None and isinstance(status["outbox_pending"], int)
          and isinstance(status["outbox_parked"], int), f"status: {status}")
    # Every revision was handed to the publisher (which may be done with it),
    # once: a new file's create_leaf row carries its first revision.
    check(repo.sql("SELECT revision_id FROM outbox WHERE revision_id IS NOT NULL ORDER BY 1")
          == repo.sql("SELECT id FROM revision ORDER BY 1"), "a publish row per revision")
    rc, out, _ = cli("status")
    check(rc == 0 and "indexing:   idle" in out, f"status: {out}")
    print(out)


def main():
    env = load_services_env()
    import tempfile
    with tempfile.TemporaryDirectory(prefix="filerepo-pub-") as root, \
            tempfile.TemporaryDirectory(prefix="filerepo-outside-") as outside:
        # Something already there before the daemon starts.
        with open(os.path.join(root, "preexisting.tar.xz"), "wb") as f:
            f.write(b"was here first")
        extra = {"repositories": [{"name": "releases", "path": root, "title": "Releases"}],
                 "indexer": {"settle_ms": SETTLE_MS, "content_store": "copy"}}
        # As root, but without the capabilities that ignore file modes.
        no_dac = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
        with Daemon(env, extra=extra, wrapper=no_dac) as daemon:
            repo = Repo(env, daemon, root)
            daemon.wait_log(r"repo=releases path=.*: watching; start-up rescan")
            revs = repo.wait_revisions("preexisting.tar.xz", 1)
            check(revs[0][1] == hashlib.sha256(b"was here first").hexdigest(), "start-up scan")
            test_slow_writer(repo)
            test_rename_into_place(repo)
            test_modify_keeps_old_bytes(repo)
            test_delete_keeps_history(repo)
            test_directories_and_symlinks(repo, outside)
            test_unreadable(repo)
            test_root_moved_away_and_back(repo)
            test_rescan_on_sigusr1(repo)
            repo.wait_idle()
            test_git_history(repo)
            test_cli(repo)
            check(daemon.stop() == 0, "clean stop")
            print(daemon.log())
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
