"""Mirror checker benchmark: how long filerepod takes to verify a whole
repository on one http mirror (nginx on loopback, tools/mirrors.sh), per
verification policy.  Prints files/s and MiB/s from `mirror add` until every
copy is verified; asserts nothing.

    tools/bench.sh mirrors              (starts the services, runs this)

BENCH_MIRRORS_FILES=400 files of BENCH_MIRRORS_KIB=256 KiB each, checked
with mirrors.per_host (BENCH_MIRRORS_PER_HOST=2) connections to the host.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Daemon, load_services_env, psql  # noqa: E402

FILES = int(os.environ.get("BENCH_MIRRORS_FILES", "400"))
KIB = int(os.environ.get("BENCH_MIRRORS_KIB", "256"))
PER_HOST = int(os.environ.get("BENCH_MIRRORS_PER_HOST", "2"))


def mirrors_script():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                        "mirrors.sh")


def run(env, policy, root, mroot, port):
    repo = "bench"
    extra = {"repositories": [{"name": repo, "path": root}],
             "indexer": {"settle_ms": 0, "content_store": "copy"},
             "mirrors": {"verify": policy, "per_host": PER_HOST, "max_checks": 64,
                         "check_interval_seconds": 3600}}
    with Daemon(env, extra=extra) as daemon:
        sql = lambda q: psql(env, daemon.db, q)  # noqa: E731
        daemon.wait_log(r"catalog: connected")
        while sql("SELECT count(*) FROM entry WHERE kind = 'file'"
                  " AND current_revision_id IS NOT NULL") != [str(FILES)]:
            time.sleep(0.2)
        started = time.monotonic()
        subprocess.run([os.environ["FILEREPO"], "-c", daemon.config, "mirror", "add", repo,
                        f"http://127.0.0.1:{port}/"], check=True, capture_output=True)
        while sql("SELECT count(*) FROM mirror_copy WHERE state = 'verified'") != [str(FILES)]:
            time.sleep(0.1)
        took = time.monotonic() - started
        daemon.stop()
    mib = FILES * KIB / 1024
    print(f"{policy:8s} {FILES} files of {KIB} KiB verified in {took:.2f} s: "
          f"{FILES / took:.0f} files/s, {mib / took:.1f} MiB/s "
          f"(per_host {PER_HOST})")


def main():
    env = load_services_env()
    mroot = tempfile.mkdtemp(prefix="filerepo-bench-mirrors-")
    root = tempfile.mkdtemp(prefix="filerepo-bench-mirrors-repo-")
    os.chmod(mroot, 0o755)
    try:
        subprocess.run([mirrors_script(), "start", mroot, "http"], check=True)
        menv = dict(line.strip().split("=", 1) for line in open(os.path.join(mroot,
                                                                              "mirrors.env")))
        os.makedirs(menv["MIRROR_HTTP_ROOT"], exist_ok=True)
        for i in range(FILES):
            data = os.urandom(KIB * 1024)
            for d in (root, menv["MIRROR_HTTP_ROOT"]):
                with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
                    f.write(data)
        for policy in ("size", "sampled", "full"):
            run(env, policy, root, mroot, menv["MIRROR_HTTP_PORT"])
    finally:
        subprocess.run([mirrors_script(), "stop", mroot])
        shutil.rmtree(mroot, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
