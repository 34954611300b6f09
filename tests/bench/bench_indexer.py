"""Indexer benchmark: filerepod's full pipeline (two digests, content store,
git commit, catalog) against the tools a person would otherwise use, on the
same files, in the same run.  Prints medians and ratios; asserts nothing.

    tools/bench.sh indexer              (starts the services, runs this)

Sizes (environment): BENCH_ARCHIVES=100 archives of BENCH_ARCHIVE_MB=20 MB
of random bytes; BENCH_SMALL=100000 small files; BENCH_RUNS=3.  All peers
read from the page cache (the data is read once before timing).

The daemon's XMPP side points at a port where nothing listens: the indexer
still writes every outbox row, but publishing them (tools/bench.sh
publisher measures that) does not share the cores with what is measured
here, as it would not on a live repository, where a first index happens
once and rescans find nothing to publish.

The archives are indexed twice: on the machine's own file system with the
`copy` content store (every byte written a second time), and, where the
machine can mount one (root, loop devices, xfsprogs), on an XFS image with
reflink, the store's default mode, where a revision's bytes are cloned
instead of copied; openssl and sha256sum are timed on the same copy of the
files in each case.
"""

import atexit
import datetime
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Daemon, load_services_env  # noqa: E402
from idle import quiet  # noqa: E402

ARCHIVES = int(os.environ.get("BENCH_ARCHIVES", "100"))
ARCHIVE_MB = int(os.environ.get("BENCH_ARCHIVE_MB", "20"))
SMALL = int(os.environ.get("BENCH_SMALL", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DATA = os.environ.get("BENCH_DATA", "/tmp/filerepo-bench-data")


def stamp(line):
    t = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z", line).group(1)
    return datetime.datetime.fromisoformat(t).timestamp()


def log_time(daemon, pattern, after=0, timeout=1800):
    m, end = daemon.wait_log(r"(?m)^(.*" + pattern + ".*)$", after=after, timeout=timeout)
    return stamp(m.group(1)), end


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed(cmd, wait_idle=True, **kw):
    if wait_idle:
        quiet()
    started = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.monotonic() - started


def make_data():
    archives = os.path.join(DATA, f"archives-{ARCHIVES}x{ARCHIVE_MB}")
    small = os.path.join(DATA, f"small-{SMALL}")
    if not os.path.isdir(archives):
        os.makedirs(archives + ".tmp", exist_ok=True)
        for i in range(ARCHIVES):
            with open(os.path.join(archives + ".tmp", f"proj-{i:03d}.tar.xz"), "wb") as f:
                for _ in range(ARCHIVE_MB):
                    f.write(os.urandom(1 << 20))
        os.rename(archives + ".tmp", archives)
    if not os.path.isdir(small):
        os.makedirs(small + ".tmp", exist_ok=True)
        for i in range(SMALL):
            d = os.path.join(small + ".tmp", f"d{i % 1000:03d}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i:06d}.txt"), "wb") as f:
                f.write(os.urandom(512 + i % 1024))
        os.rename(small + ".tmp", small)
    # Into the page cache, for every peer alike.
    subprocess.run(["cat"] + [os.path.join(archives, f) for f in os.listdir(archives)],
                   stdout=subprocess.DEVNULL, check=True)
    return archives, small


def closed_port():
    """A loopback port nothing listens on (just given up by this process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def index(env, root, mode="copy", state_dir=None):
    """A fresh daemon indexes root; returns (seconds, peak RSS MB, seconds of
    a rescan with nothing changed asked for with SIGUSR1 (median of three; a
    periodic rescan is the same), seconds of the start-up rescan of a second
    start with nothing changed)."""
    extra = {"repositories": [{"name": "bench", "path": root}],
             "indexer": {"content_store": mode}}
    if state_dir:
        shutil.rmtree(state_dir, ignore_errors=True)
        extra["state_dir"] = state_dir
    daemon = Daemon(env, extra=extra, port=closed_port())
    try:
        quiet()
        daemon.start()
        t0, mark = log_time(daemon, r"repo=bench path=.*: watching; start-up rescan")
        t1, mark = log_time(daemon, r"index: repo=bench commit=", after=mark)
        rss = peak_rss_mb(daemon.proc.pid)
        rescans = []
        for _ in range(3):
            daemon.proc.send_signal(signal.SIGUSR1)
            r0, mark = log_time(daemon, r"SIGUSR1: rescanning", after=mark)
            r1, mark = log_time(daemon, r"repo=bench: 0 files to hash of \d+ seen", after=mark)
            rescans.append(r1 - r0)
        daemon.stop()
        daemon.start()
        r0, mark = log_time(daemon, r"repo=bench path=.*: watching; start-up rescan", after=mark)
        r1, mark = log_time(daemon, r"repo=bench: 0 files to hash of \d+ seen", after=mark)
        daemon.stop()
        return t1 - t0, rss, statistics.median(rescans), r1 - r0
    finally:
        daemon.close()


def git_commit(root):
    git_dir = tempfile.mkdtemp(prefix="filerepo-bench-git-")
    try:
        g = ["git", "--git-dir", git_dir, "--work-tree", root]
        subprocess.run(["git", "init", "-q", "--bare", git_dir], check=True)
        return timed(g + ["add", "-A"]) + timed(
            g + ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q",
                 "-m", "bench"], wait_idle=False)
    finally:
        shutil.rmtree(git_dir, ignore_errors=True)


def files_of(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


class ReflinkFs:
    """An XFS image with reflink on a loop device, holding a copy of the
    archives; None from open() where the machine cannot mount one."""

    @staticmethod
    def open(archives):
        if os.geteuid() != 0 or not shutil.which("mkfs.xfs"):
            return None
        work = tempfile.mkdtemp(prefix="filerepo-bench-xfs-")
        fs = ReflinkFs(work)
        size = sum(os.path.getsize(f) for f in files_of(archives))
        try:
            with open(fs.image, "wb") as f:
                f.truncate(2 * size + (1 << 30))
            subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", fs.image], check=True)
            os.mkdir(fs.mnt)
            subprocess.run(["mount", "-o", "loop", fs.image, fs.mnt], check=True,
                           stderr=subprocess.DEVNULL)
        except (OSError, subprocess.CalledProcessError):
            fs.close()
            return None
        fs.archives = os.path.join(fs.mnt, "archives")
        shutil.copytree(archives, fs.archives)
        # On disk and in the page cache, like the files on the machine's own
        # file system: uploads that landed a while ago.
        os.sync()
        subprocess.run(["cat"] + files_of(fs.archives), stdout=subprocess.DEVNULL, check=True)
        return fs

    def __init__(self, work):
        self.work = work
        self.image = os.path.join(work, "image")
        self.mnt = os.path.join(work, "mnt")
        self.state = os.path.join(self.mnt, "state")
        self.archives = None

    def close(self):
        if os.path.ismount(self.mnt):
            subprocess.run(["umount", self.mnt], check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    env = load_services_env()
    archives, small = make_data()
    results = {}

    def run(name, fn):
        results.setdefault(name, []).append(fn())

    arch_files = files_of(archives)
    xfs = ReflinkFs.open(archives)
    if xfs:
        atexit.register(xfs.close)
    for i in range(RUNS):
        if xfs:
            xfs_files = files_of(xfs.archives)
            ours = index(env, xfs.archives, "reflink", xfs.state)
            results.setdefault("filerepod archives on xfs (reflink)", []).append(ours[0])
            run("openssl dgst -sha256 archives on xfs",
                lambda: timed(["openssl", "dgst", "-sha256"] + xfs_files))
            run("sha256sum archives on xfs", lambda: timed(["sha256sum"] + xfs_files))
        ours = index(env, archives)
        results.setdefault("filerepod archives", []).append(ours[0])
        results.setdefault("filerepod archives RSS MB", []).append(ours[1])
        run("openssl dgst -sha256 archives", lambda: timed(["openssl", "dgst", "-sha256"]
                                                           + arch_files))
        run("sha256sum archives", lambda: timed(["sha256sum"] + arch_files))
        run("git add+commit archives", lambda: git_commit(archives))
        ours = index(env, small)
        results.setdefault("filerepod small files", []).append(ours[0])
        results.setdefault("filerepod small files RSS MB", []).append(ours[1])
        results.setdefault("filerepod no-change rescan", []).append(ours[2])
        results.setdefault("filerepod start-up rescan", []).append(ours[3])
        run("git add+commit small files", lambda: git_commit(small))
        run("find -printf rescan", lambda: timed(["find", small, "-printf", "%s %T@\\n"]))
        print(f"run {i + 1} of {RUNS} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in results.items()}
    gb = ARCHIVES * ARCHIVE_MB / 1024
    print(f"\nfilerepo indexer benchmark: {ARCHIVES} x {ARCHIVE_MB} MB archives ({gb:.2f} GiB), "
          f"{SMALL} small files; median of {RUNS}; {os.cpu_count()} cores\n")
    print(f"  {'':38s} {'median':>9s}    runs in order")
    for k, v in sorted(med.items()):
        unit = "  " if "RSS" in k else " s"
        runs = " ".join(f"{x:.2f}" for x in results[k])
        print(f"  {k:38s} {v:9.2f}{unit}   {runs}")
    ours = med["filerepod archives"]
    print("\nratios (peer time / filerepod time; > 1: filerepod is faster)")
    print("  on the machine's own file system, copy store:")
    print(f"  archives vs openssl dgst -sha256   {med['openssl dgst -sha256 archives'] / ours:6.2f}"
          f"   ({gb / ours:.2f} GiB/s through the whole pipeline)")
    print(f"  archives vs sha256sum              {med['sha256sum archives'] / ours:6.2f}")
    print(f"  archives vs git add+commit         {med['git add+commit archives'] / ours:6.2f}")
    if "filerepod archives on xfs (reflink)" in med:
        ours_x = med["filerepod archives on xfs (reflink)"]
        print("  on xfs, reflink store:")
        print(f"  archives vs openssl dgst -sha256   "
              f"{med['openssl dgst -sha256 archives on xfs'] / ours_x:6.2f}"
              f"   ({gb / ours_x:.2f} GiB/s through the whole pipeline)")
        print(f"  archives vs sha256sum              "
              f"{med['sha256sum archives on xfs'] / ours_x:6.2f}")
        print(f"  archives vs git add+commit         "
              f"{med['git add+commit archives'] / ours_x:6.2f}   (git on the machine's own disk)")
    else:
        print("  (no XFS image could be mounted: reflink not measured)")
    print(f"  small files vs git add+commit      "
          f"{med['git add+commit small files'] / med['filerepod small files']:6.2f}")
    print(f"  no-change rescan vs find           "
          f"{med['find -printf rescan'] / med['filerepod no-change rescan']:6.2f}"
          f"   (filerepod / find = "
          f"{med['filerepod no-change rescan'] / med['find -printf rescan']:.2f})")
    print(f"  start-up rescan vs find            "
          f"{med['find -printf rescan'] / med['filerepod start-up rescan']:6.2f}"
          f"   (includes connecting to the catalog)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
