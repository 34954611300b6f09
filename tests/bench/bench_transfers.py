"""Transfer benchmark: `filerepo get` of a 1 GB file over loopback from
filerepod, against `curl` fetching the same file from nginx (sendfile on)
in the same run; and filerepod's memory while 50 transfers run at once.
Prints medians (MB/s, 1 MB = 10^6 bytes) and ratios to curl; asserts
nothing.

    tools/bench.sh transfers            (starts the services, runs this)

Paths, each BENCH_RUNS=5 times, each run after a curl run: SOCKS5 direct
(the default: both sides offer a direct candidate), SOCKS5 through the
server's proxy65 (a second daemon whose direct candidate is offered where
nothing listens, and --no-direct), in-band (IBB, the daemon's largest block
size and window).  The method the report names is printed when it is not
the one intended.  Then SOCKS5 direct and curl both into /dev/null: the
transport and the sha-256 alone, no file written.  Neither tool waits for
the file to reach the disk, and each starts after the previous download
was removed and the file system synced (no other's writeback running).  Each time is the wall clock of the whole
command (login, request, bytes, checksum), and for curl of the whole download into
a file on the same file system.

Also timed after each curl run: `openssl dgst -sha256` (the fastest
hasher at hand) of the file curl wrote, since
`filerepo get` hands over a file whose sha-256 it has checked.

Memory: BENCH_CONCURRENT=50 `filerepo get -o /dev/null` of a
BENCH_CONCURRENT_MB=100 MiB file started at once (SOCKS5, three accounts);
filerepod's VmRSS is sampled every 50 ms, VmHWM read before and after.

Sizes: BENCH_TRANSFER_MB=1024; BENCH_IBB=0 skips the IBB runs.
"""

import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Daemon, binary, load_services_env, psql, wait_for  # noqa: E402

MB = 1000 * 1000
SIZE_MB = int(os.environ.get("BENCH_TRANSFER_MB", "1024"))
IBB = os.environ.get("BENCH_IBB", "1") != "0"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
CONCURRENT = int(os.environ.get("BENCH_CONCURRENT", "50"))
CONCURRENT_MB = int(os.environ.get("BENCH_CONCURRENT_MB", "100"))
S5B = "urn:xmpp:jingle:transports:s5b:1"


def write_random(path, mib):
    """A file of `mib` MiB of random bytes (1 MiB of urandom repeated with a
    counter, so no two blocks are alike and it is quick to make)."""
    seed = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(i.to_bytes(8, "little") + seed[8:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx on 127.0.0.1 serving `root`, with a config of its own."""

    def __init__(self, root, workdir):
        self.port = free_port()
        self.dir = workdir
        conf = os.path.join(workdir, "nginx.conf")
        temp = os.path.join(workdir, "tmp")
        os.makedirs(temp, exist_ok=True)
        with open(conf, "w") as f:
            f.write(f"""
daemon off;
master_process off;
worker_processes 1;
user root;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.err warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    types {{ application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", workdir, "-c", conf, "-e",
                                      os.path.join(workdir, "nginx.err")])
        wait_for("nginx listening", self._up, timeout=20)

    def _up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def timed(cmd, **kw):
    started = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    took = time.monotonic() - started
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return took, r.stdout


def get_env(env, who="alice"):
    up = who.upper()
    e = dict(os.environ, FILEREPO_XMPP_JID=env["XMPP_USER_" + up],
             FILEREPO_XMPP_PASSWORD=env["XMPP_PASS_" + up],
             FILEREPO_XMPP_SERVER=f"{env['XMPP_HOST']}:{env['XMPP_C2S_PORT']}")
    e.pop("FILEREPO_XMPP_PASSWORD_FILE", None)
    return e


def fresh(out):
    """Removes the previous download and flushes the file system, so that
    each command starts with no dirty pages of another's to write back."""
    if out != "/dev/null" and os.path.exists(out):
        os.unlink(out)
    os.sync()


def run_get(env, args, out):
    fresh(out)
    took, stdout = timed([binary("filerepo"), "get", "--json", "-o", out] + args,
                         env=get_env(env))
    return took, json.loads(stdout)


def rss(pid):
    """(VmRSS, VmHWM) of pid in kB."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


def mbps(nbytes, seconds):
    return nbytes / MB / seconds


def ready(env, daemon):
    """Waits until the daemon has indexed both files; returns its JID."""
    daemon.wait_log(r"catalog: connected")
    wait_for("the files indexed", lambda: psql(env, daemon.db,
             "SELECT count(*) FROM entry WHERE kind = 'file'"
             " AND current_revision_id IS NOT NULL") == ["2"], timeout=900)
    return daemon.component


def memory(env, daemon, to, repo):
    """filerepod's memory while CONCURRENT gets of mid.bin run at once."""
    pid = daemon.proc.pid
    before_rss, before_hwm = rss(pid)
    procs, peak, stop = [], [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss(pid)[0])
            time.sleep(0.05)
    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    for i in range(CONCURRENT):
        procs.append(subprocess.Popen(
            [binary("filerepo"), "get", "--json", "-o", "/dev/null", "--timeout", "600",
             to, f"{repo}/mid.bin"],
            env=get_env(env, ("alice", "bob", "carol")[i % 3]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    failed, methods = 0, {}
    for p in procs:
        so, se = p.communicate(timeout=1800)
        if p.returncode != 0:
            failed += 1
            if failed == 1:
                print(f"  a concurrent get failed ({p.returncode}): {se.strip()[-300:]}")
        else:
            m = json.loads(so)["method"]
            methods[m] = methods.get(m, 0) + 1
    took = time.monotonic() - started
    stop.set()
    sampler.join()
    after_rss, after_hwm = rss(pid)
    print(f"{CONCURRENT} concurrent gets of {CONCURRENT_MB} MiB ({methods}): {took:.1f} s, "
          f"{CONCURRENT - failed} succeeded; filerepod VmRSS before "
          f"{before_rss / 1024:.1f} MiB, peak sampled {peak[0] / 1024:.1f} MiB, "
          f"after {after_rss / 1024:.1f} MiB; VmHWM before {before_hwm / 1024:.1f} MiB, "
          f"after {after_hwm / 1024:.1f} MiB")


def main():
    env = load_services_env()
    repo = "bt" + uuid.uuid4().hex[:6]
    work = tempfile.mkdtemp(prefix="filerepo-bench-transfers-")
    root = os.path.join(work, "files")
    os.makedirs(root)
    os.chmod(work, 0o755)
    os.chmod(root, 0o755)
    try:
        big, mid = os.path.join(root, "big.bin"), os.path.join(root, "mid.bin")
        write_random(big, SIZE_MB)
        write_random(mid, CONCURRENT_MB)
        size = os.path.getsize(big)
        sha = hashlib.sha256()
        with open(big, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        digest = sha.hexdigest()
        limits = {"ibb_block_size": 65535, "ibb_window": 64,
                  "max_sessions": CONCURRENT + 10, "per_requester_max": CONCURRENT + 10}
        extra = {"repositories": [{"name": repo, "path": root}],
                 "indexer": {"settle_ms": 0, "content_store": "copy"},
                 "transfer": limits}
        # The proxy path: the daemon's own candidate offered where nothing
        # listens, none of ours (--no-direct): only proxy65 connects.
        proxied = dict(extra, transfer=dict(limits, socks5_host="127.0.0.2",
                                            socks5_proxy="auto"))
        nginx = Nginx(root, work)
        out = os.path.join(work, "out.bin")
        curl_times, curl_null, curl_checked, results, served = [], [], [], {}, {}
        paired = {}  # name: median over runs of (that run's curl time / get's time)
        try:
            for config, paths in ((extra, [("socks5-direct", []), ("to /dev/null", []),
                                           ("ibb", ["--ibb"])]),
                                  (proxied, [("socks5-proxy", ["--no-direct"])])):
                with Daemon(env, extra=config) as daemon:
                    to = ready(env, daemon)
                    if config is proxied:
                        daemon.wait_log(r"SOCKS5 proxy \S+ at", timeout=60)
                    for name, args in paths:
                        if name == "ibb" and not IBB:
                            continue
                        times, pairs = [], []
                        for _ in range(RUNS):
                            null = name == "to /dev/null"
                            fresh(out)
                            took, _ = timed(["curl", "-sS", "-o", "/dev/null" if null else out,
                                             f"http://127.0.0.1:{nginx.port}/big.bin"])
                            (curl_null if null else curl_times).append(took)
                            curl_took = took
                            if not null:
                                # The same deliverable as get's: the file, its hash checked.
                                summed, _ = timed(["openssl", "dgst", "-sha256", out])
                                curl_checked.append(took + summed)
                            took, rep = run_get(env, args + [to, f"{repo}/big.bin"],
                                                "/dev/null" if null else out)
                            if null:
                                rep["method"] = name
                            if rep["sha256"] != digest or not rep["verified"]:
                                raise SystemExit(f"{name}: wrong bytes: {rep}")
                            served[name] = rep["method"]
                            times.append(took)
                            pairs.append(curl_took / took)
                        results[name] = statistics.median(times)
                        paired[name] = statistics.median(pairs)
                    if config is extra:
                        memory(env, daemon, to, repo)
                    daemon.stop()
        finally:
            nginx.stop()
            if os.path.exists(out):
                os.unlink(out)
        curl = statistics.median(curl_times)
        print(f"file: {size / MB:.0f} MB; median of {RUNS} runs each, curl run before each")
        print(f"curl from nginx (sendfile): {mbps(size, curl):8.1f} MB/s  "
              f"({curl:.2f} s, median of {len(curl_times)})")
        checked = statistics.median(curl_checked)
        print(f"curl, then openssl dgst -sha256 of the file: {mbps(size, checked):8.1f} MB/s  "
              f"({checked:.2f} s): what get delivers, a file whose hash is checked")
        if "socks5-direct" in results:
            print(f"filerepo get, socks5-direct against curl + openssl dgst: "
                  f"{100 * checked / results['socks5-direct']:.0f}%")
        for name in ("socks5-direct", "socks5-proxy", "ibb", "to /dev/null"):
            if name not in results:
                print(f"filerepo get, {name:13s}: not measured")
                continue
            t = results[name]
            if name == "to /dev/null":
                curl = statistics.median(curl_null)
                print(f"both to /dev/null (no file written): curl "
                      f"{mbps(size, curl):8.1f} MB/s ({curl:.2f} s)")
            note = "" if served[name] == name else f" (served as {served[name]})"
            print(f"filerepo get, {name:13s}: {mbps(size, t):8.1f} MB/s  "
                  f"({t:.2f} s, {100 * curl / t:.0f}% of curl; run by run against the curl "
                  f"run just before it, median {100 * paired[name]:.0f}%){note}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
