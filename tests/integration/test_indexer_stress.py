"""The indexer under pressure: a burst of 20,000 files into an inotify queue
made small enough to overflow, and kill -9 in the middle of indexing, more
than once.  Afterwards the catalog, git and the disk must agree, with
exactly one revision per file.  Changes the system's
fs.inotify.max_queued_events for a moment (restored), so it runs alone."""

import os
import re
import random
import signal
import subprocess
import sys
import tempfile
import time

from harness import Daemon, check, load_services_env, psql

QUEUE_SYSCTL = "/proc/sys/fs/inotify/max_queued_events"


def wait_until(what, fn, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def agree(env, daemon, root, name="releases"):
    """The catalog, git and the disk hold the same files, each with one
    revision, every revision naming a commit git has."""
    disk = set()
    for d, _, files in os.walk(root):
        for f in files:
            disk.add(os.path.relpath(os.path.join(d, f), root))
    cat = set(psql(env, daemon.db, "SELECT path FROM entry WHERE kind = 'file'"
                                   " AND deleted_at IS NULL"))
    check(cat == disk, f"catalog and disk differ: {len(cat)} vs {len(disk)} files; "
                       f"e.g. {sorted(cat ^ disk)[:5]}")
    dup = psql(env, daemon.db, "SELECT count(*) FROM (SELECT entry_id FROM revision"
                               " GROUP BY entry_id HAVING count(*) > 1) d")
    check(dup == ["0"], f"{dup[0]} files have more than one revision")
    git = ["git", "--git-dir", os.path.join(daemon.state, "git", f"{name}.git")]
    tree = set(subprocess.run(git + ["ls-tree", "-r", "--name-only", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.splitlines())
    check(tree == disk, f"git and disk differ: {len(tree)} vs {len(disk)} files")
    commits = psql(env, daemon.db, "SELECT DISTINCT commit_id FROM revision")
    out = subprocess.run(git + ["cat-file", "--batch-check"], input="\n".join(commits) + "\n",
                         check=True, capture_output=True, text=True).stdout
    check("missing" not in out, f"revisions name commits git lacks:\n{out}")
    return len(disk)


def files_in_catalog(env, daemon):
    return int(psql(env, daemon.db, "SELECT count(*) FROM entry WHERE kind = 'file'"
                                    " AND deleted_at IS NULL")[0])


def burst(env):
    with open(QUEUE_SYSCTL) as f:
        saved = f.read().strip()
    with tempfile.TemporaryDirectory(prefix="filerepo-burst-") as root:
        extra = {"repositories": [{"name": "releases", "path": root}],
                 "indexer": {"settle_ms": 200}}
        # The directories exist (and are watched) before the burst, so its
        # events land in the queue.
        for i in range(100):
            os.makedirs(os.path.join(root, f"d{i:03d}"))
        with Daemon(env, extra=extra, autostart=False) as daemon:
            try:
                # The limit is taken when the inotify instance is made.
                with open(QUEUE_SYSCTL, "w") as f:
                    f.write("256\n")
                daemon.start()
                daemon.wait_log(r"watching; start-up rescan")
                daemon.wait_log(r"repo=releases commit=")
            finally:
                with open(QUEUE_SYSCTL, "w") as f:
                    f.write(saved + "\n")
            # Frozen while the burst lands, the daemon cannot keep up:
            # the queue of 256 events overflows for sure.
            daemon.proc.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            try:
                for i in range(20000):
                    d = os.path.join(root, f"d{i % 100:03d}")
                    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
                        f.write(i.to_bytes(4, "big") * 64)
            finally:
                daemon.proc.send_signal(signal.SIGCONT)
            wrote = time.monotonic() - started
            daemon.wait_log(r"the inotify queue overflowed .*full rescan in \d+ ms")
            wait_until("20,000 files in the catalog",
                       lambda: files_in_catalog(env, daemon) == 20000, 300)
            took = time.monotonic() - started
            n = agree(env, daemon, root)
            # More files than one part holds: committed part by part.
            check(re.search(r"repo=releases: part 1 committed", daemon.log()),
                  "20,000 files in one commit, not in parts")
            print(f"burst: {n} files written in {wrote:.1f} s, all in the catalog "
                  f"{took:.1f} s after the first")
            check(daemon.stop() == 0, "clean stop")


def head_ref(daemon):
    """The file of the branch HEAD points to, in the state repository."""
    git_dir = os.path.join(daemon.state, "git", "releases.git")
    with open(os.path.join(git_dir, "HEAD")) as f:
        return os.path.join(git_dir, f.read().split(": ", 1)[1].strip())


def read_or_none(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def crashes(env):
    """kill -9 at four moments: at random while hashing, the instant the
    git commit lands (before the catalog's), right after the catalog's,
    and at random again; then a last start, with the branch's git lock
    left behind as by a kill while git held it, runs to the end."""
    rng = random.Random(4)
    with tempfile.TemporaryDirectory(prefix="filerepo-crash-") as root:
        extra = {"repositories": [{"name": "releases", "path": root}],
                 "indexer": {"settle_ms": 100}}
        with Daemon(env, extra=extra, autostart=False) as daemon:
            total, mark = 0, 0
            for moment in ("while hashing", "after the git commit", "after the catalog commit",
                           "while hashing"):
                for i in range(1500):
                    d = os.path.join(root, f"r{total}", f"d{i % 30}")
                    os.makedirs(d, exist_ok=True)
                    with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
                        f.write(os.urandom(2048 + i))
                total += 1500
                ref = head_ref(daemon) if total > 1500 else None
                before = read_or_none(ref) if ref else None
                daemon.start()
                daemon.wait_log(r"files? to hash", after=mark)
                if moment == "while hashing":
                    time.sleep(rng.uniform(0.0, 0.3))
                elif moment == "after the git commit":
                    wait_until("the git commit", lambda: read_or_none(ref) != before, 60)
                else:
                    daemon.wait_log(r"new revisions?", after=mark)
                daemon.proc.send_signal(signal.SIGKILL)
                daemon.proc.wait()
                mark = len(daemon.log())
                print(f"killed {moment}: {files_in_catalog(env, daemon)} of {total} files "
                      f"recorded")
            # What a kill while git held the branch's lock leaves behind (it
            # happens, rarely, above): the next start must not be stuck on it.
            ref = head_ref(daemon)
            with open(ref + ".lock", "w") as f:
                f.write(read_or_none(ref) or "")
            mark = len(daemon.log())
            daemon.start()
            daemon.wait_log(r"releases\.git/refs/heads/\w+\.lock: removed a lock left by a "
                            r"filerepod that did not stop cleanly", after=mark)
            wait_until("every file recorded",
                       lambda: files_in_catalog(env, daemon) == total, 120)
            time.sleep(1)
            n = agree(env, daemon, root)
            print(f"after 4 kill -9: {n} files; catalog, git and disk agree")
            check(daemon.stop() == 0, "clean stop")


def main():
    env = load_services_env()
    burst(env)
    crashes(env)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
